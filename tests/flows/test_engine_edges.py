"""The flow engine's message path at its edges: in line for a counselor, the bot still answers what
cannot wait (a texter who cannot talk, who may be in danger, who writes another language or asks for
help in Spanish), and danger is heard past the message limit (issue 18, from its mutation run)."""
from __future__ import annotations

import pytest

from tests.conftest import Texter
from tests.flows.test_conversation import Chat, text
from tests.flows.test_in_line import in_line


@pytest.mark.parametrize("lang, words", [("en", "he is next to me"), ("en", "i cant talk now")])
def test_in_line_a_texter_who_cannot_talk_gets_only_the_discreet_line(lang, words):
    chat = in_line(lang)
    step = chat.send(words)
    assert step.replies == [text(lang, "not_safe_now")] and "911" in step.replies[0]
    assert chat.conv.slots.get("quiet") and chat.conv.handoff == "waiting"  # nobody texts them first


def test_in_line_a_message_that_may_be_danger_is_asked_plainly_whether_they_are_safe_with_911_and_988():
    chat = in_line("en")
    step = chat.send("this is my last text")  # the model half hears danger: not sure enough for an emergency
    assert step.replies == [text("en", "danger_check")]
    assert "911" in step.replies[0] and "988" in step.replies[0]
    assert chat.conv.handoff == "waiting"


def test_in_line_after_danger_a_message_that_may_be_danger_is_told_a_counselor_is_coming_and_911_again():
    chat = Chat()
    for message in ("hi", "he has a gun", "1"):  # danger, then yes, a counselor
        chat.send(message)
    assert (chat.conv.handoff, chat.conv.risk) == ("waiting", "emergency")
    step = chat.send("this is my last text")
    assert step.replies == [text("en", "emergency_waiting")]  # not asked again whether they are safe


def test_in_line_a_texter_writing_another_language_is_told_of_the_interpreters_and_911():
    chat = in_line("en")
    step = chat.send("kailangan ko ng tulong, hindi ako makaalis")
    assert text("en", "other_language") in step.replies
    assert chat.conv.handoff == "waiting"  # and they keep their place


def test_in_line_ayuda_in_an_english_conversation_is_answered_in_spanish():
    chat = in_line("en")
    step = chat.send("ayuda")
    assert chat.conv.lang == "es" and step.replies[0] == text("es", "help")
    assert chat.conv.handoff == "waiting"


def test_in_line_a_runaway_who_gives_their_age_is_not_asked_it_again():
    chat = in_line("en")
    step = chat.send("i ran away im 15")
    assert chat.conv.slots["age"] == 15 and chat.conv.state == "runaway_place"
    assert step.replies[0] == text("en", "still_in_line") and text("en", "ask_age") not in step.replies
    assert chat.conv.handoff == "waiting"


def test_someone_suicidal_who_joins_the_line_is_given_988_again(app):
    texter = Texter(app.test_client())
    texter.send("hi")
    assert "988" in texter.send("i want to kill myself tonight")
    assert text("en", "emergency_self_harm") in texter.send("1")  # joining the line: the wait, and 988


@pytest.mark.parametrize("danger", ["he has a gun", "he threatened me"])  # the lexicon's words; the model's reading
def test_past_the_message_limit_danger_is_still_told_911(limited, danger):
    texter = Texter(limited.test_client())
    for body in ("hi", "1", "2"):  # the whole ordinary allowance
        texter.send(body)
    assert texter.send("hello?") == ""  # past the limit: not processed
    assert "911" in texter.send(danger)
