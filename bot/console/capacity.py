"""How many conversations a counsellor may hold at once, who is on a break, and who has a free place.

A counsellor's capacity is COUNSELLOR_CAPACITY unless their account sets its own (`helpline counsellor
capacity NAME N`). Supervisors have one too, shown and counted as a free place, but a claim never stops
them at it: they take over when nobody else can. A break (or a pause after an emergency) stops
new claims for everyone, supervisors too, until they come back; it ends when they go away or sign in.

The claim itself (bot.console.handoff.claim) asks take() here: one Redis script checks the counsellor's
load against their capacity and takes the conversation off the queue (a named one, or the most urgent,
longest waiting) in the same step, so neither a double click nor two tabs go past the limit, and
counsellors asking for the next texter at the same instant each get a different one.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import redis
from flask import current_app

from .. import audit
from ..errors import HelplineError
from ..settings import MAX_CAPACITY
from ..followups import PREFERRED
from ..waiting import KEY as WAITING
from ..waiting import PRIORITIES, score
from ..waiting import WaitingQueue
from . import accounts
from .accounts import BREAKS, Counsellor

KINDS = {"break": "on a break", "pause": "taking a pause after an emergency"}
# A counsellor who ended an emergency is offered a pause on their queue page for this long.
PAUSE_OFFER_SECONDS = 600
# How far back the audit trail is read for a counsellor's shift (since their latest sign-in).
SHIFT_LOOKBACK_HOURS = 24
_AUDIT_BATCH = 500

# KEYS: the waiting queue, who holds what, who was asked for (bot.followups.PREFERRED). ARGV: a conversation
# id ("" for the most urgent, longest waiting), the counsellor, their capacity (0: no limit), a priority's band.
_TAKE = """
local id, name, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
if id ~= '' and redis.call('hget', KEYS[2], id) == name then
  return {'taken', name}
end
if limit > 0 then
  local held = 0
  for _, holder in ipairs(redis.call('hvals', KEYS[2])) do
    if holder == name then held = held + 1 end
  end
  if held >= limit then return {'full', tostring(held)} end
end
if id == '' then
  local first = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')
  if #first == 0 then return {'none', ''} end
  id = first[1]
  -- A texter who answered this counsellor's check-in, first among equals (the same priority).
  local width = tonumber(ARGV[4])
  local band, best = math.floor(tonumber(first[2]) / width), nil
  local asked = redis.call('hgetall', KEYS[3])
  for i = 1, #asked, 2 do
    local at = asked[i + 1] == name and redis.call('zscore', KEYS[1], asked[i])
    if at and math.floor(tonumber(at) / width) == band and (best == nil or tonumber(at) < best) then
      best, id = tonumber(at), asked[i]
    end
  end
  redis.call('zrem', KEYS[1], id)
elseif redis.call('zrem', KEYS[1], id) == 0 then
  return {'taken', redis.call('hget', KEYS[2], id) or ''}
