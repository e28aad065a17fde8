"""Which words a texter gets: the web chat has no phone number to text, and a first message sets the language."""
from __future__ import annotations

import pytest

from bot.extensions import flow_engine
from flows.conversation import Conversation


@pytest.mark.parametrize("lang, chat_word", [("en", "chat right now"), ("es", "chatear ahora")])
def test_web_visitors_are_not_told_to_text(lang, chat_word):
    engine = flow_engine("Kern Support Line")
    web = Conversation(id="w", channel="web", address="token", lang=lang)
    sms = Conversation(id="s", channel="sms", address="+16615550100", lang=lang)
    web_welcome = engine.step(web, "hola" if lang == "es" else "hi", 0).text
    sms_welcome = engine.step(sms, "hola" if lang == "es" else "hi", 0).text
    assert chat_word in web_welcome and "STOP" not in web_welcome
    assert "STOP" in sms_welcome
    for reply in ("1", "1"):  # safe -> menu -> a counsellor: the consent question
        engine.step(web, reply, 1)
    consent = engine.step(web, "zzz", 2).text.lower()  # a miss repeats the consent question
    assert web.state == "ask_consent"
    assert "here" in consent or "aquí" in consent
    assert "this number" not in consent and "este número" not in consent


def test_every_channel_wording_exists_in_every_language():
    catalog = flow_engine("Kern Support Line").catalog
    variants = {k for texts in catalog.texts.values() for k in texts if "@" in k}
    assert variants  # the web chat has its own wordings
    for lang in catalog.texts:
        assert variants <= catalog.texts[lang].keys()


@pytest.mark.parametrize("first, lang", [
    ("he is going to kill me", "en"),
    ("help me please", "en"),
    ("hi", "en"),
    ("me quiero matar", "es"),
    ("tiene un cuchillo", "es"),
    ("hola", "es"),
    ("necesito ayuda", "es"),
    ("me está pegando ayúdenme", "es"),
])
def test_a_first_message_is_answered_in_its_language(first, lang):
    engine = flow_engine("Kern Support Line")
    conv = Conversation(id="f", channel="sms", address="+16615550100")
    engine.step(conv, first, 0)
    assert conv.lang == lang
