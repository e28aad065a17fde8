"""The queue: order, what a row shows (and never shows), claiming, releasing, transferring."""
from __future__ import annotations

import threading
import time

from bot import audit
from bot.console.handoff import ACTIVE

from .conftest import ask_for_counsellor, wrapped_up


def test_most_urgent_first_then_oldest(console, queued):
    now = time.time()
    normal_old = queued("normal", now - 600)
    high_new = queued("high", now - 10)
    emergency_new = queued("emergency", now - 5)
    normal_new = queued("normal", now - 60)
    high_old = queued("high", now - 300)
    assert console("alice").queue_order() == [emergency_new.id, high_old.id, high_new.id, normal_old.id, normal_new.id]


def test_priority_is_a_word_as_well_as_a_colour(console, queued):
    queued("emergency")
    queued("high")
    queued("normal")
    page = console("alice").get("/console/").get_data(as_text=True)
    for word in ("Emergency", "High", "Normal"):
        assert f'">{word}</span>' in page


def test_a_texter_who_asks_for_a_person_appears_with_reason_and_language(console, texter):
    alice = console("alice")
    ask_for_counsellor(texter)
    live = alice.get("/console/queue/live").get_data(as_text=True)
    assert len(alice.queue_order()) == 1
    assert "asked for a counselor" in live
    assert "English" in live and "SMS" in live


def test_a_row_shows_the_last_two_digits_and_no_message_text(console, make_texter):
    texter = make_texter("+16615550123")
    texter.send("hola")
    texter.send("1")
    texter.send("1")
    texter.send("1")
    live = console("alice").get("/console/queue/live").get_data(as_text=True)
    assert "…23" in live
    assert "5550123" not in live and "0123" not in live
    assert "hola" not in live
    assert "Spanish" in live


def test_triage_and_screening_show_on_the_row(console, queued):
    queued("high", screen_strong_id_held=True, screen_other_job_changed=False)
    store = console("alice")
    live = store.get("/console/queue/live").get_data(as_text=True)
    assert "ID or papers held: yes" in live
    assert "job not as promised: no" in live


def test_tips_say_so(console, queued):
    queued(kind="tip")
    assert "report (tip)" in console("alice").get("/console/queue/live").get_data(as_text=True)


def test_a_long_queue_shows_the_most_urgent_page_and_the_full_count(console, queued):
    now = time.time()
    for n in range(60):
        queued("normal", now - n)
    urgent = queued("emergency", now)
    alice = console("alice")
    order = alice.queue_order()
    assert len(order) == 50 and order[0] == urgent.id
    assert "showing the 50 most urgent" in alice.get("/console/").get_data(as_text=True)
    assert len(alice.get("/console/queue/live?show=200").get_data(as_text=True).split('data-conv="')) - 1 == 61


def test_claim_takes_it_off_the_queue_and_into_my_conversations(console, queued, staff):
    alice = console("alice")
    conv = queued()
    answer = alice.post(f"/console/claim/{conv.id}")
    assert answer.status_code == 302 and answer.headers["Location"] == f"/console/c/{conv.id}"
    stored = staff.extensions["store"].load(conv.id)
    assert (stored.handoff, stored.counsellor) == ("active", "alice")
    assert alice.queue_order() == []
    assert f"/console/c/{conv.id}" in alice.get("/console/queue/live").get_data(as_text=True)
    assert staff.extensions["redis"].hget(ACTIVE, conv.id) == b"alice"


