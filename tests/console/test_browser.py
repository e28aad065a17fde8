"""End to end in a real browser: sign in, a texter's handoff appears live, claim, reply, end.

Set CONSOLE_SCREENSHOTS=docs to refresh the screenshots in docs/; otherwise they go to tmp_path.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from playwright.sync_api import expect

from .conftest import PASSWORD, ask_for_counsellor, wrap_up


def test_a_counsellor_takes_a_texter_from_queue_to_closing(twilio_api, live_server, browser, texter, run_jobs,
                                                           staff, queued, tmp_path):
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    conv_id = staff.extensions["vault"].conversation_id("sms", texter.number)
    # Others already waiting, so the queue looks as it does on a busy night.
    now = time.time()
    queued("high", now - 840, lang="es", screen_strong_id_held=True, screen_strong_not_free=True,
           screen_other_job_changed=True)
    queued("normal", now - 1500, kind="tip", consent=False)
    queued("normal", now - 320, channel="web", address="web-session-1")
    queued("emergency", now - 95, matched=["threat_violence", "locked_in"])

    page = browser.new_page(viewport={"width": 1280, "height": 760})
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{live_server.url}/console/")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h2", has_text="Waiting")).to_be_visible()
    row = page.locator(f'#queue tr[data-conv="{conv_id}"]')
    expect(row).to_have_count(0)

    ask_for_counsellor(texter)

    # The handoff appears without a reload.
    expect(row).to_have_count(1)
    expect(row).to_contain_text("…" + texter.number[-2:])
    expect(page.locator("#queue tr[data-conv]")).to_have_count(5)
    expect(page.locator("#queue tr[data-conv]").first).to_contain_text("Emergency")
    page.screenshot(path=str(shots / "console.png"))

    row.get_by_role("button", name="Claim").click()
    expect(page.locator(".status-line")).to_contain_text("You hold this conversation")
    page.fill("#reply-text", "Hi, I'm Alice, a counsellor. Are you somewhere safe right now?")
    page.click("#reply-send")
    expect(page.locator("#transcript")).to_contain_text("Are you somewhere safe right now?")

    run_jobs()
    sent = [m for m in twilio_api.sent if m.get("To") == texter.number]
    assert [m["Body"] for m in sent] == ["Hi, I'm Alice, a counsellor. Are you somewhere safe right now?"]

    texter.send("yes, I'm at the bus station on Golden State Ave")
    expect(page.locator("#transcript")).to_contain_text("bus station on Golden State Ave")
    expect(page.locator(".msg.from-counsellor").last).to_contain_text("sent")
    page.locator("details.snippets").nth(1).locator("summary").click()
    page.screenshot(path=str(shots / "console-conversation.png"), full_page=True)

    wrap_up(page, "referred")
    expect(page.locator("h2", has_text="My conversations")).to_be_visible()
    run_jobs()
    sent = [m["Body"] for m in twilio_api.sent if m.get("To") == texter.number]
    assert len(sent) == 2 and "This conversation has ended" in sent[1]
    page.close()
