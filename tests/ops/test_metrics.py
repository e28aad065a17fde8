"""/metrics: shared counters from every process, who may read them, and no personal data in them."""
from __future__ import annotations

import re

import pytest

from bot import create_app
from tests.console.conftest import ask_for_counsellor
from tests.conftest import Texter

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def value(metrics: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", metrics, re.M)
    return float(found.group(1)) if found else 0.0


def scrape(client, **kwargs) -> str:
    answer = client.get("/metrics", environ_base=LOCAL, **kwargs)
    assert answer.status_code == 200, answer.data
    return answer.get_data(as_text=True)


def test_messages_handoffs_queue_and_latency_are_counted(client):
    texter = Texter(client, "+16615550142")
    ask_for_counsellor(texter)
    texter.send("i need help, he is going to kill me")
    metrics = scrape(client)
    assert value(metrics, "helpline_messages_in_total", '{channel="sms"}') == 5
    assert value(metrics, "helpline_messages_out_total", '{channel="sms"}') >= 5
    assert value(metrics, "helpline_conversations_total", '{channel="sms"}') == 1
    assert value(metrics, "helpline_handoffs_total", '{priority="normal"}') == 1
    assert value(metrics, "helpline_queue_depth") == 1
    # Every answered webhook was timed, this process's last one included.
    assert value(metrics, "helpline_webhook_seconds_count", '{endpoint="sms.inbound"}') == 5
    # Labels and values never carry a number or words a texter wrote.
    assert "5550142" not in metrics and "kill" not in metrics


def test_a_latency_on_a_bucket_bound_counts_in_that_bucket(app, client):
    stats = app.extensions["stats"]
    for seconds in (0.005, 0.0051, 1.0, 11.0):  # on a bound, just past it, on another, past the last
        stats.observe_latency("sms.inbound", seconds)
    metrics = scrape(client)
    bucket = lambda le: value(metrics, "helpline_webhook_seconds_bucket", f'{{endpoint="sms.inbound",le="{le}"}}')
    assert [bucket(le) for le in ("0.005", "0.01", "0.5", "1", "10", "+Inf")] == [1, 2, 2, 3, 3, 4]
    assert value(metrics, "helpline_webhook_seconds_count", '{endpoint="sms.inbound"}') == 4
    assert value(metrics, "helpline_webhook_seconds_sum", '{endpoint="sms.inbound"}') == pytest.approx(12.015, abs=0.01)


def test_counters_are_shared_by_every_process(config, client):
    """Two apps stand for two gunicorn processes: what one counts, the other reports."""
    ask_for_counsellor(Texter(client))
    other = create_app(config).test_client()
    assert value(scrape(other), "helpline_messages_in_total", '{channel="sms"}') == 4
    ask_for_counsellor(Texter(other))
    assert value(scrape(client), "helpline_handoffs_total", '{priority="normal"}') == 2


def test_claims_and_waits_come_from_the_console(client, console):
    ask_for_counsellor(Texter(client))
    alice = console("alice")
    conv_id = alice.queue_order()[0]
    alice.post(f"/console/claim/{conv_id}")
    metrics = scrape(client)
    assert value(metrics, "helpline_claims_total") == 1
    assert value(metrics, "helpline_wait_seconds_count") == 1
    assert value(metrics, "helpline_queue_depth") == 0
    assert value(scrape(client), "helpline_claims_total") == 1  # folded once, not again on the next scrape


@pytest.mark.parametrize("environ, headers", [
    ({"REMOTE_ADDR": "203.0.113.9"}, {}),
    # A proxy on this machine passing a visitor's request on: local address, forwarding header.
    (LOCAL, {"X-Forwarded-For": "203.0.113.9"}),
    (LOCAL, {"Forwarded": "for=203.0.113.9"}),
])
def test_without_a_token_only_direct_local_requests_may_read(client, environ, headers):
    assert client.get("/metrics", environ_base=environ, headers=headers).status_code == 403


def test_with_a_token_only_its_bearer_may_read(config):
    config["METRICS_TOKEN"] = "s3cret-token-for-prometheus"
    client = create_app(config).test_client()
    assert client.get("/metrics", environ_base=LOCAL).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    answer = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"},
                        headers={"Authorization": "Bearer s3cret-token-for-prometheus"})
    assert answer.status_code == 200 and b"helpline_queue_depth" in answer.data


@pytest.fixture
def with_twilio(twilio_api, config):
    return twilio_api


def test_counsellor_messages_sent_and_refused_are_counted_by_channel(with_twilio, app, client, console, run_jobs):
    ask_for_counsellor(Texter(client))
    alice = console("alice")
    conv_id = alice.queue_order()[0]
    alice.post(f"/console/claim/{conv_id}")
    bot_replies = value(scrape(client), "helpline_messages_out_total", '{channel="sms"}')
    alice.post(f"/console/c/{conv_id}/reply", data={"text": "Hi, this is Alice. Are you safe to text?"})
    run_jobs()
    with_twilio.fail_next(status=400, code=21211, message="Invalid 'To' Phone Number")
    alice.post(f"/console/c/{conv_id}/reply", data={"text": "Still there?"})
    run_jobs()
    metrics = scrape(client)
    assert value(metrics, "helpline_send_failures_total", '{channel="sms"}') == 1
    assert value(metrics, "helpline_messages_out_total", '{channel="sms"}') == bot_replies + 1  # Alice's first


@pytest.mark.parametrize("midnight", [
    "2026-03-08",  # the night the clocks go forward (a 23-hour day)
    "2026-11-01",  # and back (25 hours)
    "2026-12-02",
])
def test_a_message_just_before_local_midnight_and_one_just_after_count_on_their_own_days(
        app, client, redis_client, midnight):
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from bot.metrics import DAY_TTL, day_key

    zone = ZoneInfo(app.config["HELPLINE_TIMEZONE"])
    at = datetime.fromisoformat(midnight).replace(tzinfo=zone).timestamp()
    helpline = app.extensions["helpline"]
    counted = []
    for moment in (at - 1, at, at + 1, at - 2):  # back across midnight too: a late retry of the day before
        helpline.clock = lambda moment=moment: moment
        Texter(client).send("hi")
        day = datetime.fromtimestamp(moment, zone).date()
        counted.append((str(day), int(redis_client.hget(day_key(day), "messages") or 0)))
    before, after = str(date.fromisoformat(midnight) - timedelta(days=1)), midnight
    assert counted == [(before, 1), (after, 1), (after, 2), (before, 2)]
    # Each day's counters are kept for DAY_TTL from when the day began to be counted, then go.
    for day in (before, after):
        assert DAY_TTL - 60 < redis_client.ttl(day_key(date.fromisoformat(day))) <= DAY_TTL
