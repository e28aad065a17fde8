"""Chaos: web processes and the RQ worker SIGKILLed mid-request and mid-job, under load.

Two gunicorn processes (as the Procfile runs them) and one `helpline worker` share one Redis. The web
processes reach Redis through a TCP proxy that can catch a message's save on its way, so that each kill
lands exactly where it is meant to, every run:

1. a gunicorn master killed with a request in flight (its orphaned worker still answers it); once it has,
   the rest of its process group killed too, as when a container ends; a new gunicorn started;
2. a web worker killed after its save reached Redis, before the answer went out (the answer is lost);
3. a web worker killed while it holds the conversation's lock, before its save reached Redis; then
   Twilio sends that texter's previous, answered message once more;
4. a whole gunicorn (master and workers) killed just after a save, and started again;
5. the RQ work horse killed while the fake Twilio API holds a send it has created, then one it has not;
   then the whole worker (with its horse) killed mid-send and a new one started.

Meanwhile texters keep arriving, a dozen at a time, and text (hello, safe, a counsellor, yes, then four
messages while in line), each message to either process; counsellor replies are queued for the worker.
Twilio is played as it behaves: a webhook that got no 2xx answer is sent again with the same MessageSid
(here: to the other process) for up to 15 seconds, and one answered message in four is sent again anyway.

What must hold: every message is in its transcript once, in order, and its MessageSid's dedupe record
holds the one answer the texter got (a message sent again gets that same answer, never a second one);
every reply the worker was asked to send reaches the fake Twilio API exactly once.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from rq.registry import FailedJobRegistry, StartedJobRegistry

from bot import create_app, outbound
from bot.cli import GUNICORN_THREADS
from bot import store as store_module
from bot.errors import NoConsent, RecipientOptedOut
from bot.sms import static_safety_reply, twiml
from bot.store import dedupe_key
from tests.conftest import AUTH_TOKEN, replies_of, sign
from tests.ops.processes import BIN, ROOT, free_port, wait_for_port
from tests.privacy.redis_faults import _close  # the same socket proxy's way of closing

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/net/tcp"),
                                reason="finds which process holds a connection in Linux's /proc")

PUBLIC_URL = "https://helpline.test"
SCRIPT = ["hi", "1", "1", "yes"]  # hello, safe to text, a counsellor, consent: in line
WHILE_WAITING = ["ok", "help", "are you there?", "still here"]
MESSAGES_EACH = 8  # per texter: well under the sender rate limit (30 in 5 minutes), retries included
AT_ONCE = 12  # texters texting at the same time; a new one arrives as one leaves
PAUSE = 0.15  # seconds a texter takes between two messages
TWILIO_TOTAL_TIMEOUT = 15.0  # how long Twilio keeps trying one webhook
HANG = 2.0  # seconds the fake Twilio API holds a send the worker is killed in
BATCH = 4  # counsellor replies queued around each kill of the worker

# A message's save is one EVALSHA of this script (or, with effects, an EVAL of it inside MULTI/EXEC).
SAVE_SHA = hashlib.sha1(store_module._SAVE.encode()).hexdigest().encode()
SAVE_TEXT = store_module._SAVE.encode()[:200]
MESSAGE_ID = re.compile(rb"m:[^:\s]+:(SM[0-9a-f]{32})")  # its dedupe key, m:<conversation>:<MessageSid>


# -- processes, from /proc (Linux) ------------------------------------------------------


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def in_group(pgid: int) -> list[int]:
    """The live processes of a process group."""
    found = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(p))
    return found


def children(pid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and parent_of(int(p)) == pid and alive(int(p))]


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [d for c in found for d in descendants(c)]


def socket_owner(pids: list[int], local_port: int | None = None, remote_port: int | None = None) -> int | None:
    """Which of `pids` holds a TCP socket with these ports (127.0.0.1)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, remote = int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16)
            if (local_port is None or local == local_port) and (remote_port is None or remote == remote_port):
                inodes.add(f"socket:[{cols[9]}]")
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return pid
            except OSError:
                continue
    return None


