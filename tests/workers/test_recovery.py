"""A worker killed in the middle of a send: another worker finishes the job, and the texter gets one message."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from rq.registry import StartedJobRegistry

from bot import outbound

HELPLINE = str(Path(sys.executable).with_name("helpline"))


def worker_env(config: dict) -> dict:
    """The test app's settings, as a worker process reads them from its environment."""
    names = ("REDIS_URL", "SECRET_KEY", "HELPLINE_DATA_KEY", "HELPLINE_HASH_KEY", "TWILIO_AUTH_TOKEN",
             "TWILIO_ACCOUNT_SID", "TWILIO_API_BASE", "TWILIO_FROM_NUMBER", "PUBLIC_URL", "SEND_RETRY_SECONDS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "HELPLINE_", "REDIS_"))}
    env.update({name: str(config[name]) for name in names})
    env.update(HELPLINE_INSTANCE_PATH=str(config["INSTANCE_PATH"]), TWILIO_HTTP_TIMEOUT="30")
    return env


def start_worker(env: dict, log: Path, *args: str) -> subprocess.Popen:
    # Its own session, so the kill takes the work horse and the scheduler with it, as a dead machine would.
    return subprocess.Popen([HELPLINE, "worker", *args], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_a_worker_killed_mid_send_is_recovered_and_the_reply_sent_once(sending, config, app, queued_texter,
                                                                       tmp_path):
    texter, conv_id = queued_texter()
    sending.hang_next(120)  # Twilio takes the message; the answer never reaches the worker
    with app.app_context():
        outbound_id = outbound.queue_reply(conv_id, "Hi, it is Ana from the help line.", "ana")
    env, log = worker_env(config), tmp_path / "workers.log"

    first = start_worker(env, log)
    try:
        assert sending.wait_until_hanging(timeout=60), log.read_text()
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    with app.app_context():
        assert outbound.load(outbound_id).status == "sending"

    # RQ calls a job abandoned once its heartbeat has expired (90 s after the kill, here) and retries it.
    # Rather than wait, expire the dead worker's heartbeat now; the next worker's maintenance does the rest.
    redis = app.extensions["redis"]
    registry = StartedJobRegistry(queue=app.extensions["replies"])
    running = redis.zrange(registry.key, 0, -1)
    assert running, "the killed worker's job is still registered as running"
    redis.zadd(registry.key, {member: 1 for member in running})

    second = start_worker(env, log, "--burst")
    assert second.wait(timeout=120) == 0, log.read_text()

    assert [(m["To"], m["Body"]) for m in sending.sent] == [(texter.number, "Hi, it is Ana from the help line.")]
    assert [r["method"] for r in sending.requests] == ["POST", "GET"], "the second worker looked, and did not send"
    with app.app_context():
        done = outbound.load(outbound_id)
    assert (done.status, done.sids) == ("sent", [sending.sent[0]["sid"]])
