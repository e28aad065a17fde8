"""Data-key rotation: re-encrypt every stored value under the newest HELPLINE_DATA_KEY.

Procedure (docs/privacy.md, "Operator procedures: keys"): prepend a new key to HELPLINE_DATA_KEY and restart
(new writes use it, old values still open) → `helpline keys rotate` → `helpline keys check`
reports nothing stale → remove the old key and restart.

Encrypted values are found by what they are, not by key prefix: every sealed value starts
with the same bytes (bot.crypto.is_sealed), so conversation docs, transcripts, dedupe and outbound records, notes and
anything added later are covered without a list to keep up to date. They live in strings,
list elements and hash fields; the app stores no encrypted value in a set, sorted set or stream.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import redis
from cryptography.fernet import Fernet

from .crypto import InvalidToken, Vault, is_sealed

SCAN_BATCH = 500
_TYPES = (b"string", b"list", b"hash")


@dataclass
class Report:
    """What a rotation (or a check) found."""

    applied: bool = False  # a rotation (True) or only a check
    keys: int = 0  # Redis keys looked at
    values: int = 0  # encrypted values among them
    stale: int = 0  # values an older configured key opens but the newest does not (before rotation)
    unreadable: int = 0  # values no configured key opens: rotating cannot help
    rotated: int = 0
    failed: list[str] = field(default_factory=list)  # key names holding a value no configured key opens

    def summary(self) -> str:
        """For operators, for whom "key" means a data key: Redis's keys are "entries" here."""
        looked = f"{self.keys} Redis entries checked, {self.values} encrypted values in them"
        if self.applied:
            done = f"{self.rotated} re-encrypted under the newest data key"
        elif self.stale:
            done = f"{self.stale} not under the newest data key yet (run `helpline keys rotate`)"
        elif self.unreadable:
            done = "none under an older data key"
        else:
            done = "all readable with the newest data key alone (older data keys may go)"
        lost = (f"{self.unreadable} values in {len(self.failed)} entries open with no configured data key: "
                "rotating cannot help; the key they were written with is missing from HELPLINE_DATA_KEY"
                if self.unreadable else "every value opens with a configured data key")
        return f"{looked}: {done}; {lost}"


def generate() -> str:
    """A new Fernet key, for the front of HELPLINE_DATA_KEY."""
    return Fernet.generate_key().decode()


def rotate(client: redis.Redis, vault: Vault, apply: bool = True) -> Report:
    """Re-encrypt every value not yet under the newest key (apply=False: only count them).

    Keys are walked with SCAN (never KEYS) and each is rewritten under WATCH, in place
    (SET KEEPTTL, LSET, HSET), so TTLs are kept and a write by the running app in between
    is never overwritten: the key is read again and retried.
    """
    report = Report(applied=apply)
    for name in client.scan_iter(count=SCAN_BATCH):
        report.keys += 1
        _rotate_key(client, vault, name, apply, report)
    return report


def _rotate_key(client: redis.Redis, vault: Vault, name: bytes, apply: bool, report: Report) -> None:
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(name)
                kind = pipe.type(name)
                if kind not in _TYPES:
                    return
                values = _read(pipe, name, kind)
                sealed = {slot: v for slot, v in values.items() if v and is_sealed(v)}
                fresh, unreadable = {}, 0
                for slot, token in sealed.items():
                    if vault.is_current(token):
                        continue
                    try:
                        fresh[slot] = vault.rotate(token)
                    except InvalidToken:
                        unreadable += 1
                if not apply or not fresh:
                    pipe.unwatch()
                else:
                    pipe.multi()
                    _write(pipe, name, kind, fresh)
                    pipe.execute()
            except redis.WatchError:
                continue  # the app wrote this key meanwhile: read it again
            report.values += len(sealed)
            report.stale += len(fresh)
            report.unreadable += unreadable
            report.rotated += len(fresh) if apply else 0
            if unreadable:
                report.failed.append(name.decode(errors="replace"))
            return


def _read(pipe, name: bytes, kind: bytes) -> dict:
    if kind == b"string":
        return {None: pipe.get(name)}
    if kind == b"list":
        return dict(enumerate(pipe.lrange(name, 0, -1)))
    return pipe.hgetall(name)


def _write(pipe, name: bytes, kind: bytes, fresh: dict) -> None:
    for slot, token in fresh.items():
        if kind == b"string":
            pipe.set(name, token, keepttl=True)
        elif kind == b"list":
            pipe.lset(name, slot, token)
        else:
            pipe.hset(name, slot, token)
