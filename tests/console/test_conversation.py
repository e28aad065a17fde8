"""One conversation in the console: transcript, replies, notes, STOP, consent, ending, reveal, audit."""
from __future__ import annotations

import pytest

from bot import audit
from bot.console.handoff import ACTIVE
from bot.store import transcript_key

from .conftest import ask_for_counsellor, wrapped_up


def sends(app) -> int:
    """Send jobs waiting in the RQ queue (the handoff's alert job is not one)."""
    return sum(job.func_name == "workers.sender.send_outbound" for job in app.extensions["replies"].jobs)


@pytest.fixture
def held(console, texter, staff):
    """alice holds the conversation of a texter who asked for a person and agreed to be texted."""
    alice = console("alice")
    ask_for_counsellor(texter)
    (conv_id,) = alice.queue_order()
    assert alice.post(f"/console/claim/{conv_id}").status_code == 302
    return alice, conv_id


def test_the_page_shows_the_whole_transcript_and_no_full_number(held, texter):
    alice, conv_id = held
    page = alice.get(f"/console/c/{conv_id}").get_data(as_text=True)
    assert "You hold this conversation" in page
    assert "You are in line" in page  # the bot's reply, as the texter read it
    assert texter.number not in page and texter.number[2:] not in page
    assert f"…{texter.number[-2:]}" in page


def test_a_reply_is_queued_for_the_texter_and_audited_without_its_text(held, staff):
    alice, conv_id = held
    answer = alice.post(f"/console/c/{conv_id}/reply", {"text": "Hi, I'm Alice. Are you safe right now?"})
    assert answer.status_code == 302
    transcript = staff.extensions["store"].transcript(conv_id)
    assert transcript[-1]["from"] == "counsellor" and transcript[-1]["by"] == "alice"
    assert transcript[-1]["text"] == "Hi, I'm Alice. Are you safe right now?"
    assert sends(staff) == 1  # one send job
    entry = audit.entries(staff.extensions["redis"], 1)[0]
    assert (entry["actor"], entry["action"], entry["conv"]) == ("alice", "reply", conv_id)
    assert "Alice" not in str(entry) and "safe" not in str(entry)


def test_an_empty_reply_is_refused_with_a_reason(held, staff):
    alice, conv_id = held
    answer = alice.post(f"/console/c/{conv_id}/reply", {"text": "   "})
    assert answer.status_code == 400
    assert "write something first" in answer.get_data(as_text=True)
    assert sends(staff) == 0


def test_only_the_holder_can_reply(held, console, staff):
    _, conv_id = held
    bob = console("bob")
    assert bob.post(f"/console/c/{conv_id}/reply", {"text": "hello"}).status_code == 403
    assert sends(staff) == 0


def test_a_note_is_stored_encrypted_shown_to_counsellors_and_never_sent(held, staff, texter):
    alice, conv_id = held
    assert alice.post(f"/console/c/{conv_id}/note", {"text": "Mentions a boss named Rick"}).status_code == 302
    raw = b"".join(staff.extensions["redis"].lrange(transcript_key(conv_id), 0, -1))
    assert b"Rick" not in raw
    assert staff.extensions["store"].transcript(conv_id)[-1] == {
        "at": pytest.approx(staff.extensions["store"].transcript(conv_id)[-1]["at"]),
        "from": "note", "text": "Mentions a boss named Rick", "by": "alice"}
    assert "Note by alice" in alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    assert sends(staff) == 0
    entry = audit.entries(staff.extensions["redis"], 1)[0]
    assert entry["action"] == "note" and "Rick" not in str(entry)


def test_stop_is_shown_and_the_reply_box_refuses(held, texter, staff):
    alice, conv_id = held
    texter.send("STOP")
    live = alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    assert "STOP: the texter opted out" in live
    assert 'data-can-reply="false"' in live
    page = alice.get(f"/console/c/{conv_id}").get_data(as_text=True)
    assert 'name="text" rows="4" maxlength="1600" disabled' in page
    answer = alice.post(f"/console/c/{conv_id}/reply", {"text": "are you there?"})
    assert answer.status_code == 409
    assert "the texter sent STOP" in answer.get_data(as_text=True)
    assert "are you there?" in answer.get_data(as_text=True)  # the draft is kept
    assert sends(staff) == 0


def test_not_safe_to_talk_is_shown_and_nothing_is_sent_until_the_texter_writes_again(held, texter, staff):
    alice, conv_id = held
    assert "We will not text you first" in texter.send("he just walked in cant talk")
    live = alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    assert "Not safe to talk now, the texter said" in live and 'data-can-reply="false"' in live
    assert "read as: not safe now" in live
    answer = alice.post(f"/console/c/{conv_id}/reply", {"text": "are you ok?"})
    assert answer.status_code == 409 and "not safe to talk now" in answer.get_data(as_text=True)
    assert texter.send("ok") == ""  # an acknowledgement keeps the quiet and lights up nothing
    texter.send("he left, i can talk now")
    assert alice.post(f"/console/c/{conv_id}/reply", {"text": "I'm here."}).status_code == 302
    assert sends(staff) == 1


def test_without_consent_the_reply_box_is_disabled_with_the_reason(console, queued, staff):
    alice = console("alice")
    conv = queued(consent=False, kind="tip")
    alice.post(f"/console/claim/{conv.id}")
    page = alice.get(f"/console/c/{conv.id}").get_data(as_text=True)
    assert 'id="why-not" >The texter has not agreed to be texted at this number.</p>' in page
    answer = alice.post(f"/console/c/{conv.id}/reply", {"text": "hello"})
    assert answer.status_code == 409
    assert sends(staff) == 0


