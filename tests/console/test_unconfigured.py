"""Texting not set up: the reply box says what the operator must set, and the server refuses too."""
from __future__ import annotations

import html

import pytest

from bot import create_app

from .conftest import wrapped_up
from .test_feedback import banner, sends

NOT_SET_UP = ("Replies by {channel} cannot be sent: texting is not set up on this help line. "
              "An operator must set {missing}, then restart it")
BOTH = "TWILIO_ACCOUNT_SID and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"


@pytest.fixture
def settings() -> dict:
    """Twilio settings on top of the tests' own (which have an auth token and nothing else)."""
    return {}


@pytest.fixture
def app(config, settings):
    # Not the console's usual app, which has the fake Twilio set up: here texting is (partly) not.
    config.update(settings)
    app = create_app(config)
    yield app
    app.extensions["redis"].close()


def page_of(console, conv) -> str:
    alice = console("alice")
    assert alice.post(f"/console/claim/{conv.id}").status_code == 302
    return alice, html.unescape(alice.get(f"/console/c/{conv.id}").get_data(as_text=True))


@pytest.mark.parametrize("channel, address, name", [("sms", "+16615550123", "SMS"),
                                                    ("whatsapp", "whatsapp:+16615550123", "WhatsApp")])
def test_the_reply_box_says_what_to_set_and_the_server_refuses(console, queued, staff, channel, address, name):
    conv = queued(channel=channel, address=address)
    alice, page = page_of(console, conv)
    why = NOT_SET_UP.format(channel=name, missing=BOTH)
    assert f'<p class="why-not" id="why-not" >{why}.</p>' in page
    assert 'name="text" rows="4" maxlength="1600" disabled' in page
    answer = alice.post(f"/console/c/{conv.id}/reply", {"text": "Are you safe?"})
    assert answer.status_code == 409
    assert f"Not sent: {why}." in html.unescape(answer.get_data(as_text=True))
    assert "Are you safe?" in answer.get_data(as_text=True)  # the draft is kept
    assert sends(staff) == 0


@pytest.mark.parametrize("settings", [{"TWILIO_ACCOUNT_SID": "AC" + "0" * 32}])
def test_only_what_is_missing_is_named(console, queued, settings):
    _, page = page_of(console, queued())
    assert NOT_SET_UP.format(channel="SMS", missing="TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID") in page


@pytest.mark.parametrize("settings", [{"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_MESSAGING_SERVICE_SID": "MG" + "0" * 32},
                                      {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_FROM_NUMBER": "+16615550100"}])
def test_a_from_number_or_a_messaging_service_is_enough(console, queued, staff, settings):
    conv = queued()
    alice, page = page_of(console, conv)
    assert 'id="why-not" hidden' in page
    assert alice.post(f"/console/c/{conv.id}/reply", {"text": "Are you safe?"}).status_code == 302
    assert sends(staff) == 1


def test_web_chat_needs_no_setting(console, queued, staff, run_jobs):
    conv = queued(channel="web", address="web-session-1")
    alice, page = page_of(console, conv)
    assert 'id="why-not" hidden' in page
    assert alice.post(f"/console/c/{conv.id}/reply", {"text": "Are you safe?"}).status_code == 302
    run_jobs()
    assert 'delivery-delivered">delivered<' in alice.get(f"/console/c/{conv.id}/live").get_data(as_text=True)


def test_ending_says_the_closing_message_could_not_go(console, queued, staff):
    conv = queued()
    alice, _ = page_of(console, conv)
    assert alice.post(f"/console/c/{conv.id}/end", wrapped_up("resolved")).status_code == 302
    said = html.unescape(banner(alice.get("/console/")))
    assert said == ("Conversation ended (outcome: resolved). No closing message was sent. "
                    + NOT_SET_UP.format(channel="SMS", missing=BOTH) + ".")
    assert sends(staff) == 0
