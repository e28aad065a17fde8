"""Edges of tests/console/test_handoff_edges.py that the mutation run (issue 18) showed no test noticed."""
from __future__ import annotations

import html
import re
import threading
import time

import pytest

from bot import audit, create_app, followups
from bot.console import accounts, handoff
from bot.console.handoff import ACTIVE
from bot.errors import ConversationBusy
from bot.store import TRANSCRIPT_MAX, entry
from flows.conversation import Conversation

from .conftest import ask_for_counsellor, reply_lost_by_the_carrier, wrapped_up


def waiting_since(app, address: str, asked_at: float, first_message_at: float, priority: str = "high",
                  **slots) -> Conversation:
    """A texter who wrote to the bot first (`first_message_at`) and asked for a person later (`asked_at`):
    their place in line counts from the asking, as the engine's handoff records it (slots["queued_at"])."""
    store, waiting, vault = app.extensions["store"], app.extensions["waiting"], app.extensions["vault"]
    cid = vault.conversation_id("sms", address)
    conv = Conversation(id=cid, channel="sms", address=address, lang="en", risk=priority, handoff="waiting",
                        state="waiting", created_at=first_message_at, updated_at=asked_at,
                        slots={"consent": True, "queued_at": asked_at, "reason": "counsellor", **slots})
    session = store.begin(cid)
    store.commit(session, conv, also=lambda pipe: waiting.add(pipe, cid, priority, asked_at))
    return conv


@pytest.fixture
def held_sms(console, texter):
    """alice holds the SMS conversation of a texter who asked for a person and agreed to be texted."""
    alice = console("alice")
    ask_for_counsellor(texter)
    (conv_id,) = alice.queue_order()
    assert alice.post(f"/console/claim/{conv_id}").status_code == 302
    return alice, conv_id, texter


def heard_on(browser, path: str):
    """An open event stream of `path`, subscribed; next_frame() is the next thing it sends (a heartbeat too)."""
    answer = browser.get(path, buffered=False)
    assert answer.status_code == 200
    chunks = iter(answer.response)
    assert next(chunks).decode().startswith("retry:")
    return answer, lambda: next(chunks).decode()


def as_counsellor(app, name: str):
    return accounts.get(app.extensions["redis"], name)


def unescaped(answer) -> str:
    return html.unescape(answer.get_data(as_text=True))


# -- who may see and hold a conversation -------------------------------------------------------


def test_any_counsellor_may_read_a_waiting_conversation_before_taking_it(console, queued):
    conv = queued()
    bob = console("bob")
    assert bob.get(f"/console/c/{conv.id}").status_code == 200
    console("alice").post(f"/console/claim/{conv.id}")
    assert bob.get(f"/console/c/{conv.id}").status_code == 403


def test_a_tip_that_was_dealt_with_is_no_longer_open_to_every_counsellor(console, queued, staff):
    tip = queued(kind="tip")
    bob = console("bob")
    assert bob.get(f"/console/c/{tip.id}").status_code == 200  # it waits in the queue
    alice = console("alice")
    assert alice.post(f"/console/claim/{tip.id}").status_code == 302
    assert alice.post(f"/console/c/{tip.id}/end", wrapped_up("resolved")).status_code == 302
    assert staff.extensions["store"].load(tip.id).handoff is None
    assert bob.get(f"/console/c/{tip.id}").status_code == 403
    assert console("sam").get(f"/console/c/{tip.id}").status_code == 200


def test_handing_a_conversation_to_its_own_holder_is_refused_with_the_reason(console, queued):
    conv = queued()
    alice = console("alice")
    alice.post(f"/console/claim/{conv.id}")
    answer = alice.post(f"/console/c/{conv.id}/transfer", {"to": "alice"})
    assert answer.status_code == 400
    assert "Not done: alice already holds this conversation." in unescaped(answer)


