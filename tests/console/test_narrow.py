"""The console on a phone (360 px) and a desktop (1280 px): no page scrolls sideways, and what it says
(the banner, a failed reply's reason and its Retry) works in a real browser.

Set CONSOLE_NARROW_SHOTS=<folder> to keep a screenshot of each page at each width.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, ask_for_counsellor, wrap_up

WIDTHS = (360, 768, 1280)
NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def config(config):
    config["SEND_RETRY_SECONDS"] = "0,0,0"
    return config


def sign_in(browser, url: str, name: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 740})
    page.goto(f"{url}/console/signin")
    assert page.evaluate(NO_SIDEWAYS), "the sign-in page scrolls sideways"
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h2", has_text="Waiting")).to_be_visible()
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_no_console_page_scrolls_sideways(width, twilio_api, live_server, browser, texter, run_jobs, staff, queued,
                                          tmp_path):
    shots = Path(os.environ.get("CONSOLE_NARROW_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    now = time.time()
    # A busy night: long reasons, many screening answers, a tip, a web chat, an emergency.
    queued("high", now - 840, lang="es", screen_strong_id_held=True, screen_strong_not_free=True,
           screen_other_job_changed=True, screen_strong_debt=True, category="shelter")
    queued("normal", now - 1500, kind="tip", consent=False)
    queued("normal", now - 320, channel="web", address="web-session-1")
    queued("emergency", now - 95, matched=["threat_violence", "locked_in", "document_confiscation"])
    ask_for_counsellor(texter)
    conv_id = staff.extensions["vault"].conversation_id("sms", texter.number)

    page = sign_in(browser, live_server.url, "sam", width)
    pages = {"queue": "/console/"}
    page.locator(f'#queue tr[data-conv="{conv_id}"]').get_by_role("button", name="Claim").click()
    expect(page.get_by_role("status").filter(has_text="You hold this conversation now.")).to_be_visible()
    twilio_api.fail_next(status=500, times=4)
    page.fill("#reply-text", "A reply with a long unbroken link https://example.org/" + "a" * 120)
    page.click("#reply-send")
    run_jobs()
    expect(page.locator(".failed-why")).to_contain_text("Twilio had a problem on its side")
    page.fill("#note-text", "Internal note")
    page.get_by_role("button", name="Add note").click()
    pages.update(conversation=f"/console/c/{conv_id}", all="/console/all", audit="/console/audit",
                 resources="/console/resources")
    for name, path in pages.items():
        page.goto(live_server.url + path)
        if name == "queue":  # a counsellor's buttons in reach, not at the end of a row scrolled out of sight
            for button in page.locator("#queue").get_by_role("button", name="Claim").all():
                box = button.bounding_box()
                assert box["x"] >= 0 and box["x"] + box["width"] <= width
        page.screenshot(path=str(shots / f"console-{name}-{width}.png"), full_page=True)
        assert page.evaluate(NO_SIDEWAYS), f"{name} scrolls sideways at {width} px"
        header = page.locator("header.top").bounding_box()
        assert header["width"] <= width
        if width >= 1280:
            assert header["height"] < 60, f"the header of {name} wraps at {width} px"
    page.close()


def test_the_banner_is_a_status_that_can_be_dismissed(twilio_api, live_server, browser, texter, staff):
    ask_for_counsellor(texter)
    page = sign_in(browser, live_server.url, "alice", 360)
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#queue tr[data-conv]").get_by_role("button", name="Claim").click()
    wrap_up(page, "referred")
    said = page.get_by_role("status").filter(has_text="Conversation ended (outcome: referred).")
    expect(said).to_be_visible()
    assert page.evaluate(NO_SIDEWAYS)
    said.get_by_role("button", name="Dismiss this message").click()
    expect(said).to_be_hidden()
    page.reload()
    expect(page.locator(".banner")).to_have_count(0)  # said once
    page.close()


def test_a_double_click_on_retry_sends_once(twilio_api, live_server, browser, texter, run_jobs, staff):
    ask_for_counsellor(texter)
    page = sign_in(browser, live_server.url, "alice", 1280)
    page.locator("#queue tr[data-conv]").get_by_role("button", name="Claim").click()
    twilio_api.fail_next(status=400, code=30003, message="Unreachable destination handset")  # worth a retry
    page.fill("#reply-text", "Are you safe?")
    page.click("#reply-send")
    run_jobs()
    expect(page.locator(".failed-why")).to_contain_text("Not received: the phone is unreachable")
    page.get_by_role("button", name="Retry").dblclick()
    expect(page.get_by_role("status").filter(has_text="Sending the reply again.")).to_be_visible()
    expect(page.locator(".alert")).to_have_count(0)
    run_jobs()
    expect(page.locator(".msg.from-counsellor .delivery")).to_have_text("sent")
    assert [m["Body"] for m in twilio_api.sent if m["To"] == texter.number] == ["Are you safe?"]
    page.close()
