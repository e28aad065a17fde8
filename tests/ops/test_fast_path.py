"""The message path made cheaper (issue 17) still does exactly what it did: what a reviewer tried
to break in each change, kept as tests.

Sealed values (orjson), every answer's headers and request id (one after-hook), a message's day
(worked out once a day), the Twilio signature (over the form's lists), the webhooks' timing, live
events (orjson bytes).
"""
from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from flask import Response, abort, redirect

from bot import create_app
from bot.crypto import Vault
from tests.conftest import Texter
from tests.privacy.test_security import signed_sms

KEY = Fernet.generate_key().decode()


def old_open(vault: Vault, token: bytes) -> object:
    """How the code before orjson (commit 8dcb463, what a rollback runs) opened a sealed value."""
    return json.loads(vault._open(token))


def old_seal(vault: Vault, value: object) -> bytes:
    """How the code before orjson sealed a value (json.JSONEncoder, compact, ASCII escapes)."""
    return vault._seal(json.JSONEncoder(separators=(",", ":")).encode(value).encode())


# Whole numbers orjson cannot write (past 64 bits) or would read back as a float (past its range):
# the json module writes them, and they must come back as the same whole number. 2 ** 70 would not
# show it: as a float it is exact, and equal.
BIG_NUMBERS = [2 ** 64 + 1, -(2 ** 63) - 1, 12345678901234567890123, -98765432109876543210987654321]


@pytest.mark.parametrize("number", BIG_NUMBERS)
def test_a_number_past_64_bits_in_a_sealed_record_opens_as_the_same_whole_number(number):
    vault = Vault(KEY, "h")
    record = {"count": number, "counts": [number, 1]}
    opened = vault.open(vault.seal(record))
    assert opened == record and type(opened["count"]) is int and opened["count"] == number


@pytest.mark.parametrize("number", BIG_NUMBERS)
def test_a_number_past_64_bits_sealed_before_orjson_opens_as_the_same_whole_number(number):
    vault = Vault(KEY, "h")
    opened = vault.open(old_seal(vault, {"count": number}))
    assert type(opened["count"]) is int and opened["count"] == number


ROUND_TRIPS = {
    "a texter's words": {"text": "quiero hablar con alguien 🙏 — ¿sí?", "at": 1796152550.345, "lang": "es"},
    "a lone surrogate from a web page": {"text": "half an emoji \ud83d"},
    "numbers as keys": {1: "one", 2.5: "two and a half", None: "none", False: "no"},
    "nested lists and tuples": {"a": (1, [2, (3, "x")]), "b": []},
    "numbers at the edges of 64 bits": {"max": 2 ** 64 - 1, "min": -(2 ** 63), "big": 2 ** 64 + 7},
    "small and large floats": {"tiny": 5e-324, "small": 0.000123456789012345678, "big": 1e300, "neg": -0.0},
    "empty values": {"s": "", "l": [], "d": {}, "n": None, "f": False},
    "a str subclass and a dict subclass": type("D", (dict,), {})(k=type("S", (str,), {})("v")),
}


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=list(ROUND_TRIPS))
def test_what_is_sealed_now_opens_the_same_now_before_orjson_and_after_a_rollback(value):
    vault = Vault(KEY, "h")
    expected = json.loads(json.dumps(value))  # what the json module always gave back
    sealed = vault.seal(value)
    assert vault.open(sealed) == expected
    assert old_open(vault, sealed) == expected  # a rollback to the code before orjson reads it
    assert vault.open(old_seal(vault, value)) == expected  # a value written before orjson


# -- every response: the security headers once each, the request id once (one after-hook) -------------

PARTNER = "https://partner.example.org"
SECURITY = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "Permissions-Policy")


def built(config, https: bool, embed: bool):
    if https:
        config["PUBLIC_URL"] = "https://help.example.org"
    if embed:
        config["CHAT_EMBED_ORIGINS"] = PARTNER
    app = create_app(config)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a view that fails answers 500, as in production

    # Views a test may add (not the help line's code): one that fails, one that sets the headers itself,
    # one that streams, one that redirects.
    @app.get("/__fails")
    def fails():
        raise RuntimeError("a view that fails")

    @app.get("/__own_headers")
    def own_headers():
        return Response("x", headers={"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "default-src *",
                                      "Cache-Control": "max-age=60", "X-Request-Id": "from-the-view",
                                      "Referrer-Policy": "unsafe-url"})

    @app.get("/__streams")
    def streams():
        return Response((f"data: {n}\n\n" for n in range(3)), mimetype="text/event-stream")

    @app.get("/__too_large")
    def too_large():
        abort(413)

    @app.get("/__elsewhere")
    def elsewhere():
        return redirect("/chat")

    return app


