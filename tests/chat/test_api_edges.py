"""The chat API's edges (issue 18, mutation testing): each error answer's code and detail, as docs/api.md
promises ({"error", "detail"}); the 429's code and wait; polling that does not use up the visitor's
messages; and the buttons a visitor gets in each state (unsure meanings, the menu button, none while a
counsellor talks or while erasing asks for a typed YES, none for a free answer)."""
from __future__ import annotations

import re
import time

import pytest

from tests.chat.test_api import TOKEN, conv_id, open_chat, say
from tests.chat.test_ended import ana, frames, in_line  # noqa: F401 - ana is a fixture
from tests.chat.test_streams import LIVE, counsellor_writes
from tests.flows.test_intents import _unsure_line

GONE = {"error": "not_found", "detail": "this chat has ended or never existed"}
NEEDS_JSON = {"error": "bad_request", "detail": "send Content-Type: application/json"}
NOT_OBJECT = {"error": "bad_request", "detail": "the body must be a JSON object"}
NO_BODY = {"error": "bad_request", "detail": "a JSON body is required"}
BAD_TOKEN = {"error": "bad_request", "detail": "token is missing or malformed"}


@pytest.fixture
def config(config):
    config["CONSOLE_PASSWORD_HASH"] = "CHEAPEST"  # for `ana`, as tests/chat/test_ended.py
    return config


@pytest.mark.parametrize("method, path, kwargs, status, answer", [
    ("post", "/chat/api/messages", {}, 400, NO_BODY),
    ("post", "/chat/api/exit", {}, 400, NO_BODY),
    ("post", "/chat/api/messages", {"data": "text=hi", "content_type": "application/x-www-form-urlencoded"}, 400,
     NEEDS_JSON),
    ("post", "/chat/api/messages", {"json": ["a list"]}, 400, NOT_OBJECT),
    ("post", "/chat/api/messages", {"data": "{not json", "content_type": "application/json"}, 400, NOT_OBJECT),
    ("post", "/chat/api/messages", {"json": {"token": "short", "text": "hi", "client_id": "a"}}, 400, BAD_TOKEN),
    ("post", "/chat/api/exit", {"json": {"token": 42}}, 400, BAD_TOKEN),
    ("get", "/chat/api/replies?token=%3Cscript%3E", {}, 400, BAD_TOKEN),
    ("post", "/chat/api/messages", {"json": {"token": TOKEN, "text": "hi", "client_id": "a"}}, 404, GONE),
    ("post", "/chat/api/exit", {"json": {"token": TOKEN}}, 404, GONE),
    ("get", f"/chat/api/replies?token={TOKEN}", {}, 404, GONE),
], ids=["message-no-body", "exit-no-body", "form", "list", "broken-json", "short-token", "number-token",
        "odd-token", "unknown-chat", "exit-unknown-chat", "poll-unknown-chat"])
def test_every_error_answer_has_its_code_and_says_why(client, method, path, kwargs, status, answer):
    got = getattr(client, method)(path, **kwargs)

    assert (got.status_code, got.json) == (status, answer)


@pytest.fixture
def two_a_minute(config):
    config["CHAT_MESSAGES_PER_MINUTE"] = 2
    return config


def _wait_left(window: int = 60) -> int:
    return max(1, int(window - time.time() % window))


def test_a_visitor_past_the_limit_is_told_too_many_requests_and_the_seconds_to_the_next_minute(two_a_minute,
                                                                                               client):
    token = open_chat(client)["token"]
    answers = []
    for n in range(4):  # at most two pass in one minute; four cross at most one minute's end
        before = _wait_left()
        answers.append((say(client, token, "hello", client_id=f"c{n}"), before, _wait_left()))

    limited = [(a, before, after) for a, before, after in answers if a.status_code == 429]
    assert limited, [a.status_code for a, _, _ in answers]
    got, before, after = limited[0]
    assert got.json == {"error": "too_many_requests", "retry_after": got.json["retry_after"]}
    assert got.json["retry_after"] in {before, after}
    assert got.headers["Retry-After"] == str(got.json["retry_after"])


