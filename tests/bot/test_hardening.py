"""One message must never crash a web process or make a conversation unreadable (issue 13, items 1, 2, 5)."""
from __future__ import annotations

import json

import pytest

from bot.engine import Inbound, valid_text
from tests.chat.test_api import conv_id, open_chat, say
from tests.conftest import Texter, replies_of

SAFETY = "call or text 988"  # the static safety reply's words, in English


def _to_zip_prompt(texter: Texter) -> None:
    for body in ("hi", "1", "5", "1"):  # safe, find help, a place to stay
        texter.send(body)


@pytest.mark.parametrize("digits", ["٩٣٣٠٥", "９３３０５", "۹۳۳۰۵", "𝟗𝟑𝟑𝟎𝟓", "9330５"])
def test_a_zip_code_in_any_script_of_digits_is_read_not_a_crash(texter, digits):
    _to_zip_prompt(texter)
    said = texter.send(digits)  # by signed SMS: a 200 with TwiML (Texter.send asserts it)
    assert "Near 93305" in said


@pytest.mark.parametrize("age, read", [("¹⁶", True), ("①⑥", True), ("16²", False), ("１６", True)])
def test_an_age_in_superscript_or_circled_digits_is_read_or_asked_again_never_a_500(texter, age, read):
    for body in ("hi", "1", "3"):
        texter.send(body)
    said = texter.send(age)  # compatibility forms read as their digits: "¹⁶" is 16, "16²" is 162 (no age)
    assert ("safe place" in said) is read and ("How old are you?" in said) is not read


def _break_the_stored_state(app, cid: str) -> None:
    # A conversation saved under a flow whose state was later renamed: the engine cannot walk it.
    with app.extensions["store"].locked(cid) as session:
        session.conv.state = "a_state_that_no_longer_exists"


def test_an_unexpected_error_on_sms_gets_the_safety_reply_and_the_process_lives(app, texter):
    texter.send("hi")
    _break_the_stored_state(app, app.extensions["helpline"].conversation_id("sms", texter.number))
    said = texter.send("hello?")
    assert "911" in said and SAFETY in said
    assert "911" in texter.send("help")  # and again: answered every time, nothing crashed


def test_an_unexpected_error_in_the_web_chat_is_a_503_with_the_safety_numbers(app, client):
    token = open_chat(client)["token"]
    _break_the_stored_state(app, conv_id(app, token))
    answer = say(client, token, "hello?")
    assert answer.status_code == 503
    assert any("911" in reply for reply in answer.json["replies"])


def test_an_unexpected_error_logs_where_but_never_what_was_written(app, texter, caplog):
    texter.send("hi")
    _break_the_stored_state(app, app.extensions["helpline"].conversation_id("sms", texter.number))
    texter.send("my secret words")
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "unexpected KeyError at" in logged and "secret" not in logged


def test_a_lone_surrogate_never_reaches_the_store(app, client):
    token = open_chat(client)["token"]
    raw = '{"token": "%s", "text": "help \\ud800 me", "client_id": "c1"}' % token
    answer = client.post("/chat/api/messages", data=raw, content_type="application/json")
    assert answer.status_code == 200
    transcript = app.extensions["store"].transcript(conv_id(app, token))
    texts = [entry["text"] for entry in transcript if entry["from"] == "texter"]
    assert texts == ["help  me"]
    json.dumps(transcript).encode("utf-8")  # readable by every page that shows it


def test_text_is_made_valid_at_the_one_edge_every_channel_passes():
    assert Inbound("web", "t", "a\udc80b").text == "ab"
    assert Inbound("sms", "+1", "x" * 5000).text == "x" * 1600
    assert valid_text("Cafe\u0301") == "Café"  # NFC: one spelling of the same words
    assert valid_text(None) == ""
    assert valid_text("\x00\x07hi\x1b[31m\u0085 there\n\tok") == "hi[31m there\n\tok"  # no controls


def test_a_process_killed_holding_the_lock_neither_loses_the_retry_nor_answers_an_old_message_twice(app, client):
    texter = Texter(client, "+16615550123")
    hello = texter.form("hi")
    first = replies_of(texter.post(hello).data)
    cid = app.extensions["helpline"].conversation_id("sms", texter.number)
    safe = texter.form("1")
    app.extensions["store"].begin(cid, safe["MessageSid"])  # took the lock for "1", then died

    again = replies_of(texter.post(hello).data)  # Twilio re-sends an answered message meanwhile
    retried = replies_of(texter.post(safe).data)  # and the killed one, within HELPLINE_LOCK_WAIT

    assert again == first  # its own answer at once, not the static reply
    assert "How can we help" in " ".join(retried)  # processed once the dead process's lock lapsed
    said = [e["text"] for e in app.extensions["store"].transcript(cid) if e["from"] == "texter"]
    assert said == ["hi", "1"]
