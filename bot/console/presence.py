"""Who has a console conversation page open now: counsellors and supervisors see each other there.

One sorted set per conversation, named by its id: each viewer's name scored with when their page
last asked for its live region (it asks every second or two). A closed tab stops asking and drops
off after VIEWING_SECONDS, at once when its page says goodbye; the whole key expires with its last
viewer, so a killed process leaves nothing behind.
"""
from __future__ import annotations

import time

import redis
from flask import abort

from ..extensions import get_redis
from . import accounts, bp, conversation
from .auth import current_counsellor, login_required

VIEWING_SECONDS = 30


def viewing_key(conv_id: str) -> str:
    return f"console:viewing:{conv_id}"


def seen(client: redis.Redis, conv_id: str, name: str) -> list[str]:
    """Mark `name` as viewing the conversation now; return everyone else viewing it."""
    now = time.time()
    key = viewing_key(conv_id)
    pipe = client.pipeline(transaction=True)
    pipe.zadd(key, {name: now})
    pipe.zremrangebyscore(key, "-inf", f"({now - VIEWING_SECONDS}")
    pipe.expire(key, VIEWING_SECONDS)
    pipe.zrange(key, 0, -1)
    return [viewer.decode() for viewer in pipe.execute()[-1] if viewer.decode() != name]


def left(client: redis.Redis, conv_id: str, name: str) -> None:
    client.zrem(viewing_key(conv_id), name)


def described(client: redis.Redis, names: list[str]) -> list[accounts.Counsellor]:
    """The viewers as accounts (a removed account still shows, by name, until its page goes)."""
    return [accounts.get(client, name) or accounts.Counsellor(name) for name in names]


@bp.post("/c/<conv_id>/leave")
@login_required
def leave(conv_id):
    """A conversation page going away (closed, or left for another page) says so."""
    if not conversation._CONV_ID.match(conv_id):
        abort(404, "There is no such conversation.")
    left(get_redis(), conv_id, current_counsellor().name)
    return "", 204
