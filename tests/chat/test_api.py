"""The chat's JSON API against a real Redis: sessions, messages through the flow, errors, limits, exit."""
from __future__ import annotations

import json
import secrets
import threading

import pytest

from bot import chat, events
from bot.events import conversation_channel
from bot.store import conv_key, entry, transcript_key
from flows.catalog import LANGUAGES, Catalog
from flows.spec import Flow


def open_chat(client, lang="en"):
    answer = client.post("/chat/api/session", json={"lang": lang})
    assert answer.status_code == 201, answer.json
    return answer.json


def say(client, token, text, client_id=None):
    client_id = client_id or secrets.token_hex(8)
    return client.post("/chat/api/messages", json={"token": token, "text": text, "client_id": client_id})


def conv_id(app, token):
    return app.extensions["helpline"].conversation_id("web", token)


def test_a_new_chat_gets_the_welcome_and_its_answers_as_buttons(app, client, redis_client):
    opened = open_chat(client, "es")

    assert len(opened["token"]) == 43  # secrets.token_urlsafe(32)
    assert "gratis y privado" in opened["replies"][0]
    assert opened["choices"] == [{"send": "1", "label": "Sí, es seguro"}, {"send": "2", "label": "No, ahora no"}]
    conv = app.extensions["store"].load(conv_id(app, opened["token"]))
    assert (conv.channel, conv.lang, conv.state) == ("web", "es", "safe_check")
    # The token is the chat's only key and is not handed to the browser to keep.
    assert "Set-Cookie" not in client.post("/chat/api/session", json={}).headers


def test_the_menu_and_typed_answers_lead_to_a_handoff_on_channel_web(app, client):
    token = open_chat(client)["token"]

    menu = say(client, token, "1").json
    assert menu["choices"][0] == {"send": "1", "label": "Talk to a counselor"}
    assert len(menu["choices"]) == 6  # the menu itself offers no way back to the menu
    asked = say(client, token, "talk to a person").json
    assert [c["label"] for c in asked["choices"]] == ["Yes", "No", "Main menu"]
    queued = say(client, token, "1").json

    assert "You are in line" in queued["replies"][0]
    assert not any("text you" in reply for reply in queued["replies"])  # a web page is not texted
    assert queued["choices"] == [] and queued["open"] is True
    cid = conv_id(app, token)
    assert [w[0] for w in app.extensions["waiting"].waiting()] == [cid]
    conv = app.extensions["store"].load(cid)
    assert (conv.channel, conv.handoff, conv.consent) == ("web", "waiting", True)
    texts = [(e["from"], e["text"]) for e in app.extensions["store"].transcript(cid)]
    assert ("texter", "talk to a person") in texts


@pytest.mark.parametrize("lang, greeting", [
    ("en", "hi"), ("en", "hello"), ("en", "hey there"), ("en", "good morning"),
    ("es", "hola"), ("es", "buenas"), ("es", "buenos días"), ("es", "hola buenas tardes"),
])
def test_a_greeting_first_in_the_web_chat_gets_the_safety_question_again_then_the_quick_start_works(
        app, client, lang, greeting):
    """The quick start's "say hi, then 1, 1, 1": the page has already said hello, and "hi" is not a wrong answer."""
    opened = open_chat(client, lang)
    token = opened["token"]

    hello = say(client, token, greeting).json
    assert hello["replies"] == opened["replies"]  # the welcome's question again, not a guess at a meaning
    assert hello["choices"] == opened["choices"]
    assert app.extensions["store"].load(conv_id(app, token)).state == "safe_check"
    for text in ("1", "1", "1"):
        last = say(client, token, text).json
    assert app.extensions["store"].load(conv_id(app, token)).handoff == "waiting"
    assert last["open"] is True


def test_a_repeated_client_id_is_answered_once(app, client):
    token = open_chat(client)["token"]
    first = say(client, token, "1", client_id="same").json
    again = say(client, token, "1", client_id="same").json

    assert again["replies"] == first["replies"]
    senders = [e["from"] for e in app.extensions["store"].transcript(conv_id(app, token))]
    assert senders.count("texter") == 1


def test_every_answer_in_the_flow_has_a_button_label_in_every_language():
    flow, catalog = Flow.load(), Catalog.load()
    labels = {opt.label for state in flow.states.values() for opt in state.options}
    labels |= {g.id for g in flow.globals if "0" in g.words}
    for lang in LANGUAGES:
        missing = sorted(l for l in labels if not catalog.has(lang, f"chat_choice_{l}"))
        assert missing == [], f"{lang}: add chat_choice_<label> for {missing}"
        missing = sorted(w for w in chat.PAGE_WORDS if not catalog.has(lang, f"chat_{w}"))
        assert missing == [], f"{lang}: add chat_<word> for {missing}"


