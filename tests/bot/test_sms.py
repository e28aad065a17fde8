"""The Twilio webhook: signatures, idempotency, concurrency, bad input and a Redis outage."""
from __future__ import annotations

import multiprocessing
import os
import time

import pytest
from rq import Worker

from bot import create_app
from bot.redis_server import EmbeddedRedis
from bot.store import transcript_key
from tests.conftest import Texter, app_config, replies_of, sign


def conversation(app, number, channel="sms"):
    helpline = app.extensions["helpline"]
    return app.extensions["store"].load(helpline.conversation_id(channel, number))


# -- signatures ---------------------------------------------------------------------


def test_signed_message_gets_the_discreet_welcome(texter):
    reply = texter.send("hi")
    assert "911" in reply
    assert "STOP" in reply and "DELETE" in reply
    assert "traffick" not in reply.lower()  # safe on a phone someone else reads
    assert len(reply) <= 320


@pytest.mark.parametrize("signature", ["", "not-a-signature", None])
def test_missing_or_wrong_signature_is_refused_and_writes_nothing(texter, redis_client, signature):
    form = texter.form("hello")
    if signature is None:  # right format, signed with another token
        signature = sign(texter.url, form, token="another-token")
    answer = texter.post(form, signature=signature)
    assert answer.status_code == 403
    assert redis_client.dbsize() == 0


def test_signature_over_changed_body_is_refused(texter, redis_client):
    form = texter.form("hello")
    signature = sign(texter.url, form)
    form["Body"] = "something else"
    assert texter.post(form, signature=signature).status_code == 403
    assert redis_client.dbsize() == 0


def test_unknown_extra_parameters_are_signed_and_accepted(texter):
    form = texter.form("hi", FromCity="BAKERSFIELD", SomethingNew="x", AddOns='{"status":"successful"}')
    assert texter.post(form).status_code == 200


def test_a_parameter_sent_twice_is_signed_over_both_values(texter):
    from werkzeug.datastructures import MultiDict

    form = MultiDict(texter.form("hi"))
    form.add("MediaUrl", "https://api.twilio.com/a")
    form.add("MediaUrl", "https://api.twilio.com/b")
    both = sign(texter.url, form)  # the library reads every value of a name, as Twilio signs them
    first_only = sign(texter.url, form.to_dict())
    assert both != first_only
    assert texter.client.post(texter.url, data=form, headers={"X-Twilio-Signature": first_only}).status_code == 403
    assert texter.client.post(texter.url, data=form, headers={"X-Twilio-Signature": both}).status_code == 200


@pytest.mark.parametrize(
    "public_url, signed_as",
    [
        ("https://help.example.org", "https://help.example.org/sms"),
        ("https://help.example.org", "https://help.example.org:443/sms"),  # Twilio may sign with the port
        ("https://help.example.org:8443", "https://help.example.org:8443/sms"),
    ],
)
def test_signature_is_checked_against_public_url_behind_a_proxy(config, public_url, signed_as):
    config["PUBLIC_URL"] = public_url
    client = create_app(config).test_client()
    texter = Texter(client)
    form = texter.form("hi")
    # The request reaches us as http://localhost/sms (the proxy's view); Twilio signed the public URL.
    assert texter.post(form, signature=sign(signed_as, form)).status_code == 200
    assert texter.post(texter.form("hi"), signature=sign("http://localhost/sms", form)).status_code == 403


def test_status_callback_needs_a_signature(client):
    form = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered"}
    assert client.post("/sms/status", data=form).status_code == 403
    answer = client.post("/sms/status", data=form,
                         headers={"X-Twilio-Signature": sign("http://localhost/sms/status", form)})
    assert answer.status_code == 204


def test_status_callbacks_out_of_order_keep_the_final_status(app, client):
    from bot.delivery import latest_status

    sid = "SM" + "b" * 32
    for state in ("sent", "delivered", "sending", "queued"):
        form = {"MessageSid": sid, "MessageStatus": state}
        client.post("/sms/status", data=form, headers={"X-Twilio-Signature": sign("http://localhost/sms/status", form)})
    assert latest_status(app.extensions["redis"], sid) == "delivered"


# -- idempotency and concurrency ----------------------------------------------------------


def test_same_message_sid_five_times_changes_state_once(app, texter, redis_client):
    texter.send("hi")
    form = texter.form("1")  # "yes, it is safe" -> the menu
    answers = [texter.post(form) for _ in range(5)]
    assert all(a.status_code == 200 for a in answers)
    bodies = {a.data for a in answers}
    assert len(bodies) == 1 and b"Talk to a counselor" in answers[0].data
    conv = conversation(app, texter.number)
    assert conv.state == "menu"
    assert conv.messages == 2
    # hi + welcome, 1 + menu: one entry per message and reply, however often Twilio retried
    assert redis_client.llen(transcript_key(conv.id)) == 4


def test_retried_handoff_queues_one_job(app, texter, redis_client):
    for body in ("hi", "1", "1"):
        texter.send(body)
    form = texter.form("1")  # consent -> handoff
    for _ in range(5):
        texter.post(form)
    queue = app.extensions["queue"]
    notify = [j for j in queue.jobs if j.func_name == "workers.alerts.notify_counsellors"]
    assert len(notify) == 1
    assert app.extensions["waiting"].depth() == 1


def _send_in_another_process(redis_url, instance, keys, number, body, barrier, results):
    app = create_app(app_config(redis_url, instance, **keys))
    texter = Texter(app.test_client(), number)
    barrier.wait()
    answer = texter.post(texter.form(body))
    results.put((answer.status_code, replies_of(answer.data)))


