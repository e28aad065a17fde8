"""Liveness for load balancers and operators."""
from __future__ import annotations

import redis
from flask import Blueprint, jsonify

from .extensions import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        get_redis().ping()
    except redis.RedisError:
        return jsonify(status="unavailable", redis=False), 503
    return jsonify(status="ok", redis=True)
