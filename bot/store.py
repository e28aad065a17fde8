"""Conversations, transcripts, dedupe and locks in Redis: the help line's only state.

Key names carry ids derived with HMAC (see bot.crypto), never an address; values that
hold an address or a message are Fernet-encrypted.
"""
from __future__ import annotations

import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis

from flows.conversation import Conversation

from .crypto import Vault
from .errors import ConversationBusy, StoreUnavailable

TRANSCRIPT_MAX = 1000  # entries kept per conversation; older ones fall off
TRIM_EVERY = 25  # messages between trims: the list may pass TRANSCRIPT_MAX by a few entries meanwhile
DEDUPE_TTL = 24 * 3600  # Twilio retries within minutes; a day is ample
LOCK_TTL_MS = 10_000

# Deletes the lock only if we still own it (another process may have taken it after expiry).
_UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def conv_key(conv_id: str) -> str:
    return f"c:{conv_id}"


def transcript_key(conv_id: str) -> str:
    return f"t:{conv_id}"


def lock_key(conv_id: str) -> str:
    return f"l:{conv_id}"


def dedupe_key(message_id: str) -> str:
    return f"m:{message_id}"


@dataclass
class Session:
    """A conversation loaded under its lock, with what must be written back in one transaction."""

    conv_id: str
    token: str
    conv: Conversation | None
    previous: dict | None  # the stored outcome of this message id, when it was handled before
    entries: list[dict] = field(default_factory=list)
    count: int = 0  # the sender's hits in the current rate-limit window, when begin() was asked to count


class ConversationStore:
    """Loads and saves conversations; every save is one MULTI/EXEC with its transcript and effects."""

    def __init__(self, redis_client: redis.Redis, vault: Vault, retention_days: int = 30, lock_wait: float = 5.0):
        self.redis, self.vault = redis_client, vault
        self.ttl = int(retention_days * 86400)
        self.lock_wait = lock_wait
        self._unlock = self.redis.register_script(_UNLOCK)

    # -- the hot path: one round trip to lock and load, one to save and unlock ----

    def begin(self, conv_id: str, message_id: str | None = None, count: tuple[str, int] | None = None) -> Session:
        """Take the conversation's lock and load it (and any earlier outcome of message_id).

        `count=(name, ttl)` also counts one hit on a rate-limit counter in the same round trip.
        """
        token = secrets.token_hex(8)
        deadline = time.monotonic() + self.lock_wait
        delay = 0.005
        hits = 0
        while True:
            try:
                pipe = self.redis.pipeline(transaction=False)
                if count is not None:
                    pipe.incr(count[0])
                    pipe.expire(count[0], count[1])
                pipe.set(lock_key(conv_id), token, nx=True, px=LOCK_TTL_MS)
                pipe.get(conv_key(conv_id))
                if message_id:
                    pipe.get(dedupe_key(message_id))
                got = pipe.execute()
            except redis.RedisError as exc:
                raise StoreUnavailable("could not reach Redis") from exc
            if count is not None:
                hits, count = int(got[0]), None  # one hit per message, however long the lock takes
                got = got[2:]
            if got[0]:
                conv = Conversation.from_doc(self.vault.open(got[1])) if got[1] else None
                previous = self.vault.open(got[2]) if message_id and got[2] else None
                return Session(conv_id, token, conv, previous, count=hits)
            if time.monotonic() > deadline:
                raise ConversationBusy("conversation lock not released in time")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def commit(self, session: Session, conv: Conversation | None, outcome: dict | None = None,
               message_id: str | None = None, also=None) -> None:
        """Write the conversation, its new transcript entries, the dedupe record and `also(pipe)`; unlock."""
        cid = session.conv_id
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.multi()  # explicit, so that RQ's enqueue(pipeline=pipe) joins this transaction
            if conv is not None:
                pipe.set(conv_key(cid), self.vault.seal(conv.to_doc()), ex=self.ttl)
                if session.entries:
                    pipe.rpush(transcript_key(cid), *[self.vault.seal(e) for e in session.entries])
                    if conv.messages % TRIM_EVERY == 0:
                        pipe.ltrim(transcript_key(cid), -TRANSCRIPT_MAX, -1)
                    pipe.expire(transcript_key(cid), self.ttl)
            if message_id and outcome is not None:
                pipe.set(dedupe_key(message_id), self.vault.seal(outcome), ex=DEDUPE_TTL)
            if also is not None:
                also(pipe)
            # EVAL, not the registered script: redis-py checks a pipeline's scripts with SCRIPT EXISTS
            # first, which would cost every message a round trip of its own.
            pipe.eval(_UNLOCK, 1, lock_key(cid), session.token)
            pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable("could not save the conversation") from exc

    def release(self, session: Session) -> None:
        """Give the lock back without writing (after an error)."""
        try:
            self._unlock(keys=[lock_key(session.conv_id)], args=[session.token])
        except redis.RedisError:
            pass  # it expires by itself within LOCK_TTL_MS

    @contextmanager
    def locked(self, conv_id: str):
        """For the console and workers: `with store.locked(id) as s: ...; s.conv = changed`."""
        session = self.begin(conv_id)
        try:
            yield session
        except BaseException:
            self.release(session)
            raise
        self.commit(session, session.conv)

    # -- reads for the console and workers ------------------------------------

    def load(self, conv_id: str) -> Conversation | None:
        raw = self.redis.get(conv_key(conv_id))
        return Conversation.from_doc(self.vault.open(raw)) if raw else None

    def load_many(self, conv_ids: list[str]) -> list[Conversation | None]:
        if not conv_ids:
            return []
        raws = self.redis.mget([conv_key(c) for c in conv_ids])
        return [Conversation.from_doc(self.vault.open(r)) if r else None for r in raws]

    def transcript(self, conv_id: str, start: int = 0, end: int = -1) -> list[dict]:
        return [self.vault.open(raw) for raw in self.redis.lrange(transcript_key(conv_id), start, end)]

    def append(self, conv_id: str, entry: dict, pipe=None) -> None:
        """Add one transcript entry outside the message path (a counsellor's reply, a note)."""
        target = pipe if pipe is not None else self.redis.pipeline(transaction=True)
        target.rpush(transcript_key(conv_id), self.vault.seal(entry))
        target.ltrim(transcript_key(conv_id), -TRANSCRIPT_MAX, -1)
        target.expire(transcript_key(conv_id), self.ttl)
        if pipe is None:
            target.execute()

    def erase(self, pipe, conv_id: str) -> None:
        """Queue the deletion of everything stored under this conversation."""
        pipe.delete(conv_key(conv_id), transcript_key(conv_id))


def entry(sender: str, text: str, now: float, **extra) -> dict:
    """A transcript entry: who (texter, bot, counsellor, system), what, when."""
    return {"at": now, "from": sender, "text": text, **extra}
