"""The help-line conversation, path by path, in English and Spanish, on the pure engine (no Redis).

The transcripts live in transcripts.yaml; the same cases run over signed SMS in
tests/bot/test_conversation_sms.py. Global commands and emergencies are checked from every state
the conversation can rest in, found by walking the flow itself, so a new state is covered at once.
"""
from __future__ import annotations

import copy
import functools
import re
from collections import deque
from pathlib import Path

import pytest
import yaml

from bot.engine import handoff_priority
from bot.extensions import flow_engine
from flows.conversation import Conversation
from flows.engine import LEAVE_LINE_WORDS, START_WORDS, STOP_WORDS, Step, screening_summary

NAME = "Kern Support Line"  # HELPLINE_NAME's default, which the app fixtures use too
ENGINE = flow_engine(NAME)
FLOW, CATALOG = ENGINE.flow, ENGINE.catalog
TRANSCRIPTS = yaml.safe_load((Path(__file__).with_name("transcripts.yaml")).read_text(encoding="utf-8"))
FIRST = {"en": "hi", "es": "hola"}
EMERGENCY = {"en": "he has a gun", "es": "me quiero matar"}
SMS_SEGMENTS = 320  # two SMS segments
MAX_TEXT = 1600  # Twilio's limit for one message


class Chat:
    """One texter talking to the engine; a clock that moves one second per message."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.conv = Conversation(id="c-test", channel="sms", address="+16615550100")
        self.now = now

    def send(self, text: str) -> Step:
        self.now += 1
        step = ENGINE.step(self.conv, text, self.now)
        self.conv.new = False  # as the store's reload would
        return step


# -- walking the flow to every state -----------------------------------------------------------

# What a texter sends to move on from a free-input state.
SAMPLE_INPUT = {"any": ["hi"], "zip": ["93305"], "age": ["16"], "text": ["a van behind the motel", "done"],
                "when": ["tomorrow after 6"]}
# Ways into a state that no option leads to: a miss twice (the fallback), an emergency, and what the
# intent model hears in a texter's own words (a disclosure, a missing child, another language).
DETOURS = (["zzz", "zzz"], [EMERGENCY["en"]], ["my boss keeps my passport and says i owe him"],
           ["my 14 year old daughter has not come home since friday"], ["kailangan ko ng tulong, hindi ako makaalis"])
# The same detours in Spanish, for routes taken in Spanish (a sentence in English would switch the language).
IN_SPANISH = {
    EMERGENCY["en"]: "tiene una pistola",
    "my boss keeps my passport and says i owe him": "el patrón tiene mi pasaporte y dice que le debo",
    "my 14 year old daughter has not come home since friday": "mi hija de 14 años no ha vuelto a casa desde el viernes",
}


def resting_states() -> list[str]:
    """Every state a conversation can wait in for the texter's next message."""
    return [name for name, state in FLOW.states.items() if not state.next]


def _moves(state_name: str) -> list[list[str]]:
    state = FLOW.states[state_name]
    if state.handoff:
        return [["cancel"]]  # in line: "leave the line?"
    moves = [[str(i)] for i in range(1, len(state.options) + 1)]
    if state.input:
        moves.append(SAMPLE_INPUT[state.input])
    if state.input == "age":
        moves.append(["25"])  # past the Runaway Safeline's ages: the adult runaway states
    return moves + [list(d) for d in DETOURS]


@functools.cache
def routes() -> dict[str, list[str]]:
    """The shortest messages from a first contact to each resting state (chat_ended: see reach)."""
    start = Chat()
    start.send(FIRST["en"])
    found = {FLOW.initial: [], start.conv.state: [FIRST["en"]]}
    todo = deque([(start.conv, [FIRST["en"]])])
    seen = set()
    while todo:
        conv, path = todo.popleft()
        for move in _moves(conv.state):
            chat = Chat()
            chat.conv = Conversation.from_doc(copy.deepcopy(conv.to_doc()))
            for text in move:
                chat.send(text)
            found.setdefault(chat.conv.state, path + move)
            # A state is explored again past the Runaway Safeline's ages (the flow branches on them).
            age = chat.conv.slots.get("age")
            key = (chat.conv.state, isinstance(age, int) and age > 21)
            if key not in seen and (not chat.conv.handoff or FLOW.states[chat.conv.state].handoff):
                seen.add(key)
                todo.append((chat.conv, path + move))
    return found


