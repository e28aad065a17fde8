"""Conversations, transcripts, dedupe and locks in Redis: the help line's only state.

Key names carry ids derived with HMAC (see bot.crypto), never an address; values that
hold an address or a message are encrypted (bot.crypto.Vault).
"""
from __future__ import annotations

import os
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import hiredis
import redis

from flows.conversation import Conversation

from .crypto import Vault
from .errors import ConversationBusy, StoreUnavailable

TRANSCRIPT_MAX = 1000  # entries kept per conversation; older ones fall off
TRIM_EVERY = 25  # messages between trims: the list may pass TRANSCRIPT_MAX by a few entries meanwhile
DEDUPE_TTL = 24 * 3600  # Twilio retries within minutes; a day is ample
# A lock outlives a process killed while holding it by this much: a message takes milliseconds under
# it, and Twilio's retry of the killed request (waiting up to HELPLINE_LOCK_WAIT) must find it free.
LOCK_TTL_MS = 3_000

# Deletes the lock only if we still own it (another process may have taken it after expiry).
_UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

# One command instead of a pipeline of five: a command costs this client more than the server.
# KEYS: lock, conversation, dedupe record (the lock again when there is none), [rate-limit counter],
#       [one more key to read: bot.blocking's record of the sender]
# ARGV: lock token, lock ttl (ms), the counter's ttl, '1' when KEYS[3] is a dedupe record, '1' when the
#       last key is one to read
# A message answered before gets that answer without the lock: whoever holds it (or died holding it)
# cannot make a retry wait, nor answer it differently.
_BEGIN = """
local hits = 0
local read = ARGV[5] == '1'
if #KEYS - (read and 1 or 0) > 3 then
  hits = redis.call('incr', KEYS[4])
  if hits == 1 then redis.call('expire', KEYS[4], ARGV[3]) end  -- the key names its window: one TTL
end
if ARGV[4] == '1' then
  local previous = redis.call('get', KEYS[3])
  if previous then return {hits, 0, false, previous} end
end
local locked = redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if not locked then locked = redis.call('get', KEYS[1]) == ARGV[1] end  -- taken already by this very call, tried again
-- No stored answer here (it returned above): `previous` is false, not KEYS[3] read a second time.
return {hits, locked and 1 or 0, redis.call('get', KEYS[2]), false, read and redis.call('get', KEYS[#KEYS])}
"""

# Everything a message writes, then the unlock, as one command (see ConversationStore.commit).
# KEYS: lock, conversation, transcript, dedupe record, then any hashes of counters
# ARGV: lock token, conversation ('' for none), retention ttl, transcript cap (0: no trim this time),
#       dedupe record ('' for none), its ttl; then counted lists: transcript entries; channel and
#       message pairs to publish; and for each hash of counters its ttl (0: none) and field, amount pairs.
_SAVE = """
local i = 7
local function list(width)
  local first = i + 1
  i = first + tonumber(ARGV[i]) * width
  return first, i - 1
end
if ARGV[2] ~= '' then redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
local a, b = list(1)
if b >= a then
  redis.call('rpush', KEYS[3], unpack(ARGV, a, b))
  if ARGV[4] ~= '0' then redis.call('ltrim', KEYS[3], -tonumber(ARGV[4]), -1) end
  redis.call('expire', KEYS[3], ARGV[3])
end
if ARGV[5] ~= '' then redis.call('set', KEYS[4], ARGV[5], 'EX', ARGV[6]) end
a, b = list(2)
for j = a, b, 2 do redis.call('publish', ARGV[j], ARGV[j + 1]) end
for k = 5, #KEYS do
  local ttl = ARGV[i]
  i = i + 1
  a, b = list(2)
  local fresh = false  -- a field counted for the first time: the hash may be new and needs its TTL
  for j = a, b, 2 do
    if redis.call('hincrby', KEYS[k], ARGV[j], ARGV[j + 1]) == tonumber(ARGV[j + 1]) then fresh = true end
  end
  if ttl ~= '0' and fresh then redis.call('expire', KEYS[k], ttl) end
end
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return 1
"""


# KEYS: conversation, transcript; ARGV: sealed entry, transcript cap, retention ttl
_APPEND = """
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('rpush', KEYS[2], ARGV[1])
redis.call('ltrim', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('expire', KEYS[2], ARGV[3])
return 1
"""


# Bumped in a forked child, whose threads then take connections of their own (see _connection).
_generation = [0]
os.register_at_fork(after_in_child=lambda: _generation.__setitem__(0, _generation[0] + 1))


def conv_key(conv_id: str) -> str:
    return f"c:{conv_id}"


def transcript_key(conv_id: str) -> str:
    return f"t:{conv_id}"


def lock_key(conv_id: str) -> str:
    return f"l:{conv_id}"


def dedupe_key(conv_id: str, message_id: str) -> str:
    """A message's stored answer, named by its conversation so that an erase finds every one."""
    return f"m:{conv_id}:{message_id}"