def test_the_page_speaks_the_chosen_language_and_is_never_cached_or_framed(client):
    page = client.get("/chat?lang=es")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert '<html lang="es">' in html and "Salir rápido" in html and "Escribe un mensaje" in html
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in html  # only /static scripts: the CSP forbids inline ones
    assert client.get("/chat?lang=xx").status_code == 200  # an unknown language falls back to English


def test_partner_origins_may_frame_the_chat(config):
    from bot import create_app

    config["CHAT_EMBED_ORIGINS"] = "https://partner.example.org"
    app = create_app(config)
    try:
        page = app.test_client().get("/chat")
        assert "frame-ancestors https://partner.example.org" in page.headers["Content-Security-Policy"]
        assert "X-Frame-Options" not in page.headers
    finally:
        app.extensions["redis"].close()


TOKEN = "t" * 43


@pytest.mark.parametrize(
    "path, kwargs, status, error",
    [
        ("/chat/api/messages", {}, 400, "bad_request"),
        ("/chat/api/messages", {"data": "text=hi", "content_type": "application/x-www-form-urlencoded"}, 400, "bad_request"),
        ("/chat/api/messages", {"data": "{not json", "content_type": "application/json"}, 400, "bad_request"),
        ("/chat/api/messages", {"json": ["a list"]}, 400, "bad_request"),
        ("/chat/api/messages", {"json": {"text": "hi", "client_id": "a"}}, 400, "bad_request"),
        ("/chat/api/messages", {"json": {"token": "short", "text": "hi", "client_id": "a"}}, 400, "bad_request"),
        ("/chat/api/messages", {"json": {"token": 42, "text": "hi", "client_id": "a"}}, 400, "bad_request"),
        ("/chat/api/messages", {"json": {"token": TOKEN, "client_id": "a"}}, 400, "bad_request"),
        ("/chat/api/messages", {"json": {"token": TOKEN, "text": "   ", "client_id": "a"}}, 400, "bad_request"),
        ("/chat/api/messages", {"json": {"token": TOKEN, "text": "x" * 1601, "client_id": "a"}}, 400, "too_long"),
        ("/chat/api/messages", {"json": {"token": TOKEN, "text": "hi"}}, 400, "bad_request"),
        ("/chat/api/messages", {"json": {"token": TOKEN, "text": "hi", "client_id": "a" * 65}}, 400, "bad_request"),
        ("/chat/api/messages", {"json": {"token": TOKEN, "text": "hi", "client_id": "a"}}, 404, "not_found"),
        ("/chat/api/session", {"json": {"lang": "fr"}}, 400, "bad_request"),
        ("/chat/api/session", {"json": "es"}, 400, "bad_request"),
        ("/chat/api/exit", {"json": {"token": TOKEN}}, 404, "not_found"),
        ("/chat/api/exit", {"json": {}}, 400, "bad_request"),
    ],
)
def test_bad_requests_get_a_clear_json_error(client, path, kwargs, status, error):
    answer = client.post(path, **kwargs)

    assert answer.status_code == status
    assert answer.json["error"] == error


def test_bad_stream_requests_get_a_clear_json_error(client):
    assert client.get("/chat/api/events").status_code == 400
    missing = client.get(f"/chat/api/events?token={TOKEN}")
    assert missing.status_code == 404 and missing.json["error"] == "not_found"
    assert client.get("/chat/api/messages").status_code == 405


