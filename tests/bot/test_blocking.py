"""A blocked sender on the message path: the national lines at most once a day, never queued; danger,
STOP, HELP and DELETE still work; the block ends on time, survives DELETE, and costs no round trip."""
from __future__ import annotations

import re
import secrets
import time

import pytest
from redis.connection import AbstractConnection

from bot import blocking
from tests.flows.test_conversation import SOURCED_NUMBERS

NOTICE = "We cannot answer your messages for now"
NOTICE_ES = "Por ahora no podemos contestar tus mensajes"
DANGER = "he has a gun and says he will kill me"
DAY = 24 * 3600


class Clock:
    """The engine's clock, moved by the test: a block's end is read against it."""

    def __init__(self):
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def clock(app):
    moved = Clock()
    app.extensions["helpline"].clock = moved
    return moved


@pytest.fixture
def block(app):
    """block(texter) blocks that texter's conversation, as a supervisor does from its page."""

    def put(texter, duration: str = "24h", channel: str = "sms"):
        cid = app.extensions["vault"].conversation_id(channel, texter.number)
        return blocking.block(app.extensions["store"], app.extensions["waiting"], cid, "sam", duration,
                              "threatened the counsellors", time.time())

    return put


def conversation(app, texter):
    return app.extensions["store"].load(app.extensions["vault"].conversation_id("sms", texter.number))


def jobs(app) -> list[str]:
    return [job.func_name for job in app.extensions["queue"].jobs]


def test_a_blocked_sender_gets_the_national_lines_once_and_is_never_queued(app, texter, block):
    texter.send("hi")
    block(texter)

    first = texter.send("i want to talk to a counselor")
    assert first.startswith(NOTICE) and "911" in first and "1-888-373-7888" in first
    numbers = set(re.findall(r"\b\d(?:-\d+)+\b|\b\d{3,}\b", first))
    assert numbers and numbers <= SOURCED_NUMBERS
    # Asking for a person again and again: no second reply, no place in line, no job for the counsellors.
    for text in ("1", "counselor", "answer me"):
        assert texter.send(text) == ""
    assert app.extensions["waiting"].depth() == 0
    assert conversation(app, texter).handoff is None
    assert "workers.alerts.notify_counsellors" not in jobs(app)
    # What they wrote is kept for the supervisors to read, and so is the one line they got.
    said = [(e["from"], e["text"]) for e in app.extensions["store"].transcript(conversation(app, texter).id)]
    assert said[-5:] == [("texter", "i want to talk to a counselor"), ("bot", first), ("texter", "1"),
                         ("texter", "counselor"), ("texter", "answer me")]


def test_the_line_is_sent_again_at_most_once_a_day(app, texter, block, clock):
    texter.send("hi")
    block(texter, "7d")
    assert texter.send("hello?").startswith(NOTICE)
    clock.ahead = DAY - 60
    assert texter.send("hello??") == ""
    clock.ahead = DAY + 1
    assert texter.send("hello???").startswith(NOTICE)
    assert texter.send("hello????") == ""


def test_a_24_hour_block_is_lifted_24_hours_later(app, texter, block, clock):
    texter.send("hi")
    block(texter, "24h")
    assert texter.send("1").startswith(NOTICE)
    clock.ahead = DAY - 60
    assert texter.send("1") == ""
    clock.ahead = DAY + 1
    # Answered as anyone is again: the menu, then a place in line.
    assert "How can we help?" in texter.send("1")
    texter.send("1")
    assert "in line" in texter.send("1")
    assert app.extensions["waiting"].depth() == 1


def test_a_permanent_block_does_not_end(app, texter, block, clock):
    texter.send("hi")
    block(texter, "permanent")
    clock.ahead = 365 * DAY
    assert texter.send("hello").startswith(NOTICE)


def test_delete_does_not_lift_the_block(app, texter, block):
    texter.send("hi")
    block(texter)
    assert "Erase this whole conversation" in texter.send("DELETE")
    assert "We erased this conversation" in texter.send("YES")
    assert conversation(app, texter) is None  # DELETE erased what it promises to

    assert texter.send("hi").startswith(NOTICE)  # not the welcome: still blocked
    assert texter.send("counselor") == ""
    assert app.extensions["waiting"].depth() == 0
    cid = app.extensions["vault"].conversation_id("sms", texter.number)
    assert blocking.of_conversation(app.extensions["redis"], app.extensions["vault"], cid, time.time()) is not None


def test_stop_is_honoured_and_start_and_help_answered(app, texter, block):
    texter.send("hi")
    block(texter)
    assert texter.send("STOP") == "You will not get any more messages from us. Text START to begin again."
    assert conversation(app, texter).opted_out is True
    assert texter.send("hello") == ""  # not even the line: never a word after STOP
    assert "You can text us again" in texter.send("START")
    assert conversation(app, texter).opted_out is False
    help_text = texter.send("HELP")
    assert "call 911" in help_text and "STOP to stop" in help_text and NOTICE not in help_text


def test_an_emergency_from_a_blocked_sender_gets_911_and_alerts(app, texter, block):
    texter.send("hi")
    block(texter)
    assert texter.send("whatever").startswith(NOTICE)  # told already today: danger is answered all the same
    reply = texter.send(DANGER)
    assert reply.startswith("If you are in danger now, call 911.")
    assert "counselor will text you" not in reply  # no promise of a queue they are kept out of
    assert "workers.alerts.emergency_alert" in jobs(app)
    assert conversation(app, texter).risk == "emergency"
    # Danger again, which would put anyone else in line at once: 911 again, and still no queue.
    assert texter.send(DANGER).startswith("If you are in danger now, call 911.")
    assert jobs(app).count("workers.alerts.emergency_alert") == 2  # the worker folds them into one alert
    assert app.extensions["waiting"].depth() == 0
    assert conversation(app, texter).handoff is None and conversation(app, texter).state != "waiting"
    assert "workers.alerts.notify_counsellors" not in jobs(app)


def test_the_line_is_in_the_language_they_write(app, make_texter, block):
    texter = make_texter()
    texter.send("hi")
    block(texter)
    assert texter.send("no hablo bien ingles, necesito hablar con una persona por favor").startswith(NOTICE_ES)


def test_a_blocked_web_chat_gets_the_line_once(app, client):
    token = client.post("/chat/api/session", json={"lang": "en"}).json["token"]
    cid = app.extensions["helpline"].conversation_id("web", token)
    blocking.block(app.extensions["store"], app.extensions["waiting"], cid, "sam", "24h", "abuse", time.time())

    def say(text):
        answer = client.post("/chat/api/messages", json={"token": token, "text": text,
                                                         "client_id": secrets.token_hex(8)})
        assert answer.status_code == 200, answer.json
        return answer.json["replies"]

    [line] = say("you are useless")
    assert line.startswith(NOTICE)
    assert say("talk to a person") == []
    assert app.extensions["waiting"].depth() == 0


def test_a_message_costs_no_extra_round_trip(app, make_texter, block, monkeypatch):
    """The block is read in the message's first round trip (with the lock and the conversation): a
    message still takes two, to load and to save, blocked sender or not."""
    sent = []
    original = AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        sent.append(1)
        return original(self, command, check_health)

    anyone, blocked = make_texter(), make_texter()
    for texter in (anyone, blocked):
        texter.send("hi")
    block(blocked)
    blocked.send("hello")  # the line, and the record noted: a write of its own, once a day

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    for texter, text in ((anyone, "1"), (blocked, "hello again")):
        sent.clear()
        texter.send(text)
        assert len(sent) == 2, (texter is blocked, len(sent))
