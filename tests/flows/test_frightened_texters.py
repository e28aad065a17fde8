"""What a red team, playing frightened texters by hand, found the bot misread (2026-12), as behaviour.

The messages here were written by the testers; none is a training line (flows/intents/*_review.yaml holds
other wordings of the same kinds of message), so each test says whether the model learnt the kind.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from flows.nlu_train import ExamplesError, load_examples

from .test_conversation import NAME, Chat, _in, reach, text

SOURCED = ("1-888-373-7888", "233733")


def said(step) -> str:
    return f"{step.keys} {step.text!r}"


# -- a farmworker whose boss keeps his papers: short Spanish, no accents, typos -----------------------

@pytest.mark.parametrize("message", ["mi jefe me kito mis papeles", "el contratista tiene mis documentos",
                                     "ocupo ayuda con mi patron no me deja ir a ningun lado"])
def test_papers_kept_in_misspelt_spanish_is_a_disclosure_answered_in_spanish(message):
    chat = _in("menu", "es")
    step = chat.send(message)
    assert step.keys == ["disclosure_ack"], said(step)  # was: "Did you mean… immigration help?"
    assert "no es tu culpa" in step.text and all(number in step.text for number in SOURCED)
    assert chat.conv.slots["priority_floor"] == "high" and chat.conv.lang == "es"


# -- a 16-year-old runaway staying with an older man met online ----------------------------------------

@pytest.mark.parametrize("lang, answer", [
    ("en", "kinda?? im staying w this guy i met on insta hes 27"),
    ("es", "pues algo asi, estoy en el depa de un señor q conoci en snap, tiene 29"),
])
def test_staying_with_an_older_man_met_online_is_no_safe_place(lang, answer):
    chat = _in("runaway_age", lang)
    chat.send("16")
    step = chat.send(answer)  # to "do you have a safe place tonight?": was the fallback offer of a person
    assert step.keys == ["runaway_unsafe"], said(step)
    assert "1-800-786-2929" in step.text and "911" in step.text
    assert chat.conv.slots["priority_floor"] == "high" and chat.conv.slots["no_safe_place"] is True


# -- someone whose phone is watched: "he left, I have a few minutes" ------------------------------------

@pytest.mark.parametrize("lang, here, gone", [
    ("en", "he is next to me", "hes gone to the store i have like 10 min"),
    ("es", "esta aqui junto a mi", "ya salio a la tienda, tengo unos 10 min nomas"),
])
def test_a_few_minutes_alone_after_the_quiet_line_leads_to_a_person(lang, here, gone):
    chat = _in("menu", lang)
    assert chat.send(here).keys == ["not_safe_now"]
    assert chat.send("ok").replies == []  # nothing lights up the watched phone
    step = chat.send(gone)
    assert step.keys == ["welcome"] and "trafficking" not in step.text.lower()
    step = chat.send(gone)  # the same minutes, as the answer to "is it safe to text?"
    assert step.keys == ["ask_consent"], said(step)  # was: "It may be easier to talk with a person"


# -- nobody answered, or back after a silence: not "I can't talk" ---------------------------------------

@pytest.mark.parametrize("lang, message", [
    ("en", "hi im back sorry"), ("en", "hello?? why wont u answer"),
    ("es", "oigan por que no me contestan"), ("es", "q onda por q no contestan"),
])
def test_asking_why_nobody_answers_or_saying_im_back_is_not_marked_quiet(lang, message):
    """Read as not_safe_now, these got "we will not text you first" and barred the counsellors from
    texting someone who was asking for them (and a blocked sender got that line instead of the notice)."""
    chat = _in("menu", lang)
    step = chat.send(message)
    assert "not_safe_now" not in step.keys and "quiet" not in chat.conv.slots, said(step)
    assert step.replies and chat.conv.lang == lang


# -- a co-worker's tip, and not wanting it traced back ------------------------------------------------

@pytest.mark.parametrize("lang, answer", [
    ("en", "no i dont want them to know it was me"), ("en", "anonymous"), ("en", "Anonymous."),
    ("es", "no no quiero que sepan que fui yo"), ("es", "anónimo"),
])
def test_declining_contact_after_a_tip_records_it_anonymously(lang, answer):
    chat = _in("tip_collect", lang)
    chat.send("la muchacha nueva del salon duerme atras y no le pagan" if lang == "es"
              else "new girl at the nail salon sleeps in the back and never gets paid")
    chat.send("done" if lang == "en" else "listo")
    assert chat.conv.state == "tip_consent"
    step = chat.send(answer)
    # was: "Are you safe right now? … 988", and the tip was never recorded
    assert step.effect("record_tip") is not None and chat.conv.consent is False, said(step)
    assert step.keys[0] == "tip_sent" and "danger_check" not in step.keys


# -- DELETE, then yes in a person's words ----------------------------------------------------------------

@pytest.mark.parametrize("lang, answer", [
    ("es", "si borralo"), ("es", "sí, bórralo todo"), ("es", "si borra todo porfa"),
    ("en", "yes delete it"), ("en", "yes, erase everything please"), ("en", "YES DELETE IT ALL!"),
])
def test_yes_said_with_the_words_of_erasing_erases(lang, answer):
    chat = _in("ask_zip", lang)
    chat.send("BORRAR" if lang == "es" else "DELETE")
    step = chat.send(answer)
    assert step.keys == ["erased"] and [e.name for e in step.effects] == ["erase"], said(step)


@pytest.mark.parametrize("answer", ["si pero no borres nada", "yes but keep it", "no borralo", "ok delete it",
                                    "yes, tell me first", "delete? no"])
def test_yes_with_any_other_word_keeps_everything(answer):
    chat = _in("ask_zip", "en")
    chat.send("delete")
    step = chat.send(answer)
    assert "erased" not in step.keys and step.effect("erase") is None and step.replies, said(step)


# -- a texter back a week later ----------------------------------------------------------------------------

@pytest.mark.parametrize("lang, back", [("en", "hey its me again sorry"), ("es", "hola otra ves, perdon")])
def test_back_a_week_later_is_welcomed_back_in_their_language_and_returned_to_their_question(lang, back):
    chat = Chat()
    reach(chat, "ask_zip", lang)
    chat.now += 7 * 86400
    step = chat.send(back)
    assert step.replies == [text(lang, "welcome_back")] and NAME in step.text and "911" in step.text
    chat.send("si" if lang == "es" else "yes")
    assert chat.conv.state == "ask_zip"


# -- the examples themselves ----------------------------------------------------------------------------------

def test_a_label_given_twice_in_an_examples_file_is_refused(tmp_path: Path):
    """YAML keeps the second list of a repeated key and drops the first without a word: lines added
    under a label a file already had would silently unlearn the earlier ones."""
    (tmp_path / "en_x.yaml").write_text('greeting:\n  - "hi there"\n"no":\n  - "nope"\ngreeting:\n  - "hello"\n',
                                        encoding="utf-8")
    with pytest.raises(ExamplesError, match="'greeting' is given twice"):
        load_examples(tmp_path)
