"""Web security: headers on every kind of page, cookie flags, keys in production, the /sms rate limit,
and the console's own safeguards (CSRF, sign-in limits, a new session at sign-in, idle expiry)."""
from __future__ import annotations

import json
import re
import secrets

import pytest

from bot import create_app
from bot.console import accounts
from bot.errors import ConfigurationError
from bot.store import transcript_key
from tests.conftest import Texter, app_config, replies_of, sign

STRICT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "connect-src 'self'; frame-ancestors 'none'")
PASSWORD = "correct horse battery staple"


def signed_sms(client):
    texter = Texter(client, "+16615550123")
    form = texter.form("hi")
    return client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(texter.url, form)})


PAGES = {
    "chat page": lambda c: c.get("/chat"),
    "chat api": lambda c: c.post("/chat/api/session", json={"lang": "en"}),
    "chat api error": lambda c: c.post("/chat/api/messages", json={}),
    "sms twiml": signed_sms,
    "sms refused": lambda c: c.post("/sms", data={"From": "+16615550123"}),
    "healthz": lambda c: c.get("/healthz"),
    "not found": lambda c: c.get("/nowhere"),
    "static file": lambda c: c.get("/static/chat.js"),
    "console sign-in": lambda c: c.get("/console/signin"),
    "console redirect": lambda c: c.get("/console/"),
}


@pytest.mark.parametrize("page", PAGES)
def test_every_kind_of_page_carries_the_security_headers(client, page):
    answer = PAGES[page](client)
    headers = answer.headers
    assert headers["Content-Security-Policy"] == STRICT_CSP
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in headers  # not without https
    if page != "static file":
        assert headers["Cache-Control"] == "no-store"


def test_a_header_a_view_set_itself_is_replaced_not_doubled(app):
    from flask import Response

    answer = app.extensions["security_headers"].apply(
        Response("x", headers={"X-Frame-Options": "SAMEORIGIN", "Content-Security-Policy": "default-src *"}), "health")
    assert answer.headers.getlist("X-Frame-Options") == ["DENY"]
    assert answer.headers.getlist("Content-Security-Policy") == [STRICT_CSP]


def test_hsts_when_the_public_url_is_https(config):
    config["PUBLIC_URL"] = "https://help.example.org"
    client = create_app(config).test_client()
    for answer in (client.get("/chat"), client.get("/healthz"), client.get("/nowhere")):
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


def test_only_the_chat_page_may_be_framed_by_the_embed_origins(config):
    config["CHAT_EMBED_ORIGINS"] = "https://partner.example.org https://other.example.org:8443"
    client = create_app(config).test_client()
    chat = client.get("/chat")
    assert chat.headers["Content-Security-Policy"].endswith(
        "frame-ancestors https://partner.example.org https://other.example.org:8443")
    assert "X-Frame-Options" not in chat.headers
    assert "script-src 'self';" in chat.headers["Content-Security-Policy"]
    console = client.get("/console/signin")
    assert console.headers["Content-Security-Policy"] == STRICT_CSP
    assert console.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("bad", ["partner.example.org", "https://x.org/path", "https://x.org; script-src *", "*"])
def test_a_malformed_embed_origin_refuses_to_start(config, bad):
    config["CHAT_EMBED_ORIGINS"] = bad
    with pytest.raises(ConfigurationError):
        create_app(config)


@pytest.mark.parametrize("path", ["/chat", "/chat?lang=es", "/console/signin"])
def test_pages_have_no_inline_script_or_style(client, path):
    html = client.get(path, follow_redirects=True).get_data(as_text=True)
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert not re.search(r"\sstyle=|\son[a-z]+=|<style", html)


@pytest.mark.parametrize("path", ["/chat", "/console/signin"])
def test_a_real_browser_reports_no_csp_violation(live_server, browser, path):
    page = browser.new_page()
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(live_server.url + path)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.styleSheets.length") >= 1  # the stylesheet loaded under the policy
    assert problems == []
    page.close()


# -- cookies ---------------------------------------------------------------------------


def cookie_flags(answer, name):
    header = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith(name + "="))
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}, header


@pytest.mark.parametrize("public_url, secure", [(None, False), ("https://help.example.org", True)])
def test_session_cookies_are_httponly_lax_and_secure_behind_https(config, public_url, secure):
    config["PUBLIC_URL"] = public_url
    app = create_app(config)
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is secure
    flags, header = cookie_flags(app.test_client().get("/console/signin"), "helpline_console")
    assert "httponly" in flags and "samesite=lax" in header.lower().replace(" ", "")
    assert ("secure" in flags) is secure


# -- keys in production -------------------------------------------------------------------


