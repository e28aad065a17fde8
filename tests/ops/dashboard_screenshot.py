"""Draw docs/dashboard.png: two weeks of simulated texters, a few pickups, and the dashboard in Chromium.

    .venv/bin/python -m tests.ops.dashboard_screenshot [docs/dashboard.png]

Everything goes through the real app (signed SMS webhooks, console sign-in, claim and end) on an
embedded Redis in a temp folder; only the clock is moved back, to spread two weeks over their days.
"""
from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import Fernet
from werkzeug.serving import make_server

from bot import create_app
from bot.console import accounts, handoff
from bot.redis_server import EmbeddedRedis
from tests.conftest import AUTH_TOKEN, CHROMIUM, CHROMIUM_ARGS, Texter
from tests.console.conftest import PASSWORD, wrapped_up

SCRIPTS = [  # what simulated texters send
    ["hi", "1", "find help", "shelter", "93301"],
    ["hola", "1", "4", "comida", "93305"],
    ["hi", "1", "1", "1"],
    ["hello", "1", "questions", "yes", "yes", "no", "no", "no", "no", "no", "yes", "yes"],
    ["i need help, he is going to kill me", "yes"],
    ["hi", "1", "signs"],
    ["hi", "1", "runaway", "16", "no"],
    ["my boss keeps my passport", "1", "1", "yes"],
]


def main(out: str = "docs/dashboard.png") -> None:
    with shot_app() as app:
        simulate(app)
        shoot(app, out)


@contextmanager
def shot_app():
    """The real app on an embedded Redis in a temp folder, for a screenshot; both stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="helpline-shot-"))
    server = EmbeddedRedis(folder / "redis")
    app = create_app({"REDIS_URL": server.start(), "INSTANCE_PATH": str(folder / "instance"), "SECRET_KEY": "shot",
                      "HELPLINE_DATA_KEY": Fernet.generate_key().decode(), "HELPLINE_HASH_KEY": "shot",
                      "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "CONSOLE_PASSWORD_HASH": "CHEAPEST", "SMS_RATE_LIMIT": 1000})
    try:
        yield app
    finally:
        app.extensions["redis"].close()
        server.stop()


def simulate(app) -> None:
    """Two weeks of texters; those who queued were picked up and ended, but for a few still waiting today."""
    rng = random.Random(4)
    client, helpline, vault = app.test_client(), app.extensions["helpline"], app.extensions["vault"]
    with app.app_context():
        accounts.add(app.extensions["redis"], "sam", PASSWORD, supervisor=True)
        sam = accounts.get(app.extensions["redis"], "sam")
    real_time, now = time.time, time.time()
    try:
        for days_ago in range(13, -1, -1):
            for _ in range(rng.randint(4, 14)):
                moment = now - days_ago * 86400 - rng.randint(0, 8 * 3600)
                # The history of two weeks: the whole app (engine, console, audit trail) lives at `moment`.
                time.time = helpline.clock = lambda: moment
                texter = Texter(client)
                for text in rng.choice(SCRIPTS):
                    texter.send(text)
                conv_id = vault.conversation_id("sms", texter.number)
                if app.extensions["waiting"].position(conv_id) is None or (days_ago == 0 and app.extensions["waiting"].depth() <= 3):
                    continue
                with app.test_request_context():
                    moment += rng.randint(60, 50 * 60)
                    handoff.claim(sam, conv_id)
                    moment += rng.randint(5 * 60, 40 * 60)
                    handoff.end(sam, conv_id, wrapped_up(rng.choice(["resolved", "resolved", "referred", "referred",
                                                                     "no_response", "emergency_services", "other"])))
    finally:
        time.time = helpline.clock = real_time


def shoot(app, out: str, path: str = "/console/dashboard", ready: str | None = '[data-chart="daily"] svg') -> None:
    """Sign in as the supervisor sam in Chromium, open `path`, wait for `ready`, and save the whole page."""
    from playwright.sync_api import sync_playwright

    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/console/signin")
            page.fill("input[name=name]", "sam")
            page.fill("input[name=password]", PASSWORD)
            page.click("form button")
            page.goto(url + path)
            if ready:
                page.wait_for_selector(ready)
            page.screenshot(path=out, full_page=True)
            browser.close()
    finally:
        http.shutdown()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