def test_a_conversation_cannot_be_handed_to_a_counsellor_on_a_break(console, queued, staff):
    conv = queued()
    alice, bob = console("alice"), console("bob")
    alice.post(f"/console/claim/{conv.id}")
    bob.post("/console/break", {"break": "break"})
    answer = alice.post(f"/console/c/{conv.id}/transfer", {"to": "bob"})
    assert answer.status_code == 400
    assert "Not done: bob is on a break." in unescaped(answer)
    assert staff.extensions["store"].load(conv.id).counsellor == "alice"


def test_a_supervisor_taking_a_conversation_over_is_audited_as_a_take_over_from_its_holder(console, queued, staff):
    conv = queued()
    alice, sam = console("alice"), console("sam")
    alice.post(f"/console/claim/{conv.id}")
    assert sam.post(f"/console/c/{conv.id}/take-over").status_code == 302
    assert staff.extensions["store"].load(conv.id).counsellor == "sam"
    entry = audit.entries(staff.extensions["redis"], 1, conv_id=conv.id)[0]
    assert (entry["actor"], entry["action"], entry["detail"]) == ("sam", "take_over", "alice")


def test_the_supervisors_overview_counts_the_emergencies_each_counsellor_took(console, queued):
    alice, sam = console("alice"), console("sam")
    alice.post(f"/console/claim/{queued('emergency').id}")
    alice.post(f"/console/claim/{queued('normal').id}")
    page = sam.get("/console/all").get_data(as_text=True)
    row = re.search(r'<tr data-name="alice">(.*?)</tr>', page, re.S).group(1)
    taken, emergencies = re.findall(r"<td>(\d+)</td>", row)[-2:]
    assert (taken, emergencies) == ("2", "1")


# -- the place in line ---------------------------------------------------------------------------


def test_a_released_conversation_goes_back_to_where_the_texter_asked_and_can_be_taken_again(console, staff):
    now = time.time()
    # The first to ask waits first, though the other texter wrote to the bot long before asking.
    first = waiting_since(staff, "+16615550141", asked_at=now - 300, first_message_at=now - 320)
    later = waiting_since(staff, "+16615550142", asked_at=now - 100, first_message_at=now - 900)
    alice = console("alice")
    assert alice.queue_order() == [first.id, later.id]
    alice.post(f"/console/claim/{later.id}")
    assert alice.post(f"/console/c/{later.id}/release").status_code == 302
    assert alice.queue_order() == [first.id, later.id]
    # Put back by mistake: she takes it again, and holds it.
    assert alice.post(f"/console/claim/{later.id}").status_code == 302
    stored = staff.extensions["store"].load(later.id)
    assert (stored.handoff, stored.counsellor) == ("active", "alice")
    assert alice.queue_order() == [first.id]


class TestAClaimOfABusyConversation:
    """Another process holds the conversation (a texter's message being answered) longer than a claim waits."""

    @pytest.fixture
    def config(self, config):
        config["HELPLINE_LOCK_WAIT"] = 0.3
        return config

    def test_the_texter_keeps_their_place_in_line_and_the_claim_can_be_tried_again(self, console, staff):
        now = time.time()
        first = waiting_since(staff, "+16615550151", asked_at=now - 300, first_message_at=now - 320)
        busy = waiting_since(staff, "+16615550152", asked_at=now - 100, first_message_at=now - 900)
        alice = console("alice")
        store = staff.extensions["store"]
        session = store.begin(busy.id)
        try:
            with staff.app_context(), pytest.raises(ConversationBusy):
                handoff.claim(as_counsellor(staff, "alice"), busy.id)
        finally:
            store.release(session)
        assert store.load(busy.id).handoff == "waiting"
        assert alice.queue_order() == [first.id, busy.id]
        assert staff.extensions["redis"].hget(ACTIVE, busy.id) is None
        # Through the console: a clear "try again", never a crash page, and still nothing changed.
        session = store.begin(busy.id)
        try:
            answer = alice.post(f"/console/claim/{busy.id}")
        finally:
            store.release(session)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
        assert answer.get_json()["detail"] == ("Someone else is changing this conversation right now. "
                                               "Nothing was changed: try again.")
        assert alice.queue_order() == [first.id, busy.id]
        assert staff.extensions["redis"].hget(ACTIVE, busy.id) is None
        assert alice.post(f"/console/claim/{busy.id}").status_code == 302
        stored = store.load(busy.id)
        assert (stored.handoff, stored.counsellor) == ("active", "alice")