def reach(chat: Chat, state: str, lang: str) -> None:
    """Bring a chat to a resting state in a language; chat_ended is where a counsellor's goodbye leaves it."""
    if state == FLOW.after_handoff:
        reach(chat, "waiting", lang)
        ENGINE.end_handoff(chat.conv)
    else:
        route = routes()[state]
        for text in [FIRST[lang], *route[1:]] if route else []:
            chat.send(IN_SPANISH.get(text, text) if lang == "es" else text)
    assert chat.conv.state == state
    assert chat.conv.lang == lang or state == FLOW.initial  # a first message decides the language


def question(conv: Conversation) -> str | None:
    """What the texter is asked again after a command that keeps them where they are."""
    state = FLOW.states[conv.state]
    if conv.handoff == "active" or state.handoff or not state.say or state.name == FLOW.initial:
        return None
    # Told 911 once: the emergency state's question is the short 911 answer again.
    key = "emergency_followup" if state.name == FLOW.emergency else state.say
    return CATALOG.render(conv.lang, key, name=NAME)


def text(lang: str, key: str, **values) -> str:
    return CATALOG.render(lang, key, name=NAME, **values)


def test_every_state_can_be_reached_by_texting():
    assert set(resting_states()) - set(routes()) == {FLOW.after_handoff}


# -- transcripts -----------------------------------------------------------------------------------


def check_step(step_spec: dict, replies: list[str], state: str, slots: dict, effects: list[str] | None) -> None:
    """One transcript step against what the texter read and where the conversation is."""
    said = "\n\n".join(replies)
    where = f"after {step_spec['send']!r}: {said!r}"
    for part in step_spec.get("expect", []):
        assert str(part) in said, where
    for part in step_spec.get("expect_not", []):
        assert str(part).lower() not in said.lower(), where
    order = [said.find(str(part)) for part in step_spec.get("order", [])]
    assert all(i >= 0 for i in order) and order == sorted(order), where
    if step_spec.get("silent"):
        assert said == "", where
    else:
        assert said, where
    assert all(len(r) <= MAX_TEXT for r in replies), where
    if "state" in step_spec:
        assert state == step_spec["state"], where
    for key, value in (step_spec.get("slots") or {}).items():
        assert slots.get(key) == value, f"{where}: slot {key}"
    if "effects" in step_spec and effects is not None:
        assert effects == step_spec["effects"], where


@pytest.mark.parametrize("case", TRANSCRIPTS, ids=[c["name"] for c in TRANSCRIPTS])
def test_transcript(case):
    chat = Chat()
    for spec in case["steps"]:
        step = chat.send(spec["send"])
        check_step(spec, step.replies, chat.conv.state, chat.conv.slots, [e.name for e in step.effects])
        # Two SMS segments at most, but for a resource listing, whose length the directory decides.
        for key, reply in zip(step.keys, step.replies):
            assert len(reply) <= SMS_SEGMENTS or key == "resources_list", (key, reply)
    assert chat.conv.lang == case["lang"]


def test_transcripts_cover_both_languages_for_every_path():
    langs = {c["lang"] for c in TRANSCRIPTS}
    assert langs == {"en", "es"}
    for lang in langs:
        visited = set()
        for case in (c for c in TRANSCRIPTS if c["lang"] == lang):
            visited |= {s["state"] for s in case["steps"] if "state" in s}
        assert {"closed", "waiting", "after_info", "screen_strong", "runaway_unsafe", "tip_consent", "ask_zip"} <= visited


# -- first contact ------------------------------------------------------------------------------


@pytest.mark.parametrize("first, lang", [("hi", "en"), ("help", "en"), ("Hello", "en"), ("I need help", "en"),
                                         ("hola", "es"), ("necesito ayuda", "es"), ("buenas tardes", "es"),
                                         ("ayuda", "es"), ("Hola, necesito información", "es")])
def test_first_reply_is_discreet_and_in_the_texters_language(first, lang):
    step = Chat().send(first)
    assert step.keys == ["welcome"]
    assert step.text == text(lang, "welcome")
    assert len(step.text) <= SMS_SEGMENTS
    assert NAME in step.text and "911" in step.text
    assert ("responde ES" if lang == "en" else "reply EN") in step.text  # the other language is offered
    assert "STOP" in step.text and ("DELETE" if lang == "en" else "BORRAR") in step.text
    for word in ("traffick", "trata", "sex", "abuse", "abuso"):
        assert word not in step.text.lower()


