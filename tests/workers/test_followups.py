"""Check-ins (bot.followups) sent by the worker at their time: consent, STOP, DELETE, blocks, retention and quiet
hours checked when due; one message however the worker dies; the texter's answer re-opens the conversation."""
from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

import workers.context
from bot import audit, blocking, followups
from bot.errors import NoConsent, RecipientOptedOut
from bot.store import lock_key
from workers import followups as job
from workers import retention

from .test_recovery import start_worker, worker_env

CHECK_IN = "Hi, just checking in as we said. How are you doing? Reply any time if you want to talk."
HOUR = 3600


@pytest.fixture
def due(sending, app):
    """due(): run what the scheduler has due now, and the sends it queued, as a worker with its scheduler does."""
    workers.context.use(app)

    def run() -> None:
        for _ in range(2):  # the follow-up's job, then the send it queued
            SimpleWorker(list(app.extensions["queues"]), connection=app.extensions["redis"],
                         serializer=JSONSerializer).work(burst=True, with_scheduler=True, logging_level="WARNING")

    yield run
    workers.context.use(None)


def schedule(app, conv_id: str, start: float | None = None, end: float | None = None, **kwargs):
    start = time.time() if start is None else start
    with app.app_context():
        return followups.schedule(conv_id, start, start + HOUR if end is None else end,
                                  kwargs.pop("kind", "check_in"), kwargs.pop("by", "alice"),
                                  chosen_quiet=kwargs.pop("chosen_quiet", True), **kwargs)


def status(app, followup_id: str):
    with app.app_context():
        found = followups.load(followup_id)
    return None if found is None else (found.status, found.why)


def test_a_check_in_goes_out_once_at_its_time_in_the_texters_language(sending, app, queued_texter, due):
    texter, conv_id = queued_texter()
    found = schedule(app, conv_id)

    due()
    due()

    assert [(m["To"], m["Body"]) for m in sending.sent] == [(texter.number, CHECK_IN)]
    assert status(app, found.id) == ("sent", "")
    with app.app_context():
        assert followups.upcoming() == []
        assert job.due(found.id, time.time()) == "nothing"  # the job run again sends nothing more
    actions = [e["action"] for e in audit.entries(app.extensions["redis"], conv_id=conv_id)]
    assert "followup_scheduled" in actions and "followup_sent" in actions


def test_the_counsellor_kind_in_spanish(sending, app, queued_texter, due):
    texter, conv_id = queued_texter(first="hola")
    schedule(app, conv_id, kind="counsellor")
    due()
    assert [m["Body"] for m in sending.sent] == [
        "Hola, como quedamos, alguien te va a escribir aquí pronto. Contesta OK si ahora es buen momento."]


def test_no_check_in_without_consent_or_after_stop(sending, app, queued_texter):
    _, refused = queued_texter(consent=False)
    with pytest.raises(NoConsent):
        schedule(app, refused)
    texter, stopped = queued_texter()
    texter.send("STOP")
    with pytest.raises(RecipientOptedOut):
        schedule(app, stopped)
    assert app.extensions["redis"].zcard(followups.UPCOMING) == 0


@pytest.mark.parametrize("start, end, why", [
    (-2 * HOUR, -HOUR, "in the past"),
    (HOUR, 40 * 86400, "within 30 days"),
    (HOUR, 0.5 * HOUR, "ends before it starts"),
])
def test_a_window_that_cannot_be_is_refused(sending, app, queued_texter, start, end, why):
    _, conv_id = queued_texter()
    now = time.time()
    with pytest.raises(followups.FollowUpError, match=why):
        schedule(app, conv_id, now + start, now + end)


@pytest.mark.parametrize("after", ["STOP", "DELETE"])
def test_stop_or_delete_after_scheduling_sends_nothing(sending, app, queued_texter, due, after):
    texter, conv_id = queued_texter()
    found = schedule(app, conv_id)
    texter.send(after)
    if after == "DELETE":
        texter.send("YES")
    due()
    assert sending.sent == []
    if after == "STOP":
        assert status(app, found.id) == ("skipped", "the texter sent STOP")
    else:
        assert status(app, found.id) is None  # erased with the conversation
        assert app.extensions["redis"].keys("fu:*") == []


