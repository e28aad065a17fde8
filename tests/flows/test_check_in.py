"""A check-in the texter asks for, in the conversation: offered after a list of places and after a screening,
by text message only; a time in their words is their consent to that one text, stated back; a time that cannot
be read is asked once more, then the talk goes on without one. STOP, DELETE and danger win at every step.
The last test goes through signed SMS, the real engine and Redis to the follow-up bot.followups keeps."""
from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot import followups

from .test_conversation import EMERGENCY, Chat, reach, text

ZONE = ZoneInfo("America/Los_Angeles")
MONDAY = datetime(2025, 12, 1, 14, 30, tzinfo=ZONE).timestamp()  # Monday 2:30 p.m. in Kern County
OFFER_STATES = ("check_in_offer", "check_in_time")
TIME = {"en": "tomorrow after 6", "es": "mañana después de las 6"}
SAID_BACK = {"en": "OK, we will text you once, tomorrow, Tuesday December 2, between 6:00 PM and 9:00 PM.",
             "es": "Listo, te escribiremos una vez, mañana, martes 2 de diciembre, entre las 6:00 de la tarde y las "
                   "9:00 de la noche."}


def at_offer(lang: str, channel: str = "sms", way: str = "resources") -> Chat:
    chat = Chat(now=MONDAY)
    chat.conv.channel = channel
    if way == "resources":
        reach(chat, "ask_zip", lang)
        chat.send("93305")
    else:  # a screening with no strong sign: "no" to every question
        reach(chat, "screen_not_free", lang)
        for _ in range(7):
            chat.send("2")
    return chat


def at_question(state: str, lang: str) -> Chat:
    """A chat at one of OFFER_STATES: the offer, or (after "1", yes) the question of when."""
    chat = at_offer(lang)
    if state == "check_in_time":
        chat.send("1")
    return chat


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("way", ["resources", "screening"])
def test_a_time_at_the_offer_is_scheduled_and_said_back(lang, way):
    chat = at_offer(lang, way=way)
    assert chat.conv.state == "check_in_offer"
    step = chat.send(TIME[lang])
    assert step.replies == [SAID_BACK[lang], text(lang, "after_info")]
    window = step.effect("schedule_check_in").params["window"]
    assert (datetime.fromtimestamp(window["start"], ZONE).strftime("%a %H:%M"),
            datetime.fromtimestamp(window["end"], ZONE).strftime("%a %H:%M"), window["night"]) == (
        "Tue 18:00", "Tue 21:00", False)
    assert chat.conv.slots["check_in"] == window and chat.conv.consent is True
    assert chat.conv.state == "after_info"


def test_a_screening_declined_is_offered_a_check_in_too():
    chat = Chat(now=MONDAY)
    reach(chat, "screen_strong", "en")
    step = chat.send("2")
    assert step.keys == ["screen_declined", "check_in_offer"] and chat.conv.state == "check_in_offer"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_yes_then_a_time_at_night(lang):
    chat = at_offer(lang)
    step = chat.send("1")
    assert step.keys == ["check_in_time"] and step.effects == []
    step = chat.send("tonight at 9" if lang == "en" else "hoy a las 9 de la noche")
    window = step.effect("schedule_check_in").params["window"]
    assert window["night"] is True  # they chose a time at night: quiet hours do not hold it back
    assert datetime.fromtimestamp(window["start"], ZONE).strftime("%a %H:%M") == "Mon 21:00"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_no_thanks_goes_on_without_one(lang):
    chat = at_offer(lang)
    step = chat.send("2")
    assert step.keys == ["after_info"] and step.effects == [] and chat.conv.consent is None


@pytest.mark.parametrize("lang", ["en", "es"])
def test_a_time_that_cannot_be_read_is_asked_once_more_then_the_talk_goes_on(lang):
    chat = at_offer(lang)
    chat.send("1")
    step = chat.send("whenever" if lang == "en" else "cuando sea")
    assert step.keys == ["check_in_time"]  # once more, with its example
    assert ('"tomorrow after 6"' if lang == "en" else '"mañana después de las 6"') in step.text
    step = chat.send("maybe" if lang == "en" else "cuando pueda")
    assert step.keys == ["check_in_none", "after_info"] and step.effect("schedule_check_in") is None
    assert chat.conv.state == "after_info" and "check_in" not in chat.conv.slots and chat.conv.consent is None


def test_a_second_offer_left_unread_does_not_send_the_first_time_again():
    chat = at_offer("en")
    chat.send("tomorrow after 6")
    for message in ("0", "5", "1", "93305", "1", "zzz"):
        chat.send(message)
    step = chat.send("qqq")
    assert step.keys == ["check_in_none", "after_info"] and step.effect("schedule_check_in") is None


@pytest.mark.parametrize("lang, answer", [("en", "nah not really"), ("en", "no thank you, not now"),
                                          ("es", "no, mejor no"), ("es", "no gracias, así está bien")])
def test_no_at_the_time_question_goes_on_without_one(lang, answer):
    chat = at_offer(lang)
    chat.send("1")
    step = chat.send(answer)
    assert step.keys == ["check_in_none", "after_info"] and step.effect("schedule_check_in") is None