# -- the menu, by numbers and by words ------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("answer, state", [
    ("1", "ask_consent"), ("1.", "ask_consent"), ("1)", "ask_consent"), ("1️⃣", "ask_consent"),
    ("one", "ask_consent"), ("uno", "ask_consent"), ("counselor", "ask_consent"), ("Counsellor", "ask_consent"),
    ("consejero", "ask_consent"), ("hablar con una persona", "ask_consent"),
    ("2", "screen_not_free"), ("dos", "screen_not_free"), ("2️⃣", "screen_not_free"), ("two", "screen_not_free"),
    ("2 ", "screen_not_free"), ("preguntas", "screen_not_free"),
    ("3", "runaway_age"), ("tres", "runaway_age"), ("4", "tip_collect"), ("reportar", "tip_collect"),
    ("5", "ask_category"), ("recursos", "ask_category"), ("6", "after_info"), ("señales", "after_info"),
])
def test_menu_answers_by_number_and_by_word(lang, answer, state):
    chat = Chat()
    reach(chat, "menu", lang)
    step = chat.send(answer)
    assert chat.conv.state == state, step.text
    assert "not_understood" not in step.keys


# -- a counsellor ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es"])
def test_no_handoff_before_consent_and_none_after_a_no(lang):
    chat = Chat()
    reach(chat, "ask_consent", lang)
    assert chat.conv.consent is None and chat.conv.handoff is None
    step = chat.send("no")
    assert chat.conv.consent is False and chat.conv.handoff is None
    assert step.effect("request_handoff") is None
    assert "1-888-373-7888" in step.text and "233733" in step.text
    # Asking again later gets the question again, not a handoff behind their back.
    step = chat.send("1")
    assert chat.conv.state == "ask_consent" and step.effect("request_handoff") is None


@pytest.mark.parametrize("lang", ["en", "es"])
def test_consent_queues_one_handoff_at_normal_priority(lang):
    chat = Chat()
    reach(chat, "ask_consent", lang)
    step = chat.send("sí" if lang == "es" else "yes")
    assert [e.name for e in step.effects] == ["request_handoff"]
    assert step.effect("request_handoff").params == {"reason": "counsellor"}
    assert chat.conv.consent is True and chat.conv.handoff == "waiting"
    assert handoff_priority(chat.conv, "counsellor") == "normal"


# -- screening ------------------------------------------------------------------------------------


SCREEN_ORDER = ["not_free", "id_held", "debt", "job_changed", "sex_trade", "minor", "threats"]


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("strong", [None, "not_free", "id_held", "debt", "sex_trade", "minor", "threats"])
def test_screening_summary_and_priority(lang, strong):
    chat = Chat()
    reach(chat, "screen_not_free", lang)
    for name in SCREEN_ORDER:
        if name == "minor" and strong == "minor":
            chat.send("1")  # under 18: then, one thing at a time, whether someone asked for something sexual
        step = chat.send("1" if name == strong else "2")
    summary = screening_summary(chat.conv)
    assert summary == {**{name: name == strong for name in SCREEN_ORDER}, "under_18": strong == "minor"}
    if strong is None:
        assert chat.conv.state == "check_in_offer" and "screen_none" in step.keys
        assert handoff_priority(chat.conv) == "normal"
        return
    assert chat.conv.state == "screen_strong"
    assert ("trata de personas" if lang == "es" else "can be human trafficking") in step.text
    assert handoff_priority(chat.conv) == "high"
    chat.send("1")
    step = chat.send("1")
    assert step.effect("request_handoff") is not None
    assert handoff_priority(chat.conv, step.effect("request_handoff").params["reason"]) == "high"


def test_a_job_that_changed_alone_is_not_a_strong_sign():
    chat = Chat()
    reach(chat, "screen_not_free", "en")
    for name in SCREEN_ORDER:
        step = chat.send("yes" if name == "job_changed" else "no")
    assert "screen_none" in step.keys
    assert screening_summary(chat.conv)["job_changed"] is True


# -- find help near me -----------------------------------------------------------------------------

# Three places with address and hours can pass two segments; three segments is the most we accept.
LISTING_LIMIT = 480
CATEGORY_NUMBERS = {"shelter": "1", "youth": "2", "food": "3", "legal": "4", "medical": "5", "counselling": "6"}
PHONE = re.compile(r"\(\d{3}\) \d{3}-\d{4}|\b1-\d{3}-\d{3}-\d{4}\b|\b\d-\d-\d\b")
TEXTED = re.compile(r"(?:text|texto al) (?:START to )?(\d{3,6})")