def claim_while_the_texter_writes(staff, conv, message) -> list:
    """alice claims `conv` while one of the texter's messages holds its lock; once her claim has taken the
    queue's entry and waits for the lock, `message(session)` saves what that message changed. The claim's
    result (its conversation, or the HandoffError it raised)."""
    store, client = staff.extensions["store"], staff.extensions["redis"]
    session = store.begin(conv.id)
    outcome = []

    def claim():
        with staff.app_context():
            try:
                outcome.append(handoff.claim(as_counsellor(staff, "alice"), conv.id))
            except handoff.HandoffError as exc:
                outcome.append(exc)

    claiming = threading.Thread(target=claim)
    claiming.start()
    deadline = time.monotonic() + 10  # until the claim has taken the queue's entry and waits for the lock
    while client.hget(ACTIVE, conv.id) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.hget(ACTIVE, conv.id) == b"alice"
    message(session)
    claiming.join(10)
    return outcome


def test_a_texter_queued_again_while_a_claim_waited_is_not_left_in_the_queue(console, queued, staff):
    conv = queued("high")
    store, waiting = staff.extensions["store"], staff.extensions["waiting"]
    # That message put the texter in line again (the queue's entry was gone), as the engine's save does.
    claimed = claim_while_the_texter_writes(staff, conv, lambda session: store.commit(
        session, session.conv, also=lambda pipe: waiting.add(pipe, conv.id, "high", conv.created_at)))
    assert claimed and claimed[0].counsellor == "alice"
    assert console("bob").queue_order() == []


def test_a_texter_who_left_the_line_while_a_claim_waited_is_not_taken(console, queued, staff):
    conv = queued("high")
    store, waiting, client = staff.extensions["store"], staff.extensions["waiting"], staff.extensions["redis"]

    def leave(session):  # the texter left the line, as the engine saves a "leave the line" answer
        left = session.conv
        left.handoff = None
        for slot in ("queued_at", "reason"):
            left.slots.pop(slot, None)
        store.commit(session, left, also=lambda pipe: waiting.remove(pipe, conv.id))

    failed = claim_while_the_texter_writes(staff, conv, leave)
    assert failed and isinstance(failed[0], handoff.LeftTheLine), "the claim went through"
    stored = store.load(conv.id)
    assert (stored.handoff, stored.counsellor) == (None, None)
    assert client.hget(ACTIVE, conv.id) is None
    assert console("bob").queue_order() == []


def test_a_texter_queued_again_while_a_claim_waited_is_taken_by_one_counsellor_not_two(console, queued, staff):
    """The texter's message holds the lock; alice's claim takes the queue's entry and waits; the message
    queues them again (they left and asked again, or wrote something urgent) and bob's claim takes that
    entry and waits too. Whichever gets the lock first holds the texter; the other is told who does."""
    conv = queued("high")
    store, waiting, client = staff.extensions["store"], staff.extensions["waiting"], staff.extensions["redis"]
    session = store.begin(conv.id)
    outcomes = {}

    def claim(name):
        with staff.app_context():
            try:
                outcomes[name] = handoff.claim(as_counsellor(staff, name), conv.id).counsellor
            except handoff.AlreadyTaken as exc:
                outcomes[name] = f"taken by {exc.holder}"

    def claiming(name):
        thread = threading.Thread(target=claim, args=(name,))
        thread.start()
        deadline = time.monotonic() + 10  # until its claim has taken the queue's entry and waits for the lock
        while client.hget(ACTIVE, conv.id) != name.encode() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.hget(ACTIVE, conv.id) == name.encode()
        return thread

    threads = [claiming("alice")]
    waiting.add(client, conv.id, "high", time.time())  # what the texter's message writes as it is saved
    threads.append(claiming("bob"))
    store.commit(session, session.conv)
    for thread in threads:
        thread.join(10)

    winner = store.load(conv.id).counsellor
    loser = ({"alice", "bob"} - {winner}).pop()
    assert outcomes == {winner: winner, loser: f"taken by {winner}"}
    assert client.hget(ACTIVE, conv.id) == winner.encode()  # the console names the one who holds them
    assert [e["action"] for e in audit.entries(client, conv_id=conv.id)] == ["claim"]
    assert console("sam").queue_order() == []


