"""An outsider's attack on the texter's webhook's two lanes (bot.sms.FastLane and Flask's view):
odd bodies, odd headers, a dead store, a real gunicorn with keep-alive. A texter (and Twilio) must
not be able to tell which lane answered, and what the fast lane declines Flask answers as before."""
from __future__ import annotations

import http.client
import json
import logging
import os
import secrets
import socket
import subprocess
import unicodedata
from urllib.parse import parse_qsl, quote

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from bot import create_app
from bot.cli import GUNICORN_THREADS
from tests.bot.test_sms_lanes import CONVERSATIONS, comparable, flask_client  # noqa: F401 (a fixture)
from tests.conftest import Texter, replies_of, sign
from tests.ops.processes import BIN, ROOT, free_port, stop, wait_for_port
from tests.ops.test_metrics import scrape, value

FORM_TYPE = "application/x-www-form-urlencoded"
PUBLIC = "https://help.example.org"  # PUBLIC_URL, where a test needs one


def encoded(form: dict) -> bytes:
    """A form as Twilio writes it: percent-encoded UTF-8."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in form.items()).encode()


def webhook(texter: Texter, body: str = "hi", **extra) -> bytes:
    """The body of a webhook carrying `body` from `texter`."""
    return encoded(texter.form(body, **extra))


def raw_post(client, texter: Texter, raw: bytes, content_type: str = FORM_TYPE, signed_form=None, **environ):
    """POST raw bytes to /sms, signed over the form as werkzeug reads it (or `signed_form`)."""
    if signed_form is None:
        signed_form = MultiDict(parse_qsl(raw.decode(errors="werkzeug.url_quote"), keep_blank_values=True,
                                          errors="werkzeug.url_quote"))
    headers = {"X-Twilio-Signature": sign(texter.url, signed_form)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post("/sms", data=raw, headers=headers, environ_overrides=environ)


def both_lanes(client, flask_client, make, **kwargs):
    """The same request from two texters new to the help line, one to each lane."""
    fast, slow = Texter(client), Texter(flask_client)
    return raw_post(client, fast, make(fast), **kwargs), raw_post(flask_client, slow, make(slow), **kwargs)


ODD_BODIES = {
    "a space as + and a plus as %2B": lambda t: webhook(t, "a+b c").replace(b"%20", b"+"),
    "accents in NFD": lambda t: webhook(t, unicodedata.normalize("NFD", "hola, está aquí mi jefe")),
    "accents in NFC": lambda t: webhook(t, unicodedata.normalize("NFC", "hola, está aquí mi jefe")),
    "1,700 emoji": lambda t: webhook(t, "😢" * 1700),
    "two Body fields": lambda t: webhook(t, "hi") + b"&Body=STOP",
    "an empty Body": lambda t: webhook(t, ""),
    "a name with no =": lambda t: b"Junk&" + webhook(t, "hi"),
    "; as a separator": lambda t: webhook(t, "hi").replace(b"&Body=", b";Body="),
    "a byte-order mark": lambda t: "\ufeff".encode() + webhook(t, "hi"),
    "a NUL in the body": lambda t: webhook(t, "hi\x00there"),
    "a stray %": lambda t: webhook(t, "100%").replace(b"100%25", b"100%"),
    "an encoded byte that is not UTF-8": lambda t: webhook(t, "hi").replace(b"Body=hi", b"Body=hi%FF"),
    "MessageSid empty, SmsSid given": lambda t: webhook(t, "hi", MessageSid="", SmsSid="SM" + secrets.token_hex(16)),
}


@pytest.mark.parametrize("make", ODD_BODIES.values(), ids=list(ODD_BODIES))
def test_an_odd_but_signed_body_is_answered_alike_by_both_lanes(client, flask_client, make):
    fast, slow = both_lanes(client, flask_client, make)
    assert comparable(fast) == comparable(slow)
    assert fast.status_code < 500


CONTENT_TYPES = [FORM_TYPE + "; charset=ISO-8859-1", FORM_TYPE.upper(), f"  {FORM_TYPE} ;charset=utf-8",
                 None, "text/plain", FORM_TYPE + ", text/plain"]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_an_odd_content_type_is_answered_alike_by_both_lanes(client, flask_client, content_type):
    fast, slow = both_lanes(client, flask_client, webhook, content_type=content_type)
    assert comparable(fast) == comparable(slow)


LENGTHS = {
    "+N": lambda n: f"+{n}",
    "N_": lambda n: f"{n // 10}_{n % 10}",
    "Arabic-Indic digits": lambda n: "".join(chr(0x0660 + int(d)) for d in str(n)),
    " N ": lambda n: f" {n} ",
    "N-1": lambda n: str(n - 1),
    "-1": lambda n: "-1",
    "0": lambda n: "0",
    "abc": lambda n: "abc",
    "N+5": lambda n: str(n + 5),
}


@pytest.mark.parametrize("length", [
    pytest.param(length, id=name) for name, length in LENGTHS.items()])
def test_an_odd_content_length_is_answered_alike_by_both_lanes(client, flask_client, length):
    answers = []
    for lane in (client, flask_client):
        texter = Texter(lane)
        body = webhook(texter)
        answers.append(raw_post(lane, texter, body, CONTENT_LENGTH=length(len(body))))
    assert comparable(answers[0]) == comparable(answers[1])


# -- settings: a proxy's public URL, trusted hosts ------------------------------------------------


@pytest.fixture
def built():
    """Apps a test builds with settings of its own, their Redis clients closed after."""
    apps = []

    def build(config, **settings):
        apps.append(create_app(dict(config, **settings)))
        return apps[-1]

    yield build
    for app in apps:
        app.extensions["redis"].close()


def lanes(app):
    """A test client through the fast lane, and one straight to Flask's view."""
    return app.test_client(), Client(app.wsgi_app.flask, app.response_class)