def numbers_in(reply: str) -> set[str]:
    """Phone numbers and text short codes in a reply (street numbers and ZIP codes are not)."""
    return set(PHONE.findall(reply)) | set(TEXTED.findall(reply)) | set(re.findall(r"\b(?:911|988)\b", reply))


def catalog_numbers() -> set[str]:
    return {n for lang in CATALOG.texts for t in CATALOG.texts[lang].values() for n in numbers_in(t)}


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("category", list(CATEGORY_NUMBERS))
@pytest.mark.parametrize("zip_code", ["93305", "93215", "93555", "93301-1234"])
def test_help_near_me_lists_only_sourced_numbers_nearest_first(lang, category, zip_code):
    chat = Chat()
    reach(chat, "ask_category", lang)
    chat.send(CATEGORY_NUMBERS[category])
    assert chat.conv.slots["category"] == category
    step = chat.send(zip_code)
    assert chat.conv.state == "check_in_offer"  # by text, a check-in later is offered after the list
    listing = step.replies[0]
    assert listing.startswith(("Near " if lang == "en" else "Cerca de ") + zip_code[:5])
    assert len(listing) <= LISTING_LIMIT
    sourced = {str(x) for r in ENGINE.resources.resources for x in (r.phone, r.text) if x} | catalog_numbers()
    assert numbers_in(listing) <= sourced | {n for x in sourced for n in TEXTED.findall(f"text {x}")}
    miles = [int(m) for m in re.findall(r"(\d+) (?:mi|millas)\b", listing)]
    assert miles == sorted(miles)


def test_delano_lists_the_delano_shelter_before_bakersfield():
    chat = Chat()
    reach(chat, "ask_zip", "en")  # the route comes through "a place to stay"
    assert chat.conv.slots["category"] == "shelter"
    listing = chat.send("93215").replies[0]
    assert listing.index("Delano") < listing.index("Bakersfield")


@pytest.mark.parametrize("bad", ["abc", "9330", "00000", "933051"])
def test_a_wrong_zip_is_asked_again_then_a_right_one_works(bad):
    chat = Chat()
    reach(chat, "ask_zip", "en")
    step = chat.send(bad)
    assert chat.conv.state == "ask_zip" and step.keys == ["ask_zip"]  # asked again, no guessing
    chat.send("93305")
    assert chat.conv.state == "check_in_offer" and chat.conv.slots["zip"] == "93305"


# -- global commands from every state ----------------------------------------------------------------


def _in(state: str, lang: str) -> Chat:
    chat = Chat()
    reach(chat, state, lang)
    return chat


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("command", ["MENU", "0", "menú", "Menu."])
@pytest.mark.parametrize("state", resting_states())
def test_menu_from_every_state(state, command, lang):
    chat = _in(state, lang)
    step = chat.send(command)
    if state == FLOW.initial:  # a first message always gets the safety question first
        assert step.keys == ["welcome"]
    elif state == "waiting":  # in line: the menu, and the place in line is kept
        assert (chat.conv.state, chat.conv.handoff) == ("menu", "waiting")
        still = "emergency_waiting" if chat.conv.risk == "emergency" else "still_in_line"  # after danger: 911 again
        assert step.replies == [text(lang, still), text(lang, "menu")]
        assert step.effect("request_handoff") is None
    else:
        assert chat.conv.state == "menu" and step.keys[-1] == "menu"
        assert step.text.endswith(text(lang, "menu"))


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", resting_states())
def test_language_switch_from_every_state_repeats_the_question(state, lang):
    other = "es" if lang == "en" else "en"
    chat = _in(state, lang)
    before = chat.conv.state
    step = chat.send("ESPAÑOL" if other == "es" else "ENGLISH")
    assert chat.conv.lang == other
    if state == FLOW.initial:
        assert step.replies == [text(other, "welcome")]
        return
    assert chat.conv.state == before
    expected = [text(other, "language_set")]
    if question(chat.conv):
        expected.append(question(chat.conv))
    assert step.replies == expected


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", resting_states())
def test_help_from_every_state(state, lang):
    chat = _in(state, lang)
    before = chat.conv.state
    step = chat.send("HELP" if lang == "en" else "AYUDA")
    if state == FLOW.initial:
        assert step.keys == ["welcome"]
        return
    assert "911" in step.text
    assert step.replies[0] == text(lang, "help")  # HELP answers HELP in every state, after an emergency too
    assert step.effect("request_handoff") is None
    assert NAME in step.text and "1-888-373-7888" in step.text and "STOP" in step.text
    assert chat.conv.state == before
    assert step.replies[1:] == ([question(chat.conv)] if question(chat.conv) else [])


