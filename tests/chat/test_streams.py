"""Live streams are shared fairly: one a chat, a few an address, and polling for whoever has none."""
from __future__ import annotations

import threading

import pytest

from bot import events
from bot.events import BUSY
from bot.store import entry
from tests.chat.test_api import conv_id, open_chat, say

LIVE = b"retry: 2000\nevent: live\n"


def stream(client, token, address="203.0.113.7"):
    return client.get(f"/chat/api/events?token={token}", buffered=False,
                      headers={"X-Forwarded-For": address})


def counsellor_writes(app, token, text):
    """As bot.outbound.queue_reply does: the entry and its event in one transaction."""
    store, cid = app.extensions["store"], conv_id(app, token)
    pipe = store.redis.pipeline(transaction=True)
    store.append(cid, entry("counsellor", text, 3.0, by="ana"), pipe)
    events.publish(pipe, "reply", cid)
    pipe.execute()


@pytest.fixture
def proxied(app):
    app.config["CHAT_PROXY_HOPS"] = 1  # the address is the one X-Forwarded-For names
    return app


def test_a_page_that_reconnects_ends_its_own_older_stream_at_once(proxied):
    client = proxied.test_client()
    token = open_chat(client)["token"]
    first = stream(client, token)
    assert next(first.response).startswith(LIVE)

    second = stream(client, token)
    assert next(second.response).startswith(LIVE)
    # The ghost ends on the takeover event (within a second), not at its minute nor its next heartbeat.
    ended = threading.Event()
    threading.Thread(target=lambda: (list(first.response), ended.set()), daemon=True).start()
    assert ended.wait(3)
    first.close()

    counsellor_writes(proxied, token, "Still here with you.")
    assert b"Still here with you." in next(second.response)
    second.close()


def test_one_address_holds_at_most_its_share_of_streams_and_the_others_are_told_to_poll(proxied):
    proxied.config["CHAT_STREAMS_PER_ADDRESS"] = 2
    client = proxied.test_client()
    tokens = [open_chat(client)["token"] for _ in range(3)]
    held = [stream(client, token) for token in tokens[:2]]
    assert all(next(s.response).startswith(LIVE) for s in held)

    refused = stream(client, tokens[2])
    assert refused.get_data(as_text=True) == BUSY
    elsewhere = stream(client, tokens[2], address="198.51.100.9")  # another visitor's address is not affected
    assert next(elsewhere.response).startswith(LIVE)
    elsewhere.close()

    held[0].close()  # one page left: its place is free again
    again = stream(client, tokens[2])
    assert next(again.response).startswith(LIVE)
    again.close()
    held[1].close()


def test_a_page_without_a_stream_gets_counsellor_replies_by_polling(app, client):
    token = open_chat(client)["token"]
    say(client, token, "1")
    before = client.get(f"/chat/api/replies?token={token}").json["replies"]
    assert before == []  # the bot's answers came with each POST; only counsellor and system entries here

    counsellor_writes(app, token, "Hi, I'm here. Are you somewhere safe?")
    counsellor_writes(app, token, "Take your time.")
    polled = client.get(f"/chat/api/replies?token={token}").json["replies"]
    assert [r["text"] for r in polled] == ["Hi, I'm here. Are you somewhere safe?", "Take your time."]
    assert {r["from"] for r in polled} == {"counsellor"}  # never the counsellor's name
    after_first = client.get(f"/chat/api/replies?token={token}&after={polled[0]['id']}").json["replies"]
    assert [r["text"] for r in after_first] == ["Take your time."]

    client.post("/chat/api/exit", json={"token": token})
    assert client.get(f"/chat/api/replies?token={token}").status_code == 404  # the page shows the chat ended


def test_polling_is_rate_limited_and_refuses_a_bad_index(client):
    token = open_chat(client)["token"]
    assert client.get(f"/chat/api/replies?token={token}&after=x").status_code == 400
    answers = [client.get(f"/chat/api/replies?token={token}").status_code for _ in range(40)]
    assert answers.count(429) >= 9 and 200 in answers


# -- what an anonymous visitor can make Redis keep ---------------------------------


def test_a_chat_takes_its_total_of_messages_then_asks_for_a_new_chat(app, client):
    app.config["CHAT_MAX_MESSAGES"] = 5
    token = open_chat(client, "es")["token"]
    answers = [say(client, token, "hola") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [409]
    full = answers[-1].json
    assert full["error"] == "chat_full" and "chat nuevo" in full["replies"][0] and "911" in full["replies"][0]
    assert open_chat(client)["token"]  # a new chat starts as ever


def test_new_chats_from_all_addresses_together_have_a_ceiling(proxied):
    proxied.config["CHAT_SESSIONS_PER_MINUTE_ALL"] = 4
    client = proxied.test_client()
    statuses = [client.post("/chat/api/session", json={"lang": "en"},
                            headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(6)]
    assert statuses.count(201) == 4 and statuses.count(429) == 2  # whatever address each came from


def test_past_its_cap_a_conversation_keeps_only_the_start_of_each_long_message(app, client):
    app.extensions["helpline"].transcript_max_chars = 3000
    token = open_chat(client)["token"]
    long = "my boss keeps my papers and " + "x" * 1500
    for _ in range(3):
        assert say(client, token, long).status_code == 200
    assert say(client, token, "short one").status_code == 200
    said = [e["text"] for e in app.extensions["store"].transcript(conv_id(app, token)) if e["from"] == "texter"]
    assert said[:2] == [long, long]  # within the cap: whole
    assert said[2] == long[:160] + " […]"  # past it: the start, marked
    assert said[3] == "short one"


def test_addresses_of_one_ipv6_host_share_one_allowance(proxied):
    proxied.config["CHAT_SESSIONS_PER_HOUR"] = 3
    client = proxied.test_client()

    def open_from(address):
        return client.post("/chat/api/session", json={"lang": "en"}, headers={"X-Forwarded-For": address}).status_code

    # One home or host is given a whole /64: rotating within it is one client.
    assert [open_from(f"2001:db8:0:1::{n:x}") for n in range(5)] == [201, 201, 201, 429, 429]
    assert open_from("2001:db8:0:2::1") == 201  # the next /64 is someone else
    assert open_from("::ffff:198.51.100.9") == 201 and open_from("198.51.100.9") == 201  # the same IPv4 client
    assert [open_from("198.51.100.9") for _ in range(2)] == [201, 429]


@pytest.mark.parametrize("after", ["9223372036854775807", "99999999999999999999", "-2"])
def test_an_index_no_transcript_has_is_a_bad_request_not_an_outage(client, after):
    token = open_chat(client)["token"]
    assert client.get(f"/chat/api/replies?token={token}&after={after}").status_code == 400
    live = client.get(f"/chat/api/events?token={token}", headers={"Last-Event-ID": after}, buffered=False)
    assert next(live.response).startswith(LIVE)  # a stream from the start, not "Redis is gone"
    live.close()


def test_a_head_request_holds_no_stream(proxied):
    proxied.config["CHAT_STREAMS_PER_ADDRESS"] = 1
    client = proxied.test_client()
    token = open_chat(client)["token"]
    for _ in range(3):
        assert client.head(f"/chat/api/events?token={token}", headers={"X-Forwarded-For": "203.0.113.7"}
                           ).status_code == 200
    other = open_chat(client)["token"]
    live = stream(client, other)
    assert next(live.response).startswith(LIVE)  # the address's one place was never taken
    live.close()