end
redis.call('hset', KEYS[2], id, name)
return {'ok', id}
"""


class Refused(HelplineError):
    """This counsellor may not take a new conversation now; the message says why, in console words."""


class NobodyWaiting(HelplineError):
    """"Help the next texter" found nobody in the queue."""


def pause_offer_key(name: str) -> str:
    return f"console:pause-offer:{name}"


def default() -> int:
    return int(current_app.config["COUNSELLOR_CAPACITY"])


def capacity(client: redis.Redis, name: str) -> int:
    return capacities(client, [name])[name]


def capacities(client: redis.Redis, names: list[str]) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hget(accounts.account_key(name), "capacity")
    return {name: int(own) if own else default() for name, own in zip(names, pipe.execute())}


def set_capacity(client: redis.Redis, name: str, places: int | None) -> bool:
    """Give NAME their own capacity (None: back to COUNSELLOR_CAPACITY); False when there is no such account."""
    key = accounts.account_key(name)
    if not client.exists(key):
        return False
    if places is None:
        client.hdel(key, "capacity")
    elif not 1 <= places <= MAX_CAPACITY:
        raise accounts.AccountError(f"a capacity is 1 to {MAX_CAPACITY} conversations")
    else:
        client.hset(key, "capacity", places)
    return True


# -- breaks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    kind: str  # a key of KINDS
    since: float

    @property
    def words(self) -> str:
        return KINDS[self.kind]


def start_break(client: redis.Redis, name: str, kind: str = "break") -> None:
    """Audited, as every change of who may take conversations is (the trail shows a shift's gaps)."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(BREAKS, name, f"{time.time():.0f} {kind}")
    pipe.delete(pause_offer_key(name))
    audit.record(pipe, name, "break_start", detail=kind)
    pipe.execute()


def end_break(client: redis.Redis, name: str) -> None:
    if client.hdel(BREAKS, name):
        audit.record(client, name, "break_end")


def _break(value: bytes) -> Break:
    since, _, kind = value.decode().partition(" ")
    return Break(kind if kind in KINDS else "break", float(since))


def breaks(client: redis.Redis) -> dict[str, Break]:
    return {name.decode(): _break(value) for name, value in client.hgetall(BREAKS).items()}


def on_break(client: redis.Redis, name: str) -> Break | None:
    value = client.hget(BREAKS, name)
    return None if value is None else _break(value)


def offer_pause(pipe, name: str) -> None:
    """After an emergency: the counsellor's queue page offers a few minutes' pause."""
    pipe.set(pause_offer_key(name), 1, ex=PAUSE_OFFER_SECONDS)


def pause_offered(client: redis.Redis, name: str) -> bool:
    return bool(client.exists(pause_offer_key(name)))


def decline_pause(client: redis.Redis, name: str) -> None:
    client.delete(pause_offer_key(name))


# -- claiming ------------------------------------------------------------------------


def full(held: int, places: int) -> str:
    return f"you hold {held} conversation{'s' if held != 1 else ''}, your limit of {places}"


def take(client: redis.Redis, held_key: str, counsellor: Counsellor, conv_id: str | None) -> tuple[str | None, str]:
    """Take conv_id (None: the most urgent, longest waiting) off the queue and note who holds it.

    (conversation id, counsellor) when taken; (None, holder or "") when someone else was first.
    Refused at capacity (supervisors never are) or on a break; NobodyWaiting when the queue is empty."""
    paused = on_break(client, counsellor.name)
    if paused is not None:
        raise Refused(f"you are {paused.words}: come back to take a conversation")
    places = 0 if counsellor.supervisor else capacity(client, counsellor.name)
    status, value = (part.decode() for part in client.register_script(_TAKE)(
        keys=[WAITING, held_key, PREFERRED], args=[conv_id or "", counsellor.name, places,
                                                           score(PRIORITIES[1], 0)]))  # one priority's band
    if status == "full":
        raise Refused(full(int(value), places))
    if status == "none":
        raise NobodyWaiting("nobody is waiting")
    if status == "taken":
        return None, value
    return value, counsellor.name


def cannot_receive(client: redis.Redis, held_key: str, target: Counsellor) -> str:
    """Why a conversation cannot be handed to `target` now ("" when it can)."""
    paused = on_break(client, target.name)
    if paused is not None:
        return f"{target.name} is {paused.words}"
    if target.supervisor:
        return ""
    held = held_counts(client, held_key)[target.name]
    places = capacity(client, target.name)
    return f"{target.name} holds {held} conversations, their limit" if held >= places else ""


# -- who is free ---------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One online counsellor's place in the rota, as the supervisors' overview shows it."""

    name: str
    held: int
    places: int
    paused: Break | None

    @property
    def free(self) -> bool:
        return self.paused is None and self.held < self.places


def loads(client: redis.Redis, held_by: Counter) -> list[Load]:
    """Every online counsellor's load; held_by counts the conversations each holds."""
    names = accounts.online(client)
    places, paused = capacities(client, names), breaks(client)
    return [Load(name, held_by.get(name, 0), places[name], paused.get(name)) for name in names]


def held_counts(client: redis.Redis, held_key: str) -> Counter:
    return Counter(holder.decode() for holder in client.hvals(held_key))


# -- emergencies nobody is free for ---------------------------------------------------------

# conversation id -> "sent" once the supervisors' webhook took the alert, else until when the attempt
# under way holds it (a worker killed mid-alert, or a webhook that refused it: the next check past that asks again).
UNATTENDED = "console:unattended"
SENT = "sent"
# Longer than one alert's attempts take (workers.alerts.ALERT_DEADLINE), so two workers never post it at once.
ALERT_LEASE_SECONDS = 60
_LOOK_AT = 200  # emergencies come first in the queue; more than this many waiting is beyond any alert
# ARGV: the conversation id, now, the lease's end.
_LEASE = """
local held = redis.call('hget', KEYS[1], ARGV[1])
if held == 'sent' or (held and tonumber(held) > tonumber(ARGV[2])) then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
# Only while still flagged: a conversation erased or taken meanwhile has left the hash, and must not come back.
_SENT = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then redis.call('hset', KEYS[1], ARGV[1], 'sent') end
"""


@dataclass(frozen=True)
class Unattended:
    conv_id: str
    waited: float  # seconds


def nobody_free(client: redis.Redis, held_key: str) -> tuple[bool, int]:
    """(True when no online counsellor has a free place, how many are online)."""
    found = loads(client, held_counts(client, held_key))
    return not any(load.free for load in found), len(found)


def emergencies_waiting(waiting: WaitingQueue, longer_than: float, now: float | None = None) -> list[Unattended]:
    now = time.time() if now is None else now
    return [Unattended(cid, now - since) for cid, priority, since in waiting.waiting(_LOOK_AT)
            if priority == "emergency" and now - since >= longer_than]


def flag(client: redis.Redis, conv_id: str, now: float) -> bool:
    """Mark an emergency as unattended; True when its alert is owed and this caller is to send it now: the
    first time in its wait, or again once an attempt that was not confirmed (sent()) has run out of time."""
    return bool(client.register_script(_LEASE)(keys=[UNATTENDED], args=[conv_id, now, now + ALERT_LEASE_SECONDS]))


def sent(client: redis.Redis, conv_id: str) -> None:
    """The alert for this emergency's wait was delivered: never again in this wait."""
    client.register_script(_SENT)(keys=[UNATTENDED], args=[conv_id])


def forget_left(client: redis.Redis, waiting: WaitingQueue) -> int:
    """Drop the flags of conversations no longer waiting (taken, ended, erased): a later wait is a new one."""
    left = [cid.decode() for cid in client.hkeys(UNATTENDED) if waiting.position(cid.decode()) is None]
    return int(client.hdel(UNATTENDED, *left)) if left else 0


def unattended(client: redis.Redis, waiting: WaitingQueue) -> list[Unattended]:
    """The flagged emergencies still waiting, as the supervisors' banner shows them."""
    flagged = {cid.decode() for cid in client.hkeys(UNATTENDED)}
    if not flagged:
        return []
    return [found for found in emergencies_waiting(waiting, 0) if found.conv_id in flagged]


# -- this shift ----------------------------------------------------------------------


@dataclass
class Shift:
    taken: int = 0
    emergencies: int = 0


def shifts(client: redis.Redis, names: list[str], now: float | None = None) -> dict[str, Shift]:
    """Conversations each counsellor claimed since their latest sign-in (how many were emergencies),
    read from the audit trail, newest first, back to the sign-in."""
    counts = {name: Shift() for name in names}
    looking = set(names)
    start = f"{int(((now or time.time()) - SHIFT_LOOKBACK_HOURS * 3600) * 1000)}-0"
    newest = "+"
    while looking:
        batch = client.xrevrange(audit.STREAM, max=newest, min=start, count=_AUDIT_BATCH)
        for entry_id, fields in batch:
            actor = fields.get(b"actor", b"").decode()
            if actor not in looking:
                continue
            action = fields.get(b"action", b"").decode()
            if action == "sign_in":
                looking.discard(actor)
            elif action == "claim":
                counts[actor].taken += 1
                counts[actor].emergencies += fields.get(b"detail") == b"emergency"
        if len(batch) < _AUDIT_BATCH:
            break
        newest = f"({batch[-1][0].decode()}"
    return counts
