"""The front door at /: the operator's page in development, a 404 or a redirect in production; the favicon."""
from __future__ import annotations

import re
import secrets

import pytest
from rq import Worker

from bot import create_app
from bot.errors import ConfigurationError
from bot.redis_server import EmbeddedRedis
from tests.conftest import app_config
from tests.console.conftest import ask_for_counsellor

NEXT_STEP = ".venv/bin/helpline counsellor add NAME --supervisor"


def links(page: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)"', page)


def production(config: dict) -> dict:
    """Settings production accepts (long keys, Twilio, an https address)."""
    return {**config, "HELPLINE_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(32),
            "HELPLINE_HASH_KEY": secrets.token_urlsafe(32), "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
            "TWILIO_FROM_NUMBER": "+16615550199", "PUBLIC_URL": "https://help.example.org"}


def test_in_development_the_front_door_says_what_runs_and_where_to_go(client):
    answer = client.get("/")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "Kern Support Line" in page and "development" in page
    assert "reachable" in page and "no RQ worker is running" in page
    assert links(page) == ["/chat", "/console/", "/console/dashboard", "/healthz"]
    for link in links(page):
        assert client.get(link).status_code in (200, 302, 503), link  # /healthz: 503 without a worker
    # Same headers as every page: nothing frames it, nothing caches it.
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"


def test_the_next_step_is_the_first_counsellor_and_it_goes_once_there_is_one(client, staff):
    # staff added alice, bob and sam; start again from nobody.
    redis = staff.extensions["redis"]
    redis.delete("counsellors")
    page = client.get("/").get_data(as_text=True)
    assert NEXT_STEP in page
    assert "at least 12 characters" in page
    assert "none yet" in page

    redis.sadd("counsellors", "alice")
    page = client.get("/").get_data(as_text=True)
    assert NEXT_STEP not in page and "none yet" not in page
    assert "alice" not in page  # whether there is anyone, never who


def test_a_running_worker_shows(app, client):
    worker = Worker([app.extensions["queue"]], connection=app.extensions["redis"])
    worker.register_birth()
    worker.heartbeat()
    page = client.get("/").get_data(as_text=True)
    assert "1 running (last heartbeat 0 s ago)" in page
    assert "no RQ worker" not in page


def test_redis_down_is_said_plainly_not_a_500(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    app = create_app(app_config(server.start(), tmp_path / "instance"))
    server.stop()
    answer = app.test_client().get("/")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "not answering" in page and "unknown without Redis" in page
    assert NEXT_STEP not in page  # nobody knows whether an account exists


def test_nothing_about_texters_or_conversations_is_on_the_page(app, client, texter):
    before = client.get("/").get_data(as_text=True)
    ask_for_counsellor(texter)
    texter.send("my boss took my passport")
    after = client.get("/").get_data(as_text=True)
    assert after == before  # no count, no status changes with a conversation
    conv_id = app.extensions["vault"].conversation_id("sms", texter.number)
    for secret in (texter.number, texter.number[-4:], conv_id, "passport"):
        assert secret not in after


def test_in_production_there_is_no_front_door(config):
    client = create_app(production(config)).test_client()
    assert client.get("/").status_code == 404
    assert client.get("/favicon.ico").status_code == 200  # the chat's and console's tabs still have one


def test_off_is_a_404_in_development_too(config):
    config["FRONT_DOOR"] = "off"
    client = create_app(config).test_client()
    answer = client.get("/")
    assert answer.status_code == 404 and "counsellor" not in answer.get_data(as_text=True)


@pytest.mark.parametrize("env", ["development", "production"])
def test_an_address_sends_visitors_there(config, env):
    config = production(config) if env == "production" else config
    config["FRONT_DOOR"] = "https://www.example.org/get-help"
    answer = create_app(config).test_client().get("/")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "https://www.example.org/get-help"


@pytest.mark.parametrize("value", ["on", "www.example.org", "javascript:alert(1)", "ftp://example.org",
                                   "https://", "https://exa mple.org", "https://example.org:abc/", "https://[::1]:99999/",
                                   "https://[zz]/"])
def test_anything_else_is_refused_at_start_up(config, value):
    config["FRONT_DOOR"] = value
    with pytest.raises(ConfigurationError, match="FRONT_DOOR"):
        create_app(config)


def test_the_favicon_is_an_icon(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.mimetype == "image/vnd.microsoft.icon"
    assert answer.data[:4] == b"\x00\x00\x01\x00"  # an ICO header, not a page


@pytest.mark.parametrize("path", ["/", "/chat", "/console/signin"])
def test_every_page_links_the_svg_icon(client, path):
    page = client.get(path).get_data(as_text=True)
    [href] = re.findall(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    icon = client.get(href)
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert b"<svg" in icon.data