@pytest.mark.parametrize("word", sorted(STOP_WORDS))
@pytest.mark.parametrize("state", resting_states())
def test_every_opt_out_word_from_every_state_then_silence_until_start(state, word):
    chat = _in(state, "en")
    waiting = chat.conv.handoff == "waiting"
    step = chat.send(word.upper())
    if waiting and word in LEAVE_LINE_WORDS:  # in line "cancel" asks about the line
        assert step.keys == ["leave_line_confirm"] and not chat.conv.opted_out
        return
    assert step.keys == ["stopped"] and [e.name for e in step.effects] == ["opt_out"]
    assert chat.conv.opted_out
    for later in ("hi", "1", "help", "menu", "delete"):
        assert chat.send(later).replies == []
    # Silent after STOP, but danger still reaches the counsellors (who see the texter opted out).
    step = chat.send(EMERGENCY["en"])
    assert step.replies == [] and step.level == "emergency" and [e.name for e in step.effects] == ["emergency_alert"]
    step = chat.send(sorted(START_WORDS)[len(word) % 2].upper())
    assert step.keys == ["restarted"] and not chat.conv.opted_out
    # Back to the start; someone in line keeps their place, and after that danger is answered every time.
    expected = ["welcome"]
    if chat.conv.handoff:
        expected = ["leave_line_confirm"] if state == FLOW.leave_line else ["emergency_waiting"]
    assert chat.send("hi").keys == expected


@pytest.mark.parametrize("sentence", ["I want to stop working here", "please stop him", "stop it", "end this",
                                      "cancel my appointment", "quit my job"])
def test_opt_out_words_inside_a_sentence_are_not_an_opt_out(sentence):
    chat = _in("menu", "en")
    step = chat.send(sentence)
    assert not chat.conv.opted_out and "stopped" not in step.keys and step.replies


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", resting_states())
def test_delete_with_confirmation_from_every_state(state, lang):
    chat = _in(state, lang)
    step = chat.send("DELETE" if lang == "en" else "BORRAR")
    assert step.keys == ["confirm_delete"] and step.effects == []
    step = chat.send("SÍ" if lang == "es" else "YES")
    assert step.keys == ["erased"] and [e.name for e in step.effects] == ["erase"]


@pytest.mark.parametrize("answer", ["no, keep it", "1", "ok", "yes please keep it"])
@pytest.mark.parametrize("state", resting_states())
def test_delete_then_anything_else_keeps_everything(state, answer):
    chat = _in(state, "en")
    before = copy.deepcopy(chat.conv.to_doc())
    chat.send("delete")
    step = chat.send(answer)  # the prompt says YES erases: "1" or "ok" does not
    assert step.keys == ["not_erased"] and step.effects == []
    assert chat.conv.state == before["state"] and chat.conv.slots == before["slots"]


# -- emergencies interrupt every state --------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", resting_states())
def test_emergency_from_every_state(state, lang):
    chat = _in(state, lang)
    in_line = chat.conv.handoff is not None
    step = chat.send(EMERGENCY[lang])
    assert step.replies[0] == text(lang, "emergency") and "911" in step.replies[0]
    assert ("988" in step.text) is (lang == "es")  # the Spanish message is the self-harm one
    assert step.level == "emergency" and chat.conv.risk == "emergency"
    assert step.effect("emergency_alert") is not None
    if in_line:
        assert step.effect("request_handoff").params["reason"] == "emergency"
        return
    if state == FLOW.emergency:
        # Told 911 already and writing of danger again: they are put in line for a counsellor now.
        assert step.effect("request_handoff").params["reason"] == "emergency" and chat.conv.consent is True
        return
    if FLOW.states[state].input == "text":
        # A report of someone else in danger: 911 and the alert, and the report is still being taken.
        assert chat.conv.state == state and EMERGENCY[lang] in chat.conv.slots[FLOW.states[state].slot]
        return
    assert chat.conv.state == FLOW.emergency and step.keys[-1] == "emergency_offer"
    step = chat.send("1")
    assert step.effect("request_handoff").params["reason"] == "emergency"
    assert chat.conv.consent is True
    assert handoff_priority(chat.conv, "emergency") == "emergency"


