"""Counsellor accounts and presence in Redis: who may sign in, who is a supervisor, who is online."""
from __future__ import annotations

import functools
import re
import secrets
import time
from dataclasses import dataclass

import redis
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from ..errors import ConfigurationError
# ONLINE: the names taking conversations; SEEN: name -> when each last did something (to drop the
# idle ones). Named in bot.hours, whose wait estimate reads both.
from ..hours import ONLINE, SEEN

NAMES = "counsellors"  # a set of every account name
# Partner agencies' accounts (bot.console.partners): same keys and sign-in, never in NAMES, so never
# offered a transfer, counted online or listed as counsellors.
PARTNERS = "partners"
BREAKS = "counsellors:breaks"  # name -> "<since> <kind>" of who is on a break (bot.console.capacity)
MIN_PASSWORD = 12
MIN_STRENGTH = 3  # of zxcvbn's 0-4
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")


class AccountError(ValueError):
    """A counsellor name or password that cannot be used."""


@dataclass(frozen=True)
class Counsellor:
    name: str
    supervisor: bool = False
    agency: str = ""  # set for a partner agency's account: it sees that agency's referrals and nothing else


@functools.lru_cache(maxsize=4)
def _hashing(profile: str) -> tuple[PasswordHasher, str]:
    """The hasher for an argon2-cffi profile name, and a decoy hash made with it."""
    parameters = getattr(profiles, profile, None)
    if not profile.isupper() or parameters is None:
        raise ConfigurationError(f"CONSOLE_PASSWORD_HASH: {profile!r} is not an argon2 profile name")
    hasher = PasswordHasher.from_parameters(parameters)
    # Checked when the name is unknown, so a wrong name takes as long as a wrong password.
    return hasher, hasher.hash("not a real password, only for timing")


def _hasher() -> tuple[PasswordHasher, str]:
    return _hashing(current_app.config["CONSOLE_PASSWORD_HASH"])


def account_key(name: str) -> str:
    return f"counsellor:{name}"


def clean_name(name: str) -> str:
    """Names are lower case letters, digits, dot, dash and underscore; 2 to 32 of them."""
    name = (name or "").strip().lower()
    if not _NAME.match(name):
        raise AccountError("a name is 2-32 lower-case letters, digits, '.', '-' or '_', starting with a letter or digit")
    return name


def check_strength(name: str, password: str) -> None:
    """Refuse a password that is long but easy to guess ("aaaaaaaaaaaa", "password1234", the name twice):
    zxcvbn's estimate, with its dictionaries of common passwords, words and patterns, must reach 3 of 4."""
    from zxcvbn import zxcvbn  # only the CLI that adds accounts pays for its dictionaries

    found = zxcvbn(password, user_inputs=[name, "kern", "helpline"])
    if found["score"] < MIN_STRENGTH:
        why = found["feedback"]["warning"] or "it is too easy to guess"
        raise AccountError(f"choose a harder password: {why.rstrip('.')}. A few unrelated words work well")


def add(client: redis.Redis, name: str, password: str, supervisor: bool = False, agency: str = "") -> Counsellor:
    """Create or replace an account (replacing sets a new password); with `agency`, a partner's."""
    name = clean_name(name)
    if client.sismember(NAMES if agency else PARTNERS, name):
        raise AccountError(f"{name} is a {'counsellor' if agency else 'partner'}'s account; choose another name")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    check_strength(name, password)
    pipe = client.pipeline(transaction=True)
    # A new version with every add (a new password, a promotion or demotion): sessions signed in under
    # the old one end at their next request.
    pipe.hset(account_key(name), mapping={"hash": _hasher()[0].hash(password), "supervisor": int(supervisor),
                                          "agency": agency, "created": f"{time.time():.0f}",
                                          "version": secrets.token_hex(8)})
    pipe.sadd(PARTNERS if agency else NAMES, name)
    pipe.execute()
    return Counsellor(name, supervisor, agency)


def remove(client: redis.Redis, name: str) -> bool:
    """Delete an account; its console sessions end at their next request."""
    name = (name or "").strip().lower()
    pipe = client.pipeline(transaction=True)
    pipe.delete(account_key(name))
    pipe.srem(NAMES, name)
    pipe.srem(PARTNERS, name)
    pipe.srem(ONLINE, name)
    pipe.zrem(SEEN, name)
    pipe.hdel(BREAKS, name)
    return bool(pipe.execute()[0])


def get(client: redis.Redis, name: str) -> Counsellor | None:
    return get_versioned(client, name)[0]


def get_versioned(client: redis.Redis, name: str) -> tuple[Counsellor | None, str]:
    """The account and its credentials' version (a session is valid only under the version it began in)."""
    supervisor, agency, version = client.hmget(account_key(name), "supervisor", "agency", "version") \
        if name else (None, None, None)
    if supervisor is None:
        return None, ""
    return Counsellor(name, supervisor == b"1", (agency or b"").decode()), (version or b"").decode()


def end_sessions(client: redis.Redis, name: str) -> bool:
    """End every console session of NAME (at its next request); False when there is no such account."""
    key = account_key((name or "").strip().lower())
    if not client.exists(key):
        return False
    client.hset(key, "version", secrets.token_hex(8))
    return True


def names(client: redis.Redis) -> list[str]:
    return sorted(n.decode() for n in client.smembers(NAMES))


def everyone(client: redis.Redis) -> list[Counsellor]:
    found = [get(client, n) for n in names(client)]
    return [c for c in found if c is not None]


def partners(client: redis.Redis) -> list[Counsellor]:
    """Every partner agency's account, by name."""
    found = [get(client, n.decode()) for n in sorted(client.smembers(PARTNERS))]
    return [p for p in found if p is not None]


def verify(client: redis.Redis, name: str, password: str) -> Counsellor | None:
    """The counsellor when name and password match, else None (in about the same time either way)."""
    try:
        name = clean_name(name)
    except AccountError:
        name = ""
    hasher, decoy = _hasher()
    stored = client.hmget(account_key(name), "hash", "supervisor", "agency") if name else [None, None, None]
    hashed = stored[0].decode() if stored[0] else decoy
    try:
        hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored[0] is None:
        return None
    if hasher.check_needs_rehash(hashed):
        client.hset(account_key(name), "hash", hasher.hash(password))
    return Counsellor(name, stored[1] == b"1", (stored[2] or b"").decode())


# -- presence --------------------------------------------------------------------


def set_online(client: redis.Redis, name: str, online: bool) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.hdel(BREAKS, name)  # going away or signing in ends a break
    if online:
        pipe.sadd(ONLINE, name)
        pipe.zadd(SEEN, {name: time.time()})
    else:
        pipe.srem(ONLINE, name)
    pipe.execute()


def is_online(client: redis.Redis, name: str) -> bool:
    return bool(client.sismember(ONLINE, name))


def online(client: redis.Redis) -> list[str]:
    return sorted(n.decode() for n in client.smembers(ONLINE))


def seen(client: redis.Redis, name: str) -> None:
    client.zadd(SEEN, {name: time.time()})


def drop_idle(client: redis.Redis, idle_seconds: float) -> list[str]:
    """Take counsellors who did nothing for idle_seconds out of the online set; their sessions have expired."""
    stale = [n.decode() for n in client.zrangebyscore(SEEN, 0, time.time() - idle_seconds)]
    if stale:
        pipe = client.pipeline(transaction=True)
        pipe.srem(ONLINE, *stale)
        pipe.zrem(SEEN, *stale)
        pipe.execute()
    return stale
