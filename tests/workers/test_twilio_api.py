"""The fake Twilio API answers the real `twilio` client as Twilio would: what it refuses, and what it
posts back to StatusCallback afterwards."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from bot.delivery import latest_status
from bot.extensions import get_twilio

TO = "+16615551234"


@pytest.fixture
def twilio(twilio_api, app):
    with app.app_context():
        yield get_twilio()


def test_the_real_client_creates_lists_and_fetches_on_the_fake(twilio_api, twilio):
    message = twilio.messages.create(to=TO, from_=twilio_api.from_number, body="hello")

    assert message.sid.startswith("SM") and message.status == "queued" and message.error_code is None
    assert [(m["To"], m["From"], m["Body"]) for m in twilio_api.sent] == [(TO, twilio_api.from_number, "hello")]
    assert twilio_api.wait_settled(message.sid)
    fetched = twilio.messages(message.sid).fetch()
    assert (fetched.body, fetched.status, fetched.date_sent is not None) == ("hello", "delivered", True)
    today = datetime.now(timezone.utc)
    listed = twilio.messages.list(to=TO, from_=twilio_api.from_number, date_sent_after=today - timedelta(minutes=5))
    assert [m.sid for m in listed] == [message.sid]
    assert twilio.messages.list(to="+16615559999") == []
    assert twilio.messages.list(to=TO, date_sent_after=today + timedelta(days=2)) == []


def test_listing_pages_like_twilio(twilio_api, twilio):
    sids = [twilio.messages.create(to=TO, from_=twilio_api.from_number, body=str(n)).sid for n in range(5)]

    listed = twilio.messages.list(to=TO, page_size=2)

    assert [m.sid for m in listed] == list(reversed(sids))


def test_scripted_errors_reach_the_client_as_twilio_errors(twilio_api, twilio):
    twilio_api.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    twilio_api.fail_next(status=429)

    with pytest.raises(TwilioRestException) as unsubscribed:
        twilio.messages.create(to=TO, from_=twilio_api.from_number, body="hi")
    with pytest.raises(TwilioRestException) as busy:
        twilio.messages.create(to=TO, from_=twilio_api.from_number, body="hi")
    twilio.messages.create(to=TO, from_=twilio_api.from_number, body="hi")

    assert (unsubscribed.value.status, unsubscribed.value.code) == (400, 21610)
    assert busy.value.status == 429
    assert len(twilio_api.sent) == 1


OURS = "+16615550100"  # the fixture's number (twilio_api.from_number)


@pytest.mark.parametrize("to, sender, extra, code", [
    ("6615551234", OURS, {}, 21211),  # no country code: not E.164
    ("+1 (661) 555-1234", OURS, {}, 21211),
    ("+1661", OURS, {}, 21211),  # too short
    ("+1661555123456789", OURS, {}, 21211),  # 16 digits: too long
    ("whatsapp:6615551234", f"whatsapp:{OURS}", {}, 21211),
    (TO, "+16615550999", {}, 21606),  # a number the account does not own
    (TO, "6615550100", {}, 21212),  # our number, but not E.164
    ("whatsapp:" + TO, OURS, {}, 21910),  # WhatsApp to, SMS from
    (TO, f"whatsapp:{OURS}", {}, 21910),  # SMS to, WhatsApp from
    ("whatsapp:" + TO, "whatsapp:+16615550999", {}, 63007),  # not one of our WhatsApp senders
    (TO, None, {"messaging_service_sid": "MG" + "0" * 32}, 21701),  # well formed, not this account's
    (TO, None, {"messaging_service_sid": "MG-helpline"}, 21705),
    (TO, None, {}, 21603),  # neither From nor a Messaging Service
    (TO, OURS, {"body": ""}, 21602),
    (TO, OURS, {"body": "x" * 1601}, 21617),
], ids=lambda v: str(v)[:24])
def test_what_twilio_refuses_is_refused_with_twilios_code(twilio_api, twilio, to, sender, extra, code):
    kwargs = {"to": to, "body": "hello", **extra}
    if sender:
        kwargs["from_"] = sender

    with pytest.raises(TwilioRestException) as refused:
        twilio.messages.create(**kwargs)

    assert (refused.value.status, refused.value.code) == (400, code)
    assert twilio_api.sent == []


def test_a_body_of_exactly_1600_characters_and_a_media_only_message_are_accepted(twilio_api, twilio):
    twilio.messages.create(to=TO, from_=twilio_api.from_number, body="x" * 1600)
    twilio.messages.create(to=TO, from_=twilio_api.from_number, media_url=["https://example.org/a.png"])

    assert len(twilio_api.sent) == 2


def test_a_refusal_has_twilios_json_error_shape(twilio_api):
    answer = requests.post(f"{twilio_api.url}/2010-04-01/Accounts/{twilio_api.account_sid}/Messages.json",
                           data={"To": "6615551234", "From": twilio_api.from_number, "Body": "x"},
                           auth=(twilio_api.account_sid, twilio_api.auth_token), timeout=5)

    assert answer.status_code == 400
    assert answer.json() == {"code": 21211, "message": "The 'To' number 6615551234 is not a valid phone number.",
                             "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}


def test_wrong_credentials_get_401(twilio_api):
    answer = requests.post(f"{twilio_api.url}/2010-04-01/Accounts/{twilio_api.account_sid}/Messages.json",
                           data={"To": TO, "From": twilio_api.from_number, "Body": "x"},
                           auth=(twilio_api.account_sid, "wrong"), timeout=5)
    assert answer.status_code == 401 and answer.json()["code"] == 20003
    assert twilio_api.sent == []


def test_another_accounts_url_is_not_found(twilio_api):
    other = "AC" + "f" * 32
    answer = requests.post(f"{twilio_api.url}/2010-04-01/Accounts/{other}/Messages.json",
                           data={"To": TO, "From": twilio_api.from_number, "Body": "x"},
                           auth=(twilio_api.account_sid, twilio_api.auth_token), timeout=5)
    assert answer.status_code == 404 and answer.json()["code"] == 20404
    assert twilio_api.sent == []


def test_a_messaging_service_picks_a_sender_of_the_recipients_channel(twilio_api, twilio):
    service = twilio_api.messaging_service_sid

    sms = twilio.messages.create(to=TO, messaging_service_sid=service, body="hi")
    whatsapp = twilio.messages.create(to="whatsapp:" + TO, messaging_service_sid=service, body="hi")

    assert (sms.status, sms.messaging_service_sid, sms.from_) == ("accepted", service, twilio_api.from_number)
    assert whatsapp.from_ == f"whatsapp:{twilio_api.from_number}"
    assert [m.get("From") for m in twilio_api.sent] == [None, None]


def test_a_service_without_a_whatsapp_sender_takes_the_message_and_it_fails(twilio_api, twilio):
    twilio_api.services[twilio_api.messaging_service_sid] = {twilio_api.from_number}

    message = twilio.messages.create(to="whatsapp:" + TO, messaging_service_sid=twilio_api.messaging_service_sid,
                                     body="hi")

    assert twilio_api.wait_settled(message.sid)
    assert (twilio.messages(message.sid).fetch().status, twilio.messages(message.sid).fetch().error_code) == (
        "failed", 63007)


def test_a_hung_request_times_out_but_the_message_was_accepted(twilio_api, config):
    config["TWILIO_HTTP_TIMEOUT"] = 0.5
    from bot import create_app

    app = create_app(config)
    twilio_api.hang_next(5)
    with app.app_context(), pytest.raises(requests.exceptions.ReadTimeout):
        get_twilio().messages.create(to=TO, from_=twilio_api.from_number, body="late")
    assert [m["Body"] for m in twilio_api.sent] == ["late"]
    app.extensions["redis"].close()


# -- status callbacks, answered by the app's own /sms/status ----------------------------------


@pytest.fixture
def callback_url(twilio_api, app, live_server):
    """The app's /sms/status on a real port, as the URL it checks Twilio's signatures against."""
    app.config["PUBLIC_URL"] = live_server.url
    return f"{live_server.url}/sms/status"


def statuses(twilio_api, sid):
    return [(c["form"]["MessageStatus"], c["form"].get("ErrorCode"), c["status"]) for c in twilio_api.callbacks_for(sid)]


def test_status_callbacks_follow_a_message_to_delivery_signed_like_twilio(twilio_api, twilio, app, callback_url):
    message = twilio.messages.create(to=TO, from_=twilio_api.from_number, body="hi", status_callback=callback_url)

    assert twilio_api.wait_settled(message.sid)
    # No callback for the first status (queued); 204 is the app's answer to a callback whose signature held.
    assert statuses(twilio_api, message.sid) == [("sent", None, 204), ("delivered", None, 204)]
    [first, _] = twilio_api.callbacks_for(message.sid)
    assert first["form"] == {"MessageSid": message.sid, "SmsSid": message.sid, "AccountSid": twilio_api.account_sid,
                             "From": twilio_api.from_number, "To": TO, "MessageStatus": "sent", "SmsStatus": "sent",
                             "ApiVersion": "2010-04-01"}
    assert latest_status(app.extensions["redis"], message.sid) == "delivered"


@pytest.mark.parametrize("outcome, code, expected", [
    ("undelivered", 30003, [("sent", None, 204), ("undelivered", "30003", 204)]),
    ("failed", 30006, [("failed", "30006", 204)]),  # failed: it never left Twilio, so never "sent"
])
def test_a_carrier_that_cannot_deliver_is_reported_with_its_error_code(twilio_api, twilio, app, callback_url,
                                                                      outcome, code, expected):
    twilio_api.deliver(TO, outcome, code)

    message = twilio.messages.create(to=TO, from_=twilio_api.from_number, body="hi", status_callback=callback_url)

    assert twilio_api.wait_settled(message.sid)
    assert statuses(twilio_api, message.sid) == expected
    assert latest_status(app.extensions["redis"], message.sid) == outcome
    assert twilio.messages(message.sid).fetch().error_code == code


def test_a_messaging_service_message_is_reported_queued_first(twilio_api, twilio, callback_url):
    message = twilio.messages.create(to=TO, messaging_service_sid=twilio_api.messaging_service_sid, body="hi",
                                     status_callback=callback_url)

    assert twilio_api.wait_settled(message.sid)
    assert statuses(twilio_api, message.sid) == [("queued", None, 204), ("sent", None, 204), ("delivered", None, 204)]
    assert all(c["form"]["MessagingServiceSid"] == twilio_api.messaging_service_sid
               for c in twilio_api.callbacks_for(message.sid))