# -- what a watching page hears -------------------------------------------------------------------


@pytest.mark.parametrize("change", ["claim", "release", "transfer", "end"])
def test_a_supervisor_watching_a_conversation_sees_at_once_that_it_changed_hands(console, queued, change):
    conv = queued(consent=False)  # no closing message either: what the page hears is the change itself
    alice, sam = console("alice"), console("sam")
    if change != "claim":
        alice.post(f"/console/claim/{conv.id}")
    stream, next_frame = heard_on(sam, f"/console/events?conv={conv.id}")
    if change == "claim":
        assert alice.post(f"/console/claim/{conv.id}").status_code == 302
    elif change == "release":
        assert alice.post(f"/console/c/{conv.id}/release").status_code == 302
    elif change == "transfer":
        assert alice.post(f"/console/c/{conv.id}/transfer", {"to": "bob"}).status_code == 302
    else:
        assert alice.post(f"/console/c/{conv.id}/end", wrapped_up("resolved")).status_code == 302
    frame = next_frame()  # a heartbeat here would mean the page heard nothing
    stream.close()
    assert frame.startswith("event: change\n")


# -- ending ------------------------------------------------------------------------------------------


def test_after_ending_an_emergency_the_counsellor_is_offered_a_pause_and_not_after_other_conversations(console,
                                                                                                       queued):
    alice, bob = console("alice"), console("bob")
    emergency, normal = queued("emergency"), queued("high")
    alice.post(f"/console/claim/{emergency.id}")
    bob.post(f"/console/claim/{normal.id}")
    assert alice.post(f"/console/c/{emergency.id}/end", wrapped_up("referred")).status_code == 302
    assert bob.post(f"/console/c/{normal.id}/end", wrapped_up("resolved")).status_code == 302
    assert 'id="pause-offer"' in alice.get("/console/").get_data(as_text=True)
    assert 'id="pause-offer"' not in bob.get("/console/").get_data(as_text=True)


def test_an_end_form_with_several_mistakes_names_each_of_them(console, queued):
    conv = queued()
    alice = console("alice")
    alice.post(f"/console/claim/{conv.id}")
    answer = alice.post(f"/console/c/{conv.id}/end", wrapped_up("whatever", risk="extreme"))
    assert answer.status_code == 400
    assert "Not ended: choose Risk level at the end from the list; choose Outcome from the list." in unescaped(answer)


def test_a_texter_who_comes_back_after_an_ended_conversation_waits_behind_those_who_asked_before(console,
                                                                                                   make_texter):
    """Found by the mutation run (issue 18): the end left the first contact's time in line on the
    conversation, so a texter asking again weeks later went ahead of everyone who had asked since."""
    back, other = make_texter(), make_texter()
    ask_for_counsellor(back)
    alice = console("alice")
    (back_id,) = alice.queue_order()
    alice.post(f"/console/claim/{back_id}")
    assert alice.post(f"/console/c/{back_id}/end", wrapped_up()).status_code == 302
    ask_for_counsellor(other)
    (other_id,) = alice.queue_order()
    for body in ("hi", "1"):
        back.send(body)
    assert "in line" in back.send("1")
    assert alice.queue_order() == [other_id, back_id]


