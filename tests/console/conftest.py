"""Console fixtures: counsellor accounts, a signed-in browser-like client, queued conversations."""
from __future__ import annotations

import re
import secrets
import time

import pytest

from bot.console import accounts
from tests.conftest import sign
from flows.conversation import Conversation

PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """One counsellor's browser: its own cookie jar, the CSRF token its pages carry."""

    def __init__(self, app, name: str | None = None):
        self.client = app.test_client()
        self.name = name
        self.token = ""

    def refresh_token(self, path: str = "/console/signin") -> str:
        page = self.client.get(path, follow_redirects=True)
        found = _TOKEN.search(page.get_data(as_text=True))
        self.token = found.group(1) if found else ""
        return self.token

    def sign_in(self, name: str | None = None, password: str = PASSWORD):
        self.name = name or self.name
        self.refresh_token()
        answer = self.client.post("/console/signin", data={"name": self.name, "password": password,
                                                           "csrf_token": self.token})
        if answer.status_code == 302:
            self.refresh_token("/console/")
        return answer

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def queue_order(self) -> list[str]:
        """Conversation ids of the waiting rows, top to bottom, as the live region shows them."""
        return re.findall(r'data-conv="([a-z2-7]+)"', self.get("/console/queue/live").get_data(as_text=True))


@pytest.fixture
def staff(app):
    """alice and bob (counsellors), sam (supervisor)."""
    client = app.extensions["redis"]
    with app.app_context():
        for name, supervisor in (("alice", False), ("bob", False), ("sam", True)):
            accounts.add(client, name, PASSWORD, supervisor)
    return app


@pytest.fixture
def console(staff):
    """A function: console("alice") is alice, signed in."""

    def open_as(name: str) -> Console:
        browser = Console(staff, name)
        answer = browser.sign_in()
        assert answer.status_code == 302, answer.get_data(as_text=True)
        return browser

    return open_as


@pytest.fixture
def queued(app):
    """A function that puts a conversation in the waiting queue, as the engine's handoff does."""
    store, waiting, vault = app.extensions["store"], app.extensions["waiting"], app.extensions["vault"]

    def put(priority: str = "normal", since: float | None = None, channel: str = "sms", lang: str = "en",
            address: str | None = None, consent: bool | None = True, matched: tuple = (), **slots) -> Conversation:
        since = time.time() if since is None else since
        address = address or "+1661" + "".join(secrets.choice("0123456789") for _ in range(7))
        cid = vault.conversation_id(channel, address)
        conv = Conversation(id=cid, channel=channel, address=address, lang=lang, risk=priority, matched=list(matched), handoff="waiting",
                            state="waiting", created_at=since, updated_at=since,
                            slots={"consent": consent, "queued_at": since, **slots})
        if slots.get("kind") != "tip":
            conv.slots.setdefault("reason", "emergency" if priority == "emergency" else "counsellor")
        session = store.begin(cid)
        store.commit(session, conv, also=lambda pipe: waiting.add(pipe, cid, priority, since))
        return conv

    return put


def ask_for_counsellor(texter) -> None:
    """What a texter sends to reach the queue: hello, it is safe, a counsellor, yes you may text me."""
    texter.send("hi")
    texter.send("1")
    texter.send("1")
    assert "in line" in texter.send("1")


def wrapped_up(outcome: str = "resolved", **answers) -> dict[str, str]:
    """The end form (flows/wrapup.yaml) filled in as for a short conversation about basic needs."""
    return {"type": "conversation", "category": "basic_needs", "risk": "low", "safety_plan": "no", "follow_up": "no",
            "outcome": outcome, **answers}


def wrap_up(page, outcome: str = "resolved") -> None:
    """In a browser: fill in the end form as wrapped_up() does, and end the conversation."""
    form = page.locator("#end")
    for name, value in wrapped_up(outcome).items():
        form.locator(f"input[name={name}][value={value}]").check()
    form.get_by_role("button", name="End conversation").click()


@pytest.fixture
def config(config):
    # Argon2's cheapest profile: the same code path, without seconds of hashing per sign-in.
    config["CONSOLE_PASSWORD_HASH"] = "CHEAPEST"
    return config


@pytest.fixture
def app(twilio_api, app):
    # The console refuses to text when texting is not set up: its tests run with Twilio (the fake) set up.
    return app


def reply_lost_by_the_carrier(console, conv_id: str, number: str, twilio_api, run_jobs, client) -> None:
    """The counsellor replies "Are you safe?", the worker sends it, and the carrier reports it undelivered
    (30003: the phone unreachable), signed as Twilio posts a status callback."""
    assert console.post(f"/console/c/{conv_id}/reply", {"text": "Are you safe?"}).status_code == 302
    run_jobs()
    [sid] = [m["sid"] for m in twilio_api.sent if m["To"] == number]
    form = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert client.post("/sms/status", data=form,
                       headers={"X-Twilio-Signature": sign("http://localhost/sms/status", form)}).status_code == 204
