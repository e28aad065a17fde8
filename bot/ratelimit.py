"""Fixed-window rate limits in Redis, keyed on hashed identities (never a raw number or address)."""
from __future__ import annotations

import time

import redis


def allow(client: redis.Redis, bucket: str, key: str, limit: int, window: int) -> bool:
    """Count one hit for `key` in `bucket`; False once `limit` hits fall in the current `window` seconds.

    `key` must already be a hash (Vault.digest) or another non-identifying value.
    """
    slot = int(time.time() // window)
    name = f"rl:{bucket}:{key}:{slot}"
    pipe = client.pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, window + 1)
    count, _ = pipe.execute()
    return int(count) <= limit