@pytest.mark.parametrize("lang, answer", [("en", "not tonight he's home"), ("en", "never at night"),
                                          ("es", "en la noche no, él está"), ("es", "cuando salga del fil")])
def test_a_time_ruled_out_or_said_as_an_event_is_asked_for_as_a_time_never_scheduled(lang, answer):
    chat = at_offer(lang)
    step = chat.send(answer)
    assert step.effect("schedule_check_in") is None and chat.conv.consent is None
    assert chat.conv.state in OFFER_STATES  # never the goodbye for "no, it is not safe now" at this question
    step = chat.send("tomorrow at 1" if lang == "en" else "como a las 6 y media")
    window = step.effect("schedule_check_in").params["window"]
    assert datetime.fromtimestamp(window["start"], ZONE).strftime("%a %H:%M") == (
        "Tue 13:00" if lang == "en" else "Mon 18:30")


def test_a_past_time_is_not_taken():
    chat = at_offer("en")
    chat.send("yes")
    step = chat.send("yesterday at 5")
    assert step.keys == ["check_in_time"] and step.effect("schedule_check_in") is None


def test_the_web_chat_is_never_offered_one():
    chat = at_offer("en", channel="web")
    assert chat.conv.state == "after_info"
    chat = at_offer("en", channel="web", way="screening")
    assert chat.conv.state == "after_info"


@pytest.mark.parametrize("state", OFFER_STATES)
def test_stop_at_a_check_in_question_opts_out_and_schedules_nothing(state):
    chat = at_question(state, "en")
    step = chat.send("STOP")
    assert chat.conv.opted_out and step.keys == ["stopped"] and step.effect("schedule_check_in") is None
    assert chat.send("tomorrow after 6").replies == []  # nothing after STOP


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", OFFER_STATES)
def test_danger_at_a_check_in_question_is_911_at_once(state, lang):
    chat = at_question(state, lang)
    step = chat.send(EMERGENCY[lang])
    assert step.keys[0] == "emergency" and "911" in step.replies[0]
    assert step.effect("emergency_alert") is not None and step.effect("schedule_check_in") is None


@pytest.mark.parametrize("state", OFFER_STATES)
def test_delete_at_a_check_in_question_asks_to_erase(state):
    chat = at_question(state, "en")
    step = chat.send("DELETE")
    assert step.keys == ["confirm_delete"]
    assert chat.send("yes").effect("erase") is not None


def test_over_sms_the_check_in_is_kept_for_the_worker(app, texter):
    for message in ("hi", "1", "5", "1", "93305"):
        texter.send(message)
    answer = texter.send("tomorrow after 6")
    assert answer.startswith("OK, we will text you once, tomorrow, ")
    with app.app_context():
        conv_id = app.extensions["helpline"].conversation_id("sms", texter.number)
        [found] = followups.of_conversation(conv_id)
    assert (found.kind, found.by, found.status, found.chosen_quiet) == ("check_in", followups.TEXTER, "scheduled", False)
    start = datetime.fromtimestamp(found.start, ZONE)
    assert (start.hour, found.end - found.start) == (18, 3 * 3600) and found.start > time.time()


@pytest.fixture
def new_york(config):
    config["HELPLINE_TIMEZONE"] = "America/New_York"
    return config


def test_the_time_is_read_in_the_help_lines_time_zone(new_york, app, texter):
    for message in ("hi", "1", "5", "1", "93305", "tomorrow after 6"):
        texter.send(message)
    with app.app_context():
        [found] = followups.of_conversation(app.extensions["helpline"].conversation_id("sms", texter.number))
    assert datetime.fromtimestamp(found.start, ZoneInfo("America/New_York")).hour == 18


@pytest.fixture
def one_day_kept(config):
    config["HELPLINE_RETENTION_DAYS"] = 1
    return config


def test_a_check_in_the_store_cannot_keep_is_refused_without_failing_the_message(one_day_kept, app, texter):
    for message in ("hi", "1", "5", "1", "93305"):
        texter.send(message)
    answer = texter.send("next week")  # past the retention: bot.followups refuses it
    assert answer.endswith("Reply 1 to talk with a counselor, or 0 for the menu.")  # the flow's answer, saved
    with app.app_context():
        assert followups.of_conversation(app.extensions["helpline"].conversation_id("sms", texter.number)) == []


@pytest.mark.parametrize("answer, hour", [("only between 1 and 2 when he's at work", 13),
                                          ("not tonight, he's home. tomorrow at 1", 13)])
def test_a_time_said_back_is_a_time_kept_even_when_the_words_also_say_not_safe_now(app, make_texter, answer, hour):
    texter = make_texter()
    for message in ("hi", "1", "5", "1", "93305"):
        texter.send(message)
    assert texter.send(answer).startswith("OK, we will text you once, ")
    with app.app_context():
        [found] = followups.of_conversation(app.extensions["helpline"].conversation_id("sms", texter.number))
    assert datetime.fromtimestamp(found.start, ZONE).hour == hour and found.status == "scheduled"
