"""Emergency alerts reach the on-call webhook with ids only; waiting conversations reach the console."""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot import outbound
from workers import alerts

from bot.hours import ONLINE

DANGER = "he has a gun and says he will kill me"


class Receiver:
    """An on-call webhook: keeps the raw bodies it was posted, answers the scripted statuses first."""

    def __init__(self):
        self.bodies: list[bytes] = []
        self.statuses: list[int] = []
        self.hang = threading.Event()  # set: take the alert and never answer
        self.done = threading.Event()
        self.arrived: list[float] = []  # time.monotonic() of each post
        self.probe = lambda: None  # what else had happened by each post (a test sets it)
        self.probed: list = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.arrived.append(time.monotonic())
                receiver.probed.append(receiver.probe())
                receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.hang.is_set():
                    receiver.done.wait(30)
                    return
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alert"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


@pytest.fixture
def receiver(config):
    """A local alert receiver set as ALERT_WEBHOOK_URL (request it before `app`)."""
    found = Receiver()
    config.update(ALERT_WEBHOOK_URL=found.url, PUBLIC_URL="http://localhost")
    yield found
    found.done.set()
    found.server.shutdown()
    found.server.server_close()


def test_an_emergency_alert_posts_ids_and_a_console_link_never_the_number_or_words(receiver, app, texter,
                                                                                    run_jobs):
    texter.send("hi")
    assert "911" in texter.send(DANGER)

    run_jobs()

    [body] = receiver.bodies
    alert = json.loads(body)
    conv_id = app.extensions["vault"].conversation_id("sms", texter.number)
    assert (alert["kind"], alert["conversation"], alert["risk"], alert["channel"], alert["language"]) == (
        "emergency", conv_id, "emergency", "sms", "en")
    assert "weapon" in alert["matched"]
    assert alert["console"] == f"http://localhost/console/c/{conv_id}"
    # Triage ids ("threat_to_kill") are names of patterns, not the texter's words.
    assert texter.number[2:].encode() not in body and b"gun" not in body and b"says he" not in body


def test_a_failing_receiver_is_asked_again(receiver, app, texter, run_jobs):
    receiver.statuses = [503]
    texter.send(DANGER)

    run_jobs()

    assert len(receiver.bodies) == 2 and receiver.bodies[0] == receiver.bodies[1]


def test_a_flood_of_emergencies_from_one_conversation_sends_one_alert(receiver, app, texter, run_jobs):
    for _ in range(5):
        assert "911" in texter.send(DANGER)  # each one still told 911 at once
    run_jobs()
    assert len(receiver.bodies) == 1


def test_an_alert_that_could_not_be_delivered_is_tried_again_by_the_next_emergency(receiver, app, texter,
                                                                                  run_jobs):
    receiver.statuses = [503, 503, 503]
    texter.send(DANGER)
    run_jobs()
    texter.send(DANGER)
    run_jobs()
    assert len(receiver.bodies) == 4  # three failed attempts, then the next emergency's alert


def test_without_an_alert_target_the_log_says_so(app, texter, run_jobs, caplog):
    texter.send(DANGER)

    with caplog.at_level(logging.WARNING, logger="workers.alerts"):
        run_jobs()

    conv_id = app.extensions["vault"].conversation_id("sms", texter.number)
    [record] = [r for r in caplog.records if r.name == "workers.alerts"]
    assert "no ALERT_WEBHOOK_URL" in record.getMessage() and conv_id in record.getMessage()


def test_a_newly_waiting_conversation_is_announced_to_the_console(app, queued_texter, run_jobs):
    app.extensions["redis"].sadd(ONLINE, "ana")
    pubsub = app.extensions["redis"].pubsub()
    pubsub.subscribe("ev:console")
    _, conv_id = queued_texter()

    run_jobs()

    events = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        if message["type"] == "message":
            events.append(json.loads(message["data"]))
    pubsub.close()
    [waiting] = [e for e in events if e["kind"] == "waiting"]
    assert (waiting["conv"], waiting["priority"], waiting["depth"], waiting["online"]) == (conv_id, "normal", 1, 1)


def test_a_counsellors_reply_goes_out_before_a_backlog_of_alerts(receiver, sending, app, make_texter, queued_texter,
                                                                   run_jobs):
    _, conv_id = queued_texter()
    for _ in range(3):  # three conversations in danger, each with an alert waiting for the worker
        make_texter().send(DANGER)
    with app.app_context():
        outbound.queue_reply(conv_id, "I'm here with you.", "ana")
    receiver.probe = lambda: len(sending.sent)

    run_jobs()

    assert len(sending.sent) == 1
    assert receiver.probed == [1, 1, 1]  # queued last, sent before any alert


def test_an_alert_webhook_that_never_answers_holds_the_worker_for_a_bounded_time(receiver, app, texter, run_jobs,
                                                                                 monkeypatch, caplog):
    monkeypatch.setattr(alerts, "ALERT_TIMEOUT", 1.0)
    monkeypatch.setattr(alerts, "ALERT_DEADLINE", 3.5)
    receiver.hang.set()
    texter.send(DANGER)

    with caplog.at_level(logging.ERROR, logger="workers.alerts"):
        run_jobs()

    # A 1 s attempt, a 1 s pause, a second 1 s attempt; the 4 s pause would pass the deadline: no third.
    assert len(receiver.arrived) == 2
    assert "could not be delivered" in caplog.text  # said once the time is up, not cut off by a bad timeout
