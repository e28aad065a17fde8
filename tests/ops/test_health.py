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


def test_a_nearly_full_redis_is_a_warning_on_healthz_and_a_metric(app, client, redis_client):
    worker(app).heartbeat()
    used = int(redis_client.info("memory")["used_memory"])
    redis_client.config_set("maxmemory", used * 10)
    try:
        assert "warnings" not in client.get("/healthz").json
        redis_client.config_set("maxmemory", int(used * 1.15))  # about 87 % used
        answer = client.get("/healthz")
        metrics = client.get("/metrics").get_data(as_text=True)
    finally:
        redis_client.config_set("maxmemory", 0)
    assert answer.status_code == 200 and answer.json["status"] == "ok"  # still up: a warning, not an outage
    [warning] = answer.json["warnings"]
    assert "maxmemory" in warning
    [line] = [x for x in metrics.splitlines() if x.startswith("helpline_redis_memory_ratio ")]
    assert 0.8 <= float(line.split()[1]) < 1


def test_an_evicting_redis_is_a_warning(app, client, redis_client):
    worker(app).heartbeat()
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        answer = client.get("/healthz")
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
    assert answer.status_code == 200
    assert any("allkeys-lru" in w for w in answer.json["warnings"])
