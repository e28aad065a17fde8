"""Two gunicorn web processes and two RQ workers on one Redis, 200 texters at once: nothing lost, nothing twice."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from rq.registry import FailedJobRegistry, StartedJobRegistry

from bot import create_app
from bot.cli import GUNICORN_THREADS
from tests.conftest import AUTH_TOKEN, replies_of, sign
from tests.ops.processes import BIN, ROOT, free_port, stop, wait_for_port

PUBLIC_URL = "https://helpline.test"  # both web processes check signatures against the public URL
TEXTERS = 200
SCRIPT = ["hi", "1", "1", "yes", "thank you"]  # hello, safe, a counsellor, consent, then one more while waiting


@pytest.fixture
def cluster(config, tmp_path):
    """Two web processes (gunicorn as the Procfile runs it, two workers each) and two `helpline worker`s, sharing one Redis."""
    env = dict(os.environ, REDIS_URL=config["REDIS_URL"], TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_URL=PUBLIC_URL,
               SECRET_KEY=config["SECRET_KEY"], HELPLINE_DATA_KEY=config["HELPLINE_DATA_KEY"],
               HELPLINE_HASH_KEY=config["HELPLINE_HASH_KEY"], HELPLINE_INSTANCE_PATH=str(tmp_path / "instance"))
    ports = [free_port(), free_port()]
    log = open(tmp_path / "processes.log", "ab")
    processes = [
        subprocess.Popen([str(BIN / "gunicorn"), "--config", "python:bot.gunicorn_conf", "--workers", "2",
                          "--bind", f"127.0.0.1:{port}", *GUNICORN_THREADS, "bot:create_app()"],
                         env=env, cwd=ROOT, stdout=log, stderr=log)
        for port in ports
    ] + [subprocess.Popen([str(BIN / "helpline"), "worker"], env=env, cwd=ROOT, stdout=log, stderr=log)
         for _ in range(2)]
    try:
        for port, process in zip(ports, processes):
            wait_for_port(port, process)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()  # both at once, then each waited for
        for process in processes:
            stop(process)
        log.close()


class Person:
    """One texter; message n goes to web process n % 2, so each conversation crosses both."""

    def __init__(self, n: int, urls: list[str]):
        self.n, self.urls = n, urls
        self.number = f"+1661{5000000 + n:07d}"
        self.http = requests.Session()
        self.sent: list[str] = []
        self.received: list[str] = []
        self.answers: dict[str, list[str]] = {}  # MessageSid -> replies; a retry must get the same

    def post(self, url: str, form: dict) -> list[str]:
        answer = self.http.post(url + "/sms", data=form, timeout=30,
                                headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/sms", form)})
        assert answer.status_code == 200, answer.text
        return replies_of(answer.content)

    def talk(self) -> None:
        for i, text in enumerate(SCRIPT):
            sid = "SM" + secrets.token_hex(16)
            form = {"From": self.number, "To": "+16615550199", "Body": text, "MessageSid": sid,
                    "AccountSid": "AC" + "1" * 32, "NumMedia": "0"}
            if i == 2 and self.n % 4 == 0:
                # Twilio gave up waiting and sent the same message again, to the other process, at once.
                with ThreadPoolExecutor(2) as both:
                    first, second = both.map(lambda url: self.post(url, form), self.urls)
                assert first == second
                replies = first
            else:
                replies = self.post(self.urls[i % 2], form)
                if i == 1 and self.n % 3 == 0:
                    assert self.post(self.urls[(i + 1) % 2], form) == replies  # a later retry
            self.sent.append(text)
            self.received += replies
            self.answers[sid] = replies


def test_two_web_processes_and_two_workers_lose_nothing_and_answer_nothing_twice(cluster, config, redis_client):
    people = [Person(n, cluster) for n in range(TEXTERS)]
    errors: list[BaseException] = []

    def run(person: Person):
        try:
            person.talk()
        except BaseException as exc:  # noqa: BLE001 (reported below, with the texter it happened to)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert not errors, errors[:3]

    app = create_app(config)
    store, waiting, queues = app.extensions["store"], app.extensions["waiting"], app.extensions["queues"]
    helpline = app.extensions["helpline"]
    for person in people:
        assert all(person.answers.values()), "every message got an answer"
        conv_id = helpline.conversation_id("sms", person.number)
        transcript = store.transcript(conv_id)
        # Exactly what was sent, once each and in order, and exactly what was answered.
        assert [e["text"] for e in transcript if e["from"] == "texter"] == person.sent
        # (an SMS answer may carry several of the bot's replies in one message)
        assert "\n\n".join(e["text"] for e in transcript if e["from"] == "bot") == "\n\n".join(person.received)
        conv = store.load(conv_id)
        assert (conv.state, conv.handoff, conv.consent, conv.messages) == ("waiting", "waiting", True, len(SCRIPT))
        assert waiting.position(conv_id) is not None
    assert waiting.depth() == TEXTERS

    # The workers told the counsellors about every conversation: every job has run (none waiting, none
    # still running, where a failure would not show yet), and none failed.
    def drained() -> bool:
        return not any(q.count or StartedJobRegistry(queue=q).count for q in queues)

    deadline = time.monotonic() + 30
    while not drained() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert drained()
    assert [FailedJobRegistry(queue=q).count for q in queues] == [0] * len(queues)

    # Counters from four web processes add up, whichever process is asked; the workers keep /healthz green.
    for url in cluster:
        assert requests.get(url + "/healthz", timeout=5).json()["status"] == "ok"
        metrics = requests.get(url + "/metrics", timeout=5).text
        assert re.search(r'^helpline_messages_in_total\{channel="sms"\} (\S+)$', metrics, re.M).group(1) == \
            f"{float(TEXTERS * len(SCRIPT))}"
        assert re.search(r"^helpline_handoffs_total\{priority=\"normal\"\} (\S+)$", metrics, re.M).group(1) == \
            f"{float(TEXTERS)}"
        assert "+1661" not in metrics
    app.extensions["redis"].close()
