"""The fake Twilio API answers the real `twilio` client as Twilio would."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from bot.extensions import get_twilio


@pytest.fixture
def twilio(twilio_api, app):
    with app.app_context():
        yield get_twilio()


def test_the_real_client_creates_lists_and_fetches_on_the_fake(twilio_api, twilio):
    message = twilio.messages.create(to="+16615551234", from_=twilio_api.from_number, body="hello")

    assert message.sid.startswith("SM") and message.status == "queued" and message.error_code is None
    assert [(m["To"], m["From"], m["Body"]) for m in twilio_api.sent] == [("+16615551234", twilio_api.from_number,
                                                                          "hello")]
    assert twilio.messages(message.sid).fetch().body == "hello"
    today = datetime.now(timezone.utc)
    listed = twilio.messages.list(to="+16615551234", from_=twilio_api.from_number,
                                  date_sent_after=today - timedelta(minutes=5))
    assert [m.sid for m in listed] == [message.sid]
    assert twilio.messages.list(to="+16615559999") == []
    assert twilio.messages.list(to="+16615551234", date_sent_after=today + timedelta(days=2)) == []


def test_listing_pages_like_twilio(twilio_api, twilio):
    sids = [twilio.messages.create(to="+16615551234", from_=twilio_api.from_number, body=str(n)).sid
            for n in range(5)]

    listed = twilio.messages.list(to="+16615551234", page_size=2)

    assert [m.sid for m in listed] == list(reversed(sids))


def test_scripted_errors_reach_the_client_as_twilio_errors(twilio_api, twilio):
    twilio_api.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    twilio_api.fail_next(status=429)

    with pytest.raises(TwilioRestException) as unsubscribed:
        twilio.messages.create(to="+16615551234", from_=twilio_api.from_number, body="hi")
    with pytest.raises(TwilioRestException) as busy:
        twilio.messages.create(to="+16615551234", from_=twilio_api.from_number, body="hi")
    twilio.messages.create(to="+16615551234", from_=twilio_api.from_number, body="hi")

    assert (unsubscribed.value.status, unsubscribed.value.code) == (400, 21610)
    assert busy.value.status == 429
    assert len(twilio_api.sent) == 1


def test_a_missing_body_is_refused_like_twilio(twilio_api, twilio):
    with pytest.raises(TwilioRestException) as refused:
        twilio.messages.create(to="+16615551234", from_=twilio_api.from_number, body="")
    assert refused.value.code == 21602 and twilio_api.sent == []


def test_wrong_credentials_get_401(twilio_api):
    answer = requests.post(f"{twilio_api.url}/2010-04-01/Accounts/{twilio_api.account_sid}/Messages.json",
                           data={"To": "+16615551234", "Body": "x"}, auth=(twilio_api.account_sid, "wrong"),
                           timeout=5)
    assert answer.status_code == 401 and answer.json()["code"] == 20003
    assert twilio_api.sent == []


def test_a_hung_request_times_out_but_the_message_was_accepted(twilio_api, config):
    config["TWILIO_HTTP_TIMEOUT"] = 0.5
    from bot import create_app

    app = create_app(config)
    twilio_api.hang_next(5)
    with app.app_context(), pytest.raises(requests.exceptions.ReadTimeout):
        get_twilio().messages.create(to="+16615551234", from_=twilio_api.from_number, body="late")
    assert [m["Body"] for m in twilio_api.sent] == ["late"]
    app.extensions["redis"].close()
