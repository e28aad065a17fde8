"""Retention: TTLs where personal data lives, and the scheduled purge for what TTLs do not reach."""
from __future__ import annotations

import time

import pytest
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry

from bot import audit
from bot.store import conv_key, transcript_key
from workers import retention

DAY = 86400


def queue_for_a_counsellor(make_texter, number):
    texter = make_texter(number)
    for body in ("hi", "1", "1", "1"):  # safe -> menu -> counsellor -> consent
        texter.send(body)
    return texter


def test_every_personal_key_has_the_retention_ttl(app, make_texter, redis_client):
    texter = queue_for_a_counsellor(make_texter, "+16615550123")
    cid = app.extensions["helpline"].conversation_id("sms", texter.number)
    retention_s = app.config["HELPLINE_RETENTION_DAYS"] * DAY
    assert 0 < redis_client.ttl(conv_key(cid)) <= retention_s
    assert 0 < redis_client.ttl(transcript_key(cid)) <= retention_s
    dedupes = list(redis_client.scan_iter("m:*"))
    assert dedupes and all(0 < redis_client.ttl(k) <= DAY for k in dedupes)


def test_purge_drops_queue_entries_of_expired_conversations(app, make_texter, redis_client, run_jobs):
    gone = queue_for_a_counsellor(make_texter, "+16615550123")
    kept = queue_for_a_counsellor(make_texter, "+16615550124")
    helpline, waiting = app.extensions["helpline"], app.extensions["waiting"]
    gone_id = helpline.conversation_id("sms", gone.number)
    assert waiting.depth() == 2
    redis_client.pexpire(conv_key(gone_id), 1)  # its retention runs out, as a TTL does
    while redis_client.exists(conv_key(gone_id)):
        time.sleep(0.01)
    app.extensions["queue"].enqueue("workers.retention.purge", result_ttl=0)
    run_jobs()
    assert [cid for cid, _, _ in waiting.waiting()] == [helpline.conversation_id("sms", kept.number)]
    # the run scheduled the next one
    scheduled = ScheduledJobRegistry(queue=app.extensions["queue"]).get_job_ids()
    assert len(scheduled) == 1 and scheduled[0].startswith("retention-")


def test_purge_caps_keys_without_a_ttl(app, redis_client):
    queue, cfg = app.extensions["queue"], app.config
    retention_s = cfg["HELPLINE_RETENTION_DAYS"] * DAY
    redis_client.hset("o:forgotten", "to", "sealed")
    redis_client.set("s:too-long", "delivered", ex=3650 * DAY)
    redis_client.set("st:all-not-personal", "1")
    counts = retention.sweep(redis_client, queue, cfg["HELPLINE_RETENTION_DAYS"], 365)
    assert counts["ttl_set"] == 2
    assert 0 < redis_client.ttl("o:forgotten") <= retention_s
    assert 0 < redis_client.ttl("s:too-long") <= retention_s
    assert redis_client.ttl("st:all-not-personal") == -1


@pytest.mark.parametrize("queue_name", ["queue", "replies"])
def test_purge_deletes_job_records_older_than_retention(app, redis_client, run_jobs, queue_name):
    queue = app.extensions[queue_name]
    ok = queue.enqueue("workers.alerts.notify_counsellors", "someid", result_ttl=400 * DAY)
    bad = queue.enqueue("workers.alerts.no_such_job", "someid", failure_ttl=400 * DAY)
    run_jobs()
    finished, failed = FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)
    assert finished.get_job_ids() == [ok.id] and failed.get_job_ids() == [bad.id]
    days = app.config["HELPLINE_RETENTION_DAYS"]
    queues = app.extensions["queues"]
    assert retention.sweep(redis_client, queues, days, 365)["jobs"] == 0  # still within retention
    later = time.time() + (days + 1) * DAY
    assert retention.sweep(redis_client, queues, days, 365, now=later)["jobs"] == 2
    assert finished.get_job_ids() == [] and failed.get_job_ids() == []
    assert not list(redis_client.scan_iter("rq:job:*")) and not list(redis_client.scan_iter("rq:results:*"))


def test_finished_help_line_jobs_leave_no_record(app, make_texter, redis_client, run_jobs):
    queue_for_a_counsellor(make_texter, "+16615550123")
    run_jobs()
    assert FinishedJobRegistry(queue=app.extensions["queue"]).get_job_ids() == []
    assert not list(redis_client.scan_iter("rq:job:*"))


def test_audit_is_trimmed_after_its_own_retention(app, redis_client):
    now = time.time()
    old_ms, recent_ms = int((now - 400 * DAY) * 1000), int((now - 300 * DAY) * 1000)
    redis_client.xadd(audit.STREAM, {"actor": "ana", "action": "claim", "conv": "x", "detail": ""}, id=f"{old_ms}-0")
    redis_client.xadd(audit.STREAM, {"actor": "ana", "action": "end", "conv": "x", "detail": ""}, id=f"{recent_ms}-0")
    audit.record(redis_client, "ana", "open", "x")
    counts = retention.sweep(redis_client, app.extensions["queues"], 30, app.config["HELPLINE_AUDIT_RETENTION_DAYS"])
    assert counts["audit"] == 1
    assert [e["action"] for e in audit.entries(redis_client)] == ["open", "end"]


def test_failed_reply_entries_are_trimmed_after_retention(app, redis_client):
    from bot.outbound import FAILED

    now = time.time()
    redis_client.zadd(FAILED, {"old": now - 31 * DAY, "recent": now - DAY})
    assert retention.sweep(redis_client, app.extensions["queues"], 30, 365)["failed_replies"] == 1
    assert [m.decode() for m in redis_client.zrange(FAILED, 0, -1)] == ["recent"]


def test_one_scheduled_purge_per_slot_however_many_workers_start(app):
    queue = app.extensions["queue"]
    first = retention.schedule(queue, 60)
    assert first is not None
    assert retention.schedule(queue, 60) is None
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [first.id]


def test_the_worker_schedules_the_purge_when_it_starts(app):
    import workers.context
    from workers.worker import run

    workers.context.use(app)
    try:
        run(burst=True)
    finally:
        workers.context.use(None)
    assert [j for j in ScheduledJobRegistry(queue=app.extensions["queue"]).get_job_ids() if j.startswith("retention-")]
