"""Ending with the wrap-up form: the contact record it keeps (sealed, erased, under retention), the counts
it adds, and the earlier contacts a returning texter's page shows.

Set CONSOLE_SCREENSHOTS=docs to refresh docs/wrapup-form.png; otherwise it goes to tmp_path.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from playwright.sync_api import expect

from bot.console.wrapup import contacts_key
from bot.metrics import TOTALS
from tests.chat.test_api import conv_id as chat_conv_id
from tests.chat.test_api import open_chat, say
from workers.retention import cap_ttls

from .conftest import PASSWORD, Console, ask_for_counsellor, wrapped_up

SUMMARY = "Staying with an aunt in Delano tonight; will call the hotline tomorrow."


def sign_in(browser, url: str, name: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())  # "End this conversation?"
    page.goto(f"{url}/console/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h2", has_text="Waiting")).to_be_visible()
    return page


def test_a_counsellor_wraps_up_and_the_texter_who_comes_back_brings_the_record(
        twilio_api, live_server, browser, texter, run_jobs, staff, tmp_path):
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    cid = staff.extensions["vault"].conversation_id("sms", texter.number)
    ask_for_counsellor(texter)
    page = sign_in(browser, live_server.url, "alice")
    page.locator(f'#queue tr[data-conv="{cid}"]').get_by_role("button", name="Claim").click()
    expect(page.locator(".status-line")).to_contain_text("You hold this conversation")
    expect(page.locator("#history")).to_have_count(0)  # a first contact: nothing earlier

    form = page.locator("#end")
    for name, value in (("type", "conversation"), ("risk", "high"), ("referral", "national-runaway-safeline"),
                        ("referral", "national-human-trafficking-hotline"), ("safety_plan", "yes"),
                        ("follow_up", "yes"), ("outcome", "referred")):
        form.locator(f"input[name={name}][value={value}]").check()
    form.locator("textarea[name=summary]").fill(SUMMARY)
    form.get_by_role("button", name="End conversation").click()

    # No category: not ended, told why, and nothing the counsellor filled in is lost.
    expect(page.locator("#wrapup-error")).to_contain_text("fill in Categories")
    form = page.locator("#end")
    expect(form.locator("input[name=type][value=conversation]")).to_be_checked()
    expect(form.locator("input[name=referral][value=national-runaway-safeline]")).to_be_checked()
    expect(form.locator("input[name=outcome][value=referred]")).to_be_checked()
    expect(form.locator("textarea[name=summary]")).to_have_value(SUMMARY)
    assert staff.extensions["store"].load(cid).handoff == "active"
    page.screenshot(path=str(shots / "wrapup-form.png"), full_page=True)

    form.locator("input[name=category][value=labour_trafficking]").check()
    form.locator("input[name=category][value=runaway_homeless]").check()
    form.get_by_role("button", name="End conversation").click()
    expect(page.get_by_role("status").filter(has_text="Conversation ended (outcome: referred).")).to_be_visible()
    run_jobs()
    sent = [m["Body"] for m in twilio_api.sent if m.get("To") == texter.number]
    assert len(sent) == 1 and "This conversation has ended" in sent[0]

    # The texter comes back days later and asks for a person again: the same id, the earlier contact shown.
    texter.send("hi again")
    ask_for_counsellor(texter)
    page.goto(f"{live_server.url}/console/")
    page.locator(f'#queue tr[data-conv="{cid}"]').get_by_role("button", name="Claim").click()
    history = page.locator("#history")
    expect(history).to_contain_text("1 earlier contact")
    history.locator("summary").click()
    for shown in ("alice", "Conversation (about themselves)", "Labor trafficking, Runaway or homeless youth", "High",
                  "National Runaway Safeline", "Referred", SUMMARY):
        expect(history).to_contain_text(shown)
    page.close()


def end(console, queued, **answers):
    alice = console("alice")
    conv = queued()
    alice.post(f"/console/claim/{conv.id}")
    answer = alice.post(f"/console/c/{conv.id}/end", wrapped_up("referred", **answers))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return alice, conv.id


def test_a_refused_end_is_a_400_that_keeps_the_answers_and_ends_nothing(console, queued, staff):
    alice = console("alice")
    conv = queued()
    alice.post(f"/console/claim/{conv.id}")
    answer = alice.post(f"/console/c/{conv.id}/end", {"type": "conversation", "outcome": "resolved", "summary": SUMMARY})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "Not ended: fill in Categories, Risk level at the end, Safety plan made, Follow-up wanted." in page
    assert 'value="conversation" checked' in page and SUMMARY in page
    assert staff.extensions["store"].load(conv.id).handoff == "active"
    assert staff.extensions["redis"].exists(contacts_key(conv.id)) == 0


def test_an_outcome_posted_with_spaces_or_after_an_empty_value_ends_and_says_so(console, queued, staff):
    """The form reads the first answer given, trimmed: the page saying what happened reads the same one."""
    alice = console("alice")
    for outcome in (" referred ", ["", "referred"]):
        conv = queued()
        alice.post(f"/console/claim/{conv.id}")
        answer = alice.post(f"/console/c/{conv.id}/end", wrapped_up(outcome=outcome))
        assert answer.status_code == 302
        assert staff.extensions["store"].load(conv.id).slots["outcome"] == "referred"
        assert "Conversation ended (outcome: referred)." in alice.get("/console/").get_data(as_text=True)


def test_a_silent_contact_ends_without_categories_or_risk(console, queued, staff):
    alice = console("alice")
    conv = queued()
    alice.post(f"/console/claim/{conv.id}")
    answer = alice.post(f"/console/c/{conv.id}/end", {"type": "silent", "outcome": "no_response"})
    assert answer.status_code == 302
    assert staff.extensions["store"].load(conv.id).slots["outcome"] == "no_response"


def test_each_answer_is_counted_on_the_day_and_no_words_or_ids_are(console, queued, staff):
    _, cid = end(console, queued, category=["labour_trafficking", "runaway_homeless"],
                 referral="national-runaway-safeline", summary=SUMMARY)
    stats = staff.extensions["stats"]
    today = stats.day(time.time())
    counts = stats.days(today, today)[today]
    assert {k: v for k, v in counts.items() if k.startswith("contact_")} == {
        "contact_type|conversation": 1, "contact_category|labour_trafficking": 1, "contact_category|runaway_homeless": 1,
        "contact_risk|low": 1, "contact_referral|national-runaway-safeline": 1, "contact_safety_plan|no": 1,
        "contact_follow_up|no": 1, "contact_outcome|referred": 1}
    totals = staff.extensions["redis"].hgetall(TOTALS)
    every = b" ".join(list(totals) + [f for f in staff.extensions["redis"].hgetall(f"st:d:{today.isoformat()}")])
    assert b"contact_outcome|referred" in every
    assert b"Delano" not in every and b"summary" not in every and cid.encode() not in every


def test_the_dashboard_still_counts_outcomes(console, queued, staff):
    end(console, queued)
    sam = console("sam")
    data = sam.get("/console/dashboard/data").get_json()
    assert {o["key"]: o["value"] for o in data["today"]["outcomes"]}["referred"] == 1


def test_the_record_is_sealed_and_kept_no_longer_than_the_conversation(console, queued, staff):
    _, cid = end(console, queued, summary=SUMMARY)
    client, store = staff.extensions["redis"], staff.extensions["store"]
    raw = client.lrange(contacts_key(cid), 0, -1)
    assert len(raw) == 1 and b"Delano" not in raw[0] and b"alice" not in raw[0]
    assert store.vault.open(raw[0])["record"]["summary"] == SUMMARY
    assert 0 < client.ttl(contacts_key(cid)) <= store.ttl
    client.persist(contacts_key(cid))  # written by code that forgot its TTL: the purge gives it one
    assert cap_ttls(client, store.ttl) >= 1 and 0 < client.ttl(contacts_key(cid)) <= store.ttl


def test_a_record_older_than_the_retention_is_never_shown_and_dropped_on_the_next_end(console, queued, staff):
    client, store = staff.extensions["redis"], staff.extensions["store"]
    conv = queued()
    old = {"at": time.time() - store.ttl - 60, "by": "bob", "record": {"type": "prank", "outcome": "other"}}
    client.rpush(contacts_key(conv.id), store.vault.seal(old))
    alice = console("alice")
    alice.post(f"/console/claim/{conv.id}")
    assert "earlier contact" not in alice.get(f"/console/c/{conv.id}").get_data(as_text=True)
    assert alice.post(f"/console/c/{conv.id}/end", wrapped_up("resolved")).status_code == 302
    kept = [store.vault.open(r) for r in client.lrange(contacts_key(conv.id), 0, -1)]
    assert [k["record"]["outcome"] for k in kept] == ["resolved"]


def test_a_texter_who_deletes_is_forgotten_with_their_contacts(texter, console, staff):
    cid = staff.extensions["vault"].conversation_id("sms", texter.number)
    ask_for_counsellor(texter)
    alice = console("alice")
    alice.post(f"/console/claim/{cid}")
    assert alice.post(f"/console/c/{cid}/end", wrapped_up("resolved", summary=SUMMARY)).status_code == 302
    assert staff.extensions["redis"].exists(contacts_key(cid))

    texter.send("DELETE")
    assert "erased" in texter.send("yes")
    assert staff.extensions["redis"].exists(contacts_key(cid)) == 0
    ask_for_counsellor(texter)  # back again: a stranger to the help line
    alice.post(f"/console/claim/{cid}")
    page = alice.get(f"/console/c/{cid}").get_data(as_text=True)
    assert "You hold this conversation" in page and "earlier contact" not in page and "Delano" not in page


def test_a_quick_exit_from_the_chat_erases_its_contact_record(staff, redis_client):
    client = staff.test_client()
    token = open_chat(client)["token"]
    cid = chat_conv_id(staff, token)
    for text in ("1", "1", "1"):  # safe; talk to a counselor; yes, here
        assert say(client, token, text).status_code == 200
    alice = Console(staff, "alice")
    alice.sign_in()
    alice.post(f"/console/claim/{cid}")
    assert alice.post(f"/console/c/{cid}/end", wrapped_up("resolved")).status_code == 302
    assert redis_client.exists(contacts_key(cid))
    assert client.post("/chat/api/exit", json={"token": token}).json == {"erased": True}
    assert redis_client.exists(contacts_key(cid)) == 0
