"""Supervisors block an abusive sender from the conversation's page and lift the block on the overview.

Set CONSOLE_SCREENSHOTS=docs to refresh docs/console-blocked.png; otherwise it goes to tmp_path.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from playwright.sync_api import expect

from bot import audit, blocking
from tests.workers.test_alerts import receiver  # noqa: F401 (a fixture: the on-call webhook)

from .conftest import PASSWORD, ask_for_counsellor

NOTICE = "We cannot answer your messages for now"
DANGER = "he has a gun and says he will kill me"
REASON = "threatened the counsellors by name"


def conv_id_of(app, texter, channel="sms"):
    return app.extensions["vault"].conversation_id(channel, texter.number)


def test_a_supervisor_blocks_a_texter_for_a_day_and_unblocks_them(twilio_api, receiver, live_server, browser,  # noqa: F811
                                                                   texter, run_jobs, staff, tmp_path):
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    texter.send("hi")
    conv_id = conv_id_of(staff, texter)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/console/")
    page.fill("input[name=name]", "sam")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/console/c/{conv_id}")
    page.select_option("#block-form select[name=duration]", "24h")
    page.fill("#block-form input[name=reason]", REASON)
    page.locator("#block-form").screenshot(path=str(shots / "console-block.png"))
    page.get_by_role("button", name="Block sender (audited)").click()
    expect(page.locator(".blocked-now")).to_contain_text("Blocked (24 hours, until")
    expect(page.locator(".blocked-now")).to_contain_text(REASON)

    # The texter's next messages: the national lines once, then nothing; never in line.
    reply = texter.send("put me through to a counselor now")
    assert reply.startswith(NOTICE) and "911" in reply and "1-888-373-7888" in reply
    assert texter.send("1") == ""
    assert staff.extensions["waiting"].depth() == 0

    # Danger from the blocked texter: 911 at once, and the on-call supervisor is alerted.
    assert texter.send(DANGER).startswith("If you are in danger now, call 911.")
    run_jobs()
    [alert] = [json.loads(body) for body in receiver.bodies]
    assert (alert["kind"], alert["conversation"]) == ("emergency", conv_id)
    # Everything the texter got came back on their own webhooks: nothing was texted to them first.
    assert [m for m in twilio_api.sent if m.get("To") == texter.number] == []

    page.goto(f"{live_server.url}/console/all")
    row = page.locator(f'#blocked tr:has(a[href$="/c/{conv_id}"])')
    expect(row).to_contain_text(REASON)
    expect(row).to_contain_text("sam")
    expect(row).to_contain_text("UTC")
    expect(row).not_to_contain_text(texter.number[2:])
    page.locator("#blocked").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "console-blocked.png"), full_page=True)
    row.get_by_role("button", name="Unblock").click()
    expect(page.locator("#blocked")).to_contain_text("Nobody is blocked.")

    # Unblocked: answered as anyone else; after the danger, "1" puts them first in line for a counsellor.
    assert "in line" in texter.send("1")
    assert staff.extensions["waiting"].waiting()[0][:2] == (conv_id, "emergency")
    page.close()

    # A counsellor can neither block nor unblock.
    alice = browser.new_page()
    alice.goto(f"{live_server.url}/console/")
    alice.fill("input[name=name]", "alice")
    alice.fill("input[name=password]", PASSWORD)
    alice.get_by_role("button", name="Sign in").click()
    expect(alice.locator("h2", has_text="Waiting")).to_be_visible()
    alice.goto(f"{live_server.url}/console/c/{conv_id}")
    expect(alice.locator("#block-form")).to_have_count(0)
    token = alice.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = alice.request.post(f"{live_server.url}/console/c/{conv_id}/block",
                                 form={"csrf_token": token, "duration": "24h", "reason": "no"})
    assert refused.status == 403
    assert blocking.of_conversation(staff.extensions["redis"], staff.extensions["vault"], conv_id,
                                    time.time()) is None
    alice.close()


def test_counsellors_get_403(console, staff, texter):
    texter.send("hi")
    conv_id = conv_id_of(staff, texter)
    sam, alice = console("sam"), console("alice")
    assert sam.post(f"/console/c/{conv_id}/block", {"duration": "7d", "reason": REASON}).status_code == 302
    [found] = blocking.listed(staff.extensions["redis"], staff.extensions["vault"], time.time())
    assert alice.post(f"/console/c/{conv_id}/block", {"duration": "permanent", "reason": "x"}).status_code == 403
    assert alice.post(f"/console/blocks/{found.digest}/unblock").status_code == 403
    assert alice.get("/console/all").status_code == 403
    assert blocking.listed(staff.extensions["redis"], staff.extensions["vault"], time.time())


def test_a_block_needs_a_duration_and_a_short_reason(console, staff, texter):
    texter.send("hi")
    conv_id = conv_id_of(staff, texter)
    sam = console("sam")
    for form, why in (({"duration": "24h", "reason": "   "}, "give a reason"),
                      ({"duration": "forever", "reason": REASON}, "choose how long"),
                      ({"duration": "24h", "reason": "x" * 201}, "at most 200 characters")):
        answer = sam.post(f"/console/c/{conv_id}/block", form)
        assert answer.status_code == 400 and why in answer.get_data(as_text=True)
    assert sam.post("/console/c/not-a-conversation/block", {"duration": "24h", "reason": REASON}).status_code == 404
    assert sam.post("/console/blocks/zz/unblock").status_code == 404
    assert sam.post(f"/console/blocks/{'0' * 32}/unblock").status_code == 409
    assert blocking.listed(staff.extensions["redis"], staff.extensions["vault"], time.time()) == []
    assert texter.send("hello") != ""  # not blocked: answered by the flow
    assert NOTICE not in texter.send("hello")


def test_block_and_unblock_are_audited_with_the_duration_and_the_reason_stays_sealed(console, staff, texter):
    texter.send("hi")
    conv_id = conv_id_of(staff, texter)
    sam = console("sam")
    sam.post(f"/console/c/{conv_id}/block", {"duration": "permanent", "reason": REASON})
    [found] = blocking.listed(staff.extensions["redis"], staff.extensions["vault"], time.time())
    sam.post(f"/console/blocks/{found.digest}/unblock")

    client = staff.extensions["redis"]
    rows = [(e["actor"], e["action"], e["conv"], e["detail"]) for e in audit.entries(client, 10, conv_id)]
    assert rows[:2] == [("sam", "unblock", conv_id, "permanent"), ("sam", "block", conv_id, "permanent")]
    # The reason is nowhere in the clear, and no key is named by the conversation or the number.
    for name in client.scan_iter():
        kind = client.type(name)
        values = {b"string": lambda: [client.get(name)], b"stream": lambda: [json.dumps(
            [{k.decode(): v.decode() for k, v in f.items()} for _, f in client.xrange(name)]).encode()]}
        for value in values.get(kind, lambda: [])():
            assert b"counsellors by name" not in value, name
    assert not [n for n in client.scan_iter(match="bk:*") if conv_id.encode() in n]


def test_blocking_a_waiting_texter_takes_them_out_of_line(console, staff, texter):
    ask_for_counsellor(texter)
    conv_id = conv_id_of(staff, texter)
    assert staff.extensions["waiting"].depth() == 1
    console("sam").post(f"/console/c/{conv_id}/block", {"duration": "24h", "reason": REASON})
    assert staff.extensions["waiting"].depth() == 0
    assert staff.extensions["store"].load(conv_id).handoff is None
    assert texter.send("are you there?").startswith(NOTICE)
    assert staff.extensions["waiting"].depth() == 0


def test_blocking_a_tipster_takes_the_tip_out_of_line_too(console, staff, texter):
    for body in ("hi", "1", "4", "a man at the truck stop keeps the girls' ids", "DONE", "2"):
        texter.send(body)
    conv_id = conv_id_of(staff, texter)
    assert staff.extensions["waiting"].depth() == 1  # a tip waits without a handoff
    console("sam").post(f"/console/c/{conv_id}/block", {"duration": "24h", "reason": REASON})
    assert staff.extensions["waiting"].depth() == 0


def test_a_claim_that_took_the_queue_entry_just_before_a_block_does_not_hold_the_sender(console, staff, texter):
    ask_for_counsellor(texter)
    conv_id = conv_id_of(staff, texter)
    console("sam").post(f"/console/c/{conv_id}/block", {"duration": "24h", "reason": REASON})
    # The claim's first step (taking the queue's entry) ran just before the block: the entry is still there.
    staff.extensions["waiting"].add(staff.extensions["redis"], conv_id, "normal", time.time())
    answer = console("alice").post(f"/console/claim/{conv_id}", follow_redirects=True)
    assert answer.status_code == 409 and "That sender was just blocked" in answer.get_data(as_text=True)
    conv = staff.extensions["store"].load(conv_id)
    assert conv.handoff is None and conv.counsellor is None
    assert staff.extensions["redis"].hget("console:active", conv_id) is None
    assert staff.extensions["waiting"].depth() == 0


def test_a_conversation_a_counsellor_holds_is_ended_before_it_is_blocked(console, staff, texter):
    ask_for_counsellor(texter)
    conv_id = conv_id_of(staff, texter)
    assert console("alice").post(f"/console/claim/{conv_id}").status_code == 302
    sam = console("sam")
    assert "alice holds this conversation: end it first" in sam.get(f"/console/c/{conv_id}").get_data(as_text=True)
    answer = sam.post(f"/console/c/{conv_id}/block", {"duration": "24h", "reason": REASON})
    assert answer.status_code == 400 and "alice holds this conversation: end it first" in answer.get_data(as_text=True)
    assert texter.send("are you there?") == ""  # the counsellor answers; no line from the bot in between


def test_the_overview_lists_a_block_whose_conversation_was_erased_without_its_number(console, staff, texter):
    texter.send("hi")
    conv_id = conv_id_of(staff, texter)
    sam = console("sam")
    sam.post(f"/console/c/{conv_id}/block", {"duration": "permanent", "reason": REASON})
    texter.send("DELETE")
    texter.send("YES")
    assert staff.extensions["store"].load(conv_id) is None

    page = sam.get("/console/all").get_data(as_text=True)
    blocked = page.split('id="blocked"', 1)[1]
    assert conv_id[:8] in blocked and "erased by the texter" in blocked
    assert "never: permanent, review it" in blocked and REASON in blocked
    assert texter.number[2:] not in blocked and "…" + texter.number[-2:] not in blocked  # the label went with it
    assert texter.send("hi").startswith(NOTICE)  # still blocked after DELETE