def test_two_processes_for_one_sender_are_applied_one_after_the_other(config, app, tmp_path):
    number = "+16615550123"
    Texter(app.test_client(), number).send("hi")
    keys = {k: config[k] for k in ("HELPLINE_DATA_KEY", "HELPLINE_HASH_KEY")}
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_send_in_another_process,
                    args=(config["REDIS_URL"], tmp_path / f"i{n}", keys, number, "zzz", barrier, results))
        for n in range(4)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [code for code, _ in outcomes] == [200] * 4
    conv = conversation(app, number)
    assert conv.messages == 5  # none lost
    # Two misses lead to the counsellor offer: the misses were counted one after the other.
    replies = sorted(" ".join(r) for _, r in outcomes)
    assert sum("easier to talk with a person" in r for r in replies) >= 1


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, extra",
    [
        ("", {"NumMedia": "1", "MediaUrl0": "https://api.twilio.com/x.jpg", "MediaContentType0": "image/jpeg"}),
        ("x" * 1600, {}),
        ("😀🙏🏽💔" * 50, {}),
        ("hola\x00mundo\x00", {}),
        ("   ", {}),
        ("1", {"NumMedia": "not-a-number"}),
    ],
)
def test_odd_messages_get_an_answer_never_a_500(texter, body, extra):
    texter.send("hi")
    reply = texter.send(body, **extra)
    assert reply  # they are asked again, not dropped


def test_whatsapp_sender_is_its_own_conversation(app, client):
    texter = Texter(client, "whatsapp:+16615550111")
    assert "911" in texter.send("hi")
    assert conversation(app, "whatsapp:+16615550111", channel="whatsapp").state == "safe_check"


@pytest.mark.parametrize("missing", ["From", "MessageSid"])
def test_missing_fields_get_400(texter, missing, redis_client):
    form = texter.form("hi")
    form.pop(missing)
    form.pop("SmsMessageSid")
    assert texter.post(form).status_code == 400
    assert redis_client.dbsize() == 0


def test_oversized_request_gets_413(texter):
    form = texter.form("x" * 100_000)
    assert texter.post(form).status_code == 413


def test_long_replies_are_split_into_twilio_sized_messages():
    from bot.sms import split_message

    text = ("word " * 700).strip()
    parts = split_message(text)
    assert len(parts) == 3 and all(len(p) <= 1600 for p in parts)
    assert " ".join(parts) == text


@pytest.mark.parametrize("replies", [
    [], [""], ["Reply 1 <now> & \"quote\" 'apostrophe'"], ["Línea uno\nLínea dos", "🆘 911"],
    ["a\r\nb", "]]> <![CDATA[x"], ["word " * 700],
])
def test_twiml_is_what_twilios_messaging_response_writes(app, replies):
    from twilio.twiml.messaging_response import MessagingResponse

    from bot.sms import split_message, twiml

    expected = MessagingResponse()
    for part in split_message("\n\n".join(replies)):
        expected.message(part)
    assert twiml(replies) == str(expected)


# -- Redis outage ------------------------------------------------------------------------


def test_redis_down_answers_with_the_static_safety_reply_then_resumes(tmp_path, caplog):
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    try:
        app = create_app(app_config(url, tmp_path / "instance"))
        texter = Texter(app.test_client(), "+16615550177")
        texter.send("hi")
        server.stop()
        reply = texter.send("he locked me in the room")
        assert "911" in reply and "988" in reply and "1-888-373-7888" in reply and "233733" in reply
        assert "+16615550177" not in caplog.text and "locked me" not in caplog.text
        spanish = texter.send("necesito ayuda por favor")
        assert "llama al 911" in spanish
        server.start()
        assert "How can we help" in texter.send("1")  # the conversation picks up where it was
    finally:
        server.stop()


def idle_connections_closed(redis_client, within=10.0):
    """Wait until Redis has closed every connection open now but ours (and those it never times out:
    subscribers, blocked clients, replicas); False if some are still open after `within` seconds."""
    def others():
        return {c["id"] for c in redis_client.client_list()
                if int(c["id"]) != mine and not set(c["flags"]) & set("PbSM")
                and c["sub"] == "0" and c["psub"] == "0"}

    mine = redis_client.client_id()
    waiting_for, deadline = others(), time.monotonic() + within
    while waiting_for & others():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_after_redis_closes_an_idle_connection_the_next_text_is_still_processed(app, texter, redis_client):
    texter.send("hi")
    redis_client.config_set("timeout", 1)  # as a managed Redis closes idle clients
    try:
        assert idle_connections_closed(redis_client)  # every connection this thread used is gone
        assert "How can we help" in texter.send("1")  # processed, not the static safety reply
        assert "How can we help" in texter.send("menu")
    finally:
        redis_client.config_set("timeout", 0)


def test_a_forked_process_never_shares_the_parents_redis_connection(app, texter):
    texter.send("hi")  # this thread now has its own connection for the store's two calls
    store = app.extensions["store"]
    parents = store._connection()
    read, write = os.pipe()
    child = os.fork()  # as RQ forks a work horse for each job
    if child == 0:
        try:
            os.write(write, b"own" if store._connection() is not parents else b"shared")
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 16) == b"own"
    assert "How can we help" in texter.send("1")  # and the parent's connection still answers it


def test_healthz_reports_redis(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    try:
        app = create_app(app_config(url, tmp_path / "instance"))
        client = app.test_client()
        # /healthz also wants a live RQ worker (tests/ops/test_health.py covers that side).
        Worker([app.extensions["queue"]], connection=app.extensions["redis"]).register_birth()
        assert client.get("/healthz").status_code == 200
        server.stop()
        assert client.get("/healthz").status_code == 503
    finally:
        server.stop()