def test_two_counsellors_claiming_at_once_exactly_one_wins(console, queued, staff):
    alice, bob = console("alice"), console("bob")
    conv = queued()
    start = threading.Barrier(2)
    answers = {}

    def claim(who):
        start.wait()
        answers[who.name] = who.post(f"/console/claim/{conv.id}")

    threads = [threading.Thread(target=claim, args=(who,)) for who in (alice, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(a.status_code for a in answers.values())
    assert codes == [302, 409]
    winner = next(name for name, a in answers.items() if a.status_code == 302)
    loser = next(a for a in answers.values() if a.status_code == 409)
    assert "already taken by" in loser.get_data(as_text=True)
    assert staff.extensions["store"].load(conv.id).counsellor == winner
    claims = [e for e in audit.entries(staff.extensions["redis"]) if e["action"] == "claim"]
    assert [e["actor"] for e in claims] == [winner]


def test_claiming_a_taken_conversation_names_who_has_it(console, queued):
    alice, bob = console("alice"), console("bob")
    conv = queued()
    alice.post(f"/console/claim/{conv.id}")
    answer = bob.post(f"/console/claim/{conv.id}")
    assert answer.status_code == 409
    assert "already taken by alice" in answer.get_data(as_text=True)


def test_release_puts_it_back_with_its_priority_and_place(console, queued, staff):
    now = time.time()
    alice = console("alice")
    first = queued("high", now - 300)
    later = queued("high", now - 100)
    alice.post(f"/console/claim/{first.id}")
    assert alice.queue_order() == [later.id]
    answer = alice.post(f"/console/c/{first.id}/release")
    assert answer.status_code == 302
    assert alice.queue_order() == [first.id, later.id]
    stored = staff.extensions["store"].load(first.id)
    assert (stored.handoff, stored.counsellor) == ("waiting", None)
    assert staff.extensions["redis"].hget(ACTIVE, first.id) is None


def test_transfer_to_a_named_counsellor(console, queued, staff):
    alice, bob = console("alice"), console("bob")
    conv = queued()
    alice.post(f"/console/claim/{conv.id}")
    assert alice.post(f"/console/c/{conv.id}/transfer", {"to": "bob"}).status_code == 302
    assert staff.extensions["store"].load(conv.id).counsellor == "bob"
    assert f"/console/c/{conv.id}" in bob.get("/console/queue/live").get_data(as_text=True)
    assert f"/console/c/{conv.id}" not in alice.get("/console/queue/live").get_data(as_text=True)
    assert alice.get(f"/console/c/{conv.id}").status_code == 403  # no longer hers to read
    assert alice.post(f"/console/c/{conv.id}/release").status_code == 403
    entry = audit.entries(staff.extensions["redis"], 1)[0]
    assert (entry["actor"], entry["action"], entry["conv"], entry["detail"]) == ("alice", "transfer", conv.id, "bob")


def test_transfer_to_nobody_is_refused(console, queued, staff):
    alice = console("alice")
    conv = queued()
    alice.post(f"/console/claim/{conv.id}")
    answer = alice.post(f"/console/c/{conv.id}/transfer", {"to": "mallory"})
    assert answer.status_code == 400
    assert "no counselor with that name" in answer.get_data(as_text=True)
    assert staff.extensions["store"].load(conv.id).counsellor == "alice"


def test_only_the_holder_or_a_supervisor_may_release(console, queued, staff):
    alice, sam = console("alice"), console("sam")
    conv = queued()
    alice.post(f"/console/claim/{conv.id}")
    assert sam.post(f"/console/c/{conv.id}/release").status_code == 302
    assert staff.extensions["store"].load(conv.id).handoff == "waiting"


def test_supervisor_sees_waiting_and_active_with_holder(console, queued):
    alice, sam = console("alice"), console("sam")
    held, waiting = queued(), queued("high")
    alice.post(f"/console/claim/{held.id}")
    page = sam.get("/console/all").get_data(as_text=True)
    assert f"/console/c/{held.id}" in page and f"/console/c/{waiting.id}" in page
    assert "<td>alice</td>" in page  # who holds it


def test_unknown_or_erased_conversation_is_404(console, queued, staff):
    alice = console("alice")
    assert alice.get("/console/c/not-an-id").status_code == 404
    conv = queued()
    staff.extensions["redis"].delete(f"c:{conv.id}")
    assert alice.post(f"/console/claim/{conv.id}").status_code == 404


def test_a_second_click_on_claim_opens_the_conversation_instead_of_saying_someone_took_it(console, queued):
    """Found by an outside test: a double click was told "already taken by alice" -- by herself."""
    conv = queued()
    alice = console("alice")
    assert alice.post(f"/console/claim/{conv.id}").status_code == 302
    again = alice.post(f"/console/claim/{conv.id}")
    assert again.status_code == 302 and again.headers["Location"].endswith(f"/console/c/{conv.id}")
    bob = console("bob")
    taken = bob.post(f"/console/claim/{conv.id}")
    assert taken.status_code == 409 and "already taken by alice" in taken.get_data(as_text=True)


def test_claiming_an_ended_conversation_says_it_ended(console, queued):
    conv = queued()
    alice, bob = console("alice"), console("bob")
    assert alice.post(f"/console/claim/{conv.id}").status_code == 302
    assert alice.post(f"/console/c/{conv.id}/end", wrapped_up("resolved")).status_code == 302
    late = bob.post(f"/console/claim/{conv.id}")  # a stale queue page
    assert late.status_code == 409 and "it has ended" in late.get_data(as_text=True)
