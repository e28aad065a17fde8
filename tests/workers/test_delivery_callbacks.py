"""Delivery tracking end to end: a counsellor's reply goes out through the real worker to the fake
Twilio API, and the status callbacks that API posts on its own timer, to the app on a real port, become
the reply's status beside the message in the console. No test here posts a callback by hand."""
from __future__ import annotations

import re

import pytest

from bot.console import accounts
from bot.console.present import failure
from tests.conftest import Texter
from tests.console.conftest import PASSWORD, Console, ask_for_counsellor

REPLY = "Hi, this is Alice. Are you somewhere safe to text?"
_SHOWN = re.compile(r'class="delivery delivery-(\w+)"')


@pytest.fixture
def config(config):
    config["CONSOLE_PASSWORD_HASH"] = "CHEAPEST"  # the same sign-in, without seconds of hashing
    return config


@pytest.fixture
def alice(sending, app, live_server):
    """A signed-in counsellor; the app on a real port is where Twilio's callbacks go (PUBLIC_URL)."""
    app.config["PUBLIC_URL"] = live_server.url
    with app.app_context():
        accounts.add(app.extensions["redis"], "alice", PASSWORD, False)
    console = Console(app, "alice")
    assert console.sign_in().status_code == 302
    return console


def replied(app, alice, run_jobs, twilio_api, address: str, channel: str = "sms") -> tuple[str, dict]:
    """A texter at `address` asks for a person, alice takes them and replies; the worker sends it and the
    fake Twilio API walks it to its last status. Returns the conversation id and what Twilio was sent."""
    texter = Texter(app.test_client(), address, url=f"{app.config['PUBLIC_URL']}/sms")
    ask_for_counsellor(texter)
    conv_id = app.extensions["vault"].conversation_id(channel, address)
    assert alice.post(f"/console/claim/{conv_id}").status_code == 302
    assert alice.post(f"/console/c/{conv_id}/reply", {"text": REPLY}).status_code == 302

    run_jobs()

    created = [m for m in twilio_api.sent if m["To"] == address]
    assert len(created) == 1, f"Twilio answered {[r['status'] for r in twilio_api.requests]}; created {len(created)}"
    sent = created[0]
    assert sent["Body"] == REPLY
    assert twilio_api.wait_settled(sent["sid"]), "the fake never finished the message's status changes"
    return conv_id, sent


def shown(alice, conv_id) -> tuple[list[str], str]:
    """The delivery status beside each reply on alice's conversation page, and the page."""
    page = alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    return _SHOWN.findall(page), page


def test_a_delivered_reply_shows_delivered_once_twilio_says_so(alice, app, run_jobs, sending):
    conv_id, sent = replied(app, alice, run_jobs, sending, "+16615550142")

    assert [c["form"]["MessageStatus"] for c in sending.callbacks_for(sent["sid"])] == ["sent", "delivered"]
    assert all(c["status"] == 204 for c in sending.callbacks_for(sent["sid"])), "the app refused a callback"
    assert shown(alice, conv_id)[0] == ["delivered"]


@pytest.mark.parametrize("outcome, code", [("undelivered", 30003), ("failed", 30006)])
def test_a_reply_the_carrier_could_not_deliver_shows_failed_and_why(alice, app, run_jobs, sending, outcome, code):
    sending.deliver("+16615550143", outcome, code)

    conv_id, sent = replied(app, alice, run_jobs, sending, "+16615550143")

    assert sending.callbacks_for(sent["sid"])[-1]["form"]["ErrorCode"] == str(code)
    statuses, page = shown(alice, conv_id)
    assert statuses == ["failed"]
    assert failure(str(code)).why in page  # the code, in a counsellor's words


def test_a_whatsapp_reply_goes_from_our_whatsapp_sender_and_is_tracked(alice, app, run_jobs, sending):
    conv_id, sent = replied(app, alice, run_jobs, sending, "whatsapp:+16615550144", channel="whatsapp")

    assert sent["From"] == f"whatsapp:{sending.from_number}"  # Twilio refuses an SMS sender (21910)
    assert shown(alice, conv_id)[0] == ["delivered"]


@pytest.mark.parametrize("address, channel", [("+16615550145", "sms"), ("whatsapp:+16615550146", "whatsapp")])
def test_with_only_a_messaging_service_the_reply_goes_through_it_without_from(alice, app, run_jobs, sending,
                                                                             address, channel):
    app.config.update(TWILIO_MESSAGING_SERVICE_SID=sending.messaging_service_sid, TWILIO_FROM_NUMBER=None)

    conv_id, sent = replied(app, alice, run_jobs, sending, address, channel)

    assert sent["MessagingServiceSid"] == sending.messaging_service_sid and "From" not in sent
    callbacks = sending.callbacks_for(sent["sid"])
    # The service chose a sender of the texter's channel; Twilio reports it in every callback.
    ours = f"whatsapp:{sending.from_number}" if channel == "whatsapp" else sending.from_number
    assert {c["form"]["From"] for c in callbacks} == {ours}
    assert [c["form"]["MessageStatus"] for c in callbacks] == ["queued", "sent", "delivered"]
    assert shown(alice, conv_id)[0] == ["delivered"]


def test_a_messaging_service_send_lost_in_a_timeout_is_adopted_not_sent_twice(alice, app, run_jobs, sending):
    app.config.update(TWILIO_MESSAGING_SERVICE_SID=sending.messaging_service_sid, TWILIO_FROM_NUMBER=None)
    sending.hang_next(5, accept=True)  # Twilio takes it; the answer comes after the worker's 1 s timeout

    conv_id, sent = replied(app, alice, run_jobs, sending, "+16615550147")

    assert [r["method"] for r in sending.requests] == ["POST", "GET"]  # the retry looked it up, sent nothing
    assert sending.requests[1]["query"].get("From") is None  # a service's messages may come from any sender
    assert shown(alice, conv_id)[0] == ["delivered"]
