"""Counsellor hours, and what a texter hears about the wait when they join the queue."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConfigurationError
from bot.console import accounts
from bot.hours import SEEN, Hours
from tests.flows.test_conversation import text

KERN = ZoneInfo("America/Los_Angeles")
MONDAY = date(2026, 11, 30)
WEEK = "Mon-Fri 08:00-20:00; Sat 10:00-16:00"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of Monday 2026-11-30, Kern County time."""
    return datetime.combine(MONDAY + timedelta(days=day), time(hour, minute), tzinfo=KERN)


@pytest.mark.parametrize("moment, is_open, opens", [
    (local(2, 12), True, None),  # Wednesday noon
    (local(4, 20), False, local(5, 10)),  # Friday 20:00 closes; Saturday 10:00
    (local(5, 9, 59), False, local(5, 10)),  # Saturday, just before opening
    (local(5, 16), False, local(7, 8)),  # Saturday closing time: Monday 08:00
    (local(6, 23), False, local(7, 8)),  # Sunday night
])
def test_hours_know_when_the_line_is_open_and_when_it_opens(moment, is_open, opens):
    hours = Hours.parse(WEEK, "America/Los_Angeles")

    assert hours.is_open(moment) is is_open
    if opens is not None:
        assert hours.next_opening(moment) == opens


def test_a_range_that_ends_before_it_starts_runs_past_midnight():
    hours = Hours.parse("Fri 20:00-02:00", "America/Los_Angeles")

    assert hours.is_open(local(5, 1, 30)) and not hours.is_open(local(5, 2))


def test_empty_hours_are_always_staffed():
    assert Hours.parse("", "America/Los_Angeles").is_open(local(6, 3))


@pytest.mark.parametrize("text, zone", [
    ("Mon 8-20", "America/Los_Angeles"),
    ("Funday 08:00-10:00", "America/Los_Angeles"),
    ("Mon 25:00-26:00", "America/Los_Angeles"),
])
def test_bad_hours_stop_the_app_from_starting(config, text, zone):
    from bot import create_app

    config.update(HELPLINE_HOURS=text, HELPLINE_TIMEZONE=zone)
    with pytest.raises(ConfigurationError, match="HELPLINE_HOURS"):
        create_app(config)


def test_an_unknown_time_zone_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="HELPLINE_TIMEZONE"):
        Hours.parse(WEEK, "Kern/County")


@pytest.fixture
def week_hours(config):
    """Kern County hours (request before `app`)."""
    config.update(HELPLINE_HOURS=WEEK, HELPLINE_TIMEZONE="America/Los_Angeles")


def queue_up(make_texter, first: str = "hi", sid: str | None = None) -> tuple[str, object]:
    """A new texter asks for a counsellor; returns the last reply and the texter."""
    texter = make_texter()
    for message in (first, "1", "1"):
        texter.send(message)
    return texter.send("1", sid=sid) if sid else texter.send("1"), texter


@pytest.mark.parametrize("first, expected", [
    ("hi", "A counselor should reply in about 15 minutes."),
    ("hola", text("es", "queue_wait", minutes=15)),
])
def test_a_queued_texter_hears_the_wait_in_their_language(redis_client, make_texter, first, expected):
    # Default settings: always staffed, 15 minutes per conversation.
    for name in ("ana", "ben"):
        accounts.set_online(redis_client, name, True)
    queue_up(make_texter)  # one texter already in line

    reply, _ = queue_up(make_texter, first)

    # Two ahead-or-current conversations shared by two counsellors, 15 minutes each.
    assert reply.endswith(expected)


@pytest.mark.parametrize("first, day, hour, expected", [
    ("hi", 6, 23, "Our counselors are back tomorrow at 8:00 AM."),
    ("hola", 6, 23, "Regresamos mañana a las 8:00 de la mañana"),
    ("hi", 5, 17, "Our counselors are back on Monday at 8:00 AM."),
    ("hola", 5, 17, "Regresamos el lunes a las 8:00 de la mañana"),
    ("hi", 5, 7, "Our counselors are back today at 10:00 AM."),
])
def test_out_of_hours_a_texter_hears_when_counsellors_are_back_and_stays_in_line(
        week_hours, redis_client, app, make_texter, first, day, hour, expected):
    accounts.set_online(redis_client, "ana", True)  # someone forgot to sign out: the hours still decide
    app.extensions["helpline"].clock = lambda: local(day, hour).timestamp()

    reply, texter = queue_up(make_texter, first)

    wait = reply.split("\n\n")[-1]
    assert expected in wait and len(wait) <= 320
    assert wait.index("233733") < wait.index(expected) and "911" in wait  # the 24/7 lines come first
    conv_id = app.extensions["vault"].conversation_id("sms", texter.number)
    assert app.extensions["waiting"].position(conv_id) == 0
    assert app.extensions["store"].transcript(conv_id)[-1] == {"at": local(day, hour).timestamp(), "from": "bot",
                                                              "text": wait}


@pytest.mark.parametrize("first, plainly", [("hi", "No counselor is free right now."),
                                            ("hola", "Ahora no hay nadie libre.")])
def test_in_open_hours_with_nobody_signed_in_the_texter_is_told_so_plainly(make_texter, first, plainly):
    reply, _ = queue_up(make_texter, first)

    wait = reply.split("\n\n")[-1]
    assert wait.startswith(plainly) and "233733" in wait and "911" in wait
    assert "soon" not in wait and "pronto" not in wait  # no promise nobody can keep


def test_a_repeated_webhook_gets_the_same_wait(redis_client, make_texter):
    accounts.set_online(redis_client, "ana", True)

    first, texter = queue_up(make_texter, sid="SM" + "7" * 32)
    again = texter.send("1", sid="SM" + "7" * 32)

    assert again == first and "15 minutes" in first


def test_a_counsellor_signed_in_but_idle_for_long_is_not_waited_for(redis_client, make_texter):
    accounts.set_online(redis_client, "ana", True)
    redis_client.zadd(SEEN, {"ana": 1.0})  # her laptop closed long ago; the console has not dropped her yet

    reply, _ = queue_up(make_texter)

    assert "No counselor is free right now" in reply