def test_canned_replies_come_in_the_texters_language(console, queued):
    alice = console("alice")
    spanish, english = queued(lang="es"), queued(lang="en")
    for conv in (spanish, english):
        alice.post(f"/console/claim/{conv.id}")
    es_page = alice.get(f"/console/c/{spanish.id}").get_data(as_text=True)
    en_page = alice.get(f"/console/c/{english.id}").get_data(as_text=True)
    assert "llama al 1-888-373-7888" in es_page and "call 1-888-373-7888" not in es_page
    assert "call 1-888-373-7888" in en_page


def test_ending_sends_the_closing_message_in_the_texters_language(console, queued, staff):
    alice = console("alice")
    conv = queued(lang="es")
    alice.post(f"/console/claim/{conv.id}")
    answer = alice.post(f"/console/c/{conv.id}/end", wrapped_up("referred"))
    assert answer.status_code == 302
    stored = staff.extensions["store"].load(conv.id)
    assert (stored.handoff, stored.counsellor, stored.slots["outcome"]) == (None, None, "referred")
    closing = staff.extensions["store"].transcript(conv.id)[-1]
    assert closing["by"] == "system" and "911" in closing["text"] and "conversación" in closing["text"]
    assert sends(staff) == 1
    assert staff.extensions["redis"].hget(ACTIVE, conv.id) is None
    entry = audit.entries(staff.extensions["redis"], 1)[0]
    assert (entry["action"], entry["detail"]) == ("end", "referred")


def test_ending_after_stop_sends_nothing(held, texter, staff):
    alice, conv_id = held
    texter.send("STOP")
    assert alice.post(f"/console/c/{conv_id}/end", wrapped_up("no_response")).status_code == 302
    assert staff.extensions["store"].load(conv_id).handoff is None
    assert sends(staff) == 0


def test_ending_needs_an_outcome_from_the_list(held, staff):
    alice, conv_id = held
    answer = alice.post(f"/console/c/{conv_id}/end", wrapped_up("whatever"))
    assert answer.status_code == 400
    assert "choose Outcome from the list" in answer.get_data(as_text=True)
    assert staff.extensions["store"].load(conv_id).handoff == "active"


def test_the_live_events_of_a_conversation_follow_the_same_rule_as_its_page(held, console):
    _, conv_id = held
    assert console("bob").get(f"/console/events?conv={conv_id}").status_code == 403
    assert console("bob").get(f"/console/events?conv={'a' * 32}").status_code == 404


def test_counsellors_cannot_read_what_someone_else_holds_but_supervisors_can(held, console):
    _, conv_id = held
    assert console("bob").get(f"/console/c/{conv_id}").status_code == 403
    assert console("sam").get(f"/console/c/{conv_id}").status_code == 200


def test_reveal_is_for_supervisors_and_audited(held, console, texter, staff):
    _, conv_id = held
    assert console("bob").post(f"/console/c/{conv_id}/reveal").status_code == 403
    page = console("sam").post(f"/console/c/{conv_id}/reveal").get_data(as_text=True)
    assert texter.number in page
    entry = audit.entries(staff.extensions["redis"], 1)[0]
    assert (entry["actor"], entry["action"], entry["conv"]) == ("sam", "reveal", conv_id)


def test_audit_trail_names_who_did_what_and_never_content(held, texter, console, staff):
    alice, conv_id = held
    alice.get(f"/console/c/{conv_id}")
    alice.get(f"/console/c/{conv_id}")  # a reload is not another "open"
    alice.post(f"/console/c/{conv_id}/note", {"text": "secret note words"})
    alice.post(f"/console/c/{conv_id}/reply", {"text": "secret reply words"})
    alice.post(f"/console/c/{conv_id}/release")
    sam = console("sam")
    sam.post(f"/console/claim/{conv_id}")
    sam.post(f"/console/c/{conv_id}/end", wrapped_up("resolved"))
    rows = audit.entries(staff.extensions["redis"], conv_id=conv_id)
    assert [(r["actor"], r["action"]) for r in reversed(rows)] == [
        ("alice", "claim"), ("alice", "open"), ("alice", "note"), ("alice", "reply"), ("alice", "release"),
        ("sam", "claim"), ("sam", "end")]
    assert sam.get(f"/console/audit.csv?conv={conv_id}").status_code == 405  # a GET records nothing
    export = sam.post(f"/console/audit.csv?conv={conv_id}").get_data(as_text=True)
    assert export.splitlines()[0] == "time_utc,actor,action,conversation,detail"
    assert len(export.splitlines()) == 8
    everything = str(audit.entries(staff.extensions["redis"])) + export
    for secret in ("secret", texter.number, texter.number[-4:]):
        assert secret not in everything
    assert audit.entries(staff.extensions["redis"], 1)[0]["action"] == "export"


def test_an_erased_conversation_is_gone_from_the_console(held, texter):
    alice, conv_id = held
    texter.send("DELETE")
    texter.send("YES")
    assert alice.get(f"/console/c/{conv_id}").status_code == 404
    assert f"/console/c/{conv_id}" not in alice.get("/console/queue/live").get_data(as_text=True)


def test_a_queued_tip_opens_and_is_claimed_like_any_waiting_conversation(console, texter):
    alice = console("alice")
    for body in ("hi", "1", "4", "a girl who looks 14 works nights at the motel on union", "done", "2"):
        texter.send(body)
    (conv_id,) = alice.queue_order()
    page = alice.get(f"/console/c/{conv_id}")
    assert page.status_code == 200 and "works nights at the motel" in page.get_data(as_text=True)
    assert alice.post(f"/console/claim/{conv_id}").status_code == 302
    assert "You hold this conversation" in alice.get(f"/console/c/{conv_id}").get_data(as_text=True)