def test_a_page_polling_for_replies_does_not_use_up_the_visitors_messages(two_a_minute, client):
    token = open_chat(client)["token"]
    for _ in range(5):  # a page without a stream polls every few seconds
        assert client.get(f"/chat/api/replies?token={token}&after=-1").status_code == 200

    assert say(client, token, "1").status_code == 200


def test_when_the_bot_is_unsure_the_buttons_are_the_meanings_it_offers_and_a_person(client):
    token = open_chat(client)["token"]
    say(client, token, "1")

    unsure = say(client, token, _unsure_line()).json

    [question] = unsure["replies"]
    offered = re.search(r"Did you mean: 1 (.+), 2 (.+)\? Or reply 3 to talk with a person", question).groups()
    assert unsure["choices"] == [{"send": "1", "label": offered[0][0].upper() + offered[0][1:]},
                                 {"send": "2", "label": offered[1][0].upper() + offered[1][1:]},
                                 {"send": "3", "label": "Talk to a counselor"}]


def test_past_the_opening_question_the_buttons_end_with_the_main_menu(client):
    token = open_chat(client)["token"]
    say(client, token, "1")

    asked = say(client, token, "5").json  # find help near me

    assert asked["choices"] == [
        {"send": "1", "label": "A place to stay"}, {"send": "2", "label": "Youth services"},
        {"send": "3", "label": "Food"}, {"send": "4", "label": "Legal help"}, {"send": "5", "label": "Medical care"},
        {"send": "6", "label": "Someone to talk to"}, {"send": "0", "label": "Main menu"},
    ]


def test_a_question_answered_in_words_offers_no_buttons(client):
    token = open_chat(client)["token"]
    say(client, token, "1")
    say(client, token, "5")

    zip_question = say(client, token, "1").json  # a place to stay: "what is your ZIP code?"

    assert "ZIP" in zip_question["replies"][-1] and zip_question["choices"] == []


def test_erasing_asks_for_a_typed_yes_with_no_button_to_press(app, client):
    token = open_chat(client)["token"]
    say(client, token, "1")

    asked = say(client, token, "DELETE").json

    assert "Reply YES to erase" in asked["replies"][0] and asked["choices"] == []


def test_in_line_the_menu_still_has_its_buttons_and_none_once_a_counsellor_talks(app, client, ana):  # noqa: F811
    token = in_line(client)
    assert say(client, token, "hello?").json["choices"] == []  # in line: nothing to press

    menu = say(client, token, "0").json
    assert [c["send"] for c in menu["choices"]] == ["1", "2", "3", "4", "5", "6"]
    assert app.extensions["store"].load(conv_id(app, token)).handoff == "waiting"

    assert ana.post(f"/console/claim/{conv_id(app, token)}").status_code == 302
    assert say(client, token, "are you there?").json["choices"] == []


def test_an_open_stream_carries_a_counsellors_replies_then_says_ended_and_closes_when_the_chat_is_erased(
        app, client):
    token = open_chat(client)["token"]
    stream = client.get(f"/chat/api/events?token={token}", buffered=False)
    assert next(stream.response).startswith(LIVE)
    heard = frames(stream)

    counsellor_writes(app, token, "Hi, this is Ana.")
    assert next(heard) == ("reply", {"from": "counsellor", "text": "Hi, this is Ana."})
    counsellor_writes(app, token, "Are you safe to chat?")
    assert next(heard) == ("reply", {"from": "counsellor", "text": "Are you safe to chat?"})  # heard live

    assert client.post("/chat/api/exit", json={"token": token}).json == {"erased": True}

    assert list(heard) == [("ended", {})]  # and then the stream is over, not left open
    stream.close()
