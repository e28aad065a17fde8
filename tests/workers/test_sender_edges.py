"""The sender's edges (issue 18, mutation testing): a reply is neither lost nor sent twice when a
Messaging Service has its own numbers, when two replies to one texter cross or read the same, when a
long reply's first part timed out; a reply held back by Twilio says why; and the operator's settings
(a PUBLIC_URL ending in "/", a WhatsApp sender written with its prefix) are taken as written."""
from __future__ import annotations

import json

import pytest

from bot import events, outbound
from bot.console.present import failure
from bot.errors import SendFailed
from bot.store import conv_key
from tests.conftest import Texter
from tests.workers.test_sender import posts, record, reply
from workers.sender import send_outbound

POOL_NUMBER = "+16615550188"  # the Messaging Service's own sender, not TWILIO_FROM_NUMBER


def methods(twilio_api):
    return [r["method"] for r in twilio_api.requests]


def test_a_reply_that_goes_through_at_once_costs_one_request_and_one_attempt(sending, app, queued_texter,
                                                                             run_jobs):
    _, conv_id = queued_texter()

    outbound_id = reply(app, conv_id)
    run_jobs()

    done = record(app, outbound_id)
    assert methods(sending) == ["POST"], "no lookup, no second try: the first answer was kept"
    assert (done.status, done.attempts, done.sids) == ("sent", 1, [sending.sent[0]["sid"]])


@pytest.fixture
def slash_url(sending, config):
    config.update(PUBLIC_URL="http://localhost/")  # as an operator may well write it
    return sending


def test_a_public_url_ending_in_a_slash_still_gives_twilio_the_status_callback_path(slash_url, app,
                                                                                    queued_texter, run_jobs):
    _, conv_id = queued_texter()

    reply(app, conv_id)
    run_jobs()

    assert slash_url.sent[0]["StatusCallback"] == "http://localhost/sms/status"


@pytest.fixture
def service_pool(sending, config):
    """A Messaging Service that sends from a pool number of its own (request before `app`)."""
    sending.numbers.add(POOL_NUMBER)
    sending.services[sending.messaging_service_sid] = {POOL_NUMBER}
    config.update(TWILIO_MESSAGING_SERVICE_SID=sending.messaging_service_sid)
    return sending


def test_with_a_messaging_service_a_timed_out_send_is_found_and_not_sent_again(service_pool, app,
                                                                               queued_texter, run_jobs):
    _, conv_id = queued_texter()
    service_pool.hang_next(5, accept=True)  # Twilio took it; the answer was lost

    outbound_id = reply(app, conv_id)
    run_jobs()

    [sent] = service_pool.sent
    assert sent["MessagingServiceSid"] == service_pool.messaging_service_sid
    assert len(posts(service_pool)) == 1, "the lookup found the message the service sent from its own number"
    assert record(app, outbound_id).sids == [sent["sid"]]


