"""Leak scan: after a full scenario on every channel, nothing a texter is or wrote is in the clear
in Redis (key names, every value of every type, RQ's job records) or in the logs."""
from __future__ import annotations

import logging
import re
import zlib

import pytest

from bot.console import accounts
from bot.crypto import is_sealed
from bot.delivery import latest_status
from tests.conftest import Texter, sign

NUMBER = "+16615550123"
NUMBER_FORMS = ("+16615550123", "16615550123", "6615550123", "5550123", "661-555-0123", "(661) 555-0123",
                "555-0123")
# Distinctive words of what the texters and the counsellor wrote.
WORDS = ("zanzibar", "quetzal", "marmaduke", "pomegranate", "xylophone", "kumquat", "vermilion")
PASSWORD = "correct horse battery staple"


def sms_texter(client) -> Texter:
    texter = Texter(client, NUMBER)
    for body in ("hi", "1", "questions", "yes", "yes", "no", "no", "no", "no", "no"):  # screening
        texter.send(body)
    for body in ("0", "report", "They keep girls at the Zanzibar motel on Quetzal road", "done", "1"):  # a tip
        texter.send(body)
    texter.send("my boss Marmaduke took my passport")
    for body in ("counsellor", "yes"):  # handoff, with consent
        texter.send(body)
    texter.send("he has a gun and will kill me")
    return texter


def web_chat(client) -> str:
    opened = client.post("/chat/api/session", json={"lang": "en"})
    assert opened.status_code == 201
    token = opened.get_json()["token"]
    for n, text in enumerate(("1", "I ran from Pomegranate street, Xylophone knows where", "counsellor", "yes")):
        answer = client.post("/chat/api/messages", json={"token": token, "text": text, "client_id": f"m{n}"})
        assert answer.status_code == 200, answer.get_json()
    return token


def console_work(app, redis_client, cid: str) -> None:
    """A supervisor claims the SMS conversation, writes a note and a reply, and reveals the number."""
    with app.app_context():
        accounts.add(redis_client, "ana", PASSWORD, supervisor=True)
    console = app.test_client()
    token = _csrf(console.get("/console/signin"))
    assert console.post("/console/signin", data={"name": "ana", "password": PASSWORD,
                                                 "csrf_token": token}).status_code == 302
    token = _csrf(console.get("/console/"))
    assert console.post(f"/console/claim/{cid}", data={"csrf_token": token}).status_code == 302
    assert console.post(f"/console/c/{cid}/note", data={"csrf_token": token,
                                                        "text": "Texter mentioned Kumquat"}).status_code == 302
    assert console.post(f"/console/c/{cid}/reply", data={"csrf_token": token,
                                                         "text": "Hi, this is the Vermilion team"}).status_code == 302
    revealed = console.post(f"/console/c/{cid}/reveal", data={"csrf_token": token})
    assert NUMBER in revealed.get_data(as_text=True)  # the supervisor sees it; nothing else may keep it


def _csrf(page) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def redis_contents(client) -> list[tuple[str, bytes]]:
    """(key name, every value it holds) for every key, whatever its type; compressed values opened too."""
    found = []
    for name in client.scan_iter(count=500):
        kind = client.type(name)
        if kind == b"string":
            values = [client.get(name)]
        elif kind == b"list":
            values = client.lrange(name, 0, -1)
        elif kind == b"hash":
            values = [b for pair in client.hgetall(name).items() for b in pair]
        elif kind == b"set":
            values = list(client.smembers(name))
        elif kind == b"zset":
            values = [m for m, _ in client.zrange(name, 0, -1, withscores=True)]
        elif kind == b"stream":
            values = [b for _, fields in client.xrange(name) for pair in fields.items() for b in pair]
        else:
            pytest.fail(f"a key of a type the scan cannot read: {kind!r}")
        for value in values:
            found.append((name.decode(), value))
            try:  # RQ may store job data zlib-compressed
                found.append((name.decode(), zlib.decompress(value)))
            except zlib.error:
                pass
    return found


def leaks(text: str, needles) -> list[str]:
    low = text.lower()
    return [n for n in needles if n.lower() in low]


@pytest.fixture
def scenario(twilio_api, app, redis_client, run_jobs, caplog, capsys):
    """Tests that use it must not ask for `app` before it: twilio_api has to configure the app first."""
    caplog.set_level(logging.DEBUG)
    from bot.outbound import queue_reply

    client = app.test_client()
    helpline = app.extensions["helpline"]
    sms_texter(client)
    cid = helpline.conversation_id("sms", NUMBER)
    token = web_chat(client)
    console_work(app, redis_client, cid)
    with app.app_context():
        queue_reply(helpline.conversation_id("web", token), "Xylophone? We can talk here", "ana")
    jobs = [repr((j.func_name, j.args, j.kwargs, j.description, j.meta))
            for queue in app.extensions["queues"] for j in queue.jobs]
    run_jobs()
    assert [m["To"] for m in twilio_api.sent] == [NUMBER]  # the counsellor's reply went out
    sid = twilio_api.sent[0]["sid"]
    for state in ("delivered", "sent"):
        form = {"MessageSid": sid, "MessageStatus": state, "To": NUMBER, "From": twilio_api.from_number}
        assert client.post("/sms/status", data=form, headers={
            "X-Twilio-Signature": sign("http://localhost/sms/status", form)}).status_code == 204
    assert latest_status(redis_client, sid) == "delivered"
    jobs += [record for queue in app.extensions["queues"] for record in job_records(queue)]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    return {"app": app, "client": client, "token": token, "cid": cid, "jobs": jobs,
            "metrics": metrics.get_data(as_text=True), "logs": caplog.text + capsys.readouterr().err}


