"""Counsellor replies go out exactly once, through the real twilio client, to the fake Twilio API."""
from __future__ import annotations

import json

import pytest

from bot import outbound
from bot.engine import Inbound
from bot.errors import NoConsent, RecipientOptedOut
from tests.workers.conftest import PUBLIC_URL


def reply(app, conv_id, text="Hi, this is Ana. Are you somewhere safe to text?", author="ana"):
    with app.app_context():
        return outbound.queue_reply(conv_id, text, author)


def record(app, outbound_id):
    with app.app_context():
        return outbound.load(outbound_id)


def posts(twilio_api):
    return [r for r in twilio_api.requests if r["method"] == "POST"]


def test_a_reply_reaches_twilio_from_our_number_with_a_status_callback(sending, app, queued_texter, run_jobs):
    texter, conv_id = queued_texter()

    outbound_id = reply(app, conv_id)
    run_jobs()

    [sent] = sending.sent
    assert (sent["To"], sent["From"], sent["Body"]) == (texter.number, sending.from_number,
                                                        "Hi, this is Ana. Are you somewhere safe to text?")
    assert sent["StatusCallback"] == f"{PUBLIC_URL}/sms/status"
    done = record(app, outbound_id)
    assert (done.status, done.sids) == ("sent", [sent["sid"]])
    with app.app_context():
        last = app.extensions["store"].transcript(conv_id)[-1]
    assert (last["from"], last["by"], last["text"]) == ("counsellor", "ana", sent["Body"])


def test_the_outbound_record_keeps_the_text_encrypted_and_the_job_only_ids(sending, app, queued_texter):
    texter, conv_id = queued_texter()
    secret = "Meet the outreach worker at the library"

    outbound_id = reply(app, conv_id, secret)

    redis = app.extensions["redis"]
    stored = b"".join(v for v in redis.hgetall(f"o:{outbound_id}").values())
    [job] = [j for j in app.extensions["replies"].jobs if j.func_name == "workers.sender.send_outbound"]
    assert secret.encode() not in stored and texter.number.encode() not in stored
    assert job.args == [outbound_id]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_passing_error_is_retried_and_the_reply_sent_once(sending, app, queued_texter, run_jobs, status):
    _, conv_id = queued_texter()
    sending.fail_next(status=status)

    outbound_id = reply(app, conv_id)
    run_jobs()

    assert [r["status"] for r in posts(sending)] == [status, 201]
    assert len(sending.sent) == 1
    assert record(app, outbound_id).status == "sent"


@pytest.mark.parametrize("accepted", [True, False], ids=["twilio-took-it", "twilio-never-saw-it"])
def test_a_timeout_is_looked_up_before_sending_again(sending, app, queued_texter, run_jobs, accepted):
    _, conv_id = queued_texter()
    sending.hang_next(5, accept=accepted)  # longer than the client's one-second timeout

    outbound_id = reply(app, conv_id)
    run_jobs()

    assert len(sending.sent) == 1, "sent exactly once whether or not the timed-out request got through"
    assert len(posts(sending)) == (1 if accepted else 2)
    assert any(r["method"] == "GET" for r in sending.requests), "the retry asked Twilio first"
    assert record(app, outbound_id).sids == [sending.sent[0]["sid"]]