def test_a_second_reply_sent_while_the_first_waits_for_its_retry_does_not_hide_the_first(sending, app,
                                                                                        queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.hang_next(5, accept=True)  # the first reply got through, its answer was lost

    first = reply(app, conv_id, "Hi, this is Ana. Are you somewhere safe to text?")
    second = reply(app, conv_id, "Take your time, I am here.")
    run_jobs()

    bodies = [m["Body"] for m in sending.sent]
    assert sorted(bodies) == ["Hi, this is Ana. Are you somewhere safe to text?", "Take your time, I am here."]
    assert [record(app, i).status for i in (first, second)] == ["sent", "sent"]


def test_the_same_words_sent_twice_are_two_replies_even_when_the_second_timed_out(sending, app, queued_texter,
                                                                                  run_jobs):
    _, conv_id = queued_texter()
    first = reply(app, conv_id, "Are you still there?")
    run_jobs()
    sending.hang_next(5, accept=False)  # the second never reached Twilio

    second = reply(app, conv_id, "Are you still there?")
    run_jobs()

    assert [m["Body"] for m in sending.sent] == ["Are you still there?"] * 2
    assert record(app, second).sids == [sending.sent[1]["sid"]] != record(app, first).sids


def test_a_long_reply_whose_first_part_timed_out_still_sends_the_second_part(sending, app, queued_texter,
                                                                            run_jobs):
    _, conv_id = queued_texter()
    text = ("This is a long message about the places that can help you tonight. " * 30).strip()
    sending.hang_next(5, accept=True)

    outbound_id = reply(app, conv_id, text)
    run_jobs()

    assert " ".join(m["Body"] for m in sending.sent) == text
    assert len(sending.sent) == 2
    done = record(app, outbound_id)
    assert (done.status, done.sids) == ("sent", [m["sid"] for m in sending.sent])


def test_a_throttled_reply_waits_queued_says_why_and_is_retried_without_a_lookup(sending, app, queued_texter,
                                                                                run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=429)
    outbound_id = reply(app, conv_id)

    with pytest.raises(SendFailed, match=r"^Twilio answered 429 \(too many requests\)$"):
        send_outbound(outbound_id)  # the job's first run, as the worker makes it

    waiting = record(app, outbound_id)
    assert (waiting.status, waiting.error, waiting.started) == ("queued", "Twilio 429", None)
    run_jobs()
    assert methods(sending) == ["POST", "POST"], "a 429 created nothing: nothing to look up"
    assert record(app, outbound_id).status == "sent"


def test_a_reply_throttled_to_the_last_retry_says_so_to_supervisors(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=429, times=4)

    outbound_id = reply(app, conv_id)
    run_jobs()

    failed = record(app, outbound_id)
    assert (failed.status, failed.error) == ("failed", "gave up after 4 attempts: Twilio answered 429 "
                                                       "(too many requests)")


def test_a_reply_twilio_never_answered_says_so_after_the_last_retry(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=500, times=3)
    sending.hang_next(5, accept=False)  # the last try: the connection closes without an answer

    outbound_id = reply(app, conv_id)
    run_jobs()

    failed = record(app, outbound_id)
    assert failed.status == "failed" and sending.sent == []
    assert failed.error.startswith("gave up after 4 attempts: no answer from Twilio (")
    assert "NoneType" not in failed.error


def test_a_send_that_cannot_be_looked_up_is_never_sent_again_and_says_why(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.hang_next(5, accept=True)  # it got through, the answer was lost
    for _ in range(3):  # and no lookup gets an answer
        sending.hang_next(5, accept=False, method="GET")

    outbound_id = reply(app, conv_id)
    run_jobs()

    assert len(sending.sent) == 1 and len(posts(sending)) == 1, "never sent again without having looked"
    failed = record(app, outbound_id)
    assert failed.status == "failed"
    assert failed.error.endswith(": could not look up an interrupted send (ReadTimeout)")


def test_a_reply_twilio_refused_is_not_sent_when_its_job_runs_again(sending, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=400, code=21211, message="Invalid 'To' Phone Number")
    outbound_id = reply(app, conv_id)
    run_jobs()

    app.extensions["replies"].enqueue_call("workers.sender.send_outbound", args=(outbound_id,))
    run_jobs()

    assert len(posts(sending)) == 1 and sending.sent == []
    assert record(app, outbound_id).status == "failed"


def test_an_unsubscribed_number_is_shown_opted_out_to_whoever_watches_the_conversation(sending, app,
                                                                                      queued_texter, run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    reply(app, conv_id)
    pubsub = app.extensions["redis"].pubsub()
    pubsub.subscribe(events.conversation_channel(conv_id))
    while pubsub.get_message(timeout=1) is not None:  # the subscription's confirmation
        pass

    run_jobs()

    heard = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        if message["type"] == "message":
            heard.append(json.loads(message["data"]))
    pubsub.close()
    assert [(e["kind"], e["conv"]) for e in heard if e["kind"] == "opt_out"] == [("opt_out", conv_id)]


@pytest.fixture
def prefixed_whatsapp_sender(sending, config):
    config.update(TWILIO_FROM_NUMBER=f"whatsapp:{sending.from_number}")  # written with its prefix
    return sending


def test_a_whatsapp_sender_written_with_its_prefix_is_used_as_it_is(prefixed_whatsapp_sender, app, run_jobs):
    address = "whatsapp:+16615550177"
    texter = Texter(app.test_client(), address)
    for message in ("hi", "1", "1", "1"):
        texter.send(message)
    conv_id = app.extensions["vault"].conversation_id("whatsapp", address)

    outbound_id = reply(app, conv_id)
    run_jobs()

    [sent] = prefixed_whatsapp_sender.sent
    assert (sent["To"], sent["From"]) == (address, f"whatsapp:{prefixed_whatsapp_sender.from_number}")
    assert record(app, outbound_id).status == "sent"


def test_a_reply_to_a_conversation_that_expired_meanwhile_is_forgotten_not_listed_as_failed(sending, app,
                                                                                            queued_texter, run_jobs):
    _, conv_id = queued_texter()
    outbound_id = reply(app, conv_id, "Are you still there?")
    app.extensions["redis"].delete(conv_key(conv_id))  # its retention ran out before the job ran

    run_jobs()

    assert sending.requests == []
    assert record(app, outbound_id) is None
    with app.app_context():
        assert outbound.failed() == []  # no supervisor is shown a reply to a conversation that is gone


@pytest.mark.parametrize("words", ["i cant talk now", "not safe to talk right now"])
def test_a_reply_queued_before_the_texter_said_it_is_not_safe_to_talk_is_held_back_and_says_why(
        sending, app, queued_texter, run_jobs, words):
    texter, conv_id = queued_texter()
    outbound_id = reply(app, conv_id)
    texter.send(words)

    run_jobs()

    held = record(app, outbound_id)
    assert (held.status, held.error) == ("failed", "not safe to talk now")  # not "no consent": they agreed
    assert posts(sending) == []


def test_a_failed_look_up_after_a_timeout_sends_nothing_and_says_why(sending, app, queued_texter, run_jobs):
    """twilio's list() raises the base TwilioException ("Unable to fetch page") for an HTTP error: the
    reply must wait for a later look-up, never be sent blind, and say so in words, not a raw error."""
    _, conv_id = queued_texter()
    sending.hang_next(5, accept=False)  # the send times out
    sending.fail_next(status=500, method="GET", times=20)  # and every look-up that must come first fails
    outbound_id = reply(app, conv_id)
    run_jobs()
    assert len(posts(sending)) == 1  # never sent again without having looked
    given_up = record(app, outbound_id)
    assert given_up.status == "failed"
    assert "could not look up an interrupted send" in given_up.error and "Unable to fetch page" not in given_up.error


def test_a_reply_queued_before_the_texter_took_back_their_ok_to_be_texted_is_held_back_and_says_why(
        sending, app, queued_texter, run_jobs):
    texter, conv_id = queued_texter()
    outbound_id = reply(app, conv_id)
    for words in ("cancel", "yes", "counsellor", "no"):  # left the line, asked again, said no to being texted
        texter.send(words)

    run_jobs()

    held = record(app, outbound_id)
    assert (held.status, held.error) == ("failed", "no consent")
    # Supervisors read why, and are not told to send it again once the texter writes.
    assert failure(held.error).why == "the texter has not agreed to be texted"
    assert posts(sending) == []