def job_records(queue) -> list[str]:
    """Every job RQ still keeps (queued, finished, failed, scheduled), with its result."""
    from rq.job import Job

    ids = [k.decode().split(":", 2)[2] for k in queue.connection.scan_iter("rq:job:*")]
    return [repr((job.func_name, job.args, job.kwargs, job.description, job.meta, job.exc_info,
                  job.latest_result()))
            for job in Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer) if job]


def test_the_scenario_happened(scenario):
    """The scan below is only worth something if the data it looks for was really stored."""
    store = scenario["app"].extensions["store"]
    texts = " ".join(e["text"] for e in store.transcript(scenario["cid"]))
    assert "Zanzibar" in texts and "Marmaduke" in texts and "Kumquat" in texts and "Vermilion" in texts
    assert store.load(scenario["cid"]).address == NUMBER
    assert store.load(scenario["cid"]).risk == "emergency"


def test_no_number_or_message_in_redis(redis_client, scenario):
    needles = NUMBER_FORMS + WORDS + (scenario["token"],)
    contents = redis_contents(redis_client)
    assert len(contents) > 50
    assert {name for name, _ in contents if leaks(name, needles)} == set()
    bad = [(name, leaks(value.decode("utf-8", "replace"), needles)) for name, value in contents
           if leaks(value.decode("utf-8", "replace"), needles)]
    assert bad == []


def test_no_number_or_message_in_job_records(scenario):
    assert any("send_outbound" in job for job in scenario["jobs"])  # the jobs were seen while queued
    assert [job for job in scenario["jobs"] if leaks(job, NUMBER_FORMS + WORDS)] == []


def test_the_scan_reads_every_type(redis_client):
    """A scan that could not see a leak would pass for nothing: plant one in each type."""
    redis_client.set("a", "x Zanzibar")
    redis_client.rpush("b", "x", "Quetzal")
    redis_client.hset("c", "f", "Marmaduke")
    redis_client.sadd("d", "Pomegranate")
    redis_client.zadd("e", {"Xylophone": 1})
    redis_client.xadd("f", {"k": "Kumquat"})
    redis_client.set("g", zlib.compress(b"Vermilion"))
    found = {w for _, value in redis_contents(redis_client) for w in leaks(value.decode("utf-8", "replace"), WORDS)}
    assert found == set(WORDS)


def test_every_personal_record_expires_within_retention(scenario, redis_client):
    from workers.retention import PERSONAL

    retention = scenario["app"].config["HELPLINE_RETENTION_DAYS"] * 86400
    names = [n for pattern in PERSONAL for n in redis_client.scan_iter(match=pattern)]
    assert len(names) > 10
    assert {n.decode(): redis_client.ttl(n) for n in names if not 0 < redis_client.ttl(n) <= retention} == {}


def test_no_number_or_message_in_metrics(scenario):
    assert "helpline_" in scenario["metrics"]
    assert leaks(scenario["metrics"], NUMBER_FORMS + WORDS + (scenario["token"],)) == []


def test_after_delete_nothing_stored_mentions_the_texter(scenario, redis_client):
    """DELETE + confirm: no stored value, even decrypted, still holds the texter's number or words."""
    app = scenario["app"]
    texter = Texter(scenario["client"], NUMBER)
    texter.send("DELETE")
    texter.send("yes")
    vault = app.extensions["vault"]
    opened = []
    for name, value in redis_contents(redis_client):
        if is_sealed(value):
            opened.append((name, repr(vault.open(value))))
    assert opened  # the web chat is still there, encrypted
    sms_words = ("zanzibar", "quetzal", "marmaduke", "kumquat", "vermilion")
    assert [(name, leaks(text, NUMBER_FORMS + sms_words)) for name, text in opened
            if leaks(text, NUMBER_FORMS + sms_words)] == []
    assert [name for name, value in redis_contents(redis_client) if scenario["cid"] in name] == []


def test_no_number_or_message_in_logs(scenario):
    logs = scenario["logs"]
    assert "request" in logs  # the logs were captured
    assert leaks(logs, NUMBER_FORMS + WORDS + (scenario["token"],)) == []


@pytest.mark.parametrize("written", ["6615550199", "16615550199", "1 661 555 0199", "661 555 0199", "661.555.0199"])
def test_log_safeguard_strips_numbers_written_without_a_plus(app, caplog, written):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("some.library").warning("texting %s failed", written)
    assert "555" not in caplog.text and "[number]" in caplog.text


def test_log_safeguard_keeps_timestamps_zip_codes_and_911(app, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("some.library").warning("at 1796120944.321 for 93305-1234: call 911")
    assert "1796120944.321" in caplog.text and "93305-1234" in caplog.text and "911" in caplog.text


def test_log_safeguard_strips_numbers_a_library_might_log(app, caplog):
    caplog.set_level(logging.DEBUG)
    try:
        raise ValueError("bad recipient +16615550123")
    except ValueError:
        logging.getLogger("some.library").exception("sending to %s failed", "whatsapp:+1 (661) 555-0123")
    assert "555" not in caplog.text and "[number]" in caplog.text
