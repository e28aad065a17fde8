"""The web chat's JSON API with any body at all: not only `text` but the token, the client_id, other
fields, JSON nested deep, bytes that are not JSON. Never a 5xx (the chat answers 503 only when Redis
is down, which it is not here, or when something crashed): a 4xx with {"error"} or the usual answer.

Widening the fuzz beyond `text` found three defects, fixed in bot/chat.py and kept here as
regression tests (test_was_503_*): a lone surrogate in `client_id` or `token`, and JSON nested a few
thousand levels deep, each got 503 "unavailable" (the visitor read "We cannot answer right now"; the
log said "unexpected UnicodeEncodeError at bot/crypto.py" or "unexpected RecursionError").
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import create_app

from .conftest import FUZZ_SECONDS, fuzz_settings
from .harness import Findings, run_for
from .texts import ANY_CHAR, ODD_CHAR, SURROGATES, TEXT, WITH_SURROGATE



@dataclass(frozen=True)
class RealToken:
    """The token of a chat opened for the example, its last `cut` characters replaced by `suffix`."""

    cut: int = 0
    suffix: str = ""

    def of(self, token: str) -> str:
        return token[:len(token) - self.cut] + self.suffix


TOKEN = RealToken()
ENDPOINTS = ("/chat/api/messages", "/chat/api/exit", "/chat/api/session")
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(ANY_CHAR, max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)
ODD_TOKEN = st.builds(RealToken, st.integers(0, 2), st.one_of(st.text(ODD_CHAR, max_size=3), st.sampled_from(SURROGATES)))
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "token": st.one_of(st.just(TOKEN), st.text(ANY_CHAR, max_size=110), JSON_VALUES, ODD_TOKEN),
        "text": st.one_of(TEXT, JSON_VALUES),
        "client_id": st.one_of(st.text(ANY_CHAR, min_size=1, max_size=70), st.text(ODD_CHAR, min_size=1, max_size=70),
                               JSON_VALUES),
        "lang": st.one_of(st.sampled_from(["en", "es", "EN", "fr"]), JSON_VALUES),
        "extra": JSON_VALUES,
    },
)
# A good request with one field made odd: each field meets every kind of value on its own.
GOOD = {"token": TOKEN, "text": "hi", "client_id": "c-1", "lang": "en"}
ODD_VALUE = st.one_of(st.text(ODD_CHAR, min_size=1, max_size=70), st.text(ANY_CHAR, max_size=70), TEXT, JSON_VALUES,
                      WITH_SURROGATE, ODD_TOKEN)
ONE_ODD_FIELD = st.builds(lambda name, value: {**GOOD, name: value}, st.sampled_from([*GOOD, "extra"]), ODD_VALUE)
# What reaches the server: a JSON object (\ud800 escapes for lone surrogates, as JSON allows), JSON
# nested deep, or bytes that are not JSON (or not UTF-8) at all.
BODIES = st.one_of(
    ONE_ODD_FIELD.map(lambda fields: ("fields", fields)),
    FIELDS.map(lambda fields: ("fields", fields)),
    st.tuples(st.sampled_from("[{"), st.integers(1, 30_000)).map(lambda p: ("nested", p)),
    st.binary(max_size=100).map(lambda raw: ("bytes", raw)),
)
EXPECTED = {"/chat/api/messages": {200, 400, 404, 413}, "/chat/api/exit": {200, 400, 404, 413},
            "/chat/api/session": {201, 400, 413}}


def _raw(kind: str, value, token: str) -> bytes:
    if kind == "fields":
        fields = {k: (v.of(token) if isinstance(v, RealToken) else v) for k, v in value.items()}
        return json.dumps(fields).encode("ascii")
    if kind == "nested":
        bracket, depth = value
        return (bracket * depth if bracket == "[" else '{"a":' * depth).encode("ascii")
    return value


def _has_surrogate(value) -> bool:
    if isinstance(value, RealToken):
        value = value.suffix
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_surrogate(v) for v in value)


def describe(kind: str, value) -> str:
    """What is odd about a body, so that a long run tells one failure from another."""
    if kind == "fields":
        odd = sorted(k for k, v in value.items() if _has_surrogate(v))
        return f"a lone surrogate in {', '.join(odd)}" if odd else "a JSON object"
    if kind == "nested":
        return f"JSON nested {'1000 or more' if value[1] >= 1000 else 'under 1000'} levels deep"
    return "bytes"


class ChatBodies:
    def __init__(self, app):
        self.client = app.test_client()

    def post(self, endpoint: str, kind: str, value) -> None:
        opened = self.client.post("/chat/api/session", json={})
        assert opened.status_code == 201, opened.data
        raw = _raw(kind, value, opened.json["token"])
        answer = self.client.post(endpoint, data=raw, content_type="application/json")
        where = f"POST {endpoint}, {describe(kind, value)}"
        assert answer.status_code < 500, f"{where}: HTTP {answer.status_code}: {answer.get_data(as_text=True)[:200]}"
        assert answer.status_code in EXPECTED[endpoint], f"{where}: HTTP {answer.status_code}"
        assert answer.mimetype == "application/json", f"{where}: {answer.mimetype}"
        body = answer.json
        if answer.status_code >= 400:
            assert isinstance(body, dict) and isinstance(body.get("error"), str), f"{where}: {body}"
        elif endpoint == "/chat/api/messages":
            assert set(body) == {"replies", "choices", "open"}, f"{where}: {body}"
        elif endpoint == "/chat/api/exit":
            assert body == {"erased": True}, f"{where}: {body}"
        else:
            assert {"token", "lang", "replies", "choices"} <= set(body), f"{where}: {body}"


# -- the minimal reproducers of what the fuzzing found (red until fixed) -----------------------------


@pytest.fixture
def chat(config):
    return ChatBodies(create_app(config))


# Was a 503 (found by fuzzing): Vault.digest(f"{token}:{client_id}") encodes a lone surrogate.
def test_was_503_a_lone_surrogate_in_client_id_is_not_a_503(chat):
    chat.post("/chat/api/messages", "fields", {"token": TOKEN, "text": "hi", "client_id": "\ud800"})


# Was a 503 (found by fuzzing): Vault.conversation_id("web", token) encodes a lone surrogate.
@pytest.mark.parametrize("endpoint", ["/chat/api/messages", "/chat/api/exit"])
def test_was_503_a_lone_surrogate_in_the_token_is_not_a_503(chat, endpoint):
    chat.post(endpoint, "fields", {"token": RealToken(1, "\ud800"), "text": "hi", "client_id": "c1"})


# Was a 503 (found by fuzzing): json.loads raises RecursionError (not a ValueError) on a body
# nested deeper than the interpreter's recursion limit; 3,000 bytes are enough, MAX_CONTENT_LENGTH is 64 KB.
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_was_503_json_nested_deep_is_a_400_not_a_503(chat, endpoint):
    chat.post(endpoint, "nested", ("[", 3000))


# -- the fuzzing -------------------------------------------------------------------------------------------


def test_any_chat_request_body_gets_a_4xx_or_an_answer(config):
    chat = ChatBodies(create_app(config))

    @fuzz_settings(max_examples=150)
    @given(endpoint=st.sampled_from(ENDPOINTS), body=BODIES)
    def one_request(endpoint, body):
        chat.post(endpoint, *body)

    one_request()


@pytest.mark.fuzz
@pytest.mark.timeout(int(FUZZ_SECONDS * 0.1) + 300)
def test_long_run_chat_bodies(config, capsys):
    chat = ChatBodies(create_app(config))
    findings = Findings()

    @fuzz_settings()
    @given(endpoint=st.sampled_from(ENDPOINTS), body=BODIES)
    def one_request(endpoint, body):
        findings.check(chat.post, endpoint, *body)

    searches = run_for(FUZZ_SECONDS * 0.1, one_request, findings)
    with capsys.disabled():
        print(f"\nchat bodies: {findings.examples} examples in {searches} searches; "
              f"{len(findings.first)} distinct failures")
    assert not findings.first, findings.report()