def test_a_chat_sending_too_fast_is_told_when_to_try_again(config):
    from bot import create_app

    config["CHAT_MESSAGES_PER_MINUTE"] = 2
    app = create_app(config)
    client = app.test_client()
    try:
        token = open_chat(client)["token"]
        # Within one window at most 2 pass; 5 tries cross at most one window edge.
        answers = [say(client, token, "hello", client_id=f"c{n}") for n in range(5)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited, [a.status_code for a in answers]
        assert {a.status_code for a in answers} <= {200, 429}
        assert 1 <= limited[0].json["retry_after"] <= 60
        assert limited[0].headers["Retry-After"] == str(limited[0].json["retry_after"])
    finally:
        app.extensions["redis"].close()


def test_one_address_cannot_open_endless_chats(config):
    from bot import create_app

    config["CHAT_SESSIONS_PER_HOUR"] = 2
    app = create_app(config)
    client = app.test_client()
    try:
        answers = [client.post("/chat/api/session", json={}) for _ in range(5)]
        assert [a.status_code for a in answers].count(429) >= 1
        assert answers[-1].status_code == 429 and answers[-1].json["retry_after"] >= 1
        # Another address (through a trusted proxy) is not held back by the first one's chats.
        app.config["CHAT_PROXY_HOPS"] = 1
        other = client.post("/chat/api/session", json={}, headers={"X-Forwarded-For": "203.0.113.9"})
        assert other.status_code == 201
    finally:
        app.extensions["redis"].close()


def test_quick_exit_erases_the_conversation_and_its_place_in_line(app, client, redis_client):
    token = open_chat(client)["token"]
    for text in ("1", "1", "1"):
        say(client, token, text)
    cid = conv_id(app, token)
    assert redis_client.exists(conv_key(cid), transcript_key(cid)) == 2
    watcher = redis_client.pubsub(ignore_subscribe_messages=True)
    watcher.subscribe(conversation_channel(cid))

    answer = client.post("/chat/api/exit", json={"token": token})

    assert answer.status_code == 200 and answer.json == {"erased": True}
    assert redis_client.exists(conv_key(cid), transcript_key(cid)) == 0
    assert app.extensions["waiting"].position(cid) is None
    heard = [watcher.get_message(timeout=1) for _ in range(3)]  # the first answers the subscribe
    assert [json.loads(m["data"])["kind"] for m in heard if m] == ["erased"]
    watcher.close()
    assert say(client, token, "hello").status_code == 404


def test_erasing_by_text_closes_the_chat(app, client):
    token = open_chat(client)["token"]
    say(client, token, "delete")
    erased = say(client, token, "yes").json

    assert erased["open"] is False and erased["choices"] == []
    assert say(client, token, "hi").status_code == 404


def test_the_stream_sends_counsellor_replies_after_the_last_one_seen(app, client):
    token = open_chat(client)["token"]
    say(client, token, "1")
    cid = conv_id(app, token)
    store = app.extensions["store"]
    store.append(cid, entry("counsellor", "Hi, I'm Ana. I'm here with you.", 1.0, by="ana"))
    store.append(cid, entry("counsellor", "Are you somewhere safe?", 2.0, by="ana"))
    first_index = len(store.transcript(cid)) - 2

    stream = client.get(f"/chat/api/events?token={token}", headers={"Last-Event-ID": str(first_index)},
                        buffered=False)
    assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    chunks = stream.response
    assert next(chunks).startswith(b"retry:")
    frame = next(chunks).decode()
    stream.close()

    assert frame.startswith(f"id: {first_index + 1}\nevent: reply\n")
    data = json.loads(frame.split("data: ", 1)[1])
    assert data == {"from": "counsellor", "text": "Are you somewhere safe?"}  # no counsellor name


def test_a_reply_written_while_the_stream_is_open_arrives_on_that_same_stream(app, client):
    token = open_chat(client)["token"]
    say(client, token, "1")
    cid = conv_id(app, token)
    store = app.extensions["store"]
    seen = len(store.transcript(cid)) - 1
    stream = client.get(f"/chat/api/events?token={token}", headers={"Last-Event-ID": str(seen)}, buffered=False)
    chunks = stream.response
    assert next(chunks).startswith(b"retry:")

    def reply():  # as bot.outbound.queue_reply writes one, while the stream waits for events
        pipe = store.redis.pipeline(transaction=True)
        store.append(cid, entry("counsellor", "I'm here. Take your time.", 3.0, by="ana"), pipe)
        events.publish(pipe, "reply", cid)
        pipe.execute()

    writer = threading.Timer(0.3, reply)
    writer.start()
    frame = next(chunks).decode()  # the same connection: no reconnect needed to hear it
    writer.join()
    stream.close()
    assert frame.startswith(f"id: {seen + 1}\nevent: reply\n") and "Take your time" in frame


def test_without_redis_the_chat_answers_503_with_the_safety_numbers(config, tmp_path):
    from bot import create_app

    config["REDIS_URL"] = f"unix://{tmp_path}/nobody-listens.sock"
    app = create_app(config)
    client = app.test_client()
    try:
        opened = client.post("/chat/api/session", json={"lang": "es"})
        sent = client.post("/chat/api/messages", json={"token": TOKEN, "text": "hola", "client_id": "a"})
        left = client.post("/chat/api/exit", json={"token": TOKEN})
    finally:
        app.extensions["redis"].close()

    for answer in (opened, sent, left):
        assert answer.status_code == 503
        assert any("911" in reply for reply in answer.json["replies"])


def test_a_chat_opened_and_never_answered_is_kept_a_day_and_one_in_use_for_the_retention(app, client, redis_client):
    token = open_chat(client)["token"]
    cid = conv_id(app, token)
    day, retention = 24 * 3600, app.config["HELPLINE_RETENTION_DAYS"] * 86400

    assert 0 < redis_client.ttl(conv_key(cid)) <= day and 0 < redis_client.ttl(transcript_key(cid)) <= day
    say(client, token, "1")
    assert redis_client.ttl(conv_key(cid)) > day and redis_client.ttl(transcript_key(cid)) > day
    assert redis_client.ttl(conv_key(cid)) <= retention
