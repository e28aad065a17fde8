"""The store's edges (issue 18, mutation testing): the rate-limit count, a retry answered while another
holds the lock, a connection Redis closed, the transcript's cap and its first entry, a transcript
entry written in a pipeline, and how a malformed stored entry is shown (a time, a sender, a text, a
media count a page can use)."""
from __future__ import annotations

import time

import pytest

from bot.engine import Inbound
from bot.errors import ConversationBusy
from bot.store import LATEST_TIME, TRANSCRIPT_MAX, TRIM_EVERY, ConversationStore, entry, transcript_key
from flows.conversation import Conversation

ADDRESS = "+16615550123"


@pytest.fixture
def store(app):
    return app.extensions["store"]


def new_conversation(store, conv_id: str) -> Conversation:
    session = store.begin(conv_id)
    conv = Conversation(id=conv_id, channel="sms", address=ADDRESS)
    store.commit(session, conv)
    return conv


def test_each_message_counts_one_hit_on_its_senders_counter_which_expires(store, redis_client):
    counted = []
    for n in range(3):
        session = store.begin("conv-count", message_id=f"SM{n}", count=("r:test-window", 60))
        counted.append(session.count)
        store.release(session)

    assert counted == [1, 2, 3]
    assert int(redis_client.get("r:test-window")) == 3
    assert 0 < redis_client.ttl("r:test-window") <= 60


def test_a_retry_of_an_answered_message_gets_its_answer_while_another_holds_the_lock(app, store):
    new_conversation(store, "conv-retry")
    session = store.begin("conv-retry", message_id="SM1")
    store.commit(session, session.conv, outcome={"replies": ["first answer"]}, message_id="SM1")
    impatient = ConversationStore(store.redis, app.extensions["vault"], lock_wait=0.2)
    held = store.begin("conv-retry")  # a console action, or a process that died holding it

    try:
        retry = impatient.begin("conv-retry", message_id="SM1")
    except ConversationBusy:
        pytest.fail("the retry waited for the lock instead of getting its answer")
    finally:
        store.release(held)

    assert retry.previous == {"replies": ["first answer"]}


def test_after_redis_drops_the_stores_connection_the_next_message_is_still_handled(app, store, redis_client):
    helpline = app.extensions["helpline"]
    with app.app_context():
        assert helpline.handle(Inbound("sms", ADDRESS, "hi", message_id="SM1")).replies
        redis_client.client_kill_filter(skipme=True)  # as a restart or an idle timeout would

        outcome = helpline.handle(Inbound("sms", ADDRESS, "1", message_id="SM2"))

    assert outcome.replies and not outcome.duplicate


def test_the_transcript_keeps_the_newest_entries_up_to_its_cap(store, redis_client):
    conv = new_conversation(store, "conv-long")
    last = TRANSCRIPT_MAX + TRIM_EVERY  # a save that trims
    for n in range(1, last + 1):
        session = store.begin("conv-long")
        conv.messages = n
        session.entries = [entry("texter", f"message {n}", 1_700_000_000.0 + n)]
        store.commit(session, conv)

    assert redis_client.llen(transcript_key("conv-long")) == TRANSCRIPT_MAX
    kept = store.transcript("conv-long", 0, 0) + store.transcript("conv-long", -1, -1)
    assert [e["text"] for e in kept] == [f"message {last - TRANSCRIPT_MAX + 1}", f"message {last}"]


def test_a_conversations_transcript_starts_with_its_first_message_and_keeps_each_time(app, store):
    with app.app_context():
        before = time.time()
        outcome = app.extensions["helpline"].handle(Inbound("sms", ADDRESS, "hi", message_id="SM1"))
        after = time.time()

    first = store.transcript(outcome.conv_id)[0]
    assert (first["from"], first["text"]) == ("texter", "hi")
    assert before <= first["at"] <= after


