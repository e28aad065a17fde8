"""The texter's webhook has two lanes (bot.sms): FastLane answers a signed, well-formed POST /sms
straight from WSGI; anything it is not sure of goes on to Flask's view with its body intact. A
texter must not be able to tell which lane answered, and a request the fast lane declines must be
answered exactly as Flask answers it."""
from __future__ import annotations

import json

import pytest
from flask import request_started
from werkzeug.test import Client

from tests.conftest import Texter, replies_of, sign


@pytest.fixture
def flask_client(app):
    """A client that skips the fast lane: Flask's own WSGI app, as it was before FastLane wrapped it."""
    return Client(app.wsgi_app.flask, app.response_class)


@pytest.fixture
def flask_requests(app):
    """The requests Flask's request machinery saw (its request_started signal)."""
    seen = []

    def record(sender, **_):
        from flask import request
        seen.append(request.path)

    request_started.connect(record, app)
    yield seen
    request_started.disconnect(record, app)


CONVERSATIONS = [
    ["hi", "2", "my boss keeps my ID", "", "93301", "yes", "he is next to me", "STOP", "START"],
    ["hola", "1", "mi jefe tiene mis papeles", "", "quiero hablar con alguien", "está aquí a mi lado", "PARAR"],
]


def comparable(answer) -> tuple:
    headers = sorted((name, value) for name, value in answer.headers if name not in ("X-Request-Id", "Date"))
    return answer.status_code, headers, answer.data


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=["en", "es"])
def test_a_texter_cannot_tell_which_lane_answered(client, flask_client, flask_requests, conversation):
    fast, slow = Texter(client), Texter(flask_client)
    for text in conversation:
        form = fast.form(text, NumMedia="1" if text == "" else "0")
        a, b = fast.post(form), slow.post(dict(form, From=slow.number))
        assert a.status_code == 200 and replies_of(a.data), text
        assert comparable(a) == comparable(b), text
    retried = fast.post(form)  # Twilio retrying the last webhook: the first answer again, from either lane
    assert comparable(retried) == comparable(a)
    assert flask_requests == ["/sms"] * len(conversation)  # the flask_client's, never the fast lane's


def declined(client, texter: Texter, form: dict, **extra):
    return client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(texter.url, form)}, **extra)


def test_a_signed_form_without_a_sender_reaches_flask_with_its_body(client, flask_requests):
    texter = Texter(client)
    form = {k: v for k, v in texter.form("hi").items() if k != "From"}
    answer = declined(client, texter, form)
    # 400, not 403: Flask read the same body the fast lane had read, and its signature held.
    assert answer.status_code == 400
    assert json.loads(answer.data)["detail"] == "From and MessageSid are required"
    assert flask_requests == ["/sms"]


@pytest.mark.parametrize("case, expected", [
    ("forged signature", 403),
    ("no signature", 403),
    ("not UTF-8", 403),
    ("too large", 413),
    ("wrong method", 405),
])
def test_what_the_fast_lane_declines_flask_answers_as_before(client, flask_requests, case, expected):
    texter = Texter(client)
    form = texter.form("my boss took my passport")
    headers = {"X-Twilio-Signature": sign(texter.url, form)}
    if case == "forged signature":
        answer = client.post("/sms", data=form, headers={"X-Twilio-Signature": "forged"})
    elif case == "no signature":
        answer = client.post("/sms", data=form)
    elif case == "not UTF-8":
        answer = client.post("/sms", data=b"From=%2B16615550100&MessageSid=SM1&Body=\xff\xfe", headers=headers,
                             content_type="application/x-www-form-urlencoded")
    elif case == "too large":
        answer = client.post("/sms", data=dict(form, Body="x" * (65 * 1024)), headers=headers)
    else:
        answer = client.get("/sms", headers=headers)
    assert answer.status_code == expected
    assert answer.headers["Content-Security-Policy"] and answer.headers["Cache-Control"] == "no-store"
    assert "passport" not in answer.get_data(as_text=True)
    assert flask_requests == ["/sms"]


def test_a_signed_multipart_form_is_answered_by_flask(client, flask_requests):
    texter = Texter(client)
    form = texter.form("hi")
    answer = client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(texter.url, form)},
                         content_type="multipart/form-data")
    assert answer.status_code == 200 and replies_of(answer.data)
    assert flask_requests == ["/sms"]


def test_the_fast_lane_keeps_a_proxys_request_id_and_logs_under_it(limited, capfd):
    client = limited.test_client()
    texter = Texter(client)
    for _ in range(3):
        texter.send("hi")
    capfd.readouterr()
    form = texter.form("hi")
    answer = client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(texter.url, form),
                                                     "X-Request-Id": "abc123-def456"})
    assert answer.status_code == 200 and replies_of(answer.data) == []  # past the limit: nothing on the phone
    assert answer.headers["X-Request-Id"] == "abc123-def456"
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    warned = [line for line in lines if "rate limit" in line["msg"]]
    assert warned and warned[0]["request_id"] == "abc123-def456"
    assert texter.number[-7:] not in json.dumps(lines)
    strange = client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(texter.url, form),
                                                      "X-Request-Id": "<script>"})
    assert strange.headers["X-Request-Id"] != "<script>" and len(strange.headers["X-Request-Id"]) == 16


def test_behind_a_proxy_the_signature_is_checked_against_public_url(config):
    from bot import create_app

    config.update(PUBLIC_URL="https://help.example.org")
    app = create_app(config)
    try:
        client = app.test_client()
        texter = Texter(client)
        form = texter.form("hi")
        asked = client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(texter.url, form)})
        assert asked.status_code == 403  # signed for http://localhost: not the URL Twilio was given
        public = "https://help.example.org/sms"
        answer = client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(public, form)})
        assert answer.status_code == 200 and replies_of(answer.data)
        form = texter.form("2")
        query = client.post("/sms?x=1", data=form, headers={"X-Twilio-Signature": sign(public + "?x=1", form)})
        assert query.status_code == 200 and replies_of(query.data)
    finally:
        app.extensions["redis"].close()
