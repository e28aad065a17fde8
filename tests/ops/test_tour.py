"""The tour a new operator takes, in a real browser at a desktop's 1280 px and a phone's 360 px: the front
door, the web chat as someone asking for a person, then the console as the counselor who answers.

At each step it checks what a person would see, that nothing scrolls sideways, and that the browser met
no error response, console error or script exception on the way.
TOUR_SCREENSHOTS=docs writes docs/tour-<step>-<width>.png (the README's tour); otherwise tmp_path.
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from bot.console import accounts
from tests.console.conftest import PASSWORD
from tests.workers.conftest import sending  # noqa: F401 (fixture)
from tests.workers.test_recovery import start_worker, worker_env

SIZES = {1280: {"width": 1280, "height": 800}, 360: {"width": 360, "height": 640}}
REPLY = "Hi, I'm Alice, a counselor. Are you somewhere safe right now?"


class Trip:
    """One browser context (a person's browser) and what went wrong in it along the way."""

    def __init__(self, browser, width: int, shots: Path):
        self.width, self.shots = width, shots
        self.context = browser.new_context(viewport=SIZES[width], is_mobile=width < 600, has_touch=width < 600)
        self.problems: list[str] = []
        self.fetched: list[str] = []
        self.context.on("response", self._response)
        self.context.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.context.on("weberror", lambda e: self.problems.append(f"script error: {e.error}"))
        self.page = self.context.new_page()

    def _response(self, response) -> None:
        self.fetched.append(response.url)
        if response.status >= 400:
            self.problems.append(f"{response.status} {response.url}")

    def look(self, step: str, full_page: bool = False) -> None:
        """The screenshot of this step, and the check that the page is no wider than the screen."""
        wide = self.page.evaluate("document.documentElement.scrollWidth")
        if wide > self.width:
            self.problems.append(f"{step}: {self.page.url} scrolls sideways ({wide} px wide at {self.width} px)")
        self.page.screenshot(path=str(self.shots / f"tour-{step}-{self.width}.png"), full_page=full_page)


@pytest.fixture
def worker(sending, config, app):
    """A real `helpline worker` process, as `helpline run` starts one; it sends the counselor's reply."""
    process = start_worker(worker_env(config), Path(config["INSTANCE_PATH"]) / "worker.log")
    client = app.test_client()
    deadline = time.monotonic() + 30
    while client.get("/healthz").status_code != 200:
        assert process.poll() is None and time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


@pytest.mark.parametrize("width", [1280, 360])
def test_front_door_then_chat_then_console(width, app, worker, live_server, browser, tmp_path):
    shots = Path(os.environ.get("TOUR_SCREENSHOTS") or tmp_path)
    name = app.config["HELPLINE_NAME"]
    texter, counselor = Trip(browser, width, shots), Trip(browser, width, shots)
    try:
        # The front door: what runs, where to go, and the first thing to do.
        door = texter.page
        door.goto(live_server.url + "/")
        expect(door.get_by_role("heading", level=1)).to_have_text(name)
        expect(door.get_by_role("heading", name=re.compile("create a counselor account", re.I))).to_be_visible()
        expect(door.get_by_text("helpline counsellor add NAME --supervisor")).to_be_visible()
        expect(door.get_by_text(re.compile(r"1 running"))).to_be_visible()
        texter.look("front-door", full_page=True)

        # The operator follows the next step (the CLI command does exactly this) and it is done.
        with app.app_context():
            accounts.add(app.extensions["redis"], "alice", PASSWORD, supervisor=True)
        door.reload()
        expect(door.get_by_role("heading", name=re.compile("create a counselor account", re.I))).to_have_count(0)
        texter.look("front-door-after", full_page=True)  # "add more with <command>" fits a phone too

        # The web chat, as someone asking for help: hello, it is safe to write, a person, yes.
        door.get_by_role("link", name="Web chat").click()
        chat = texter.page
        chat.wait_for_url(re.compile(r"/chat"))
        log = chat.get_by_role("log")
        expect(log.get_by_role("listitem").first).to_be_visible()
        said = log.get_by_role("listitem").count()
        box = chat.get_by_role("textbox")
        box.fill("hi")
        box.press("Enter")
        expect(log.get_by_text("hi", exact=True)).to_be_visible()
        expect(log.get_by_role("listitem").nth(said + 1)).to_be_visible()  # and the line answered
        expect(log).not_to_contain_text(re.compile("did not understand", re.I))
        chat.get_by_role("button", name=re.compile(r"\bsafe\b", re.I)).click()
        chat.get_by_role("button", name=re.compile("counselor", re.I)).click()
        chat.get_by_role("button", name="Yes", exact=True).click()
        expect(log).to_contain_text(re.compile("in line", re.I))
        texter.look("chat")

        # The console: sign in, the conversation waits in the queue, claim it and reply.
        desk = counselor.page
        desk.goto(live_server.url + "/console")
        desk.get_by_label("Name").fill("alice")
        desk.get_by_label("Password").fill(PASSWORD)
        desk.get_by_role("button", name="Sign in").click()
        claim = desk.get_by_role("button", name="Claim")
        expect(claim).to_have_count(1)
        expect(desk.locator("[data-conv]")).to_contain_text(re.compile("web chat", re.I))
        counselor.look("console", full_page=True)

        claim.click()
        desk.get_by_role("textbox", name=re.compile("^reply", re.I)).fill(REPLY)
        desk.get_by_role("button", name="Send", exact=True).click()
        expect(desk.locator("#transcript")).to_contain_text(REPLY)
        expect(desk.get_by_text(re.compile(r"^\s*delivered\s*$"))).to_be_visible()  # the worker sent it
        counselor.look("conversation", full_page=True)

        # The reply reaches the chat without a reload, signed as the line's counselor, never by name.
        reply = log.get_by_role("listitem").filter(has_text=REPLY)
        expect(reply).to_have_count(1)
        expect(reply).not_to_contain_text("alice")
        texter.look("chat-reply")
    finally:
        texter.context.close()
        counselor.context.close()

    # Every page's tab showed the icon: the browser fetched it and nothing failed on the way.
    assert any(url.endswith("/favicon.svg") for url in texter.fetched + counselor.fetched)
    assert texter.problems + counselor.problems == []
