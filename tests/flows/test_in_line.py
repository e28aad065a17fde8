"""In line for a counselor the texter keeps their place and can still use the line (issue 12)."""
from __future__ import annotations

import pytest

from flows.numbers import number_in
from tests.flows.test_conversation import FLOW, Chat, reach, text

WAIT = {"en": ["hi", "1", "1", "1"], "es": ["hola", "1", "1", "1"]}


def in_line(lang: str) -> Chat:
    chat = Chat()
    for message in WAIT[lang]:
        chat.send(message)
    assert (chat.conv.state, chat.conv.handoff) == ("waiting", "waiting")
    return chat


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("command", ["0", "menu", "MENÚ"])
def test_the_menu_works_in_line_and_says_the_place_is_kept(lang, command):
    chat = in_line(lang)
    step = chat.send(command)
    assert step.replies == [text(lang, "still_in_line"), text(lang, "menu")]
    assert (chat.conv.state, chat.conv.handoff) == ("menu", "waiting")
    step = chat.send("5")  # find help, as from the menu at any time
    assert chat.conv.state == "ask_category" and chat.conv.handoff == "waiting"
    assert step.effect("request_handoff") is None


@pytest.mark.parametrize("lang, words", [("en", "where can I sleep tonight"), ("es", "necesito un lugar para dormir hoy")])
def test_a_request_in_line_is_served_at_once_even_just_after_a_reassurance(lang, words):
    chat = in_line(lang)
    chat.send("hello?")  # a reassurance went out just now
    step = chat.send(words)
    assert step.replies[0] == text(lang, "still_in_line") and len(step.replies) >= 2
    assert chat.conv.handoff == "waiting"  # still in line


@pytest.mark.parametrize("lang, question", [("en", "when will someone answer?"), ("en", "is anyone there?"),
                                            ("es", "¿cuándo me van a contestar?")])
def test_a_question_in_line_is_always_answered(lang, question):
    chat = in_line(lang)
    chat.send("hello?")
    for _ in range(2):  # within the ten quiet minutes, twice
        step = chat.send(question)
        # about the wait when the model is sure it is that, else the answer to any question in line
        assert step.replies in ([text(lang, "trust_wait")], [text(lang, "waiting_question")])
    assert chat.send("ok").replies == []  # an unprompted nudge still keeps to the quiet rule


@pytest.mark.parametrize("lang, words", [("en", "when will someone text me"), ("en", "ive been waiting forever"),
                                         ("es", "cuando me van a escribir"), ("es", "ya llevo mucho esperando")])
def test_asking_about_the_wait_in_line_is_answered_and_keeps_the_counsellors_texts(lang, words):
    """Read once as "don't text me" (the counsellor was then refused) or as danger (911, 988 and an
    alert for someone only tired of waiting): it is the wait, answered as such."""
    chat = in_line(lang)
    step = chat.send(words)
    assert step.replies == [text(lang, "trust_wait")]
    assert "quiet" not in chat.conv.slots and chat.conv.risk != "emergency"
    assert step.effect("emergency_alert") is None and chat.conv.handoff == "waiting"


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("word", ["cancel", "END", "quit"])
def test_cancel_in_line_asks_to_leave_the_line_instead_of_opting_out(lang, word):
    chat = in_line(lang)
    step = chat.send(word)
    assert step.replies == [text(lang, "leave_line_confirm")] and not chat.conv.opted_out
    step = chat.send("no")
    assert (chat.conv.state, chat.conv.handoff) == ("waiting", "waiting")
    chat.send(word)
    step = chat.send("yes" if lang == "en" else "sí")
    assert chat.conv.state == "menu"  # bot.engine takes them out of the queue (tests/bot/test_in_line.py)
    assert step.replies[0] == text(lang, "left_line") and step.effect("leave_queue") is not None


def test_stop_in_line_still_opts_out():
    chat = in_line("en")
    chat.send("STOP")
    assert chat.conv.opted_out


@pytest.mark.parametrize("written, lang, age", [
    ("fifteen", "en", 15), ("I'm fifteen", "en", 15), ("twenty-one", "en", 21), ("twenty one", "en", 21),
    ("quince", "es", 15), ("tengo quince años", "es", 15), ("dieciséis", "es", 16), ("treinta y dos", "es", 32),
    ("veintidós", "es", 22), ("diez y seis", "es", 16),
])
def test_an_age_written_in_words_is_read(written, lang, age):
    assert number_in(written, lang) == age
    chat = Chat()
    reach(chat, "runaway_age", lang)
    chat.send(written)
    assert chat.conv.slots["age"] == age and chat.conv.state == "runaway_place"


@pytest.mark.parametrize("words, lang", [("I left once", "en"), ("one of them", "en"), ("no sé", "es")])
def test_words_that_are_not_an_age_are_not_read_as_one(words, lang):
    assert number_in(words, lang) is None


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", ["ask_zip", "screen_debt", "runaway_place", "menu", "chat_ended"])
def test_back_after_a_day_mid_flow_the_safety_question_comes_first(lang, state):
    chat = Chat()
    reach(chat, state, lang)
    chat.now += 2 * 86400
    step = chat.send("93301" if state == "ask_zip" else "1")
    assert step.replies == [text(lang, "welcome_back")] and chat.conv.state == "safe_check"
    step = chat.send("1")  # safe now: back to the question they were on (the menu, from chat_ended)
    back = "menu" if state == "chat_ended" else state
    assert chat.conv.state == back and step.keys == [FLOW.states[back].say]


