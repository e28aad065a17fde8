"""A quick exit (and a confirmed DELETE) leaves nothing of the conversation anywhere in Redis."""
from __future__ import annotations

import threading
import time

from bot.console.handoff import ACTIVE
from bot.store import entry
from tests.chat.test_api import conv_id, open_chat, say
from tests.console.conftest import Console


def keys(redis_client) -> set[str]:
    return {k.decode() for k in redis_client.keys("*")}


def test_a_quick_exit_after_a_whole_conversation_leaves_nothing_of_it(staff, redis_client, run_jobs):
    app = staff
    client = app.test_client()
    before = keys(redis_client)
    token = open_chat(client)["token"]
    cid = conv_id(app, token)
    for text in ("1", "he has a gun and will kill me", "1"):  # an emergency, then in line
        assert say(client, token, text).status_code == 200
    alice = Console(app, "alice")
    alice.sign_in()
    assert alice.post(f"/console/claim/{cid}").status_code in (200, 302)
    assert alice.post(f"/console/c/{cid}/reply", {"text": "I'm here. Are you safe?"}).status_code in (200, 302)
    run_jobs()  # the alert, the reply's delivery
    grown = keys(redis_client) - before
    assert any(k.startswith("o:") for k in grown) and any(k.startswith("m:") for k in grown)
    assert redis_client.hget(ACTIVE, cid)

    assert client.post("/chat/api/exit", json={"token": token}).json == {"erased": True}

    left = keys(redis_client) - before
    # What may stay: counters without ids, the audit trail's opaque entries, the counsellor's session.
    personal = [k for k in left if cid in k or k.startswith(("o:", "m:", "s:", "cm:", "al:", "st:q:", "c:", "t:"))]
    assert personal == []
    assert redis_client.hget(ACTIVE, cid) is None
    for key in left:  # and no value names the conversation either, but the audit's
        if redis_client.type(key) == b"string" and not key.startswith(("rl:", "audit")):
            assert cid.encode() not in (redis_client.get(key) or b""), key


def test_a_message_racing_its_own_quick_exit_does_not_bring_the_chat_back(app, client, redis_client):
    token = open_chat(client)["token"]
    cid = conv_id(app, token)
    helpline, store = app.extensions["helpline"], app.extensions["store"]
    session = store.begin(cid)  # the exit holds the conversation while the message waits its turn
    answers = []
    sending = threading.Thread(target=lambda: answers.append(say(client, token, "he has a gun, I am at 55 Oak st")))
    sending.start()
    deadline = time.monotonic() + 10  # until the message has passed the "does this chat exist" check
    while not redis_client.keys("cm:*") and time.monotonic() < deadline:
        time.sleep(0.01)
    store.commit(session, None, also=lambda pipe: helpline._erase(pipe, cid))  # what erase() does
    sending.join(10)

    assert answers[0].status_code == 404  # the page shows the chat ended
    assert [k for k in keys(redis_client) if cid in k] == []
    assert app.extensions["queue"].count == 0  # and no alert for a conversation that is gone


def test_an_sms_delete_leaves_no_stored_answer_naming_the_conversation(app, make_texter, redis_client):
    texter = make_texter()
    for text in ("hi", "1", "find help", "shelter", "93301", "DELETE", "yes"):
        texter.send(text)
    cid = app.extensions["helpline"].conversation_id("sms", texter.number)
    assert [k for k in keys(redis_client) if cid in k or k.startswith("m:")] == []


def test_a_reply_or_note_landing_just_after_an_erase_leaves_no_transcript_behind(app, client, redis_client):
    token = open_chat(client)["token"]
    cid = conv_id(app, token)
    store = app.extensions["store"]
    app.extensions["helpline"].erase(cid)  # between the counsellor's page loading it and the reply's write
    store.append(cid, entry("counsellor", "Are you still at the Oak street address?", 1.0, by="ana"))
    assert [k for k in keys(redis_client) if cid in k] == []