@dataclass
class Session:
    """A conversation loaded under its lock, with what must be written back in one transaction."""

    conv_id: str
    token: str
    conv: Conversation | None
    previous: dict | None  # the stored outcome of this message id, when it was handled before
    entries: list[dict] = field(default_factory=list)
    count: int = 0  # the sender's hits in the current rate-limit window, when begin() was asked to count
    read: bytes | None = None  # the value of begin()'s `read` key, when it was given one


class _Held:
    """A connection held by one thread, given back to its pool when the thread ends.

    Python drops a thread's `threading.local` values when the thread exits, so a server that
    starts a thread per request (or a test harness) does not leave one open socket per dead thread
    until Redis's maxclients or the process's file descriptors run out."""

    __slots__ = ("pool", "conn", "generation")

    def __init__(self, pool):
        self.pool, self.conn, self.generation = pool, pool.get_connection(), _generation[0]

    def __del__(self):
        # Not when get_connection() failed (no connection), nor in a forked child for its parent's socket.
        if getattr(self, "generation", None) == _generation[0]:
            self.pool.release(self.conn)


class ConversationStore:
    """Loads and saves conversations; every save writes its transcript and effects at once."""

    def __init__(self, redis_client: redis.Redis, vault: Vault, retention_days: int = 30, lock_wait: float = 5.0):
        self.redis, self.vault = redis_client, vault
        self.ttl = int(retention_days * 86400)
        self.lock_wait = lock_wait
        # Scripts run by SHA. _unlock goes through redis-py, which loads it again after a Redis
        # restart; _begin and _save go through _call, which does the same itself.
        self._unlock = self.redis.register_script(_UNLOCK)
        self._begin = self.redis.register_script(_BEGIN)
        self._save = self.redis.register_script(_SAVE)
        self._local = threading.local()

    def _call(self, script, keys: list, args: list):
        """EVALSHA of one of the store's scripts on this thread's own connection.

        Every message makes two such calls, so they skip redis-py's client layer (connection
        pool, retries, callbacks, instrumentation), which cost more than the call itself, and use
        its Connection directly: the same packing, socket, timeouts, health check and Sentinel
        failover. A connection that failed is closed so that the next call opens a fresh one.
        """
        conn = self._connection()
        # hiredis packs it directly: redis-py's packer first re-checks every argument's type in Python,
        # half the packing's cost (issue 17; the same bytes).
        command = [hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))]
        try:
            try:
                conn.send_packed_command(command)
                return conn.read_response()
            except redis.exceptions.NoScriptError:
                # Redis restarted (or failed over) and lost its scripts; it ran nothing.
                self.redis.script_load(script.script)
                conn.send_packed_command(command)
                return conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            conn.disconnect()
            raise

    def _connection(self):
        """This thread's connection, taken from the shared pool once and kept until the thread ends
        (a new one in a forked process: a socket must never be shared with the parent)."""
        held = getattr(self._local, "held", None)
        if held is None or held.generation != _generation[0]:
            held = self._local.held = _Held(self.redis.connection_pool)
        return held.conn

    # -- the hot path: one round trip to lock and load, one to save and unlock ----

    def begin(self, conv_id: str, message_id: str | None = None, count: tuple[str, int] | None = None,
              read: str | None = None) -> Session:
        """Take the conversation's lock and load it (and any earlier outcome of message_id).

        `count=(name, ttl)` also counts one hit on a rate-limit counter in the same round trip, and
        `read` names one more key whose value comes back in it (Session.read).
        """
        # Only has to differ from any other holder's (it guards nothing; forked processes reseed `random`),
        # so the process's generator rather than a system call per message.
        token = f"{random.getrandbits(64):016x}"
        deadline = time.monotonic() + self.lock_wait
        delay = 0.005
        keys = [lock_key(conv_id), conv_key(conv_id), dedupe_key(conv_id, message_id) if message_id else lock_key(conv_id)]
        hits = 0
        while True:
            try:
                counter = [count[0]] if count is not None else []
                call = {"keys": [*keys, *counter, *([read] if read else [])],
                        "args": [token, LOCK_TTL_MS, count[1] if counter else 0, "1" if message_id else "0",
                                 "1" if read else "0"]}
                try:
                    counted, locked, raw, previous, *extra = self._call(self._begin, **call)
                except redis.ConnectionError:
                    # A connection Redis closed while it sat idle (a restart, a failover, an idle
                    # timeout) fails once, on its next use. This call can be made again: a lock it
                    # may have taken is ours already, and a hit counted twice is only a hit.
                    counted, locked, raw, previous, *extra = self._call(self._begin, **call)
                if counter:
                    hits, count = int(counted), None  # one hit per message, however long the lock takes
            except redis.RedisError as exc:
                raise StoreUnavailable("could not reach Redis") from exc
            if message_id and previous:  # answered before: its answer, lock or no lock
                return Session(conv_id, token, None, self.vault.open(previous), count=hits)
            if locked:
                conv = Conversation.from_doc(self.vault.open(raw)) if raw else None
                return Session(conv_id, token, conv, None, count=hits, read=extra[0] if extra else None)
            if time.monotonic() > deadline:
                raise ConversationBusy("conversation lock not released in time")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def commit(self, session: Session, conv: Conversation | None, outcome: dict | None = None,
               message_id: str | None = None, also=None, events=(), counters=()) -> None:
        """Write the conversation, its new transcript entries, the dedupe record, `events` and
        `counters`, then `also(pipe)`'s writes, and unlock: all at once.

        `events` are (channel, message) pairs to publish; `counters` are (hash key, ttl or 0,
        {field: amount}) to add. Without `also` this is one script call; with it, that script and
        `also`'s commands in one MULTI/EXEC.
        """
        cid = session.conv_id
        keys = [lock_key(cid), conv_key(cid), transcript_key(cid),
                dedupe_key(cid, message_id) if message_id else lock_key(cid)]
        args = [session.token, "", self.ttl, 0, "", DEDUPE_TTL]
        entries = []
        if conv is not None:
            args[1] = self.vault.seal(conv.to_doc())
            entries = [self.vault.seal(e) for e in session.entries]
            if conv.messages % TRIM_EVERY == 0:
                args[3] = TRANSCRIPT_MAX
        if message_id and outcome is not None and conv is not None:
            # Not for the message that erases the conversation: its record would name it for a day.
            args[4] = self.vault.seal(outcome)
        args += [len(entries), *entries, len(events), *(x for pair in events for x in pair)]
        for key, ttl, amounts in counters:
            keys.append(key)
            args += [ttl, len(amounts), *(x for pair in amounts.items() for x in pair)]
        try:
            if also is None:
                self._call(self._save, keys, args)
            else:
                pipe = self.redis.pipeline(transaction=True)
                pipe.multi()  # explicit, so that RQ's enqueue(pipeline=pipe) joins this transaction
                also(pipe)
                # EVAL, not the registered script: inside MULTI a missing script could not be loaded
                # and retried, and redis-py would first ask with SCRIPT EXISTS, a round trip of its own.
                pipe.eval(_SAVE, len(keys), *keys, *args)
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
        return [readable(self.vault.open(raw)) for raw in self.redis.lrange(transcript_key(conv_id), start, end)]

    def append(self, conv_id: str, entry: dict, pipe=None) -> None:
        """Add one transcript entry outside the message path (a counsellor's reply, a note), only if
        the conversation still exists when it runs: a reply racing an erase leaves no orphan transcript."""
        target = pipe if pipe is not None else self.redis
        # EVAL, not a registered script: inside a MULTI a missing script could not be loaded (see commit).
        target.eval(_APPEND, 2, conv_key(conv_id), transcript_key(conv_id), self.vault.seal(entry),
                    TRANSCRIPT_MAX, self.ttl)

    def erase(self, pipe, conv_id: str) -> None:
        """Queue the deletion of everything stored under this conversation."""
        pipe.delete(conv_key(conv_id), transcript_key(conv_id))


