"""The waiting queue: conversations waiting for a counsellor, most urgent first, then oldest."""
from __future__ import annotations

import redis

PRIORITIES = ("emergency", "high", "normal")
KEY = "q:waiting"
# Far apart enough that a lower priority never overtakes a higher one, small enough for a double.
_BAND = 10**13


def score(priority: str, since: float) -> float:
    return PRIORITIES.index(priority) * _BAND + int(since * 1000)


def priority_of(score_value: float) -> str:
    return PRIORITIES[min(int(score_value // _BAND), len(PRIORITIES) - 1)]


class WaitingQueue:
    """A sorted set of conversation ids; ZREM (or ZPOPMIN) decides who claims a conversation
    (bot.console.capacity.take, with the claimer's capacity)."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client

    def add(self, pipe, conv_id: str, priority: str, since: float) -> None:
        """Queue (or move up) a conversation; a lower priority never pushes it down (ZADD LT)."""
        pipe.zadd(KEY, {conv_id: score(priority, since)}, lt=True)

    def remove(self, pipe, conv_id: str) -> None:
        pipe.zrem(KEY, conv_id)

    def waiting(self, limit: int = 200) -> list[tuple[str, str, float]]:
        """(conversation id, priority, seconds since it was queued), most urgent first."""
        rows = self.redis.zrange(KEY, 0, limit - 1, withscores=True)
        out = []
        for member, value in rows:
            cid = member.decode() if isinstance(member, bytes) else member
            out.append((cid, priority_of(value), (value % _BAND) / 1000))
        return out

    def depth(self) -> int:
        return int(self.redis.zcard(KEY))

    def position(self, conv_id: str) -> int | None:
        rank = self.redis.zrank(KEY, conv_id)
        return None if rank is None else int(rank)
