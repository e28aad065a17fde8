"""Edges of bot/outbound.py that the mutation run (issue 18) showed no test noticed: what a counsellor reads when
a reply cannot go, what supervisors see of failed replies, a retry that sends only what is missing and exactly
once, the operator's counters and RQ jobs, and the Twilio message ids one reply owns."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timezone

import pytest
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from bot import events, outbound
from bot.console import accounts
from bot.engine import Inbound
from bot.errors import SendFailed
from bot.store import conv_key, transcript_key
from tests.console import conftest as console_fixtures
from tests.console.conftest import PASSWORD, Console
from tests.workers.test_sender import record, reply

LONG = ("This is a long message about the places that can help you tonight. " * 30).strip()  # two parts
LOCAL = {"REMOTE_ADDR": "127.0.0.1"}  # /metrics answers a direct local request

queued = console_fixtures.queued  # the fixture: a conversation put in the waiting queue as the handoff does


@pytest.fixture
def config(config):
    config["CONSOLE_PASSWORD_HASH"] = "CHEAPEST"  # the same sign-in code path, without seconds of hashing
    return config


def signed_in(app, name: str, supervisor: bool = False) -> Console:
    with app.app_context():
        accounts.add(app.extensions["redis"], name, PASSWORD, supervisor)
    browser = Console(app, name)
    assert browser.sign_in().status_code == 302
    return browser


def holding(app, conv_id: str, name: str = "alice") -> Console:
    """`name`, signed in, holding the conversation."""
    counsellor = signed_in(app, name)
    assert counsellor.post(f"/console/claim/{conv_id}").status_code == 302
    return counsellor


def shown_status(page: str, outbound_id: str) -> str | None:
    """The status the conversation page shows beside one reply."""
    found = re.search(rf'data-outbound="{outbound_id}">(?:(?!</li>).)*?class="delivery delivery-([^"]+)"', page, re.S)
    return found.group(1) if found else None


def to_texter(api, texter) -> list[str]:
    return [m["Body"] for m in api.sent if m["To"] == texter.number]


def send_jobs(app) -> list[Job]:
    return [j for j in app.extensions["replies"].jobs if j.func_name == "workers.sender.send_outbound"]


# -- what a counsellor reads when a reply cannot go ------------------------------------------------------


@pytest.mark.parametrize("why, reason", [
    ("stop", "the texter sent STOP"),
    ("quiet", "the texter said it is not safe to talk now; wait until they write again"),
    ("no consent", "the texter has not agreed to be texted at this number"),
])
def test_a_reply_refused_by_the_texters_wishes_says_why_in_full(sending, app, queued_texter, queued, why, reason):
    # A texter who said no to texts can still be waiting: a tip, read by a counsellor.
    texter, conv_id = queued_texter() if why != "no consent" else (None, queued(consent=False, kind="tip").id)
    alice = holding(app, conv_id)
    if why == "stop":
        texter.send("STOP")
    elif why == "quiet":
        texter.send("he just walked in cant talk")

    answer = alice.post(f"/console/c/{conv_id}/reply", {"text": "Are you there?"})

    assert answer.status_code == 409
    assert f"Not sent: {reason}." in answer.get_data(as_text=True)
    assert send_jobs(app) == []


@pytest.fixture
def no_sender_number(sending, config):
    """A Twilio account but neither a number nor a Messaging Service to send from (request before `app`)."""
    config.update(TWILIO_FROM_NUMBER="", TWILIO_MESSAGING_SERVICE_SID="")
    return sending


def test_without_a_number_to_send_from_the_console_names_the_settings_an_operator_must_set(
        no_sender_number, app, queued_texter):
    _, conv_id = queued_texter()
    alice = holding(app, conv_id)

    page = alice.get(f"/console/c/{conv_id}")

    assert page.status_code == 200
    assert "An operator must set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID, then restart it" in \
        page.get_data(as_text=True)


@pytest.fixture
def service_only(sending, config):
    """Sending through a Messaging Service, with no number of our own (request before `app`)."""
    config.update(TWILIO_FROM_NUMBER="", TWILIO_MESSAGING_SERVICE_SID=sending.messaging_service_sid)
    return sending


def test_a_help_line_that_sends_through_a_messaging_service_alone_can_reply(service_only, app, queued_texter,
                                                                           run_jobs):
    texter, conv_id = queued_texter()

    outbound_id = reply(app, conv_id, "Hi, this is Ana.")
    run_jobs()

    [sent] = service_only.sent
    assert (sent["To"], sent["MessagingServiceSid"], sent["Body"]) == (
        texter.number, service_only.messaging_service_sid, "Hi, this is Ana.")
    assert record(app, outbound_id).status == "sent"


def test_a_reply_with_no_words_is_never_queued(sending, app, queued_texter):
    _, conv_id = queued_texter()

    with app.app_context():
        for nothing in ("", "   ", None):
            with pytest.raises(SendFailed):
                outbound.queue_reply(conv_id, nothing, "system")
        assert app.extensions["store"].transcript(conv_id)[-1]["from"] != "counsellor"
    assert send_jobs(app) == []


def test_retrying_a_reply_that_is_no_longer_kept_says_so(sending, app, queued_texter):
    _, conv_id = queued_texter()
    alice = holding(app, conv_id)

    answer = alice.post(f"/console/c/{conv_id}/retry/{'0' * 24}")  # the form of a reply id, expired or made up

    assert answer.status_code == 400
    assert "there is no such reply in this conversation" in answer.get_data(as_text=True)


# -- a reply on its way, as the console shows it ---------------------------------------------------------


def test_a_reply_shows_as_queued_at_the_time_it_was_written(sending, app, queued_texter):
    _, conv_id = queued_texter()
    alice = holding(app, conv_id)
    before = time.time()

    assert alice.post(f"/console/c/{conv_id}/reply", {"text": "Hi, I'm Alice."}).status_code == 302

    [written] = [e for e in app.extensions["store"].transcript(conv_id) if e.get("outbound")]
    assert before <= written["at"] <= time.time()
    assert shown_status(alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True), written["outbound"]) == "queued"


def test_a_reply_queued_in_a_transaction_that_is_then_abandoned_leaves_no_trace(sending, app, queued_texter,
                                                                               run_jobs):
    # workers.followups queues a check-in inside the conversation's save: a save that fails sends nothing.
    _, conv_id = queued_texter()
    with app.app_context():
        before = app.extensions["store"].transcript(conv_id)
        pipe = app.extensions["redis"].pipeline(transaction=True)
        pipe.multi()
        outbound.queue_reply(conv_id, "Checking in: are you safe?", "system", pipe=pipe)
        pipe.reset()
        assert app.extensions["store"].transcript(conv_id) == before
    assert send_jobs(app) == []
    run_jobs()
    assert sending.requests == []


def test_a_sent_reply_keeps_its_words_only_in_the_transcript(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    with app.app_context():
        web_id = app.extensions["helpline"].handle(Inbound("web", "session-token-9", "hi", message_id="w9")).conv_id
    sms = reply(app, conv_id, "Meet the outreach worker at the library.")
    web = reply(app, web_id, "I am here.")

    run_jobs()

    assert [(record(app, i).status, record(app, i).text) for i in (sms, web)] == [("sent", None), ("delivered", None)]
    with app.app_context():
        assert app.extensions["store"].transcript(conv_id)[-1]["text"] == "Meet the outreach worker at the library."


def test_a_reply_whose_conversation_expired_before_it_went_out_is_forgotten_unsent(sending, app, queued_texter,
                                                                                  run_jobs):
    _, conv_id = queued_texter()
    outbound_id = reply(app, conv_id)
    app.extensions["redis"].delete(conv_key(conv_id), transcript_key(conv_id))  # as the retention's expiry does

    run_jobs()

    assert sending.requests == []
    assert record(app, outbound_id) is None


def test_the_send_job_ends_cleanly_once_the_reply_is_sent(sending, app, queued_texter, run_jobs):
    from workers.sender import send_outbound

    _, conv_id = queued_texter()
    outbound_id = reply(app, conv_id)

    assert send_outbound(outbound_id) is None  # the job RQ runs, run here (run_jobs set its app)

    assert record(app, outbound_id).status == "sent" and len(sending.sent) == 1


# -- Twilio too busy, a worker that died, a retry --------------------------------------------------------


@pytest.fixture
def slow_retries(sending, config):
    """Retries half a minute apart, as in production (request before `app`)."""
    config["SEND_RETRY_SECONDS"] = "30,30,30"
    return sending


def test_after_too_many_requests_the_reply_waits_queued_for_its_retry_without_hammering_twilio(
        slow_retries, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    supervisor = signed_in(app, "sam", supervisor=True)
    slow_retries.fail_next(status=429)

    outbound_id = reply(app, conv_id)
    run_jobs()

    assert [r["status"] for r in slow_retries.requests] == [429]
    assert [j.id for j in send_jobs(app)] == []
    assert ScheduledJobRegistry(queue=app.extensions["replies"]).count == 1  # waiting its 30 s
    assert shown_status(supervisor.get(f"/console/c/{conv_id}/live").get_data(as_text=True), outbound_id) == "queued"


def test_after_too_many_requests_the_retry_sends_without_asking_twilio_first(sending, app, queued_texter, run_jobs):
    texter, conv_id = queued_texter()
    sending.fail_next(status=429)

    reply(app, conv_id, "Are you safe?")
    run_jobs()

    assert [(r["method"], r["status"]) for r in sending.requests] == [("POST", 429), ("POST", 201)]
    assert to_texter(sending, texter) == ["Are you safe?"]


def test_a_worker_that_died_just_after_twilio_took_a_part_sends_the_rest_without_looking_it_up(
        sending, app, queued_texter, run_jobs):
    texter, conv_id = queued_texter()
    outbound_id = reply(app, conv_id, LONG)
    with app.app_context():
        from bot.sms import split_message

        first, second = split_message(LONG)
        # What the worker did before it died: it began the attempt, Twilio took part one, its SID was kept.
        outbound.begin_attempt(outbound_id, time.time())
        taken = app.extensions["twilio"].messages.create(body=first, to=texter.number, from_=sending.from_number)
        assert outbound.add_sid(outbound.load(outbound_id), taken.sid)

    run_jobs()

    assert to_texter(sending, texter) == [first, second]
    assert [r["method"] for r in sending.requests] == ["POST", "POST"]
    assert record(app, outbound_id).status == "sent"


def test_retrying_a_long_reply_sends_only_the_part_that_did_not_go(sending, app, queued_texter, run_jobs):
    texter, conv_id = queued_texter()
    sending.hang_next(0.3, accept=True)  # part one goes, its answer a little late: time to script what follows

    def then_part_two_fails():
        assert sending.wait_until_hanging()
        sending.fail_next(status=500, times=4)

    script = threading.Thread(target=then_part_two_fails)
    script.start()
    outbound_id = reply(app, conv_id, LONG)
    run_jobs()
    script.join()
    with app.app_context():
        from bot.sms import split_message

        first, second = split_message(LONG)
        failed = outbound.load(outbound_id)
        assert (failed.status, len(failed.sids)) == ("failed", 1)
        assert outbound.requeue(failed, "failed", failed.text)
    run_jobs()

    assert to_texter(sending, texter) == [first, second]
    assert record(app, outbound_id).status == "sent"


def test_a_retried_reply_that_fails_again_counts_its_attempts_afresh(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    alice = holding(app, conv_id)
    sending.fail_next(status=500, times=4)
    alice.post(f"/console/c/{conv_id}/reply", {"text": "Are you still there?"})
    run_jobs()
    live = alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", live)

    sending.fail_next(status=500, times=4)
    assert alice.post(f"/console/c/{conv_id}/retry/{outbound_id}").status_code == 302
    assert shown_status(alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True), outbound_id) == "queued"
    run_jobs()

    live = alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    assert "Not received: Twilio had a problem on its side; gave up after 4 attempts." in live
    assert "<td>4</td>" in signed_in(app, "sam", supervisor=True).get("/console/all").get_data(as_text=True)


def test_two_retries_at_the_same_moment_queue_one_send_and_only_one_is_told_it_did(sending, app, queued_texter,
                                                                                  run_jobs):
    texter, conv_id = queued_texter()
    sending.fail_next(status=500, times=4)
    outbound_id = reply(app, conv_id, "Are you still there?")
    run_jobs()
    answers = []
    with app.app_context():
        failed = outbound.load(outbound_id)

        def the_other_request(pipe):  # runs between this request's check and its write
            answers.append(outbound.requeue(outbound.load(outbound_id), "failed", failed.text))

        answers.append(outbound.requeue(failed, "failed", failed.text, also=the_other_request))
        answers.append(outbound.requeue(outbound.load(outbound_id), "failed", failed.text))  # a late double click

    assert answers == [True, False, False]
    assert len(send_jobs(app)) == 1
    run_jobs()
    assert to_texter(sending, texter) == ["Are you still there?"]


def test_a_retry_refreshes_the_open_console_page_at_once(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=500, times=4)
    outbound_id = reply(app, conv_id)
    run_jobs()
    redis = app.extensions["redis"]
    pubsub = events.subscribe(redis, events.conversation_channel(conv_id))
    with app.app_context():
        failed = outbound.load(outbound_id)
        assert outbound.requeue(failed, "failed", failed.text)

    heard = None
    while heard is None and (message := pubsub.get_message(timeout=5)) is not None:
        heard = json.loads(message["data"]) if message["type"] == "message" else None
    pubsub.close()
    assert heard is not None and (heard["kind"], heard["conv"]) == ("reply", conv_id)


# -- what supervisors and operators see ------------------------------------------------------------------


def test_supervisors_see_the_newest_fifty_failed_replies_with_who_wrote_them_and_when(sending, app, queued_texter):
    _, conv_id = queued_texter()
    with app.app_context():
        for author in ["zoe"] + ["ana"] * 49 + ["max"]:  # zoe's is the oldest, max's the newest
            written = outbound.queue_reply(conv_id, "Are you still there?", author)
            outbound.finish(outbound.load(written), "failed", "Twilio refused it: 400 error 21211")

    page = signed_in(app, "sam", supervisor=True).get("/console/all").get_data(as_text=True)

    rows = re.findall(r"<tr>\s*<td>([^<]*)</td><td>sms</td><td>(\w+)</td>", page)
    assert '<span class="count">50</span>' in page and len(rows) == 50
    assert rows[0][1] == "max" and "zoe" not in {author for _, author in rows}
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert {when[:10] for when, _ in rows} <= {today, (datetime.fromtimestamp(time.time() - 60, timezone.utc)
                                                       .strftime("%Y-%m-%d"))}


def metric(client, name: str, channel: str) -> float:
    page = client.get("/metrics", environ_base=LOCAL).get_data(as_text=True)
    found = re.search(rf'^{name}{{channel="{channel}"}} (\S+)$', page, re.M)
    return float(found.group(1)) if found else 0.0


def test_each_reply_is_counted_once_as_sent_or_as_failed_by_channel(sending, app, client, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    with app.app_context():
        web_id = app.extensions["helpline"].handle(Inbound("web", "session-token-8", "hi", message_id="w8")).conv_id

    def counted() -> list[float]:  # sent by SMS, sent by web chat, failed by SMS, failed by web chat
        names = ("helpline_messages_out_total", "helpline_send_failures_total")
        return [metric(client, name, channel) for name in names for channel in ("sms", "web")]

    before = counted()

    reply(app, conv_id, "Hi, this is Ana.")
    reply(app, web_id, "Hi, I am here.")
    run_jobs()
    sending.fail_next(status=400, code=21211, message="Invalid 'To' Phone Number")
    reply(app, conv_id, "Are you still there?")
    run_jobs()

    assert [after - was for after, was in zip(counted(), before)] == [1, 1, 1, 0]


def test_the_send_jobs_end_in_time_and_leave_only_failures_behind_for_a_week(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    reply(app, conv_id)
    [sent] = send_jobs(app)
    # RQ takes a job whose worker fell silent for 60 s as abandoned and runs it again: the send must end first.
    assert sent.timeout is not None and sent.timeout < 60
    run_jobs()
    assert not Job.exists(sent.id, connection=app.extensions["redis"])  # nothing left of a sent reply's job

    sending.fail_next(status=500, times=4)
    reply(app, conv_id, "Are you still there?")
    [failing] = send_jobs(app)
    run_jobs()
    registry = FailedJobRegistry(queue=app.extensions["replies"])
    assert registry.get_job_ids() == [failing.id]  # for an operator to look into
    kept = registry.get_expiration_time(failing).timestamp() - time.time()
    assert 6 * 86400 < kept <= 7 * 86400


def test_every_key_a_reply_leaves_expires_with_the_conversations(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=400, code=21211, message="Invalid 'To' Phone Number")
    failed_id = reply(app, conv_id, "one")
    run_jobs()
    sent_id = reply(app, conv_id, "two")
    run_jobs()

    redis, retention = app.extensions["redis"], app.extensions["store"].ttl
    [sid] = record(app, sent_id).sids
    for key in (f"o:{failed_id}", f"o:{sent_id}", f"o:sid:{sid}", outbound.FAILED):
        assert 0 < redis.ttl(key) <= retention, key


# -- one Twilio message, one reply -----------------------------------------------------------------------


def test_one_twilio_message_is_never_claimed_by_two_replies(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    first = reply(app, conv_id, "Are you safe?")
    run_jobs()
    second = reply(app, conv_id, "Are you safe?")  # the same words: a lookup could find the first one's message
    [sid] = record(app, first).sids

    with app.app_context():
        assert outbound.owner_of(sid) == first
        assert outbound.owner_of("SM" + "0" * 32) is None
        assert outbound.add_sid(outbound.load(second), sid) is False
        assert outbound.owner_of(sid) == first
        assert outbound.load(second).sids == []


def test_a_message_its_own_reply_adopts_again_is_kept_once(sending, app, queued_texter, run_jobs):
    # A worker that died after keeping the SID's owner but before the record's SIDs finds the message again.
    _, conv_id = queued_texter()
    outbound_id = reply(app, conv_id, "Are you safe?")
    run_jobs()
    [sid] = record(app, outbound_id).sids

    with app.app_context():
        again = outbound.load(outbound_id)
        again.sids = []
        assert outbound.add_sid(again, sid) is True
        assert outbound.add_sid(again, sid) is True
        assert outbound.load(outbound_id).sids == [sid]