def wait_for(condition, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


# -- a Redis proxy that stops one message's save at the moment chosen ---------------------------


@dataclass
class Trap:
    """One message's save, caught on its way to Redis. mode "hold": it has not reached Redis (its sender
    holds the conversation's lock); "answer_lost": Redis ran it, and its answer never reaches the sender."""

    mode: str
    among: list[int] | None = None  # catch only a save sent by one of these processes
    accept: Callable[[bytes], bool] | None = None  # and, if given, only a save it accepts
    fired: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    forward: bool = False  # hold: let it through after all when done (else it is dropped)
    pid: int | None = None  # the process that sent it
    sid: str = ""  # its MessageSid


class TrapProxy:
    """127.0.0.1:<port> → the test Redis (TCP or unix socket); transparent until armed."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self._trap: Trap | None = None
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        """REDIS_URL for a process that should go through the proxy: same credentials and database."""
        parts = urlsplit(self.redis_url)
        if parts.scheme == "unix":
            db = parse_qs(parts.query).get("db", ["0"])[0]
        else:
            db = parts.path.lstrip("/") or "0"
        auth = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        return f"redis://{auth + '@' if auth else ''}127.0.0.1:{self.port}/{db}"

    def _upstream(self) -> socket.socket:
        parts = urlsplit(self.redis_url)
        if parts.scheme == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(parts.path)
            return s
        return socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))

    def arm(self, mode: str, among: list[int] | None = None, accept: Callable[[bytes], bool] | None = None) -> Trap:
        with self._lock:
            self._trap = Trap(mode, among, accept)
            return self._trap

    def close(self) -> None:
        self._closing = True
        self._listener.close()
        with self._lock:
            if self._trap is not None:
                self._trap.done.set()

    def _take(self, data: bytes, client: socket.socket) -> Trap | None:
        trap = self._trap
        if trap is None or not (SAVE_SHA in data or (SAVE_TEXT in data and b"EXEC" in data)):
            return None
        found = MESSAGE_ID.search(data)
        if found is None:
            return None  # a save without a MessageSid (the console, a worker): not a webhook
        if trap.accept is not None and not trap.accept(data):
            return None
        pid = socket_owner(trap.among or [], local_port=client.getpeername()[1], remote_port=self.port) \
            if trap.among is not None else None
        if trap.among is not None and pid is None:
            return None  # another process's
        with self._lock:
            if self._trap is not trap:
                return None  # another connection took it meanwhile
            self._trap = None
        trap.sid, trap.pid = found.group(1).decode(), pid
        return trap

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = self._upstream()
            except OSError:
                client.close()
                continue
            link = {"cut": False}
            threading.Thread(target=self._to_server, args=(client, upstream, link), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client, link), daemon=True).start()

    def _to_server(self, client, upstream, link) -> None:
        try:
            while data := client.recv(65536):
                trap = self._take(data, client)
                if trap is not None and trap.mode == "answer_lost":
                    link["cut"] = True  # from now on Redis's answers are swallowed; the save goes on
                    upstream.sendall(data)
                    trap.fired.set()
                    continue
                if trap is not None:
                    trap.fired.set()
                    trap.done.wait(30)
                    if not trap.forward:
                        break  # never reaches Redis
                upstream.sendall(data)
        except OSError:
            pass
        _close(client, upstream)

    def _to_client(self, upstream, client, link) -> None:
        try:
            while data := upstream.recv(65536):
                if link["cut"]:
                    continue  # the sender waits for an answer that never comes, until it is killed
                client.sendall(data)
        except OSError:
            pass
        _close(client, upstream)


# -- the help line's processes ------------------------------------------------------------


class Web:
    """One gunicorn as the Procfile starts it, in a process group of its own (restartable on its port)."""

    def __init__(self, env: dict, log):
        self.env, self.log = env, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.master: subprocess.Popen | None = None
        self.groups: list[int] = []  # every process group started, for the teardown

    def start(self) -> None:
        self.master = subprocess.Popen(
            [str(BIN / "gunicorn"), "--config", "python:bot.gunicorn_conf", "--workers", "2", *GUNICORN_THREADS,
             "--bind", f"127.0.0.1:{self.port}", "bot:create_app()"],
            env=self.env, cwd=ROOT, stdout=self.log, stderr=self.log, start_new_session=True)
        self.groups.append(self.master.pid)
        wait_for_port(self.port, self.master)
        assert wait_for(lambda: len(self.workers()) == 2, 20), "gunicorn did not start its workers"

    def workers(self) -> list[int]:
        return children(self.master.pid) if self.master is not None else []

    def stop(self) -> None:
        kill_groups(self.groups, self.master)


class RQWorker:
    """`helpline worker` (the Procfile's worker:), in its own process group: a kill takes its work horse
    and its scheduler with it, as a dead machine would."""

    def __init__(self, env: dict, log):
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None
        self.groups: list[int] = []

    def start(self) -> None:
        self.process = subprocess.Popen([str(BIN / "helpline"), "worker"], env=self.env, cwd=ROOT,
                                        stdout=self.log, stderr=self.log, start_new_session=True)
        self.groups.append(self.process.pid)

    def stop(self) -> None:
        kill_groups(self.groups, self.process)


def kill_groups(groups: list[int], leader: subprocess.Popen | None) -> None:
    """SIGKILL every process group started (a dead machine, not a graceful stop), then reap the leader."""
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if leader is not None:
        leader.wait(timeout=10)


def process_env(config: dict, redis_url: str) -> dict:
    """The test app's settings, as a process reads them from its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "HELPLINE_", "REDIS_", "SEND_"))}
    env.update(REDIS_URL=redis_url, PUBLIC_URL=PUBLIC_URL, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               SECRET_KEY=config["SECRET_KEY"], HELPLINE_DATA_KEY=config["HELPLINE_DATA_KEY"],
               HELPLINE_HASH_KEY=config["HELPLINE_HASH_KEY"], HELPLINE_INSTANCE_PATH=config["INSTANCE_PATH"],
               TWILIO_ACCOUNT_SID=config["TWILIO_ACCOUNT_SID"], TWILIO_API_BASE=config["TWILIO_API_BASE"],
               TWILIO_FROM_NUMBER=config["TWILIO_FROM_NUMBER"], SEND_RETRY_SECONDS=config["SEND_RETRY_SECONDS"])
    return env


# -- texters, and Twilio's retries ------------------------------------------------------------


@dataclass
class Message:
    sid: str
    text: str
    form: dict
    attempts: list[str] = field(default_factory=list)  # "200", "ConnectionError", ...
    answer: list[str] | None = None  # the replies of the one 2xx answer Twilio got (what the texter reads)
    again: list[list[str]] = field(default_factory=list)  # answers to the same MessageSid sent once more


def deliver(http: requests.Session, urls: list[str], form: dict, first: int) -> tuple[list[str] | None, list[str]]:
    """As Twilio does: until a 2xx answer, the same form again (to the other process), for 15 s.
    Returns the replies of the 2xx answer (None if none came) and every attempt's status or error."""
    attempts: list[str] = []
    started = time.monotonic()
    for i in itertools.count(first):
        try:
            answer = http.post(urls[i % 2] + "/sms", data=form, timeout=TWILIO_TOTAL_TIMEOUT,
                               headers={"X-Twilio-Signature": sign(PUBLIC_URL + "/sms", form)})
            attempts.append(str(answer.status_code))
            if 200 <= answer.status_code < 300:
                return replies_of(answer.content), attempts
        except requests.RequestException as exc:
            attempts.append(type(exc).__name__)
        if time.monotonic() - started > TWILIO_TOTAL_TIMEOUT:
            return None, attempts
        time.sleep(0.05)
    raise AssertionError("unreachable")


class Texter:
    _numbers = itertools.count(0)

    def __init__(self, urls: list[str]):
        self.n = next(self._numbers)
        self.number = f"+1661{7000000 + self.n:07d}"
        self.urls = urls
        self.http = requests.Session()
        self.messages: list[Message] = []
        self.consented = False

    def talk(self) -> None:
        texts = SCRIPT + [WHILE_WAITING[(self.n + i) % len(WHILE_WAITING)] for i in range(MESSAGES_EACH - len(SCRIPT))]
        for i, text in enumerate(texts):
            sid = "SM" + secrets.token_hex(16)
            form = {"ToCountry": "US", "SmsMessageSid": sid, "NumMedia": "0", "From": self.number,
                    "To": "+16615550199", "Body": text, "MessageSid": sid,
                    "AccountSid": "AC" + "1" * 32, "ApiVersion": "2010-04-01"}
            message = Message(sid, text, form)
            self.messages.append(message)
            message.answer, message.attempts = deliver(self.http, self.urls, form, self.n + i)
            if message.answer is not None and (self.n + i) % 4 == 0:
                # Twilio sends an answered message again (its read timeout fired as the answer came).
                again, more = deliver(self.http, self.urls, form, self.n + i + 1)
                message.attempts += ["again"] + more
                if again is not None:
                    message.again.append(again)
            if text == "yes" and message.answer is not None:
                self.consented = True
            time.sleep(PAUSE)
        self.http.close()


# -- the test -------------------------------------------------------------------------------


@pytest.fixture
def chaos(twilio_api, config, tmp_path):
    if urlsplit(config["REDIS_URL"]).scheme not in ("redis", "unix"):
        pytest.skip("the proxy speaks plain TCP to Redis")
    config.update(SEND_RETRY_SECONDS="0,0,0,0")  # RQ runs a killed send again at once
    proxy = TrapProxy(config["REDIS_URL"])
    log = open(tmp_path / "processes.log", "ab")
    webs = [Web(process_env(config, proxy.url()), log) for _ in range(2)]
    worker = RQWorker(process_env(config, config["REDIS_URL"]), log)
    app = create_app(config)
    # A Redis that has run the help line before knows its scripts. (On a fresh one the first EVALSHA of
    # a save is answered NOSCRIPT and sent again; the proxy must catch a save that Redis runs.)
    app.extensions["redis"].script_load(store_module._BEGIN)
    app.extensions["redis"].script_load(store_module._SAVE)
    try:
        for web in webs:
            web.start()
        worker.start()
        yield app, proxy, webs, worker
    finally:
        for web in webs:
            web.stop()
        worker.stop()
        proxy.close()
        log.close()
        app.extensions["redis"].close()


def test_killed_web_processes_and_worker_lose_nothing_and_answer_or_send_nothing_twice(chaos, twilio_api):
    app, proxy, webs, worker = chaos
    redis = app.extensions["redis"]
    store, helpline = app.extensions["store"], app.extensions["helpline"]
    queues = list(app.extensions.get("queues") or [app.extensions["queue"]])  # every queue the worker serves
    urls = [web.url for web in webs]
    texters: list[Texter] = []
    kills: list[dict] = []  # what was killed, when, in which message
    errors: list[BaseException] = []
    started = time.monotonic()
    stop = threading.Event()

    def guarded(work):
        def run():
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)
        return run

    def record(what: str, pids: list[int], trap: Trap | None = None, retried: bool = True) -> None:
        kills.append({"what": what, "pids": pids, "at": round(time.monotonic() - started, 1),
                      **({"sid": trap.sid, "retried": retried} if trap else {})})

    # -- load: texters keep arriving, AT_ONCE at a time, until the chaos is over ----------------
    def arrivals():
        running: list[threading.Thread] = []
        while not stop.is_set():
            running = [t for t in running if t.is_alive()]
            while len(running) < AT_ONCE:
                texter = Texter(urls)
                texters.append(texter)
                running.append(threading.Thread(target=guarded(texter.talk), daemon=True))
                running[-1].start()
            time.sleep(0.05)
        for t in running:
            t.join(timeout=60)

    # -- the web processes: four kills, each where it was meant to land ---------------------------
    def caught(mode: str, among: list[Web], accept: Callable[[bytes], bool] | None = None) -> Trap:
        """Arm the proxy; return once it has caught a message's save from one of these web processes."""
        trap = proxy.arm(mode, [p for web in among for p in web.workers()], accept)
        assert trap.fired.wait(15), "no message's save came through the proxy"
        if mode == "answer_lost":
            assert wait_for(lambda: redis.keys(dedupe_key("*", trap.sid)), 5), "the caught save did not reach Redis"
        return trap

    def web_of(pid: int) -> Web:
        return next(web for web in webs if pid in web.workers())

    def message(sid: str) -> Message:
        return next(m for t in list(texters) for m in list(t.messages) if m.sid == sid)

    def answers() -> int:
        return sum(m.answer is not None for t in list(texters) for m in list(t.messages))

    def replaced(web: Web, killed: int) -> bool:
        """Its master has started a worker in place of the one killed: two workers again."""
        workers = web.workers()
        return len(workers) == 2 and killed not in workers

    def kill_web_processes():
        # Under load: a dozen messages answered already, more coming.
        assert wait_for(lambda: answers() >= AT_ONCE, 20), "the texters' messages are not being answered"
        # 1. A gunicorn master dies with a request in flight. Its workers, orphaned, still answer what
        #    they hold; once that one is answered, the rest of its process group dies too, as when a
        #    container ends (left alone, orphans under keep-alive traffic linger for graceful_timeout,
        #    10 s, holding the port), and a new gunicorn is started on the port.
        trap = caught("hold", webs)
        first = web_of(trap.pid)
        other = next(web for web in webs if web is not first)
        os.kill(first.master.pid, signal.SIGKILL)
        first.master.wait()
        trap.forward = True
        trap.done.set()
        record("gunicorn master SIGKILL with a request in flight (the orphaned worker answers it)",
               [first.master.pid], trap, retried=False)
        assert wait_for(lambda: message(trap.sid).attempts, TWILIO_TOTAL_TIMEOUT), \
            "the orphaned worker did not answer the request it held"
        orphans = in_group(first.master.pid)
        os.killpg(first.master.pid, signal.SIGKILL)
        record("the rest of that gunicorn's process group SIGKILL once it answered, then a new gunicorn started",
               orphans)
        restarting = threading.Thread(target=guarded(first.start), daemon=True)
        restarting.start()
        # 2. A web worker dies after its save reached Redis: the message is stored, its answer lost.
        trap = caught("answer_lost", [other])
        os.kill(trap.pid, signal.SIGKILL)
        trap.done.set()
        record("gunicorn worker SIGKILL after the save reached Redis, before the answer", [trap.pid], trap)
        assert wait_for(lambda: replaced(other, trap.pid), 20), "gunicorn did not replace its killed worker"
        # 3. A web worker dies holding the conversation's lock, before its save reached Redis (a texter's
        #    message after the first, so that an answered one can be sent again below).
        def answered_before(save: bytes) -> bool:
            return any(f"l:{helpline.conversation_id('sms', t.number)}".encode() in save
                       for t in list(texters) if any(m.answer is not None for m in t.messages[:-1]))

        trap = caught("hold", [other], answered_before)
        os.kill(trap.pid, signal.SIGKILL)
        trap.done.set()  # the held save dies with the process's connection
        record("gunicorn worker SIGKILL holding the conversation's lock, before the save", [trap.pid], trap)
        # Twilio sends that texter's previous message, answered already, once more: it must get the same answer.
        texter = next(t for t in texters if any(m.sid == trap.sid for m in t.messages))
        previous = [m for m in texter.messages if m.answer is not None and m.sid != trap.sid][-1]

        def send_again():
            with requests.Session() as http:
                again, attempts = deliver(http, urls, previous.form, 0)
            previous.attempts += ["again, while the lock is held"] + attempts
            if again is not None:
                previous.again.append(again)

        sending_again = threading.Thread(target=guarded(send_again), daemon=True)
        sending_again.start()
        restarting.join(timeout=30)
        assert wait_for(lambda: replaced(other, trap.pid), 20), "gunicorn did not replace its killed worker"
        # 4. A whole gunicorn (master and workers) dies just after a save; started again half a second later.
        trap = caught("answer_lost", webs)
        web = web_of(trap.pid)
        pids = [web.master.pid, *web.workers()]
        os.killpg(web.master.pid, signal.SIGKILL)
        web.master.wait()
        trap.done.set()
        record("whole gunicorn SIGKILL (master and both workers) after a save, then restarted", pids, trap)
        time.sleep(0.5)  # the scenario, not a wait: it stays dead half a second (Twilio retries meanwhile)
        web.start()
        sending_again.join(timeout=30)

    # -- the worker: counsellor replies queued, the worker killed mid-send three ways ---------------
    replies: list[tuple[str, str, str]] = []  # (outbound id, number, body)
    refused: list[str] = []

    def queue_replies(batch: int) -> None:
        assert wait_for(lambda: sum(t.consented for t in texters) >= BATCH, 60), "too few texters consented"
        with app.app_context():
            for texter in [t for t in texters if t.consented][-BATCH:]:
                body = f"Hi, this is Ana from the help line (reply {batch}.{texter.n})."
                try:
                    oid = outbound.queue_reply(helpline.conversation_id("sms", texter.number), body, "ana")
                except (NoConsent, RecipientOptedOut) as exc:
                    refused.append(f"texter {texter.n}: {type(exc).__name__}")
                    continue
                replies.append((oid, texter.number, body))

    def horse_sending() -> int:
        """The worker's process that is talking to the fake Twilio API (RQ's work horse)."""
        api_port = int(twilio_api.url.rsplit(":", 1)[1])
        found: list[int] = []
        assert wait_for(lambda: found.append(socket_owner(descendants(worker.process.pid), remote_port=api_port))
                        or found[-1] is not None, 5), "no worker process is talking to Twilio"
        return found[-1]

    def kill_the_worker():
        for batch, (accept, whole) in enumerate([(True, False), (False, False), (True, True)]):
            assert wait_for(lambda: not twilio_api.hanging.is_set(), 10)
            twilio_api.hang_next(HANG, accept=accept)  # the next send: Twilio holds it
            queue_replies(batch)
            assert twilio_api.wait_until_hanging(20), "no send reached the fake Twilio API"
            horse = horse_sending()
            how = "Twilio has created the message, its answer is not back" if accept else \
                "Twilio has not created the message"
            if not whole:
                os.kill(horse, signal.SIGKILL)
                record(f"RQ work horse SIGKILL mid-send ({how})", [horse])
                continue
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()
            record(f"whole RQ worker SIGKILL (worker and work horse) mid-send ({how}), a new worker started",
                   [worker.process.pid, horse])
            # RQ calls the job abandoned once its heartbeat expires (about 90 s) at a worker's maintenance
            # pass; rather than wait, expire it now, as tests/workers/test_recovery.py does.
            running = {q.name: redis.zrange(StartedJobRegistry(queue=q).key, 0, -1) for q in queues}
            assert any(running.values()), "the killed worker's job is not registered as running"
            for q in queues:
                if running[q.name]:
                    redis.zadd(StartedJobRegistry(queue=q).key, {member: 1 for member in running[q.name]})
            worker.start()

    load = threading.Thread(target=guarded(arrivals), daemon=True)
    chaos_threads = [threading.Thread(target=guarded(work), daemon=True)
                     for work in (kill_web_processes, kill_the_worker)]
    load.start()
    for t in chaos_threads:
        t.start()
    for t in chaos_threads:
        t.join(timeout=60)
    stop.set()
    load.join(timeout=60)
    assert not errors, errors[:3]

    def drained() -> bool:
        with app.app_context():
            done = all(outbound.load(oid).status in ("sent", "delivered", "failed") for oid, _, _ in replies)
        return done and not any(q.count or StartedJobRegistry(queue=q).count for q in queues)

    wait_for(drained, 20, step=0.1)
    seconds = round(time.monotonic() - started, 1)

    # -- what must hold ---------------------------------------------------------------------------
    problems: dict[str, list[str]] = {}

    def problem(kind: str, text: str) -> None:
        problems.setdefault(kind, []).append(text)

    messages = [(t, m) for t in texters for m in t.messages]

    def said(answer: list[str], text: str) -> str:
        """An answer as the texter read it; the reply that needs no store (bot.sms) named as such."""
        with app.app_context():
            static = replies_of(twiml(static_safety_reply(app, text)).encode())
        return "the static safety reply" if answer == static else repr(answer)

    for texter, m in messages:
        found = redis.keys(dedupe_key("*", m.sid))
        stored = redis.get(found[0]) if found else None
        outcome = store.vault.open(stored) if stored else None
        where = f"texter {texter.n}'s {m.text!r} ({m.sid}), attempts {m.attempts}"
        if m.answer is None:
            problem("never answered", f"no 2xx answer within Twilio's {TWILIO_TOTAL_TIMEOUT:.0f} s: {where}")
        elif outcome is None:
            problem("LOST", f"answered with {said(m.answer, m.text)}, never stored: {where}")
        elif replies_of(twiml(outcome["replies"]).encode()) != m.answer:
            problem("answer differs from its record",
                    f"answered with {said(m.answer, m.text)}, its record says {outcome['replies']!r}: {where}")
        for again in m.again:
            if again != m.answer:
                problem("ANSWERED TWICE",
                        f"first with {said(m.answer, m.text)}, then with {said(again, m.text)}: {where}")
    for texter in texters:
        transcript = store.transcript(helpline.conversation_id("sms", texter.number))
        kept = [e["text"] for e in transcript if e["from"] == "texter"]
        if kept != [m.text for m in texter.messages]:
            problem("transcript", f"texter {texter.n} sent {[m.text for m in texter.messages]}, "
                                  f"the transcript holds {kept}")
        answered = [r for m in texter.messages if m.answer for r in m.answer]
        if replies_of(twiml([e["text"] for e in transcript if e["from"] == "bot"]).encode()) != \
                replies_of(twiml(answered).encode()):
            problem("transcript", f"texter {texter.n}: the bot's replies in the transcript are not what was answered")

    # Every reply reached Twilio once, and its record holds the one SID Twilio gave it.
    with app.app_context():
        for oid, number, body in replies:
            done = outbound.load(oid)
            at_twilio = [m for m in twilio_api.sent if m["Body"] == body]
            if [m["To"] for m in at_twilio] != [number]:
                problem("outbound", f"reply {body!r} reached Twilio {len(at_twilio)} times")
            if (done.status, done.sids) != ("sent", [m["sid"] for m in at_twilio]):
                problem("outbound", f"reply {body!r}: record {done.status} {done.sids}, "
                                    f"at Twilio {[m['sid'] for m in at_twilio]}")
    if len(twilio_api.sent) != len(replies):
        problem("outbound", f"{len(replies)} replies queued, {len(twilio_api.sent)} messages created at Twilio")
    for q in queues:
        if q.count or FailedJobRegistry(queue=q).count or StartedJobRegistry(queue=q).count:
            problem("jobs", f"{q.name}: {q.count} queued, {StartedJobRegistry(queue=q).count} running, "
                            f"{FailedJobRegistry(queue=q).count} failed")

    # Each kill landed where it was meant to: the message it caught needed Twilio's retry (or, with only
    # the master killed, was answered by the orphaned worker at once).
    by_sid = {m.sid: m for _, m in messages}
    for kill in kills:
        if "sid" in kill:
            kill["attempts"] = by_sid[kill["sid"]].attempts
            if kill["retried"] != (kill["attempts"][0] != "200"):
                problem("chaos", f"{kill['what']}: {kill['sid']} was answered {kill['attempts']}")
    assert len(kills) == 8

    summary = {
        "seconds": seconds,
        "texters": len(texters),
        "messages": len(messages),
        "webhook requests": sum(sum(a[0].isupper() or a.isdigit() for a in m.attempts) for _, m in messages),
        "messages sent again after no answer": sum(m.attempts[0] != "200" for _, m in messages),
        "answered messages sent again": sum(len(m.again) for _, m in messages),
        "counsellor replies queued": len(replies),
        "refused (no consent)": refused,
        "send requests at Twilio (POST, GET)": (sum(r["method"] == "POST" for r in twilio_api.requests),
                                                sum(r["method"] == "GET" for r in twilio_api.requests)),
        "kills": kills,
        "problems": {kind: len(found) for kind, found in problems.items()},
    }
    print("chaos summary:", json.dumps(summary, indent=1))
    assert not problems, "\n".join(f"{kind} ({len(found)}):\n  " + "\n  ".join(found[:5])
                                   for kind, found in problems.items()) + f"\n\n{json.dumps(summary)}"
