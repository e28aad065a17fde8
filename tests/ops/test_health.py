"""/healthz: 200 only when Redis answers and an RQ worker has a recent heartbeat; 503 says why."""
from __future__ import annotations

from datetime import timedelta

from rq import Worker
from rq.utils import now, utcformat

from bot import create_app
from bot.redis_server import EmbeddedRedis
from tests.conftest import app_config


def worker(app) -> Worker:
    w = Worker([app.extensions["queue"]], connection=app.extensions["redis"])
    w.register_birth()
    return w


def test_no_worker_means_unavailable_with_the_reason(client):
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json == {"status": "unavailable", "redis": True, "workers": 0, "reason": "no RQ worker is running"}


def test_a_worker_with_a_fresh_heartbeat_means_ok(app, client):
    worker(app).heartbeat()
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json["status"] == "ok" and answer.json["workers"] == 1


def test_a_stale_heartbeat_means_unavailable(app, client):
    w = worker(app)
    app.extensions["redis"].hset(w.key, "last_heartbeat", utcformat(now() - timedelta(minutes=10)))
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json["reason"].startswith("no RQ worker heartbeat for 6")
    worker(app).heartbeat()  # a second, live worker is enough
    assert client.get("/healthz").json["workers"] == 1


def test_redis_down_means_unavailable(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    app = create_app(app_config(server.start(), tmp_path / "instance"))
    worker(app).heartbeat()
    assert app.test_client().get("/healthz").status_code == 200
    server.stop()
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 503 and answer.json["reason"] == "Redis does not answer"
