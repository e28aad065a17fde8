"""Fixtures: a real Redis server, the app, and a texter who sends signed SMS webhooks."""
from __future__ import annotations

import itertools
import os
import secrets
from xml.etree import ElementTree

import pytest
import redis
from cryptography.fernet import Fernet
from twilio.request_validator import RequestValidator

from bot import create_app
from bot.redis_server import EmbeddedRedis

# The fake Twilio API (fixture `twilio_api`): request it before `app`.
pytest_plugins = ["tests.fakes.twilio_api"]

AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """REDIS_URL when set (CI may provide one), else a real redis-server started for this run."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


def app_config(redis_url: str, instance, **overrides) -> dict:
    return {
        "TESTING": True,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret",
        "HELPLINE_DATA_KEY": Fernet.generate_key().decode(),
        "HELPLINE_HASH_KEY": "test-hash-key",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        **overrides,
    }


@pytest.fixture
def config(redis_url, tmp_path, redis_client) -> dict:
    """The app's test settings; tests may change them before asking for `app`."""
    return app_config(redis_url, tmp_path / "instance")


@pytest.fixture
def app(config):
    app = create_app(config)
    yield app
    app.extensions["redis"].close()


@pytest.fixture
def limited(config):
    """An app whose SMS rate limit is 3 messages an hour per sender, with one emergency past it."""
    config.update(SMS_RATE_LIMIT=3, SMS_RATE_WINDOW=3600, SMS_EMERGENCY_LIMIT=1)
    app = create_app(config)
    yield app
    app.extensions["redis"].close()


@pytest.fixture
def cli_env(config) -> dict:
    """The environment a `helpline` command run by CliRunner reads: this test's Redis, instance folder and keys."""
    settings = ("SECRET_KEY", "HELPLINE_DATA_KEY", "HELPLINE_HASH_KEY", "TWILIO_AUTH_TOKEN", "CONSOLE_PASSWORD_HASH")
    return {"REDIS_URL": config["REDIS_URL"], "HELPLINE_INSTANCE_PATH": config["INSTANCE_PATH"],
            **{name: config[name] for name in settings if name in config}}


@pytest.fixture
def client(app):
    return app.test_client()


def sign(url: str, form: dict, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, form)


def replies_of(twiml: bytes) -> list[str]:
    """The <Message> bodies of a TwiML answer."""
    return [m.text or "" for m in ElementTree.fromstring(twiml).iter("Message")]


_NUMBERS = itertools.count(secrets.randbelow(10_000))


class Texter:
    """Plays a person texting the help line: signed webhooks, as Twilio sends them."""

    def __init__(self, client, number: str | None = None, url: str = "http://localhost/sms"):
        self.client, self.url = client, url
        # Distinct numbers, not random ones: two texters of one test must never share a number.
        self.number = number or f"+1661555{next(_NUMBERS) % 10_000:04d}"
        self.last = None

    def form(self, body: str, sid: str | None = None, **extra) -> dict:
        return {
            "ToCountry": "US", "SmsMessageSid": sid or "", "NumMedia": "0", "From": self.number,
            "To": "+16615550199", "Body": body, "MessageSid": sid or "SM" + secrets.token_hex(16),
            "AccountSid": "AC" + "1" * 32, "ApiVersion": "2010-04-01", **extra,
        }

    def post(self, form: dict, signature: str | None = None):
        signature = sign(self.url, form) if signature is None else signature
        self.last = self.client.post(self.url, data=form, headers={"X-Twilio-Signature": signature})
        return self.last

    def send(self, body: str, **extra) -> str:
        """Send a message; return all replies joined, as the texter would read them."""
        answer = self.post(self.form(body, **extra))
        assert answer.status_code == 200, answer.data
        assert answer.mimetype == "text/xml"
        return "\n\n".join(replies_of(answer.data))


@pytest.fixture
def texter(client):
    return Texter(client)


@pytest.fixture
def make_texter(client):
    return lambda number=None: Texter(client, number)


# -- a real HTTP server, a real browser, a real worker ---------------------------------


@pytest.fixture
def live_server(app):
    """The app on a real port (threaded werkzeug), for browsers and other processes."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll: shutdown() waits for the loop's next one (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    thread.join(timeout=5)


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def watch_problems(page) -> list[str]:
    """What goes wrong on `page` from now on, filled in as it happens: a CSP violation or a script error
    shows as a console error, a missing file as a failed response."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
    return problems


@pytest.fixture
def run_jobs(app):
    """Work the RQ queues until they are empty, in this process, against this app; returns the worker."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    import workers.context

    workers.context.use(app)

    def run():
        # SimpleWorker runs jobs in this process, so a test sees their effects at once.
        worker = SimpleWorker(list(app.extensions["queues"]), connection=app.extensions["redis"],
                              serializer=JSONSerializer)
        worker.work(burst=True, logging_level="WARNING")
        return worker

    yield run
    workers.context.use(None)
