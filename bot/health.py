"""Liveness for load balancers and operators: Redis answers and an RQ worker is alive."""
from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify
from rq.utils import now, utcparse
from rq.worker_registration import REDIS_WORKER_KEYS

from .extensions import get_redis
from .metrics import memory_ratio

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when Redis answers and some worker has sent a heartbeat lately; 503 with the reason otherwise.
    A 200 lists `warnings` when Redis is nearly full (REDIS_MEMORY_WARN of its maxmemory).

    Cheap: three round trips (the worker set, every worker's heartbeat in one pipeline, INFO memory).
    """
    answer, status = check()
    return jsonify(answer), status


def check() -> tuple[dict, int]:
    """What /healthz answers, and its HTTP status (also shown on the front door)."""
    client = get_redis()
    try:
        keys = client.smembers(REDIS_WORKER_KEYS)
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "last_heartbeat")
        beats = pipe.execute()
        memory = client.info("memory")
    except redis.RedisError:
        return {"status": "unavailable", "redis": False, "reason": "Redis does not answer"}, 503
    ages = [_age(raw) for raw in beats if raw]
    youngest = min(ages, default=None)
    limit = current_app.config["WORKER_HEARTBEAT_MAX_AGE"]
    if youngest is None or youngest > limit:
        reason = "no RQ worker is running" if youngest is None else f"no RQ worker heartbeat for {youngest:.0f}s"
        return {"status": "unavailable", "redis": True, "workers": 0, "reason": reason}, 503
    answer = {"status": "ok", "redis": True, "workers": sum(a <= limit for a in ages),
              "heartbeat_age": round(youngest, 1)}
    warnings = memory_warnings(memory)
    if warnings:
        answer["warnings"] = warnings
    return answer, 200


def memory_warnings(info: dict) -> list[str]:
    """What an operator should know about Redis's memory (INFO memory): still up, but at risk."""
    found = []
    ratio = memory_ratio(info)
    if ratio is not None and ratio >= current_app.config["REDIS_MEMORY_WARN"]:
        # With noeviction a full Redis turns every answer into the static safety reply.
        found.append(f"Redis uses {ratio:.0%} of its maxmemory")
    policy = info.get("maxmemory_policy", "noeviction")
    if policy != "noeviction":
        found.append(f"Redis evicts keys when full (maxmemory-policy {policy}): conversations could vanish; "
                     "use noeviction")
    if ratio is None and current_app.config.get("HELPLINE_ENV") == "production":
        found.append("Redis has no maxmemory: nothing warns before the machine runs out of memory")
    return found



def _age(raw: bytes) -> float:
    return (now() - utcparse(raw.decode())).total_seconds()