def test_a_sender_blocked_after_scheduling_gets_nothing(sending, app, queued_texter, due):
    _, conv_id = queued_texter()
    found = schedule(app, conv_id)
    blocking.block(app.extensions["store"], app.extensions["waiting"], conv_id, "sam", "24h", "abusive", time.time())
    due()
    assert sending.sent == []
    assert status(app, found.id) == ("skipped", "the sender is blocked")


def test_retention_checked_when_due(sending, app, queued_texter, due):
    _, conv_id = queued_texter()
    found = schedule(app, conv_id)
    redis = app.extensions["redis"]
    expire(redis, redis.keys("c:*") + redis.keys("t:*"))  # the conversation's retention ended first
    due()
    assert sending.sent == []
    assert status(app, found.id) == ("skipped", "the conversation is no longer kept")


def test_a_follow_up_expired_under_retention_is_not_sent(sending, app, queued_texter, due):
    _, conv_id = queued_texter()
    schedule(app, conv_id)
    redis = app.extensions["redis"]
    expire(redis, redis.keys("fu:*"))
    due()
    assert sending.sent == []
    # The purge takes what expired off the upcoming list.
    assert retention.sweep(redis, app.extensions["queues"], 30, 365)["followups"] == 1
    assert redis.zcard(followups.UPCOMING) == 0


def expire(redis, names) -> None:
    """What each key's retention TTL does at its end."""
    for name in names:
        redis.pexpire(name, 1)
    while any(redis.exists(name) for name in names):
        pass


def local(day: datetime, hour: int, minute: int = 0) -> float:
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


@pytest.fixture
def tomorrow(app):
    return datetime.now(ZoneInfo(app.config["HELPLINE_TIMEZONE"])) + timedelta(days=1)


def test_quiet_hours_move_a_check_in_to_eight_in_the_morning(sending, app, queued_texter, tomorrow):
    _, conv_id = queued_texter()
    found = schedule(app, conv_id, local(tomorrow, 19), local(tomorrow + timedelta(days=1), 10), chosen_quiet=False)
    with app.app_context():
        assert job.due(found.id, local(tomorrow, 22, 30)) == "moved"
        moved = followups.load(found.id)
    eight = local(tomorrow + timedelta(days=1), 8)
    assert (moved.status, moved.start) == ("scheduled", eight)
    scheduled = ScheduledJobRegistry(queue=app.extensions["queue"])
    assert scheduled.get_scheduled_time(followups.job_id(found.id, eight)).timestamp() == eight
    assert sending.sent == []


def test_quiet_hours_skip_a_check_in_whose_window_ends_before_morning(sending, app, queued_texter, tomorrow):
    _, conv_id = queued_texter()
    found = schedule(app, conv_id, local(tomorrow, 19), local(tomorrow, 23), chosen_quiet=False)
    with app.app_context():
        assert job.due(found.id, local(tomorrow, 21, 15)) == "skipped: its window falls in quiet hours"
    assert status(app, found.id) == ("skipped", "its window falls in quiet hours")


def test_a_time_the_texter_chose_at_night_is_kept(sending, app, queued_texter, tomorrow):
    _, conv_id = queued_texter()
    found = schedule(app, conv_id, local(tomorrow, 22), local(tomorrow, 23), chosen_quiet=True)
    with app.app_context():
        assert job.due(found.id, local(tomorrow, 22, 5)) == "sent"
    with pytest.raises(followups.FollowUpError, match="9 p.m. and 8 a.m."):
        schedule(app, conv_id, local(tomorrow, 22), local(tomorrow, 23), chosen_quiet=False)


def test_the_answer_reopens_the_conversation_with_the_counsellor_asked_for(sending, app, queued_texter, due):
    texter, conv_id = queued_texter()
    app.extensions["waiting"].remove(app.extensions["redis"], conv_id)  # as after a counsellor ended it
    with app.extensions["store"].locked(conv_id) as session:
        session.conv.handoff, session.conv.state = None, "chat_ended"
    schedule(app, conv_id)
    due()

    answer = texter.send("hi, I'm ok, can we talk")

    assert "You are in line to talk with a counselor" in answer
    conv = app.extensions["store"].load(conv_id)
    assert (conv.handoff, conv.slots["reason"], conv.slots["asked_for"]) == ("waiting", "follow_up", "alice")
    assert app.extensions["waiting"].waiting() == [(conv_id, "normal", pytest.approx(time.time(), abs=5))]
    assert app.extensions["redis"].hget(followups.PREFERRED, conv_id) == b"alice"
    assert "You are in line to talk" not in texter.send("hello?")  # re-opened once: the next one waits as usual


