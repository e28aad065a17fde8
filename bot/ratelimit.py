"""Fixed-window rate limits in Redis, keyed on hashed identities (never a raw number or address)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis


def counter_name(bucket: str, key: str, window: int) -> str:
    """The Redis key counting `key`'s hits in the current window."""
    return f"rl:{bucket}:{key}:{int(time.time() // window)}"


@dataclass(frozen=True)
class SenderLimit:
    """A texter's allowance per window, counted in the same round trip that loads their conversation.

    Past it a message is not processed, except one read as an emergency, within an allowance of its
    own (`emergency_limit`), and what a texter in danger writes next (bot.engine.Helpline.handle).
    """

    key: str  # a keyed hash of the sender (Vault.digest), never the address
    limit: int
    window: int
    emergency_limit: int

    def counter(self) -> tuple[str, int]:
        return counter_name("sms", self.key, self.window), self.window + 1


def allow(client: redis.Redis, bucket: str, key: str, limit: int, window: int) -> bool:
    """Count one hit for `key` in `bucket`; False once `limit` hits fall in the current `window` seconds.

    `key` must already be a hash (Vault.digest) or another non-identifying value.
    """
    return count(client, counter_name(bucket, key, window), window + 1) <= limit


def count(client: redis.Redis, name: str, ttl: int) -> int:
    """Add one to the counter `name` (kept `ttl` seconds) in one round trip; returns the new count."""
    pipe = client.pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, ttl)
    counted, _ = pipe.execute()
    return int(counted)