def test_back_within_the_day_carries_on_where_they_were():
    chat = Chat()
    reach(chat, "ask_zip", "en")
    chat.now += 6 * 3600
    chat.send("93301")
    assert chat.conv.state != "safe_check" and chat.conv.slots.get("zip") == "93301"


def test_back_after_a_day_in_danger_is_told_911_first():
    chat = Chat()
    reach(chat, "screen_debt", "en")
    chat.now += 3 * 86400
    step = chat.send("he has a gun")
    assert step.keys[0] == "emergency"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_in_line_after_danger_the_menu_still_says_911(lang):
    chat = Chat()
    chat.send(WAIT[lang][0])
    chat.send("he has a gun" if lang == "en" else "tiene una pistola")
    chat.send("1")  # yes, a counselor
    assert chat.conv.handoff == "waiting" and chat.conv.risk == "emergency"
    step = chat.send("0")
    assert "911" in step.replies[0] and step.replies[-1] == text(lang, "menu")


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("age, answer, youth", [("16", "1", True), ("21", "2", True), ("25", "1", False),
                                                ("25", "2", False)])
def test_the_runaway_safeline_is_offered_to_the_ages_it_serves(lang, age, answer, youth):
    chat = Chat()
    reach(chat, "runaway_age", lang)
    chat.send(age)
    step = chat.send(answer)
    said = " ".join(step.replies)
    assert ("1-800-786-2929" in said) is youth  # a 25-year-old is not sent to a line for ages 12 to 21
    assert youth or "1-888-373-7888" in said  # the 24/7 line that is for them
    if answer == "2":  # no safe place: a counselor or shelters, whatever the age
        assert chat.conv.slots["priority_floor"] == "high"
        chat.send("2")
        assert chat.conv.state == "ask_zip"


@pytest.mark.parametrize("lang, cancel", [("en", "cancel"), ("es", "cancelar")])
def test_cancel_after_using_the_menu_in_line_still_asks_about_the_line(lang, cancel):
    chat = in_line(lang)
    chat.send("0")
    step = chat.send(cancel)
    assert step.replies == [text(lang, "leave_line_confirm")] and not chat.conv.opted_out
    chat.send("1")  # the prompt names YES for leaving: "1" keeps the place
    assert chat.conv.state == "waiting" and chat.conv.handoff == "waiting"


@pytest.mark.parametrize("question", ["hello?", "anyone there?", "¿hola?"])
def test_a_question_mark_makes_it_a_question_even_right_after_a_reassurance(question):
    chat = in_line("en")
    chat.send("hi")  # reassured just now
    assert chat.send(question).keys == ["waiting_question"]


@pytest.mark.parametrize("lang", ["en", "es"])
def test_after_saying_it_is_not_safe_an_ok_lights_up_nothing(lang):
    chat = Chat()
    chat.send(WAIT[lang][0])
    chat.send("2")  # not safe to text
    for ack in ("ok", "👍", "thanks" if lang == "en" else "gracias"):
        assert chat.send(ack).replies == []
    assert chat.send("hola" if lang == "es" else "hi").replies  # something more starts again


def test_he_is_here_during_a_delete_confirmation_gets_the_discreet_line_and_erases_nothing():
    chat = Chat()
    for message in ("hi", "1", "delete"):
        chat.send(message)
    step = chat.send("he is next to me")
    assert "not_safe_now" in step.keys and step.effect("erase") is None and chat.conv.slots.get("quiet")


@pytest.mark.parametrize("written, age", [("dies y seis", 16), ("veinte y cinco", 25), ("quinse", 15),
                                          ("tengo catorse", 14), ("diesiseis", 16)])
def test_spanish_ages_as_often_typed(written, age):
    assert number_in(written, "es") == age


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_screening_asks_one_thing_at_a_time_about_a_minor(lang):
    chat = Chat()
    reach(chat, "screen_minor", lang)
    assert chat.send("2").keys == ["screen_q_threats"]  # not under 18: the next question, nothing about sex
    chat = Chat()
    reach(chat, "screen_minor", lang)
    assert chat.send("1").keys == ["screen_q_minor_asked"]
    chat.send("1")
    assert chat.conv.slots["screen_strong_minor"] is True and chat.conv.slots["priority_floor"] == "high"


@pytest.mark.parametrize("word", ["ayuda", "AYUDA", "información"])
def test_a_spanish_command_in_an_english_conversation_is_answered_in_spanish(word):
    chat = Chat()
    for message in ("hi", "1"):
        chat.send(message)
    assert chat.conv.lang == "en"
    step = chat.send(word)
    assert chat.conv.lang == "es" and step.replies[0] == text("es", "help")


@pytest.mark.parametrize("lang, nudge", [("en", "hello"), ("es", "oye")])
def test_a_quiet_wait_is_reassured_again_once_ten_minutes_have_passed(lang, nudge):
    chat = in_line(lang)
    assert chat.send(nudge).replies == [text(lang, "waiting_reassure")]
    reassured = chat.now

    chat.now = reassured + 598  # the next message comes 9 min 59 s after the reassurance
    assert chat.send(nudge).replies == []  # a phone that lights up every message is not discreet
    chat.now = reassured + 599  # ten minutes after it
    assert chat.send(nudge).replies == [text(lang, "waiting_reassure")]  # not forgotten in a long wait
    assert chat.send(nudge).replies == []  # and the ten quiet minutes start again
