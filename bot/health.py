"""Liveness for load balancers and operators: Redis answers and an RQ worker is alive."""
from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify
from rq.utils import now, utcparse
from rq.worker_registration import REDIS_WORKER_KEYS

from .extensions import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when Redis answers and some worker has sent a heartbeat lately; 503 with the reason otherwise.

    Cheap: two round trips (the worker set, then every worker's heartbeat in one pipeline).
    """
    client = get_redis()
    try:
        keys = client.smembers(REDIS_WORKER_KEYS)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "last_heartbeat")
        beats = pipe.execute()
    except redis.RedisError:
        return jsonify(status="unavailable", redis=False, reason="Redis does not answer"), 503
    ages = [_age(raw) for raw in beats if raw]
    youngest = min(ages, default=None)
    limit = current_app.config["WORKER_HEARTBEAT_MAX_AGE"]
    if youngest is None or youngest > limit:
        reason = "no RQ worker is running" if youngest is None else f"no RQ worker heartbeat for {youngest:.0f}s"
        return jsonify(status="unavailable", redis=True, workers=0, reason=reason), 503
    return jsonify(status="ok", redis=True, workers=sum(a <= limit for a in ages), heartbeat_age=round(youngest, 1))


def _age(raw: bytes) -> float:
    return (now() - utcparse(raw.decode())).total_seconds()
