"""A chat that a counsellor ended is over for the page: the API, the stream and the polling all say so."""
from __future__ import annotations

import json
import threading

import pytest

from bot.console import accounts
from tests.chat.test_api import conv_id, open_chat, say
from tests.chat.test_streams import LIVE
from tests.console.conftest import PASSWORD, Console, wrapped_up


@pytest.fixture
def config(config):
    config["CONSOLE_PASSWORD_HASH"] = "CHEAPEST"  # as the console's own tests: no seconds of hashing
    return config


@pytest.fixture
def ana(app):
    """A counsellor signed in to the console."""
    with app.app_context():
        accounts.add(app.extensions["redis"], "ana", PASSWORD)
    desk = Console(app, "ana")
    assert desk.sign_in().status_code == 302
    return desk


def in_line(client) -> str:
    """A web chat in the queue for a counsellor (safe; a counsellor; yes, here): its token."""
    token = open_chat(client)["token"]
    for text in ("1", "1", "1"):
        assert say(client, token, text).status_code == 200
    return token


def ends(app, desk: Console, token: str) -> None:
    cid = conv_id(app, token)
    assert desk.post(f"/console/claim/{cid}").status_code == 302
    assert desk.post(f"/console/c/{cid}/end", wrapped_up("resolved")).status_code == 302


def frames(stream):
    """The stream's frames as (event, data), one at a time; heartbeats left out."""
    for chunk in stream.response:
        for frame in chunk.decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and line[0] != ":")
            if "event" in fields:
                yield fields["event"], json.loads(fields.get("data", "{}"))


def test_after_the_counsellor_ends_the_chat_takes_no_more_messages_and_the_page_is_told(app, client, ana):
    token = in_line(client)
    assert client.get(f"/chat/api/replies?token={token}").json["open"] is True
    ends(app, ana, token)

    polled = client.get(f"/chat/api/replies?token={token}").json
    assert polled["open"] is False
    assert [r["from"] for r in polled["replies"]] == ["system"]
    assert "This conversation has ended" in polled["replies"][0]["text"]

    cid = conv_id(app, token)
    before = len(app.extensions["store"].transcript(cid))
    late = say(client, token, "hello? are you still there")
    assert late.status_code == 409 and late.json["error"] == "ended"
    assert len(app.extensions["store"].transcript(cid)) == before  # nothing taken up again on this chat

    # A page that reconnects (or opens a stream for the first time since) hears it at once.
    stream = client.get(f"/chat/api/events?token={token}", buffered=False)
    heard = frames(stream)
    assert next(heard)[0] == "live"
    assert next(heard) == ("reply", {"from": "system", "text": polled["replies"][0]["text"]})
    assert next(heard) == ("ended", {})
    stream.close()

    again = open_chat(client)["token"]  # a new chat is a new conversation, open as ever
    assert say(client, again, "1").json["open"] is True


def test_a_stream_open_when_the_counsellor_ends_says_so_and_still_carries_the_closing_message(app, client, ana):
    token = in_line(client)
    cid = conv_id(app, token)
    ana.post(f"/console/claim/{cid}")
    seen = len(app.extensions["store"].transcript(cid)) - 1
    stream = client.get(f"/chat/api/events?token={token}", headers={"Last-Event-ID": str(seen)}, buffered=False)
    assert next(stream.response).startswith(LIVE)

    ending = threading.Timer(0.3, lambda: ana.post(f"/console/c/{cid}/end", wrapped_up("referred")))
    ending.start()
    heard = frames(stream)
    got = [next(heard), next(heard)]
    ending.join()
    stream.close()

    assert ("ended", {}) in got
    assert any(event == "reply" and "This conversation has ended" in data["text"] for event, data in got)


@pytest.mark.parametrize("lang, words", [("en", "he has a gun and says he will kill me"), ("es", "me va a matar, tiene un arma")])
def test_danger_typed_into_an_ended_chat_is_told_911_and_the_counsellors_alerted(app, client, ana, lang, words):
    """The page disables its input once the chat ends, but a message can race the end (or come from a
    script or the terminal chat): danger is answered as danger in whatever state, never with "ended"."""
    token = in_line(client)
    if lang == "es":
        assert say(client, token, "español").status_code == 200
    ends(app, ana, token)
    answer = say(client, token, words)
    assert answer.status_code == 200
    assert any("911" in reply for reply in answer.json["replies"])
    cid = conv_id(app, token)
    alerts = [j for j in app.extensions["queue"].jobs if j.func_name == "workers.alerts.emergency_alert"]
    assert [list(j.args) for j in alerts] == [[cid]]
    assert app.extensions["store"].load(cid).risk == "emergency"  # and "Reply 1" puts them back in line first
    # An ordinary message after it is still refused: the page offers a new chat.
    assert say(client, token, "ok thanks").status_code == 409
