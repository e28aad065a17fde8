"""Texters in their own words, in both languages and in several states: what the intent layer makes of them.

The messages here are plain ones people send (the issue's examples among them); the model's own figures
are in test_nlu.py. Each test says what a texter would notice: where the talk goes, what they read.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from flows.engine import CONFIDENT, GUESS
from flows.nlu_train import read_tsv

from .test_conversation import CATALOG, ENGINE, NAME, Chat, _in, reach, text

DATA_DIR = Path(__file__).parents[1] / "data"

SOURCED = ("1-888-373-7888", "233733")


def said(step) -> str:
    return step.text


# -- a person, a safe place, help near me: at the menu -------------------------------------------

@pytest.mark.parametrize("lang, message, state", [
    ("en", "can I talk to a counselor", "ask_consent"),
    ("en", "I need to talk to a person", "ask_consent"),
    ("en", "I want to talk to someone", "ask_consent"),
    ("en", "councelor", "ask_consent"),
    ("es", "quiero hablar con alguien", "ask_consent"),
    ("es", "necesito hablar con una persona porfa", "ask_consent"),
    ("en", "I ran away", "runaway_age"),
    ("en", "my mom kicked me out and i have nowhere to sleep", "runaway_age"),
    ("es", "me escapé de mi casa", "runaway_age"),
    ("en", "find hlep", "ask_category"),
    ("es", "qué tipo de ayuda tienen", "ask_category"),
    ("en", "i want to report something i saw at work", "tip_collect"),
    ("es", "quiero denunciar algo que vi", "tip_collect"),
])
def test_what_they_ask_for_at_the_menu(lang, message, state):
    chat = _in("menu", lang)
    step = chat.send(message)
    assert chat.conv.state == state, said(step)
    assert "not_understood" not in step.keys and "clarify" not in step.keys
    assert chat.conv.lang == lang


@pytest.mark.parametrize("lang, message, category", [
    ("en", "where can i get some food", "food"),
    ("en", "i need a doctor", "medical"),
    ("es", "necesito comida para mis hijos", "food"),
    ("es", "ocupo un abogado", "legal"),
])
def test_a_kind_of_help_goes_straight_to_the_zip_code(lang, message, category):
    chat = _in("menu", lang)
    chat.send(message)
    assert chat.conv.state == "ask_zip" and chat.conv.slots["category"] == category
    chat.send("93305")
    assert chat.conv.state == "check_in_offer"  # the list, then (by text) a check-in later offered


# -- disclosures -------------------------------------------------------------------------------

@pytest.mark.parametrize("lang, message", [
    ("en", "my boss keeps my ID and says I owe him"),
    ("en", "daddy takes all my money and makes me see dates"),
    ("es", "el patrón tiene mis papeles y dice que le debo"),
])
@pytest.mark.parametrize("state", ["menu", "after_info"])
def test_a_disclosure_is_acknowledged_with_the_hotline_and_a_person(state, lang, message):
    chat = _in(state, lang)
    step = chat.send(message)
    assert chat.conv.state == "disclosure_offer", said(step)
    assert step.keys == ["disclosure_ack"]
    assert ("not your fault" if lang == "en" else "no es tu culpa") in step.text
    assert all(number in step.text for number in SOURCED)
    assert chat.conv.slots["priority_floor"] == "high" and chat.conv.risk in ("high", "emergency")
    chat.send("1")
    chat.send("1")
    assert chat.conv.handoff == "waiting"


# -- not safe to talk now ----------------------------------------------------------------------

NOT_SAFE = {"en": ["he is next to me", "cant talk now", "my boss is watching my phone"],
            "es": ["ahorita no puedo, está aquí", "no puedo hablar ahorita", "mi novio me revisa el cel"]}


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", ["menu", "screen_id_held", "ask_zip", "ask_consent", "runaway_age"])
def test_not_safe_now_gets_one_short_discreet_line(state, lang):
    for message in NOT_SAFE[lang]:
        chat = _in(state, lang)
        step = chat.send(message)
        assert step.keys == ["not_safe_now"], (message, said(step))
        assert len(step.text) < 160 and NAME not in step.text and "1" not in step.text.replace("911", "")
        assert chat.conv.slots.get("quiet") is True and step.effects == []


def test_not_safe_now_first_is_not_the_welcome():
    chat = Chat()
    step = chat.send("he is next to me cant talk")
    assert step.keys == ["not_safe_now"] and chat.conv.state == "closed"
    assert chat.send("ok").replies == [] and chat.conv.slots["quiet"]  # an "ok" lights up nothing
    step = chat.send("ok he left now")  # back later: the safety question, and the quiet is lifted
    assert "welcome" in step.keys and "quiet" not in chat.conv.slots


@pytest.mark.parametrize("handoff", ["waiting", "active"])
def test_not_safe_now_in_line_or_with_a_counsellor_is_answered_and_marks_the_conversation_quiet(handoff):
    chat = _in("waiting", "en")
    chat.conv.handoff = handoff
    step = chat.send("he just walked in cant talk")
    assert step.keys == ["not_safe_now"] and chat.conv.slots["quiet"] is True
    assert chat.send("ok").replies == [] and chat.conv.slots["quiet"] is True
    chat.send("he left, can we talk now")
    assert "quiet" not in chat.conv.slots


# -- danger -------------------------------------------------------------------------------------

@pytest.mark.parametrize("message, self_harm", [
    ("me quiere matar", False),
    ("ayúdenme me tienen encerrada", False),
    ("tomé muchas pastillas", True),
])
def test_a_first_message_that_is_a_spanish_emergency_is_answered_in_spanish(message, self_harm):
    chat = Chat()
    step = chat.send(message)
    assert step.replies[0] == text("es", "emergency") and chat.conv.lang == "es"
    assert ("988" in step.text) is self_harm
    assert step.effect("emergency_alert") is not None


@pytest.mark.parametrize("lang, later", [
    ("en", "i cant call hes here"), ("en", "please hurry"), ("en", "ok"), ("en", "where are you"),
    ("es", "no puedo llamar está aquí"), ("es", "apúrense por favor"), ("es", "???"),
])
def test_after_an_emergency_every_message_is_answered_with_911(lang, later):
    chat = _in("menu", lang)
    chat.send("he has a gun and says he will kill me" if lang == "en" else "me quiere matar con un cuchillo")
    step = chat.send(later)
    assert "911" in step.text, said(step)
    assert "not_understood" not in step.keys and "clarify" not in step.keys
    step = chat.send(later)  # and again: never silence
    assert "911" in step.text


def test_please_hurry_after_the_emergency_reply_puts_them_in_line():
    chat = _in("menu", "en")
    chat.send("he is hitting me")
    step = chat.send("please hurry")
    assert step.effect("request_handoff").params["reason"] == "emergency"
    assert chat.conv.handoff == "waiting" and chat.conv.consent is True
    assert "911" in chat.send("please").text  # in line after danger: still answered every time


@pytest.mark.parametrize("message", ["911", "🆘", "sos"])
def test_a_bare_cry_for_help_is_an_emergency(message):
    chat = _in("menu", "en")
    step = chat.send(message)
    assert step.level == "emergency" and step.effect("emergency_alert") is not None


# -- families, trust, other languages ------------------------------------------------------------

@pytest.mark.parametrize("lang, message", [
    ("en", "my 14 year old hasn't come home"),
    ("en", "my daughter left with an older man and wont answer her phone"),
    ("es", "mi hijo de 15 no ha regresado a la casa desde ayer"),
])
def test_a_family_member_looking_for_a_child_gets_a_path_of_their_own(lang, message):
    chat = _in("menu", lang)
    step = chat.send(message)
    assert chat.conv.state == "family_missing", said(step)
    assert "911" in step.text and "1-800-786-2929" in step.text and "1-888-373-7888" in step.text
    chat.send("1")
    assert chat.conv.state == "ask_consent"


@pytest.mark.parametrize("lang, message, key", [
    ("en", "are you the police?", "trust_police"),
    ("en", "r u cops", "trust_police"),
    ("es", "¿van a llamar a la migra?", "trust_immigration"),
    ("en", "do you work with ICE", "trust_immigration"),
    ("en", "who is this", "trust_who"),
    ("es", "quién eres", "trust_who"),
    ("en", "is this free", "trust_cost"),
    ("es", "le van a decir a mis papás?", "trust_privacy"),
])
@pytest.mark.parametrize("state", ["menu", "screen_debt", "waiting"])
def test_trust_questions_get_a_short_honest_answer_and_the_talk_goes_on(state, lang, message, key):
    chat = _in(state, lang)
    step = chat.send(message)
    assert step.keys[0] == key, said(step)
    assert chat.conv.state == state
    if state != "waiting":
        assert step.keys[1:] == [ENGINE.flow.states[state].say]  # the question they were on, again


@pytest.mark.parametrize("message", [
    "kailangan ko ng tulong, hindi ako makaalis",  # Tagalog
    "ਮੈਨੂੰ ਮਦਦ ਚਾਹੀਦੀ ਹੈ",  # Punjabi
    "أحتاج مساعدة من فضلك",  # Arabic
    "tôi cần giúp đỡ, tôi không thể rời đi",  # Vietnamese
    "mwen bezwen èd, patwon an pran paspò mwen",  # Haitian Creole
])
@pytest.mark.parametrize("first", [True, False])
def test_another_language_gets_the_interpreted_line_in_english_and_spanish(message, first):
    chat = Chat() if first else _in("menu", "en")
    step = chat.send(message)
    assert chat.conv.state == "other_language", said(step)
    assert "1-888-373-7888" in step.text and "200" in step.text and "idiomas" in step.text
    chat.send("1")
    assert chat.conv.state == "ask_consent"


# -- first contact, greetings, goodbyes ----------------------------------------------------------

@pytest.mark.parametrize("lang, first, state", [
    ("en", "I ran away last night", "runaway_age"),
    ("en", "can i talk to someone", "ask_consent"),
    ("es", "me corrieron de mi casa y no tengo donde dormir", "runaway_age"),
])
def test_a_first_message_with_a_need_gets_the_safety_check_then_that_need(lang, first, state):
    chat = Chat()
    step = chat.send(first)
    assert step.keys == ["welcome"] and chat.conv.lang == lang
    step = chat.send("1")
    assert chat.conv.state == state and "menu" not in step.keys


def test_who_is_this_first_is_answered_before_the_welcome():
    chat = Chat()
    step = chat.send("who is this")
    assert step.keys == ["trust_who", "welcome"]


@pytest.mark.parametrize("lang, message, key", [
    ("en", "hello", "menu"), ("es", "buenas tardes", "menu"),
    ("en", "ok thanks bye", "goodbye"), ("es", "muchas gracias", "goodbye"),
])
def test_greetings_and_goodbyes_at_the_menu(lang, message, key):
    chat = _in("menu", lang)
    assert key in chat.send(message).keys


# -- when the bot is unsure -----------------------------------------------------------------------

def _unsure_line() -> str:
    """A held-out line the model is unsure about (between GUESS and CONFIDENT) with a meaning to offer."""
    for row in read_tsv(DATA_DIR / "intents_heldout.tsv"):
        reading = ENGINE.read(row["text"])
        if (row["lang"] == "en" and GUESS <= reading.confidence < CONFIDENT and reading.lang == "en"
                and ENGINE.triage.assess(row["text"]).level == "normal"):
            chat = _in("menu", "en")
            if "clarify" in chat.send(row["text"]).keys:
                return row["text"]
    raise AssertionError("no held-out line is in the unsure band")


def test_low_confidence_asks_which_of_two_meanings_or_a_person():
    line = _unsure_line()
    chat = _in("menu", "en")
    step = chat.send(line)
    assert step.keys == ["clarify"] and "Did you mean: 1 " in step.text and "3 to talk with a person" in step.text
    first = chat.conv.slots["_clarify"][0]
    chat.send("1")
    assert chat.conv.state == ENGINE.flow.action(ENGINE.flow.states["menu"], first).to or first.startswith("trust")
    chat = _in("menu", "en")
    chat.send(line)
    chat.send("3")
    assert chat.conv.state == "ask_consent"


@pytest.mark.parametrize("message", ["???", "...", "   ", "🙂🙂", "🙏"])
def test_what_cannot_be_read_gets_the_question_again_never_sorry(message):
    chat = _in("menu", "en")
    step = chat.send(message)
    assert step.keys == ["menu"] and "understand" not in step.text


def test_not_understood_is_never_said_after_a_high_message():
    chat = _in("menu", "en")
    chat.send("they took my passport")
    for message in ("???", "zzz"):
        assert "did not understand" not in chat.send(message).text.lower()


# -- channels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["stop", "end", "quit", "cancel", "STOP"])
def test_opt_out_words_are_ordinary_words_in_the_web_chat(word):
    chat = Chat()
    chat.conv.channel = "web"
    reach(chat, "menu", "en")
    step = chat.send(word)
    assert not chat.conv.opted_out and step.replies and "stopped" not in step.keys
    step = chat.send("he has a gun and says he will kill me")
    assert "911" in step.text and step.effect("emergency_alert") is not None


def test_after_stop_on_sms_danger_is_silent_but_alerts_the_counsellors():
    chat = _in("menu", "en")
    chat.send("STOP")
    step = chat.send("he has a gun and says he will kill me")
    assert step.replies == [] and step.effect("emergency_alert") is not None
    assert chat.conv.risk == "emergency" and chat.conv.opted_out


def test_every_meaning_offered_has_words_in_both_languages():
    for lang in CATALOG.texts:
        for label in ENGINE.intents.labels:
            name = label.split(".")[0]
            if name in ("find_help", "trust_question", "runaway", "disclosure", "report_tip", "family_missing"):
                assert CATALOG.has(lang, f"meaning_{label}") or CATALOG.has(lang, f"meaning_{name}"), (lang, label)


@pytest.mark.parametrize("lang, message, consent", [
    ("en", "sure go ahead", True), ("en", "yeah thats fine", True),
    ("es", "sí claro, escríbanme", True), ("es", "órale pues", True),
    ("en", "nah", False), ("es", "mejor no", False),
])
def test_yes_and_no_in_their_own_words_answer_the_consent_question(lang, message, consent):
    chat = _in("ask_consent", lang)
    chat.send(message)
    assert chat.conv.consent is consent
    assert (chat.conv.handoff == "waiting") is consent


def test_mixteco_gets_the_interpreted_line():
    chat = _in("menu", "en")
    chat.send("ñuu savi, kuu ini ndakuu")
    assert chat.conv.state == "other_language"


@pytest.mark.parametrize("lang, message", [
    ("en", "i don't want to die i just want a job"),
    ("es", "nadie me esta pegando, es para una amiga"),
    ("es", "ya no me pegan, estoy bien"),
])
def test_danger_words_the_lexicon_sees_negated_are_not_an_emergency(lang, message):
    chat = _in("menu", lang)
    assert chat.send(message).level != "emergency"


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_trust_answer_about_the_police_says_911(lang):
    assert "911" in text(lang, "trust_police")


@pytest.mark.parametrize("lang, later", [
    ("en", "he's here"), ("en", "hes coming"), ("en", "i cant call he will hear"),
    ("es", "ahi viene"), ("es", "ya llego"),
])
def test_hes_here_after_an_emergency_gets_the_discreet_line_not_a_queue(lang, later):
    chat = _in("menu", lang)
    chat.send("he has a gun" if lang == "en" else "tiene una pistola")
    step = chat.send(later)
    assert step.keys == ["not_safe_now"] and "911" in step.text and len(step.text) < 160
    assert chat.conv.slots["quiet"] is True and chat.conv.handoff is None
    assert step.effect("request_handoff") is None


@pytest.mark.parametrize("first", ["ola", "wenas", "oiga", "porfa"])
def test_a_spanish_greeting_however_spelt_is_answered_in_spanish(first):
    chat = Chat()
    chat.send(first)
    assert chat.conv.lang == "es"


def test_a_spanish_si_on_a_page_opened_in_english_switches_the_web_chat():
    chat = Chat()
    chat.conv.channel = "web"
    chat.send("")  # the page opening
    chat.send("si")
    assert chat.conv.lang == "es" and chat.conv.state == "menu"
