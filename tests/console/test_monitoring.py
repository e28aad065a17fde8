"""Supervisors watch live conversations: the monitoring list, read-only monitor mode, whispers,
taking over, and every conversation page showing who else has it open.

Set CONSOLE_SCREENSHOTS=docs to refresh docs/monitor.png; otherwise it goes to tmp_path.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

from playwright.sync_api import expect

from bot import audit
from bot.console import presence
from bot.store import entry
from tests.chat.test_api import conv_id as web_conv_id
from tests.chat.test_api import open_chat, say

from .conftest import PASSWORD, ask_for_counsellor

WHISPER = "Ask whether they can get to the bus station before dark"


def held_by(console, queued, name: str, **kwargs):
    """A waiting conversation, claimed by `name` through the queue page; returns (conversation, their console)."""
    conv = queued(**kwargs)
    holder = console(name)
    assert holder.post(f"/console/claim/{conv.id}").status_code == 302
    return conv, holder


def audited(app, actor: str, action: str, conv_id: str) -> list[dict]:
    return [row for row in audit.entries(app.extensions["redis"], conv_id=conv_id)
            if row["actor"] == actor and row["action"] == action]


# -- who may ---------------------------------------------------------------------------


def test_counsellors_who_are_not_supervisors_get_403_and_change_nothing(staff, console, queued):
    conv, alice = held_by(console, queued, "alice")
    bob = console("bob")
    for who in (alice, bob):  # not even the counsellor holding it
        assert who.get("/console/all/active").status_code == 403
        assert who.get(f"/console/c/{conv.id}/monitor").status_code == 403
        assert who.get(f"/console/c/{conv.id}/monitor/live").status_code == 403
        assert who.post(f"/console/c/{conv.id}/whisper", {"text": WHISPER}).status_code == 403
        assert who.post(f"/console/c/{conv.id}/take-over").status_code == 403
    store = staff.extensions["store"]
    assert store.load(conv.id).counsellor == "alice"
    assert WHISPER not in str(store.transcript(conv.id))
    assert not audited(staff, "alice", "monitor", conv.id) and not audited(staff, "bob", "monitor", conv.id)


# -- the list ----------------------------------------------------------------------------


def test_the_list_puts_the_riskiest_first_then_the_texter_waiting_longest_for_an_answer(staff, console, queued):
    store, now = staff.extensions["store"], time.time()

    def held(name, priority, texter_ago, reply_ago=None):
        conv, _ = held_by(console, queued, name, priority=priority, since=now - 3600)
        store.append(conv.id, entry("texter", "are you there", now - texter_ago))
        if reply_ago is not None:
            store.append(conv.id, entry("counsellor", "I'm here", now - reply_ago, by=name))
        return conv.id

    answered = held("alice", "normal", 900, reply_ago=60)  # waited longest, but has an answer
    waiting_long = held("bob", "normal", 600)
    waiting_short = held("alice", "normal", 120, reply_ago=300)
    high = held("bob", "high", 30, reply_ago=20)
    emergency = held("alice", "emergency", 5, reply_ago=1)

    page = console("sam").get("/console/all").get_data(as_text=True)
    listed = page[page.index("<h2>Active"):page.index("<h2>Waiting")]
    assert re.findall(r'data-conv="([a-z2-7]+)"', listed) == [emergency, high, waiting_long, waiting_short, answered]
    row = listed[listed.index(f'data-conv="{waiting_long}"'):]
    row = row[:row.index("</tr>")]
    assert "10 min" in row and "unanswered" in row and "no reply yet" in row and "bob" in row
    assert f"/console/c/{waiting_long}/monitor" in row
    answered_row = listed[listed.index(f'data-conv="{answered}"'):]
    assert "unanswered" not in answered_row[:answered_row.index("</tr>")]


# -- monitor mode, whisper, take-over (without a browser: what the server does) ----------


def test_monitor_mode_is_read_only_and_audited(staff, console, queued):
    conv, _ = held_by(console, queued, "alice")
    sam = console("sam")

    page = sam.get(f"/console/c/{conv.id}/monitor")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Monitoring — you are not holding this conversation" in html
    for control in ('id="reply-text"', "End conversation", "Put back in the queue", 'id="note-text"'):
        assert control not in html
    assert f"/console/c/{conv.id}/monitor/live" in html  # its live region stays read-only as it refreshes
    assert "Retry" not in sam.get(f"/console/c/{conv.id}/monitor/live").get_data(as_text=True)
    assert [row["conv"] for row in audited(staff, "sam", "monitor", conv.id)] == [conv.id]
    assert console("sam").get("/console/c/" + "a" * 32 + "/monitor").status_code == 404


def test_a_whisper_never_reaches_a_web_texter(staff, console):
    client = staff.test_client()
    token = open_chat(client)["token"]
    for text in ("1", "1", "1"):  # in line for a counsellor
        say(client, token, text)
    cid = web_conv_id(staff, token)
    alice = console("alice")
    assert alice.post(f"/console/claim/{cid}").status_code == 302
    sam = console("sam")

    answer = sam.post(f"/console/c/{cid}/whisper", {"text": WHISPER})
    assert answer.status_code == 302 and answer.location.endswith(f"/console/c/{cid}/monitor")
    assert alice.post(f"/console/c/{cid}/reply", {"text": "Hi, I'm Alice."}).status_code == 302

    sent = client.get(f"/chat/api/replies?token={token}").json["replies"]
    assert [reply["text"] for reply in sent] == ["Hi, I'm Alice."]
    shown = alice.get(f"/console/c/{cid}/live").get_data(as_text=True)
    assert "Whisper from sam (supervisor)" in shown and WHISPER in shown
    assert len(audited(staff, "sam", "whisper", cid)) == 1


def test_a_whisper_needs_words_and_someone_else_holding_the_conversation(staff, console, queued):
    waiting = queued()
    sam = console("sam")
    answer = sam.post(f"/console/c/{waiting.id}/whisper", {"text": WHISPER})
    assert answer.status_code == 409
    html = answer.get_data(as_text=True)
    assert "Whisper not sent: no other counselor holds this conversation now." in html
    assert "Monitoring — you are not holding this conversation" in html
    assert sam.post(f"/console/c/{waiting.id}/take-over").status_code == 409

    conv, _ = held_by(console, queued, "alice")
    answer = sam.post(f"/console/c/{conv.id}/whisper", {"text": "x" * 1601})
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "at most 1600 characters" in html and "x" * 1601 in html  # back in monitor mode, the draft kept
    assert 'id="whisper-text"' in html and 'id="reply-text"' not in html
    assert not audited(staff, "sam", "whisper", conv.id)


def test_taking_over_moves_the_conversation_and_tells_only_the_counsellor_who_had_it(staff, console, queued):
    conv, alice = held_by(console, queued, "alice")
    sam = console("sam")

    answer = sam.post(f"/console/c/{conv.id}/take-over")
    assert answer.status_code == 302 and answer.location.endswith(f"/console/c/{conv.id}")
    assert staff.extensions["store"].load(conv.id).counsellor == "sam"
    assert "You hold this conversation" in sam.get(answer.location).get_data(as_text=True)
    assert [row["detail"] for row in audited(staff, "sam", "take_over", conv.id)] == ["alice"]

    lost = alice.get(f"/console/c/{conv.id}/live")
    assert lost.status_code == 403 and "Taken over by sam" in lost.get_data(as_text=True)
    never_had_it = console("bob").get(f"/console/c/{conv.id}")
    assert never_had_it.status_code == 403 and "Taken over" not in never_had_it.get_data(as_text=True)
    assert sam.post(f"/console/c/{conv.id}/take-over").status_code == 409  # it is sam's already


# -- who else is viewing ------------------------------------------------------------------


def test_viewers_are_kept_by_conversation_id_and_expire(staff, console, queued, redis_client):
    conv, alice = held_by(console, queued, "alice")
    sam = console("sam")
    key = presence.viewing_key(conv.id)

    def viewers(who, path=f"/console/c/{conv.id}/live") -> str:
        return re.search(r'<p class="viewers" id="viewers">(.*?)</p>', who.get(path).get_data(as_text=True),
                         re.S).group(1)

    assert "Nobody else is viewing" in viewers(sam, f"/console/c/{conv.id}/monitor")  # alice's page is not open
    assert "sam (supervisor)" in viewers(alice)
    assert "alice" in viewers(sam, f"/console/c/{conv.id}/monitor/live")
    assert [k.decode() for k in redis_client.keys("console:viewing:*")] == [f"console:viewing:{conv.id}"]
    assert 0 < redis_client.ttl(key) <= presence.VIEWING_SECONDS  # a killed process leaves nothing for ever

    # A tab that stopped asking (closed without a word) is gone after VIEWING_SECONDS.
    redis_client.zadd(key, {"sam": time.time() - presence.VIEWING_SECONDS - 1})
    assert "Nobody else is viewing" in viewers(alice)
    redis_client.zadd(key, {"sam": time.time() - presence.VIEWING_SECONDS + 5})
    assert "sam (supervisor)" in viewers(alice)

    # A page that says goodbye is gone at once.
    assert sam.post(f"/console/c/{conv.id}/leave").status_code == 204
    assert "Nobody else is viewing" in viewers(alice)
    assert sam.post("/console/c/not-a-conversation/leave").status_code == 404


# -- in a real browser: a counsellor and a supervisor, each in a browser context of their own ----------


def signed_in(browser, url: str, name: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{url}/console/signin")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_contain_text(name)
    return context, page


def alice_holds_a_texter(staff, live_server, browser, texter):
    conv_id = staff.extensions["vault"].conversation_id("sms", texter.number)
    ask_for_counsellor(texter)
    alice_context, alice = signed_in(browser, live_server.url, "alice")
    alice.goto(f"{live_server.url}/console/c/{conv_id}")
    alice.get_by_role("button", name="Claim").click()
    expect(alice.locator(".status-line")).to_contain_text("You hold this conversation")
    return conv_id, alice_context, alice


def monitor_from_the_list(browser, live_server, conv_id):
    sam_context, sam = signed_in(browser, live_server.url, "sam")
    sam.goto(f"{live_server.url}/console/all")
    sam.locator(f'tr[data-conv="{conv_id}"]').get_by_role("link", name="Monitor").click()
    expect(sam.locator("#monitor")).to_contain_text("Monitoring — you are not holding this conversation")
    return sam_context, sam


def test_a_supervisor_monitors_and_whispers_and_each_sees_the_other_viewing(twilio_api, staff, live_server, browser,
                                                                             texter, run_jobs, tmp_path):
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    conv_id, alice_context, alice = alice_holds_a_texter(staff, live_server, browser, texter)
    texter.send("I left the farm last night, I'm scared they will come looking")
    sam_context, sam = monitor_from_the_list(browser, live_server, conv_id)

    expect(sam.locator("#reply-text")).to_have_count(0)
    expect(sam.locator("#transcript")).to_contain_text("I left the farm last night")
    assert [row["conv"] for row in audited(staff, "sam", "monitor", conv_id)] == [conv_id]
    expect(alice.locator("#viewers")).to_contain_text("sam (supervisor)")
    expect(sam.locator("#viewers")).to_contain_text("alice")

    sam.fill("#whisper-text", WHISPER)
    sam.get_by_role("button", name="Send whisper").click()
    expect(sam.locator(".banner")).to_contain_text("Whisper sent")
    whisper = alice.locator(".msg.whisper")
    expect(whisper).to_contain_text("Whisper from sam (supervisor)")  # live, without a reload
    expect(whisper).to_contain_text(WHISPER)
    sam.locator("#transcript").evaluate("t => t.scrollTop = t.scrollHeight")
    sam.screenshot(path=str(shots / "monitor.png"), full_page=True)

    # Only what alice sends reaches the texter's phone.
    alice.fill("#reply-text", "You did the right thing. Are you somewhere safe right now?")
    alice.click("#reply-send")
    expect(alice.locator("#transcript")).to_contain_text("Are you somewhere safe right now?")
    run_jobs()
    assert [m["Body"] for m in twilio_api.sent if m.get("To") == texter.number] == [
        "You did the right thing. Are you somewhere safe right now?"]

    sam.close()
    expect(alice.locator("#viewers")).not_to_contain_text("sam")
    expect(alice.locator("#viewers")).to_contain_text("Nobody else is viewing")
    sam_context.close()
    alice_context.close()


def test_the_list_keeps_itself_up_to_date(staff, live_server, browser, texter):
    conv_id, alice_context, alice = alice_holds_a_texter(staff, live_server, browser, texter)
    sam_context, sam = signed_in(browser, live_server.url, "sam")
    sam.goto(f"{live_server.url}/console/all")
    row = sam.locator(f'#active tr[data-conv="{conv_id}"]')
    expect(row).to_contain_text("no reply yet")
    expect(row).to_contain_text("unanswered")

    alice.fill("#reply-text", "Hi, I'm Alice. Are you somewhere safe right now?")
    alice.click("#reply-send")
    expect(row).not_to_contain_text("no reply yet")  # without a reload
    expect(row).not_to_contain_text("unanswered")
    texter.send("not really")
    expect(row).to_contain_text("unanswered")
    sam_context.close()
    alice_context.close()


def test_a_supervisor_takes_over_and_the_counsellor_is_told_at_once(staff, live_server, browser, texter):
    conv_id, alice_context, alice = alice_holds_a_texter(staff, live_server, browser, texter)
    sam_context, sam = monitor_from_the_list(browser, live_server, conv_id)

    sam.get_by_role("button", name="Take over from alice").click()
    expect(sam.locator(".status-line")).to_contain_text("You hold this conversation")
    expect(sam.locator(".banner")).to_contain_text("You took this conversation over from alice")
    expect(sam.locator("#reply-text")).to_be_enabled()
    expect(alice.locator("main")).to_contain_text("Taken over by sam")  # live, without a reload by alice
    expect(alice.locator("#reply-text")).to_have_count(0)
    assert staff.extensions["store"].load(conv_id).counsellor == "sam"
    assert [row["detail"] for row in audited(staff, "sam", "take_over", conv_id)] == ["alice"]
    sam_context.close()
    alice_context.close()
