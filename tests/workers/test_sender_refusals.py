"""A reply that cannot go out is listed as failed at once, with the reason a counsellor can act on, and is
not tried again: STOP or no consent, a refusal from Twilio, Twilio not set up."""
from __future__ import annotations

import pytest

from tests.workers.test_sender import posts, record, reply


def test_stop_after_the_reply_was_queued_fails_it_as_opted_out_without_a_try(sending, app, queued_texter,
                                                                             run_jobs):
    texter, conv_id = queued_texter()
    outbound_id = reply(app, conv_id)
    texter.send("STOP")

    run_jobs()

    sent = record(app, outbound_id)
    assert (sent.status, sent.error, sent.attempts) == ("failed", "opted out", 0)
    assert sending.requests == []


def test_a_refusal_from_twilio_fails_the_reply_with_its_code_and_is_not_sent_again(sending, app, queued_texter,
                                                                                 run_jobs):
    _, conv_id = queued_texter()
    sending.fail_next(status=400, code=21211, message="Invalid 'To' Phone Number")

    outbound_id = reply(app, conv_id)
    run_jobs()

    refused = record(app, outbound_id)
    assert (refused.status, refused.error) == ("failed", "Twilio refused it: 400 error 21211")
    assert [r["status"] for r in posts(sending)] == [400]  # a retry would be refused the same way


def test_without_twilio_settings_a_text_reply_fails_at_once_and_says_why(app, queued_texter, run_jobs):
    _, conv_id = queued_texter()

    outbound_id = reply(app, conv_id)
    run_jobs()

    unsent = record(app, outbound_id)
    assert (unsent.status, unsent.error) == ("failed", "Twilio is not configured")


@pytest.fixture
def no_sender_number(sending, config):
    """A Twilio account but neither a number nor a Messaging Service to send from (request before `app`)."""
    config.update(TWILIO_FROM_NUMBER="", TWILIO_MESSAGING_SERVICE_SID="")
    return sending


def test_with_an_account_but_no_number_to_send_from_a_reply_fails_at_once_and_twilio_is_not_asked(
        no_sender_number, app, queued_texter, run_jobs):
    _, conv_id = queued_texter()

    outbound_id = reply(app, conv_id)
    run_jobs()

    unsent = record(app, outbound_id)
    assert (unsent.status, unsent.error) == ("failed", "Twilio is not configured")
    assert posts(no_sender_number) == []