PRODUCTION_KEYS = ("SECRET_KEY", "HELPLINE_DATA_KEY", "HELPLINE_HASH_KEY", "TWILIO_AUTH_TOKEN")
PUBLIC = "https://helpline.example"
# What production asks for besides the keys: long secrets, an https address, a way to send.
PRODUCTION = {"HELPLINE_ENV": "production", "SECRET_KEY": "s" * 16 + secrets.token_urlsafe(32),
              "HELPLINE_HASH_KEY": secrets.token_urlsafe(32), "PUBLIC_URL": PUBLIC,
              "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_FROM_NUMBER": "+16615550100"}


@pytest.mark.parametrize("missing", PRODUCTION_KEYS)
def test_production_refuses_to_start_without_each_key(redis_url, tmp_path, missing):
    config = app_config(redis_url, tmp_path / "instance", **PRODUCTION)
    config[missing] = None
    # A development key file lying around must not stand in for a production key.
    create_app(app_config(redis_url, tmp_path / "instance", **{missing: None}))
    assert (tmp_path / "instance" / "dev-keys.json").exists()
    with pytest.raises(ConfigurationError, match=missing):
        create_app(config)


def test_production_starts_with_every_key(redis_url, tmp_path):
    app = create_app(app_config(redis_url, tmp_path / "instance", **PRODUCTION))
    assert "911" in Texter(app.test_client(), url=PUBLIC + "/sms").send("hi")
    assert not (tmp_path / "instance" / "dev-keys.json").exists()


@pytest.mark.parametrize("env", ["Production", "prod", "staging", ""])
def test_an_unknown_environment_is_refused_not_run_with_development_keys(redis_url, tmp_path, env):
    with pytest.raises(ConfigurationError, match="HELPLINE_ENV must be one of"):
        create_app(app_config(redis_url, tmp_path / "instance", HELPLINE_ENV=env))
    assert not (tmp_path / "instance" / "dev-keys.json").exists()


@pytest.mark.parametrize("change, problem", [
    ({"SECRET_KEY": "short"}, "SECRET_KEY is shorter than 32"),
    ({"HELPLINE_HASH_KEY": "x" * 31}, "HELPLINE_HASH_KEY is shorter than 32"),
    ({"PUBLIC_URL": "http://helpline.example"}, "PUBLIC_URL must start with https://"),
    ({"PUBLIC_URL": None}, "PUBLIC_URL is not set"),
    ({"TWILIO_FROM_NUMBER": None}, "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID is not set"),
    ({"TWILIO_ACCOUNT_SID": None}, "TWILIO_ACCOUNT_SID is not set"),
])
def test_production_names_each_setting_that_is_not_fit(redis_url, tmp_path, change, problem):
    with pytest.raises(ConfigurationError, match=problem):
        create_app(app_config(redis_url, tmp_path / "instance", **{**PRODUCTION, **change}))


def test_development_key_file_is_owner_only(redis_url, tmp_path):
    create_app(app_config(redis_url, tmp_path / "instance", HELPLINE_DATA_KEY=None))
    path = tmp_path / "instance" / "dev-keys.json"
    assert path.stat().st_mode & 0o077 == 0
    assert json.loads(path.read_text())["HELPLINE_DATA_KEY"]


# -- the /sms rate limit ----------------------------------------------------------------------


def state_of(app, number):
    helpline = app.extensions["helpline"]
    cid = helpline.conversation_id("sms", number)
    conv = app.extensions["store"].load(cid)
    return conv, app.extensions["redis"].llen(transcript_key(cid))


def test_past_the_limit_a_message_is_answered_empty_and_not_processed(limited):
    texter = Texter(limited.test_client(), "+16615550123")
    for body in ("hi", "1", "2"):
        assert texter.send(body)
    before = state_of(limited, texter.number)
    answer = texter.post(texter.form("hello?"))
    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    assert replies_of(answer.data) == []
    conv, entries = state_of(limited, texter.number)
    assert (conv.messages, conv.state, entries) == (before[0].messages, before[0].state, before[1])
    # another texter is not affected
    assert "911" in Texter(limited.test_client(), "+16615550124").send("hi")


def test_a_message_waiting_for_the_conversation_lock_counts_once_and_keeps_its_count(limited):
    texter = Texter(limited.test_client(), "+16615550123")
    texter.send("hi")
    texter.send("1")
    cid = limited.extensions["helpline"].conversation_id("sms", texter.number)
    held = lambda: limited.extensions["redis"].set(f"l:{cid}", "someone-else", px=300)  # noqa: E731
    # Another process holds the conversation for 0.3 s: each message tries again and again meanwhile.
    held()
    assert texter.send("2")  # the 3rd message of 3 allowed: answered, not counted once per try
    held()
    assert replies_of(texter.post(texter.form("hello?")).data) == []  # the 4th: past the limit after waiting too


