"""Who may hold a chat page's live stream, across every web process.

A stream holds a web thread for up to a minute, and the service has few of them (LIVE_STREAMS a
process). So that one visitor cannot take them all:
- one stream per chat token, the newest winning: a page that reconnects after a network blip
  ends its own ghost stream at once instead of waiting for it to notice the socket is gone;
- at most CHAT_STREAMS_PER_ADDRESS chats streaming from one client address; past that the page
  is told it is busy and fetches counsellor replies by polling (/chat/api/replies) instead.

Both are kept in Redis under keyed hashes of the token and the address, never the values.
"""
from __future__ import annotations

import json
import secrets
import time

from .events import STREAM_SECONDS

# A claim outlives its stream by this much, so a process killed under a stream frees it by itself.
SLACK_SECONDS = 15

# KEYS: the address's set of streaming tokens, the token's current stream id.
# ARGV: token hash, new stream id, now, expiry, cap per address, key ttl.
# Returns the stream id this one replaces ("" if none), or false when the address is at its cap.
_CLAIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  return false
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[6])
local previous = redis.call('GET', KEYS[2]) or ''
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[6])
return previous
"""
# Frees the claim only if this stream still holds it (a newer stream of the same token keeps it).
_RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
"""


def takeover_channel(conv_id: str) -> str:
    """Where a new stream tells an older one of the same chat to end."""
    return f"ev:cs:{conv_id}"


class Claim:
    """One stream's hold on its token's slot and a place among its address's streams."""

    def __init__(self, client, vault, conv_id: str, token: str, address: str):
        self.redis, self.conv_id = client, conv_id
        self.token = vault.digest("stream-token:" + token)
        self.keys = [f"cs:a:{vault.digest('stream-addr:' + address)}", f"cs:t:{self.token}"]
        self.id = secrets.token_hex(8)

    def take(self, per_address: int) -> bool:
        """Hold the slot, ending the token's older stream; False when the address has its fill."""
        now = time.time()
        ttl = STREAM_SECONDS + SLACK_SECONDS
        previous = self.redis.eval(_CLAIM, 2, *self.keys, self.token, self.id, now, now + ttl, per_address, ttl)
        if previous is None:
            return False
        if previous:
            ended = {"kind": "superseded", "stream": previous.decode() if isinstance(previous, bytes) else previous}
            self.redis.publish(takeover_channel(self.conv_id), json.dumps(ended))
        return True

    def superseded_by(self, event: dict) -> bool:
        return event.get("kind") == "superseded" and event.get("stream") == self.id

    def release(self) -> None:
        self.redis.eval(_RELEASE, 2, *self.keys, self.token, self.id)