def test_a_texter_who_comes_back_brings_their_earlier_contact_with_who_ended_it(console, queued, staff):
    conv = queued(address="+16615550161")
    alice = console("alice")
    alice.post(f"/console/claim/{conv.id}")
    alice.post(f"/console/c/{conv.id}/end", wrapped_up("referred"))
    again = queued(address="+16615550161")  # the same number: the same conversation, in line again
    assert again.id == conv.id
    page = unescaped(console("bob").get(f"/console/c/{conv.id}"))
    assert "1 earlier contact" in page
    assert re.search(r'<div class="meta">\d\d:\d\d · alice</div>', page)


def test_a_texter_who_answered_a_check_in_is_not_kept_for_that_counsellor_once_helped(console, queued, staff,
                                                                                    make_texter):
    asked = queued("normal", address="+16615550171", asked_for="alice")  # answered alice's check-in
    pipe = staff.extensions["redis"].pipeline()
    followups.prefer(pipe, asked.id, "alice")
    pipe.execute()
    alice = console("alice")
    assert alice.post(f"/console/claim/{asked.id}").status_code == 302
    assert alice.post(f"/console/c/{asked.id}/end", wrapped_up()).status_code == 302
    other = queued("normal")
    texter = make_texter("+16615550171")  # back another day, asking for a person like anyone
    for body in ("hi", "1"):
        texter.send(body)
    assert "in line" in texter.send("1")
    assert alice.queue_order() == [other.id, asked.id]
    assert "asked for alice" not in alice.get("/console/queue/live").get_data(as_text=True)
    assert alice.post("/console/next").headers["Location"].endswith(f"/console/c/{other.id}")


def test_a_lost_reply_whose_text_has_left_a_long_transcript_is_not_sent_again(held_sms, twilio_api, run_jobs,
                                                                              client, staff):
    alice, conv_id, texter = held_sms
    reply_lost_by_the_carrier(alice, conv_id, texter.number, twilio_api, run_jobs, client)
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True))
    store = staff.extensions["store"]
    pipe = staff.extensions["redis"].pipeline(transaction=False)
    for n in range(TRANSCRIPT_MAX):  # a long conversation since: the oldest entries, that reply's too, fall off
        store.append(conv_id, entry("note", f"note {n}", time.time(), by="alice"), pipe=pipe)
    pipe.execute()
    answer = alice.post(f"/console/c/{conv_id}/retry/{outbound_id}")
    assert answer.status_code == 400
    assert "Not sent again: the text of this reply is no longer kept." in unescaped(answer)
    run_jobs()
    assert [m["Body"] for m in twilio_api.sent if m["To"] == texter.number] == ["Are you safe?"]


class TestTextingNotSetUp:
    """No Twilio settings: SMS replies cannot go out, and the console says what the operator must set."""

    @pytest.fixture
    def app(self, config):
        app = create_app(config)  # the tests' settings: an auth token, no account, no sender
        yield app
        app.extensions["redis"].close()

    def test_sms_replies_are_refused_with_what_to_set_while_a_web_chat_is_answered(self, console, queued, staff):
        sms, web = queued(channel="sms"), queued(channel="web", address="chat-token-of-a-web-texter")
        alice = console("alice")
        for conv in (sms, web):
            assert alice.post(f"/console/claim/{conv.id}").status_code == 302
        why = ("Replies by SMS cannot be sent: texting is not set up on this help line. An operator must set "
               "TWILIO_ACCOUNT_SID and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID, then restart it")
        live = unescaped(alice.get(f"/console/c/{sms.id}/live"))
        assert 'data-can-reply="false"' in live and f'data-why-not="{why}."' in live
        answer = alice.post(f"/console/c/{sms.id}/reply", {"text": "Are you safe?"})
        assert answer.status_code == 409 and f"Not sent: {why}." in unescaped(answer)
        assert 'data-can-reply="true"' in unescaped(alice.get(f"/console/c/{web.id}/live"))
        assert alice.post(f"/console/c/{web.id}/reply", {"text": "I'm here."}).status_code == 302
        assert [item["text"] for item in staff.extensions["store"].transcript(sms.id)
                if item["from"] == "counsellor"] == []
