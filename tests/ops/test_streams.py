"""Live streams hold a thread each; however many browsers keep one open, webhooks are still answered."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from bot import create_app
from bot.events import BUSY
from tests.conftest import AUTH_TOKEN, Texter, app_config, replies_of, sign
from tests.ops.processes import BIN, ROOT, free_port, wait_for_port
from tests.privacy.redis_faults import CuttingProxy
from tests.privacy.test_faults import tcp_redis  # noqa: F401 (a fixture)


@pytest.fixture
def one_stream(config):
    config["LIVE_STREAMS"] = 1
    return create_app(config)


def open_chat(client) -> str:
    return client.post("/chat/api/session", json={"lang": "en"}).json["token"]


def test_past_the_process_limit_a_stream_is_told_to_come_back_and_gets_a_slot_once_one_frees(one_stream):
    client = one_stream.test_client()
    first, second = open_chat(client), open_chat(client)
    holding = client.get(f"/chat/api/events?token={first}", buffered=False)
    assert next(holding.response).startswith(b"retry: 2000")  # a real stream

    refused = client.get(f"/chat/api/events?token={second}")
    assert refused.status_code == 200 and refused.mimetype == "text/event-stream"
    assert refused.get_data(as_text=True) == BUSY  # EventSource reconnects in 10 s by itself

    holding.close()  # the browser left
    again = client.get(f"/chat/api/events?token={second}", buffered=False)
    assert next(again.response).startswith(b"retry: 2000")
    again.close()


@pytest.fixture
def gunicorn(config, tmp_path):
    """The Procfile's web process (one worker, four threads, two stream slots); yields its base URL."""
    port = free_port()
    env = dict(os.environ, REDIS_URL=config["REDIS_URL"], TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               PUBLIC_URL=f"http://127.0.0.1:{port}", SECRET_KEY=config["SECRET_KEY"],
               HELPLINE_DATA_KEY=config["HELPLINE_DATA_KEY"], HELPLINE_HASH_KEY=config["HELPLINE_HASH_KEY"],
               HELPLINE_INSTANCE_PATH=str(tmp_path / "instance"), LIVE_STREAMS="2")
    with open(tmp_path / "gunicorn.log", "ab") as log:
        web = subprocess.Popen([str(BIN / "gunicorn"), "--config", "python:bot.gunicorn_conf", "--workers", "1",
                                "--worker-class", "gthread", "--threads", "4", "--bind", f"127.0.0.1:{port}",
                                "bot:create_app()"], env=env, cwd=ROOT, stdout=log, stderr=log,
                               start_new_session=True)
    try:
        wait_for_port(port, web)
        yield f"http://127.0.0.1:{port}"
    finally:
        # Not a graceful stop: that would wait for the open streams (bot/gunicorn_conf.py).
        os.killpg(web.pid, signal.SIGKILL)
        web.wait(timeout=20)


def open_raw_stream(base: str, token: str) -> socket.socket:
    port = int(base.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET /chat/api/events?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def test_a_webhook_is_answered_while_more_browsers_hold_streams_than_the_process_has_threads(gunicorn):
    streams: list[socket.socket] = []
    try:
        tokens = [requests.post(gunicorn + "/chat/api/session", json={"lang": "en"}, timeout=10).json()["token"]
                  for _ in range(2)]
        for n in range(6):  # six open chat pages on a process of four threads
            s = open_raw_stream(gunicorn, tokens[n % 2])
            assert b"text/event-stream" in s.recv(4096)
            streams.append(s)

        texter = Texter(None, "+16615550188", url=gunicorn + "/sms")
        form = texter.form("he is going to hurt me")
        started = time.monotonic()
        answer = requests.post(gunicorn + "/sms", data=form,
                               headers={"X-Twilio-Signature": sign(gunicorn + "/sms", form)}, timeout=10)
        took = time.monotonic() - started
        assert answer.status_code == 200 and "911" in " ".join(replies_of(answer.content))
        assert took < 5  # not after a stream's minute: Twilio gives up at 15 s
    finally:
        for s in streams:
            s.close()


def test_one_token_opened_a_dozen_times_holds_one_slot_and_another_visitor_still_streams(gunicorn):
    hog, visitor = (requests.post(gunicorn + "/chat/api/session", json={"lang": "en"}, timeout=10).json()["token"]
                    for _ in range(2))
    streams = [open_raw_stream(gunicorn, hog) for _ in range(12)]
    try:
        # The superseded streams hear the takeover within a second and give back their slots.
        deadline, first = time.monotonic() + 20, b""
        while not first.startswith(b"retry: 2000\nevent: live") and time.monotonic() < deadline:
            with requests.get(gunicorn + f"/chat/api/events?token={visitor}", stream=True, timeout=10) as live:
                first = next(live.iter_content(chunk_size=None))
        assert first.startswith(b"retry: 2000\nevent: live")  # a stream, not "busy"
    finally:
        for s in streams:
            s.close()


def test_a_page_that_reconnects_ends_its_ghost_stream_even_when_redis_confirms_subscriptions_slowly(tcp_redis, tmp_path):
    """The ghost hears the newer stream's takeover only if it was subscribed before that was published:
    here every SUBSCRIBE takes 0.3 s to reach Redis, as on a slow network."""
    proxy = CuttingProxy(tcp_redis[1])
    proxy.subscribe_delay = 0.3
    try:
        app = create_app(app_config(f"redis://127.0.0.1:{proxy.port}/0", tmp_path / "instance", LIVE_STREAMS=2))
        client = app.test_client()
        token = open_chat(client)
        ghost = client.get(f"/chat/api/events?token={token}", buffered=False)
        assert next(ghost.response).startswith(b"retry: 2000\nevent: live")
        newer = client.get(f"/chat/api/events?token={token}", buffered=False)  # the same page, reconnecting
        assert next(newer.response).startswith(b"retry: 2000\nevent: live")

        ended = threading.Event()
        threading.Thread(target=lambda: (list(ghost.response), ended.set()), daemon=True).start()
        assert ended.wait(5)  # not after the stream's minute, holding one of the process's two slots
        ghost.close()
        other = client.get(f"/chat/api/events?token={open_chat(client)}", buffered=False)
        assert next(other.response).startswith(b"retry: 2000\nevent: live")  # the freed slot
        other.close()
        newer.close()
    finally:
        proxy.close()
