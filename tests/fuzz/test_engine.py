"""Issue 13, "one message must never crash a process": every state of the flow, then any text at all,
through the engine every channel calls (bot.engine.Helpline.handle, with the real store in Redis).

For each state (and each condition that changes what an answer must be: STOP, "quiet", a pending
DELETE, "Did you mean…", in line, with a counsellor) a path of inputs found by walking the flow
(tests/fuzz/reach.py) brings a conversation there; then one message drawn from all of Unicode is sent
(tests/fuzz/texts.py). Never an exception; a reply wherever one is due (harness.may_stay_silent says
where silence is allowed, and why); the stored conversation and transcript open and hold only valid,
bounded text.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import create_app

from .conftest import FUZZ_SECONDS, fuzz_settings
from .harness import EngineFuzz, Findings, run_for
from .reach import FLOW, LANGS, PureChat, resting_end, targets, walk
from .texts import CORE, MESSAGES, ZEROS, in_script

ENGINE_TARGETS = [t for t in targets("en") if "sms" in t.channels]


def test_every_state_of_the_flow_has_a_path_that_reaches_it():
    for lang in LANGS:
        found = {**walk(lang, "web"), **walk(lang)}  # some states by text only, some on the web chat only
        assert set(FLOW.states) - set(found) == set(), "a state no input reaches: see tests/fuzz/reach.py"
        named = {t.name for t in targets(lang) if t.kind != "mode"}
        assert named == set(FLOW.states)  # a new state is fuzzed as soon as it exists
        for target in targets(lang):
            chat = PureChat("sms" if "sms" in target.channels else "web")
            for move in target.path:
                chat.send(move)
            assert target.holds(chat.conv if target.path else None), (lang, target.name, target.path)
            assert not target.path or chat.conv.lang == lang, (lang, target.name, target.path)


def _engine(config) -> EngineFuzz:
    return EngineFuzz(create_app(config))


def test_every_state_survives_the_core_texts(config):
    """Every state, every text of the fixed corpus (digits of other scripts, lone surrogates, combining
    marks, emoji sequences, bidi marks, NUL and controls, blank, 1600/1601/5000 characters)."""
    fuzz = _engine(config)
    for n, target in enumerate(ENGINE_TARGETS):
        lang = LANGS[n % 2]
        for text in CORE:
            fuzz.fuzz(target, lang, text)
    assert set(fuzz.sent) == {t.name for t in ENGINE_TARGETS}


def test_every_state_survives_generated_text(config):
    fuzz = _engine(config)

    @fuzz_settings(max_examples=250)
    @given(target=st.sampled_from(ENGINE_TARGETS), lang=st.sampled_from(LANGS), texts=MESSAGES)
    def messages(target, lang, texts):
        fuzz.fuzz(target, lang, *texts)

    messages()


# -- digits of every script are digits where a number is asked ---------------------------------------------

NUMBER_STATES = [name for name, state in FLOW.states.items() if state.input in ("zip", "age")]
SAMPLES = {"zip": ["93305", "93305-1234", "93203", "93501"], "age": ["16", "17", "9", "42", "120"]}


def _at(state: str) -> PureChat:
    chat = PureChat()
    for move in walk("en")[state]:
        chat.send(move)
    return chat


@fuzz_settings(max_examples=300)
@given(state=st.sampled_from(NUMBER_STATES), data=st.data(),
       zeros=st.one_of(st.sampled_from(ZEROS), st.lists(st.sampled_from(ZEROS), min_size=10, max_size=10)))
def test_digits_of_any_script_are_read_as_the_same_number(state, data, zeros):
    """"٩٣٣٠٥", "९३३०५" or a mix of scripts: the same ZIP code (or age) as "93305", never a crash or a miss."""
    plain = data.draw(st.sampled_from(SAMPLES[FLOW.states[state].input]))
    ascii_chat, other_chat = _at(state), _at(state)
    ascii_chat.send(plain)
    other_chat.send(in_script(plain, zeros))
    slot = FLOW.states[state].slot
    assert (other_chat.conv.state, other_chat.conv.slots.get(slot)) == (ascii_chat.conv.state, ascii_chat.conv.slots.get(slot))
    assert ascii_chat.conv.state == resting_end(FLOW.states[state].branches[0].to)  # the plain one is accepted


# -- the long run (`make fuzz`) ------------------------------------------------------------------------------


@pytest.mark.fuzz
@pytest.mark.timeout(int(FUZZ_SECONDS * 0.35) + 300)
def test_long_run_engine(config, capsys):
    fuzz = _engine(config)
    findings = Findings()

    @fuzz_settings()
    @given(target=st.sampled_from(ENGINE_TARGETS), lang=st.sampled_from(LANGS), texts=MESSAGES)
    def messages(target, lang, texts):
        findings.check(fuzz.fuzz, target, lang, *texts)

    searches = run_for(FUZZ_SECONDS * 0.35, messages, findings)
    with capsys.disabled():
        print(f"\nengine: {findings.examples} examples in {searches} searches over {len(fuzz.sent)} targets; "
              f"{len(findings.first)} distinct failures")
    assert not findings.first, findings.report()