@pytest.mark.parametrize("public", ["https://help.example.org/line", "https://help.example.org/line/",
                                    "https://help.example.org:443", "http://help.example.org:80/"])
def test_behind_a_proxy_with_a_path_or_a_port_both_lanes_check_the_same_url(config, built, public):
    fast_client, slow_client = lanes(built(config, PUBLIC_URL=public))
    twilio_url = public.rstrip("/").replace(":443", "").replace(":80", "") + "/sms?a=1&b=%20"
    for client in (fast_client, slow_client):
        texter = Texter(client)
        form = texter.form("hi")
        answer = client.post("/sms?a=1&b=%20", data=form, headers={"X-Twilio-Signature": sign(twilio_url, form)})
        assert answer.status_code == 200 and replies_of(answer.data)


HOSTS_FLASK_REFUSES = {  # settings, then the Host header of a webhook signed for the URL Twilio was given
    "outside TRUSTED_HOSTS": ({"PUBLIC_URL": PUBLIC, "TRUSTED_HOSTS": ["help.example.org"]}, "evil.example"),
    "an empty label": ({}, "a..example.org"),
    "a 64-character label behind a proxy": ({"PUBLIC_URL": PUBLIC}, "a" * 64 + ".example.org"),
}


@pytest.mark.parametrize("settings, host", HOSTS_FLASK_REFUSES.values(), ids=list(HOSTS_FLASK_REFUSES))
def test_a_host_flask_refuses_is_refused_by_both_lanes(config, built, settings, host):
    answers = []
    for client in lanes(built(config, **settings)):
        texter = Texter(client)
        form = texter.form("hi")
        url = (settings.get("PUBLIC_URL") or f"http://{host}") + "/sms"
        answers.append(client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(url, form), "Host": host}))
    assert answers[1].status_code == 400  # Flask's refusal
    assert comparable(answers[0]) == comparable(answers[1])