ANSWERS = {
    "chat page": lambda c: c.get("/chat"),
    "chat page HEAD": lambda c: c.head("/chat"),
    "chat page OPTIONS": lambda c: c.options("/chat"),
    "chat api": lambda c: c.post("/chat/api/session", json={"lang": "en"}),
    "chat api refusal": lambda c: c.post("/chat/api/messages", json={}),
    "chat events HEAD": lambda c: c.head("/chat/api/events?token=x"),
    "sms twiml": signed_sms,
    "sms refused": lambda c: c.post("/sms", data={"From": "+16615550123"}),
    "sms GET (405)": lambda c: c.get("/sms"),
    "chat api too large (413)": lambda c: c.post("/chat/api/messages", data=b"x" * (65 * 1024), content_type="application/json"),
    "abort(413)": lambda c: c.get("/__too_large"),
    "view fails (500)": lambda c: c.get("/__fails"),
    "view set its own headers": lambda c: c.get("/__own_headers"),
    "streamed": lambda c: c.get("/__streams"),
    "redirect": lambda c: c.get("/__elsewhere"),
    "console redirect": lambda c: c.get("/console/"),
    "slash redirect": lambda c: c.get("/console"),
    "not found /chat/": lambda c: c.get("/chat/"),
    "sms HEAD": lambda c: c.head("/sms"),
    "sms OPTIONS": lambda c: c.options("/sms"),
    "console sign-in": lambda c: c.get("/console/signin"),
    "healthz": lambda c: c.get("/healthz"),
    "metrics": lambda c: c.get("/metrics"),
    "not found": lambda c: c.get("/nowhere"),
    "not found under /chat": lambda c: c.get("/chat/nowhere"),
    "static file": lambda c: c.get("/static/chat.js"),
    "favicon": lambda c: c.get("/favicon.ico"),
}


@pytest.mark.parametrize("https, embed", [(False, False), (True, True)], ids=["plain", "https+embed"])
@pytest.mark.parametrize("what", ANSWERS)
def test_every_answer_carries_each_security_header_and_a_request_id_exactly_once(config, what, https, embed):
    app = built(config, https, embed)
    try:
        answer = ANSWERS[what](app.test_client())
        headers = answer.headers
        framed = embed and what.startswith("chat ")  # the chat blueprint's answers, as before issue 17
        for name in SECURITY:
            assert len(headers.getlist(name)) == 1, (name, headers.getlist(name))
        csp = headers["Content-Security-Policy"]
        assert csp.endswith(f"frame-ancestors {PARTNER}" if framed else "frame-ancestors 'none'")
        assert headers.getlist("X-Frame-Options") == ([] if framed else ["DENY"])
        assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers.getlist("Strict-Transport-Security") == (["max-age=31536000"] if https else [])
        assert len(headers.getlist("Cache-Control")) == 1
        if what not in ("static file", "favicon", "view set its own headers"):
            assert headers["Cache-Control"] == "no-store"
        # One id, the request's (a view's own X-Request-Id is replaced, as before issue 17, not doubled).
        ids = headers.getlist("X-Request-Id")
        assert len(ids) == 1 and ids[0] != "from-the-view", ids
        answer.close()
    finally:
        app.extensions["redis"].close()


def test_a_request_id_from_the_proxy_comes_back_once_even_on_errors(config):
    app = built(config, False, False)
    client = app.test_client()
    for path in ("/healthz", "/nowhere", "/__fails", "/sms"):
        answer = client.get(path, headers={"X-Request-Id": "abc123def456"})
        assert answer.headers.getlist("X-Request-Id") == ["abc123def456"], path
    app.extensions["redis"].close()


# -- a message's day (the day key worked out once a local day) --------------------------------------


@pytest.mark.parametrize("midnight", ["2026-03-08", "2026-11-01", "2026-12-02"])
def test_a_message_in_the_last_microsecond_before_midnight_counts_on_the_day_its_time_reads(
        app, client, redis_client, midnight):
    """datetime reads a time to the microsecond, rounded: a message half a microsecond before
    midnight reads as the new day, and was always counted there. The day worked out once for the
    day's earlier messages must not keep it on the day before."""
    import math
    from datetime import datetime

    from bot.metrics import day_key

    zone = ZoneInfo(app.config["HELPLINE_TIMEZONE"])
    at = datetime.fromisoformat(midnight).replace(tzinfo=zone).timestamp()
    last = math.nextafter(math.nextafter(at, 0), 0)  # ~0.48 µs before midnight: it reads as midnight
    helpline = app.extensions["helpline"]
    for moment in (at - 60, last):
        helpline.clock = lambda moment=moment: moment
        Texter(client).send("hi")
    reads = datetime.fromtimestamp(last, zone).date()
    assert str(reads) == midnight  # how Python reads that moment (what the count always followed)
    assert int(redis_client.hget(day_key(reads), "messages") or 0) == 1


