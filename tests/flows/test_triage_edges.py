"""Triage's edges (issue 18, mutation testing): when danger words were set aside (`denied`, which keeps the
intent model's danger from overruling "I am not in danger"), a threat after its own denial, and the
words `helpline triage --explain` shows an operator for each match."""
from __future__ import annotations

import pytest

from flows.triage import Triage


@pytest.fixture(scope="module")
def triage():
    return Triage.load()


@pytest.mark.parametrize("text, level, denied", [
    ("i am not in danger", "normal", True),
    ("he doesnt have a gun", "normal", True),
    ("i dont think he has a gun", "normal", True),
    ("im not in danger but my boss took my passport", "high", True),
    ("he has a gun", "emergency", False),
    ("my boss has my passport", "high", False),
    ("my boss didnt take my passport", "normal", False),  # a high match negated is no denial of danger
    ("can you tell me about shelters", "normal", False),
])
def test_only_danger_words_set_aside_count_as_a_denial(triage, text, level, denied):
    found = triage.assess(text)

    assert (found.level, found.denied) == (level, denied)


def test_a_threat_after_its_own_denial_is_still_heard(triage):
    found = triage.assess("he said he is not going to kill me but now he says he is going to kill me")

    assert (found.level, found.matched, found.denied) == ("emergency", ("threat_to_kill",), True)


@pytest.mark.parametrize("text, spans", [
    ("hello he has a gun now", ["has a gun"]),
    ("he has a gun and my boss took my passport", ["has a gun", "boss took my passport"]),
    ("hes got a gunnnn right now", ["got a gunnnn"]),
    ("ima die hes choking me", ["choking me", "ima die"]),
    ("ur scaring me hes got a gun", ["got a gun"]),
    ("hurry pls he said hes gonna kill me tonight", ["kill me"]),  # "kill", not a "kil" read for matching
])
def test_explain_shows_the_words_of_the_message_that_matched(triage, text, spans):
    found = triage.assess(text)

    assert [e["span"] for e in found.to_dict(explain=True)["explain"]] == spans


@pytest.mark.parametrize("text", [
    "my little brother was playing with his toy when my stepdad pulled out a gun",
    "my brother was playing with his water gun when my stepdad pulled out a real gun",
    "we went to the gun show last week and today he pulled out a gun and pointed it at me",
    "i bought a toy gun for my son and now my husband pulled out a knife",
])
def test_a_harmless_word_elsewhere_in_the_message_does_not_excuse_a_weapon(triage, text):
    # The weapon entry's `unless` ("water gun", "gun show", "toy gun"...) sets aside only the weapon it names.
    assert triage.assess(text).matched == ("weapon",)