def test_a_host_that_is_not_a_valid_name_gets_a_clear_refusal_not_a_500(config, built):
    app, host = built(config), "xn--zz.example.org"
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: an exception is a 500
    texter = Texter(None, url=f"http://{host}/sms")
    form = texter.form("hi")
    environ = EnvironBuilder("/sms", method="POST", data=form, headers={
        "Host": host, "X-Twilio-Signature": sign(texter.url, form)}).get_environ()
    # Straight to the WSGI app: werkzeug's test Client itself fails on such a Host, after the answer.
    _, status, _ = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    assert status.startswith("400")


# -- a store that cannot be reached ---------------------------------------------------------------


def log_lines(capfd) -> list[dict]:
    return [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]


def test_with_redis_down_both_lanes_give_the_static_safety_reply_logged_under_the_request_id(config, built, capfd):
    fast_client, slow_client = lanes(built(config, REDIS_URL="redis://127.0.0.1:1/0"))  # nothing listens on port 1
    answers, logged = [], []
    for client in (fast_client, slow_client):
        texter = Texter(client)
        capfd.readouterr()
        answers.append(texter.post(texter.form("me quiere matar, ayuda")))
        logged.append(log_lines(capfd))
        assert texter.number[-7:] not in json.dumps(logged[-1]) and "matar" not in json.dumps(logged[-1])
    fast, slow = answers
    assert fast.status_code == 200 and "911" in " ".join(replies_of(fast.data))
    assert comparable(fast) == comparable(slow)
    for answer, lines in zip(answers, logged):
        assert [line["level"] for line in lines if "safety reply" in line["msg"]] == ["error"]
        assert {line.get("request_id") for line in lines} == {answer.headers["X-Request-Id"]}


# -- a real gunicorn: one keep-alive connection, both lanes, one webhook after another ----------------


@pytest.fixture
def gunicorn(config, tmp_path):
    """The app under gunicorn as the Procfile runs it (one worker), on this test's Redis."""
    env = dict(os.environ, REDIS_URL=config["REDIS_URL"], TWILIO_AUTH_TOKEN=config["TWILIO_AUTH_TOKEN"],
               SECRET_KEY=config["SECRET_KEY"], HELPLINE_DATA_KEY=config["HELPLINE_DATA_KEY"],
               HELPLINE_HASH_KEY=config["HELPLINE_HASH_KEY"], HELPLINE_INSTANCE_PATH=str(tmp_path / "instance"),
               PUBLIC_URL=PUBLIC)
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "ab")
    process = subprocess.Popen([str(BIN / "gunicorn"), "--config", "python:bot.gunicorn_conf", "--workers", "1",
                                *GUNICORN_THREADS, "--bind", f"127.0.0.1:{port}", "bot:create_app()"],
                               env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_for_port(port, process)
        yield port
    finally:
        stop(process)
        log.close()


def test_one_keep_alive_connection_carries_webhooks_of_both_lanes_in_turn_under_gunicorn(gunicorn):
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn, timeout=30)
    texter = Texter(None, url=PUBLIC + "/sms")

    def send(form: dict | None = None, *, signature: str | None = None, chunked=False, path="/sms", method="POST",
             body: bytes | None = None):
        if body is None and form is not None:
            body = encoded(form)
        headers = {"Content-Type": FORM_TYPE}
        if form is not None:
            headers["X-Twilio-Signature"] = sign(PUBLIC + path, form) if signature is None else signature
        if chunked:
            connection.request(method, path, body=iter([body[:20], body[20:]]), headers=headers, encode_chunked=True)
        else:
            connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()

    sockets, seen = set(), []
    for step, (args, kwargs, status) in enumerate([
        ((texter.form("hi"),), {}, 200),                                    # the fast lane
        ((texter.form("2"),), {"signature": "forged"}, 403),               # declined after reading the body
        ((texter.form("2"),), {"chunked": True}, 200),                     # no length: Flask's
        (({k: v for k, v in texter.form("x").items() if k != "From"},), {}, 400),  # declined: no sender
        ((None,), {"method": "GET"}, 405),
        ((texter.form("3"),), {"path": "/sms?x=1"}, 200),
        ((texter.form("menu"),), {}, 200),                                 # the fast lane again
        ((texter.form("hi", Body="x" * 70_000),), {}, 413),               # past MAX_CONTENT_LENGTH: last, as
    ]):                                                     # gunicorn closes a connection whose body went unread
        status, headers, body = send(*args, **kwargs)
        sockets.add(id(connection.sock))
        seen.append(status)
        assert headers["Cache-Control"] == "no-store" and headers["X-Request-Id"], step
        if status == 200:
            assert headers["Content-Type"] == "text/xml; charset=utf-8" and replies_of(body), step
    assert seen == [200, 403, 200, 400, 405, 200, 200, 413]
    assert len(sockets) == 1  # one connection throughout: no answer made gunicorn close it


