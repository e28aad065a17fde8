"""A quick exit (and a confirmed DELETE) leaves nothing of the conversation anywhere in Redis."""
from __future__ import annotations

from bot.console.handoff import ACTIVE
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