# -- the Twilio signature (computed over the form's lists) -----------------------------------------


@pytest.mark.parametrize("extra", [
    [("MediaUrl0", "https://a.example/1"), ("MediaUrl0", "https://a.example/2")],  # a name sent twice
    [("MediaUrl0", ""), ("MediaUrl0", "")],  # empty, twice
    [("FromCity", "Bakersfield ñ 🙏"), ("Body2", "")],
    [("getall", "x"), ("keys", "y"), ("items", "z"), ("getlist", "w"), ("__getitem__", "v")],  # named like methods
], ids=["repeated", "empty", "unicode", "method names"])
def test_a_webhook_twilio_signed_is_answered_and_the_same_one_altered_is_refused(client, extra):
    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    from tests.conftest import AUTH_TOKEN

    texter = Texter(client)
    base = texter.form("hi")
    form = MultiDict([*base.items(), *extra])
    # What Twilio signs: every value of every name (the library's own algorithm, over werkzeug's form).
    signature = RequestValidator(AUTH_TOKEN).compute_signature(texter.url, form)
    answer = client.post(texter.url, data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    altered = MultiDict([*base.items(), *extra[:-1], (extra[-1][0], extra[-1][1] + "!")])  # only the last value
    refused = client.post(texter.url, data=altered, headers={"X-Twilio-Signature": signature})
    assert refused.status_code == 403


# -- /metrics: the webhooks a texter waits on, timed once each (one after-hook) ---------------------


def test_each_chat_message_and_each_sms_webhook_is_timed_once_refusals_included_and_nothing_else(client):
    from tests.ops.test_metrics import scrape, value

    texter = Texter(client)
    texter.send("hi")
    assert client.post("/sms", data={"From": texter.number}).status_code == 403  # unsigned: refused, still timed
    token = client.post("/chat/api/session", json={"lang": "en"}).get_json()["token"]
    for n in range(2):
        assert client.post("/chat/api/messages", json={"token": token, "text": "hi", "client_id": f"m{n}"}).status_code == 200
    assert client.post("/chat/api/messages", json={"token": token}).status_code == 400
    client.get("/chat"), client.get("/healthz"), client.get("/nowhere")  # not webhooks: not timed
    metrics = scrape(client)
    assert value(metrics, "helpline_webhook_seconds_count", '{endpoint="sms.inbound"}') == 2
    assert value(metrics, "helpline_webhook_seconds_count", '{endpoint="chat.post_message"}') == 3
    assert sorted(re.findall(r'^helpline_webhook_seconds_count\{endpoint="([^"]+)"\}', metrics, re.M)) == [
        "chat.post_message", "sms.inbound"]


# -- live events (written by orjson) ------------------------------------------------------------------


def test_a_live_event_with_a_counsellors_accented_name_reaches_the_console_and_chat_streams_whole(redis_client):
    from bot import events

    console = events.subscribe(redis_client, events.CONSOLE)
    chat = events.subscribe(redis_client, events.conversation_channel("c1"))
    try:
        pipe = redis_client.pipeline(transaction=True)
        events.publish(pipe, "transferred", "c1", by="Ana María 🙏", to="José")
        pipe.execute()
        for pubsub in (console, chat):
            heard = next(e for e in events.listen(pubsub, seconds=5, heartbeat=5) if e is not None)
            assert {k: heard[k] for k in ("kind", "conv", "by", "to")} == {
                "kind": "transferred", "conv": "c1", "by": "Ana María 🙏", "to": "José"}
            assert isinstance(heard["at"], float)
    finally:
        console.close(), chat.close()


def test_a_chats_live_stream_carries_the_headers_once_and_may_be_framed_by_the_partner(config):
    app = built(config, True, True)
    client = app.test_client()
    token = client.post("/chat/api/session", json={"lang": "en"}).get_json()["token"]
    answer = client.get(f"/chat/api/events?token={token}", buffered=False)
    try:
        assert answer.mimetype == "text/event-stream"
        assert next(answer.response).startswith(b"retry:")  # the stream is open
        headers = answer.headers
        for name in SECURITY + ("Strict-Transport-Security", "Cache-Control", "X-Request-Id"):
            assert len(headers.getlist(name)) == 1, name
        assert headers["Content-Security-Policy"].endswith(f"frame-ancestors {PARTNER}")
        assert "X-Frame-Options" not in headers and headers["Cache-Control"] == "no-store"
    finally:
        answer.close()
        app.extensions["redis"].close()