def test_emergency_during_a_delete_confirmation_is_heard():
    chat = _in("menu", "en")
    chat.send("delete")
    step = chat.send(EMERGENCY["en"])
    assert "911" in step.text and step.effect("emergency_alert") and step.effect("erase") is None
    assert chat.send("yes").effect("erase") is None  # the question was dropped, nothing erased by surprise


@pytest.mark.parametrize("message, self_harm", [(EMERGENCY["en"], False), (EMERGENCY["es"], True),
                                                ("I want to kill myself", True)])
def test_emergency_while_a_counsellor_is_talking(message, self_harm):
    chat = _in("waiting", "en")
    chat.conv.handoff, chat.conv.counsellor = "active", "dana"
    assert chat.send("thank you for answering").replies == []  # the counsellor talks, not the bot
    step = chat.send(message)
    assert "911" in step.replies[0] and ("988" in step.text) is self_harm
    assert step.effect("request_handoff").params["reason"] == "emergency"
    assert chat.conv.handoff == "active"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_help_and_language_are_answered_in_line_and_with_a_counsellor(lang):
    chat = _in("waiting", lang)
    chat.conv.handoff = "active"
    assert chat.send("HELP").replies == [text(lang, "help")]
    step = chat.send("ENGLISH" if lang == "es" else "ESPAÑOL")
    assert step.keys == ["language_set"] and chat.conv.handoff == "active"


# -- every message as the texter reads it -----------------------------------------------------------

SAMPLE_VALUES = {"name": NAME, "minutes": "15", "back": "tomorrow at 9 a.m.", "zip": "93305",
                 "resources": "", "number": "233733", "miles": "12"}


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_catalog_message_fits_two_sms_segments(lang):
    too_long = {}
    for key in CATALOG.texts[lang]:
        rendered = CATALOG.render(lang, key, **SAMPLE_VALUES)
        assert len(rendered) <= MAX_TEXT, key
        if len(rendered) > SMS_SEGMENTS:
            too_long[key] = len(rendered)
    assert too_long == {}


def test_both_languages_have_the_same_messages():
    assert CATALOG.texts["en"].keys() == CATALOG.texts["es"].keys()


# The sourced numbers: /work/shared/facts/national-lines.md (911, text-to-911, 988, the National
# Human Trafficking Hotline, the National Runaway Safeline, the National Domestic Violence Hotline)
# and /work/shared/facts/kern-county.md (2-1-1 and the local lines). Kept here because CI may not
# have /work/shared; add a number here only together with its source in those files.
SOURCED_NUMBERS = {
    "911", "988", "2-1-1", "1-888-373-7888", "233733", "711", "1-800-786-2929", "66008",
    "1-800-799-7233", "1-800-787-3224", "88788",
    "(661) 327-1091", "(661) 631-6011", "(760) 375-6049", "(661) 861-3110", "(800) 861-3110", "(661) 327-7111",
}
EXAMPLE_ZIP = "93305"  # the "for example" ZIP code in ask_zip, not a number to call
NOT_NUMBERS = {EXAMPLE_ZIP, "200"}  # and "200+ languages" in other_language


def test_every_number_in_the_catalogs_is_sourced():
    digits = re.compile(r"\(\d{3}\) \d{3}-\d{4}|\b\d(?:-\d+)+\b|\b\d{3,}\b")
    for lang, texts in CATALOG.texts.items():
        for key, message in texts.items():
            found = set(digits.findall(message)) - NOT_NUMBERS
            assert found <= SOURCED_NUMBERS, f"{lang}.yaml {key}: {found - SOURCED_NUMBERS}"
    assert {"911", "988", "1-888-373-7888", "233733", "1-800-786-2929", "66008", "2-1-1"} <= catalog_numbers()


def test_every_number_in_the_resource_directory_is_sourced():
    listed = {str(x).removeprefix("START to ") for r in ENGINE.resources.resources for x in (r.phone, r.text) if x}
    assert listed <= SOURCED_NUMBERS


def test_the_documented_diagram_is_the_flow_as_it_is():
    from flows.diagram import mermaid

    doc = (Path(__file__).resolve().parents[2] / "docs" / "conversation.md").read_text(encoding="utf-8")
    drawn = doc.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert drawn.strip() == mermaid(FLOW).strip(), "run `helpline flows diagram` and paste it into docs/conversation.md"