def test_past_the_limit_an_emergency_is_handled_in_full_queued_first_and_alerted(limited):
    client = limited.test_client()
    texter = Texter(client, "+16615550123")
    chat = client.post("/chat/api/session", json={"lang": "en"}).json["token"]
    for n, body in enumerate(("1", "1", "1")):  # someone else already in line, by web chat, normal priority
        client.post("/chat/api/messages", json={"token": chat, "text": body, "client_id": str(n)})
    for body in ("hi", "1", "2"):  # this texter has used their whole allowance
        texter.send(body)

    reply = texter.send("he has a gun and will kill me")
    assert "911" in reply
    conv, _ = state_of(limited, texter.number)
    assert conv.risk == "emergency"
    assert any(j.func_name == "workers.alerts.emergency_alert" for j in limited.extensions["queue"].jobs)
    # What they write next is answered too: the offer of a counsellor is taken, and they are first in line.
    assert "in line" in texter.send("1")
    waiting = limited.extensions["waiting"]
    cid = limited.extensions["helpline"].conversation_id("sms", texter.number)
    assert [w[0] for w in waiting.waiting()] == [cid, limited.extensions["helpline"].conversation_id("web", chat)]
    texter.send("im in the back room of the store")  # and their next words reach the counsellor
    said = [e["text"] for e in limited.extensions["store"].transcript(cid) if e["from"] == "texter"]
    assert said[-1] == "im in the back room of the store"


def test_past_the_limit_the_emergency_allowances_still_end(limited):
    texter = Texter(limited.test_client(), "+16615550123")
    for body in ("hi", "1", "2"):
        texter.send(body)
    assert "911" in texter.send("he has a gun and will kill me")  # the emergency allowance (1)
    answered = [texter.send("please") for _ in range(5)]  # then as many again as the ordinary limit (3)
    assert [bool(a) for a in answered] == [True, True, True, False, False]
    assert texter.send("he has a gun and will kill me") == ""  # a flood is not processed without end


def test_a_retry_of_an_answered_message_gets_its_answer_past_the_limit(limited):
    texter = Texter(limited.test_client(), "+16615550123")
    texter.send("hi")
    form = texter.form("1")
    first = texter.post(form)
    texter.send("2")
    texter.send("3")  # the limit is now used up
    assert texter.post(form).data == first.data


def test_unsigned_requests_do_not_use_up_a_texters_allowance(limited):
    client = limited.test_client()
    texter = Texter(client, "+16615550123")
    for _ in range(10):
        assert texter.post(texter.form("hi"), signature="forged").status_code == 403
    assert "911" in texter.send("hi")


def test_the_limit_is_keyed_on_a_hash_of_the_sender(limited, redis_client):
    texter = Texter(limited.test_client(), "+16615550123")
    texter.send("hi")
    names = [k.decode() for k in redis_client.scan_iter("rl:*")]
    digest = limited.extensions["vault"].digest(texter.number)
    assert names and all(digest in n for n in names)
    assert not any("5550123" in n for n in names)


# -- the console's safeguards ---------------------------------------------------------------------


def csrf_of(answer) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', answer.get_data(as_text=True))
    return found.group(1) if found else ""


def sign_in(client, name="ana", password=PASSWORD):
    token = csrf_of(client.get("/console/signin"))
    return client.post("/console/signin", data={"name": name, "password": password, "csrf_token": token})


def console_cookie(client):
    cookie = client.get_cookie("helpline_console", path="/console")
    return cookie.value if cookie else None


def test_console_forms_need_the_csrf_token(app, redis_client):
    with app.app_context():
        accounts.add(redis_client, "ana", PASSWORD)
    client = app.test_client()
    assert sign_in(client).status_code == 302
    assert client.post("/console/signout").status_code == 400
    assert client.post("/console/signout", data={"csrf_token": "wrong"}).status_code == 400
    assert client.get("/console/").status_code == 200  # still signed in


def test_console_gives_a_new_session_at_sign_in(app, redis_client):
    with app.app_context():
        accounts.add(redis_client, "ana", PASSWORD)
    client = app.test_client()
    client.get("/console/signin")
    before = console_cookie(client)
    assert sign_in(client).status_code == 302
    assert console_cookie(client) not in (None, before)


def test_console_sign_in_is_rate_limited_per_name(app, redis_client):
    with app.app_context():
        accounts.add(redis_client, "ana", PASSWORD)
    client = app.test_client()
    codes = [sign_in(client, password="guess").status_code for _ in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    assert sign_in(client).status_code == 429  # even the right password, until the window passes


def test_console_session_ends_after_idle_minutes(app, redis_client):
    with app.app_context():
        accounts.add(redis_client, "ana", PASSWORD)
    client = app.test_client()
    sign_in(client)
    assert client.get("/console/").status_code == 200
    for key in redis_client.scan_iter("console:s:*"):  # the counsellor walked away long ago
        redis_client.hset(key, "seen", "0")
    answer = client.get("/console/")
    assert answer.status_code == 302 and "expired=1" in answer.headers["Location"]