# The fields pages read from an entry, and the type each must have; a field of another type is dropped.
_TEXT_FIELDS = ("by", "level", "intent", "outbound")
LATEST_TIME = 4e9  # 2096: a time past this (or NaN, or infinite) is no time at all


def readable(item) -> dict:
    """A stored transcript entry in the shape every page expects, whatever was stored: an entry
    written by an older version, or by a bug, must not make a conversation unreadable for everyone."""
    if not isinstance(item, dict):
        item = {}
    out = {key: _scalar(value) for key, value in item.items() if isinstance(key, str)}
    try:
        at = float(item.get("at") or 0.0)
    except (TypeError, ValueError, OverflowError):
        at = 0.0
    out["at"] = at if 0.0 <= at <= LATEST_TIME else 0.0  # NaN fails both comparisons
    for name, default in (("from", "system"), ("text", "")):
        if not isinstance(out.get(name), str):
            out[name] = default
    for name in _TEXT_FIELDS:
        if name in out and not isinstance(out[name], str):
            del out[name]
    media = out.get("media")
    if media is not None and not (isinstance(media, int) and not isinstance(media, bool) and 0 <= media <= 100):
        out["media"] = 0
    return out


def _scalar(value):
    """A JSON value with every string made of Unicode scalar values (no lone surrogates)."""
    if isinstance(value, str):
        return value if value.isascii() else "".join(ch for ch in value if not 0xD800 <= ord(ch) <= 0xDFFF)
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _scalar(v) for k, v in value.items()}
    return value


def entry(sender: str, text: str, now: float, **extra) -> dict:
    """A transcript entry: who (texter, bot, counsellor, system), what, when."""
    return {"at": now, "from": sender, "text": text, **extra}