def test_webhooks_pipelined_on_one_connection_are_each_answered_in_order_under_gunicorn(gunicorn):
    texter = Texter(None, url=PUBLIC + "/sms")

    def request(form: dict, signature: str | None = None) -> bytes:
        body = encoded(form)
        return (f"POST /sms HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM_TYPE}\r\n"
                f"X-Twilio-Signature: {signature or sign(PUBLIC + '/sms', form)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    no_sender = {k: v for k, v in texter.form("1").items() if k != "From"}
    sent = [request(texter.form("hi")), request(texter.form("1"), signature="forged"), request(no_sender),
            request(texter.form("ayuda")), request(texter.form("2"))]
    with socket.create_connection(("127.0.0.1", gunicorn), timeout=30) as connection:
        connection.sendall(b"".join(sent))
        stream = connection.makefile("rb")
        answers = [read_answer(stream) for _ in sent]
    assert [status for status, _ in answers] == [200, 403, 400, 200, 200]
    assert all(replies_of(body) for status, body in answers if status == 200)


def read_answer(stream) -> tuple[int, bytes]:
    """One HTTP answer off a connection's stream: its status and its body (by Content-Length)."""
    status = int(stream.readline().split()[1])
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, stream.read(length)


# -- one texter on both lanes ------------------------------------------------------------------


def test_twilio_retrying_a_message_on_the_other_lane_gets_the_first_answer_and_nothing_twice(client, flask_client):
    fast, slow = Texter(client), Texter(flask_client)
    slow.number = fast.number  # one texter, whose webhooks reach either lane
    for first, retry in ((fast, slow), (slow, fast)):
        form = first.form("hi" if first is fast else "2")
        answer = first.post(form)
        again = retry.post(form)
        assert answer.status_code == 200 and replies_of(answer.data)
        assert comparable(again) == comparable(answer)
    # Twice "2" would have chosen from the next menu; the texter is where one "hi", one "2" lead.
    other = Texter(client)
    other.send("hi")
    other.send("2")
    assert fast.send("my boss keeps my ID") == other.send("my boss keeps my ID")


def test_a_texter_whose_webhooks_alternate_lanes_reads_what_a_texter_on_one_lane_reads(client, flask_client):
    one_lane, fast, slow = Texter(client), Texter(client), Texter(flask_client)
    slow.number = fast.number
    for n, text in enumerate(CONVERSATIONS[1]):
        alternating = (fast, slow)[n % 2]
        assert alternating.send(text) == one_lane.send(text), text


def test_a_senders_rate_limit_counts_every_message_whichever_lane_took_it(limited):
    fast = Texter(limited.test_client())
    slow = Texter(lanes(limited)[1], fast.number)
    for texter in (fast, slow, fast):  # three an hour, each lane taking some
        assert texter.send("hi")
    assert slow.send("hi") == "" and fast.send("hi") == ""  # the fourth and fifth: nothing on the phone


@pytest.mark.parametrize("method, path", [("HEAD", "/sms"), ("GET", "/sms"), ("PUT", "/sms"), ("POST", "/sms/"),
                                          ("GET", "/sms?x=1"), ("post", "/sms"), ("POST", "//sms")])
def test_a_signed_webhook_by_another_method_or_path_is_answered_alike_by_both_lanes(client, flask_client, method, path):
    answers = []
    for lane in (client, flask_client):
        texter = Texter(lane)
        form = texter.form("hi")
        answers.append(lane.open(path, method=method, data=form,
                                 headers={"X-Twilio-Signature": sign("http://localhost" + path, form)}))
    assert comparable(answers[0]) == comparable(answers[1])
    assert answers[0].status_code in (308, 404, 405) or (method == "post" and answers[0].status_code == 200)


@pytest.mark.parametrize("given", ["abcd1234", "a" * 64, "a" * 65, "abc1234", "abcd 1234", "abcd1234,efgh5678",
                                   "ñandú-1234", "../../etc/passwd", ""])
def test_a_proxys_request_id_is_kept_or_replaced_alike_by_both_lanes(client, flask_client, given):
    ids = []
    for lane in (client, flask_client):
        texter = Texter(lane)
        form = texter.form("hi")
        answer = lane.post("/sms", data=form, headers={"X-Twilio-Signature": sign(texter.url, form),
                                                       "X-Request-Id": given.encode().decode("latin-1")})
        assert answer.status_code == 200 and replies_of(answer.data)
        ids.append(answer.headers["X-Request-Id"])
    kept = given.isascii() and 8 <= len(given) <= 64 and all(c.isalnum() or c in "._-" for c in given)
    assert ids[0] == ids[1] == given if kept else all(len(i) == 16 and i != given for i in ids)


# -- what is kept: logs, metrics, key names ----------------------------------------------------


@pytest.fixture
def debug_logs():
    """Every log line, DEBUG included, for this test only (bot.logs.configure sets the root level)."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


def test_at_debug_neither_lane_logs_keys_or_counts_a_texters_number_or_words(config, built, capfd, debug_logs,
                                                                            redis_client):
    app = built(config, LOG_LEVEL="DEBUG")
    fast_client, slow_client = lanes(app)
    number_tail, words = "5550163", "mi jefe me pega"
    for lane in (fast_client, slow_client, fast_client):
        texter = Texter(lane, "+1661" + number_tail if lane is fast_client else "+16615550164")
        capfd.readouterr()
        answer = texter.post(texter.form(words))
        lines = log_lines(capfd)
        assert answer.status_code == 200 and lines
        assert {line.get("request_id") for line in lines} == {answer.headers["X-Request-Id"]}
        assert [(line["route"], line["status"]) for line in lines if line["msg"] == "request"] == [("/sms", 200)]
        logged = json.dumps(lines, ensure_ascii=False)
        assert number_tail not in logged and "5550164" not in logged and "jefe" not in logged
    keys = b" ".join(redis_client.scan_iter(count=1000)).decode(errors="replace")
    assert number_tail not in keys and "5550164" not in keys and "jefe" not in keys
    metrics = scrape(fast_client)
    assert 'helpline_webhook_seconds_count{endpoint="sms.inbound"} 3.0' in metrics
    assert number_tail not in metrics and "jefe" not in metrics


def test_a_webhook_the_fast_lane_declines_is_timed_once_by_flask(client):
    texter = Texter(client)
    form = {k: v for k, v in texter.form("hi").items() if k != "From"}
    assert client.post("/sms", data=form, headers={"X-Twilio-Signature": sign(texter.url, form)}).status_code == 400
    texter.send("hi")
    assert value(scrape(client), "helpline_webhook_seconds_count", '{endpoint="sms.inbound"}') == 2