def test_an_unsubscribed_number_is_never_retried_and_the_texter_is_opted_out(sending, app, queued_texter,
                                                                            run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")

    outbound_id = reply(app, conv_id)
    run_jobs()

    assert len(posts(sending)) == 1 and sending.sent == []
    with app.app_context():
        assert app.extensions["store"].load(conv_id).opted_out is True
        assert [(f.id, f.status) for f in outbound.failed()] == [(outbound_id, "failed")]
        assert "21610" in outbound.failed()[0].error
        with pytest.raises(RecipientOptedOut):
            outbound.queue_reply(conv_id, "one more thing", "ana")


def test_after_the_last_retry_the_reply_is_listed_as_failed(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=500, times=4)  # the first try and all three retries

    outbound_id = reply(app, conv_id, "Are you still there?")
    run_jobs()

    assert sending.sent == []
    with app.app_context():
        [failed] = outbound.failed()
    assert (failed.id, failed.status, failed.attempts, failed.text) == (outbound_id, "failed", 4,
                                                                       "Are you still there?")
    assert "500" in failed.error


def test_a_job_run_again_after_sending_sends_nothing(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    outbound_id = reply(app, conv_id)
    run_jobs()

    app.extensions["replies"].enqueue_call("workers.sender.send_outbound", args=(outbound_id,))
    run_jobs()

    assert len(sending.sent) == 1 and len(posts(sending)) == 1


def test_a_long_reply_goes_out_in_parts_each_once(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    text = ("This is a long message about the places that can help you tonight. " * 30).strip()
    sending.fail_next(status=500)  # the first part fails once

    outbound_id = reply(app, conv_id, text)
    run_jobs()

    bodies = [m["Body"] for m in sending.sent]
    assert len(bodies) == 2 and all(len(b) <= 1600 for b in bodies)
    assert " ".join(bodies) == text
    assert record(app, outbound_id).sids == [m["sid"] for m in sending.sent]


def test_a_texter_who_sent_stop_gets_nothing(sending, app, queued_texter, run_jobs):
    texter, conv_id = queued_texter()
    texter.send("STOP")

    with app.app_context(), pytest.raises(RecipientOptedOut):
        outbound.queue_reply(conv_id, "Hello?", "ana")
    run_jobs()

    assert app.extensions["replies"].count == 0 and sending.requests == []


def test_stop_between_queueing_and_sending_stops_the_send(sending, app, queued_texter, run_jobs):
    texter, conv_id = queued_texter()
    outbound_id = reply(app, conv_id)
    texter.send("STOP")

    run_jobs()

    assert sending.requests == []
    assert record(app, outbound_id).status == "failed"


def test_a_texter_who_did_not_consent_is_not_texted(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter(consent=False)

    with app.app_context(), pytest.raises(NoConsent):
        outbound.queue_reply(conv_id, "Hello?", "ana")
    run_jobs()

    assert sending.requests == []


def test_a_web_chat_reply_needs_no_twilio_and_is_delivered(sending, app, run_jobs):
    helpline = app.extensions["helpline"]
    with app.app_context():
        conv_id = helpline.handle(Inbound("web", "session-token-1", "hi", message_id="w1")).conv_id
        pubsub = app.extensions["redis"].pubsub()
        pubsub.subscribe(f"ev:c:{conv_id}")
        outbound_id = outbound.queue_reply(conv_id, "Hi, I am here.", "ana")
    run_jobs()

    assert sending.requests == []
    assert record(app, outbound_id).status == "delivered"
    events = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        if message["type"] == "message":
            events.append(json.loads(message["data"]))
    pubsub.close()
    assert [e["kind"] for e in events] == ["reply", "outbound"] and events[1]["status"] == "delivered"
    assert all(set(e) <= {"kind", "conv", "at", "outbound", "status"} for e in events), "ids, never content"


def test_supervisors_see_replies_that_could_not_be_sent(sending, app, queued_texter, run_jobs):
    from bot.console import accounts
    from tests.console.conftest import PASSWORD, Console

    _, conv_id = queued_texter()
    sending.fail_next(status=500, times=4)
    reply(app, conv_id, "Are you still there?")
    run_jobs()
    with app.app_context():
        accounts.add(app.extensions["redis"], "sam", PASSWORD, True)
    sam = Console(app, "sam")
    assert sam.sign_in().status_code == 302
    page = sam.get("/console/all").get_data(as_text=True)
    assert page.count("Replies that could not be sent") == 1 and f"/console/c/{conv_id}" in page
    assert "<title>All conversations" in page
    assert "gave up after 4 attempts" in page
    assert "Are you still there?" not in page  # what was written stays in the conversation