def test_an_emergency_in_the_answer_is_told_911_at_once(sending, app, queued_texter, due):
    texter, conv_id = queued_texter()
    app.extensions["waiting"].remove(app.extensions["redis"], conv_id)
    with app.extensions["store"].locked(conv_id) as session:
        session.conv.handoff, session.conv.state = None, "chat_ended"
    schedule(app, conv_id)
    due()
    answer = texter.send("he has a gun and says he will kill me")
    assert "you can text 911 in Kern County" in answer and "You are in line" not in answer
    assert app.extensions["store"].load(conv_id).slots["asked_for"] == "alice"  # a "yes" now queues them for her


def test_a_worker_killed_before_the_send_leaves_it_to_the_next_which_sends_it_once(sending, config, app,
                                                                                    queued_texter, tmp_path):
    texter, conv_id = queued_texter()
    redis = app.extensions["redis"]
    found = schedule(app, conv_id)
    redis.set(lock_key(conv_id), "held by the test", px=120_000)  # the job waits on the conversation's lock
    env, log = worker_env(config), tmp_path / "workers.log"
    started = StartedJobRegistry(queue=app.extensions["queue"])

    first = start_worker(env, log)
    try:
        deadline = time.monotonic() + 60
        # Started (RQ names a running job "<job id>:<execution id>" in the registry), so waiting on the lock.
        while not (redis.hget(f"rq:job:{found.job_id}", "status") == b"started"
                   and any(m.decode().startswith(found.job_id) for m in redis.zrange(started.key, 0, -1))):
            assert time.monotonic() < deadline and first.poll() is None, log.read_text()
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert status(app, found.id) == ("scheduled", "") and sending.sent == []

    redis.delete(lock_key(conv_id))
    redis.zadd(started.key, {member: 1 for member in redis.zrange(started.key, 0, -1)})  # its heartbeat expired
    second = start_worker(env, log, "--burst")
    assert second.wait(timeout=120) == 0, log.read_text()

    assert [(m["To"], m["Body"]) for m in sending.sent] == [(texter.number, CHECK_IN)], log.read_text()
    assert status(app, found.id) == ("sent", "")
    workers.context.use(app)
    try:
        assert job.send(found.id) == "nothing"  # the job run again, after its transaction: nothing more
    finally:
        workers.context.use(None)


def test_a_window_changed_while_its_old_job_waits_on_the_lock_is_not_sent_at_the_old_time(sending, app, queued_texter,
                                                                                           tomorrow):
    texter, conv_id = queued_texter()
    found = schedule(app, conv_id)  # due now
    redis = app.extensions["redis"]
    redis.set(lock_key(conv_id), "held by a change", px=120_000)
    polls = lambda: redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)  # noqa: E731
    before = polls()
    workers.context.use(app)
    done: list[str] = []
    try:
        sending_job = threading.Thread(target=lambda: done.append(job.send(found.id)))
        sending_job.start()
        while polls() == before:  # it read the record and now waits on the conversation's lock
            assert sending_job.is_alive()
        # Meanwhile the change (holding the lock) moves the window to tomorrow afternoon, as the texter asked.
        with app.app_context():
            later = followups.move(found, local(tomorrow, 16))
        redis.delete(lock_key(conv_id))
        sending_job.join(timeout=60)
    finally:
        workers.context.use(None)
    assert done == ["nothing"] and sending.sent == []
    assert status(app, found.id) == ("scheduled", "")
    assert later.job_id in ScheduledJobRegistry(queue=app.extensions["queue"]).get_job_ids()


def test_an_answer_a_counsellor_already_had_does_not_reopen_the_conversation_after_it_ends(sending, app, queued_texter,
                                                                                         due):
    texter, conv_id = queued_texter()  # still in line when the check-in goes out
    schedule(app, conv_id)
    due()
    texter.send("I'm ok thanks")  # answered while in line: it is in the queue already
    app.extensions["waiting"].remove(app.extensions["redis"], conv_id)  # a counsellor took it and ended it
    with app.extensions["store"].locked(conv_id) as session:
        session.conv.handoff, session.conv.state = None, "chat_ended"
    later = texter.send("ok bye")
    assert "You are in line to talk" not in later
    assert app.extensions["store"].load(conv_id).handoff is None