def test_conversations_are_loaded_together_in_order_with_none_for_a_gone_one(store):
    for conv_id in ("conv-a", "conv-b"):
        new_conversation(store, conv_id)

    loaded = store.load_many(["conv-b", "gone", "conv-a"])

    assert [c.id if c else None for c in loaded] == ["conv-b", None, "conv-a"]
    assert store.load_many([]) == []


def test_an_entry_added_in_a_transaction_appears_only_when_it_runs(store, redis_client):
    new_conversation(store, "conv-tx")
    pipe = redis_client.pipeline(transaction=True)

    store.append("conv-tx", entry("counsellor", "I am here.", 1_700_000_000.0, by="ana"), pipe=pipe)

    assert store.transcript("conv-tx") == []
    pipe.execute()
    assert [(e["from"], e["text"]) for e in store.transcript("conv-tx")] == [("counsellor", "I am here.")]


def shown(store, redis_client, vault, stored) -> dict:
    """How a page gets an entry that was stored as `stored` (by an older version, or a bug)."""
    redis_client.delete(transcript_key("conv-odd"))
    redis_client.rpush(transcript_key("conv-odd"), vault.seal(stored))
    [got] = store.transcript("conv-odd")
    return got


@pytest.mark.parametrize("stored, expected", [
    ({"at": 1_700_000_000.5, "from": "texter", "text": "hi"}, {"at": 1_700_000_000.5, "from": "texter", "text": "hi"}),
    ({"at": "1700000000", "from": "bot", "text": "ok"}, {"at": 1_700_000_000.0, "from": "bot", "text": "ok"}),
    ({"at": 0.5, "from": "bot", "text": "ok"}, {"at": 0.5, "from": "bot", "text": "ok"}),
    ({"at": LATEST_TIME, "from": "bot", "text": "ok"}, {"at": LATEST_TIME, "from": "bot", "text": "ok"}),
    ({"from": "texter", "text": "no time"}, {"at": 0.0, "from": "texter", "text": "no time"}),
    ({"at": "soon", "from": "texter", "text": "x"}, {"at": 0.0, "from": "texter", "text": "x"}),
    ({"at": -5, "from": "texter", "text": "x"}, {"at": 0.0, "from": "texter", "text": "x"}),
    ({"at": LATEST_TIME * 2, "from": "texter", "text": "x"}, {"at": 0.0, "from": "texter", "text": "x"}),
    ({"at": 1.0}, {"at": 1.0, "from": "system", "text": ""}),
    ({"at": 1.0, "from": 7, "text": ["a"]}, {"at": 1.0, "from": "system", "text": ""}),
], ids=["as-stored", "numeric-text", "early", "latest", "no-time", "bad-time", "negative", "too-late",
        "no-sender-nor-text", "wrong-types"])
def test_a_stored_entry_is_shown_with_a_usable_time_sender_and_text(store, redis_client, app, stored, expected):
    assert shown(store, redis_client, app.extensions["vault"], stored) == expected


@pytest.mark.parametrize("media, expected", [(0, 0), (2, 2), (100, 100), (101, 0), (-1, 0), ("3", 0), (True, 0),
                                             (2.5, 0)])
def test_a_stored_media_count_is_shown_only_when_it_is_a_sensible_number(store, redis_client, app, media,
                                                                       expected):
    got = shown(store, redis_client, app.extensions["vault"], {"at": 1.0, "from": "texter", "text": "", "media": media})
    assert got["media"] == expected and type(got["media"]) is int


def test_a_stored_entry_loses_lone_surrogates_everywhere_and_keeps_every_real_character(store, redis_client, app):
    stored = {"at": 1.0, "from": "texter", "text": "caf\udce9 ¿estás bien? \ue000",
              "tags": ["ok", "b\udc80ad"], "meta": {"k": "v\ud800"}}

    got = shown(store, redis_client, app.extensions["vault"], stored)

    assert got == {"at": 1.0, "from": "texter", "text": "caf ¿estás bien? \ue000", "tags": ["ok", "bad"],
                   "meta": {"k": "v"}}
