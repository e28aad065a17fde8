"""Issue 13 at the HTTP edges: every state of the flow, then any text, by signed POST /sms and by the web
chat's POST /chat/api/messages; then the conversation must still open in the counsellor console.

Never a 5xx (the chat answers 503 only when something crashed: Redis is up here); always a
well-formed answer: TwiML with a message, or the chat's JSON (a 400 for a blank or too long text,
a 413 for a body over MAX_CONTENT_LENGTH); a reply wherever one is due (harness.may_stay_silent);
and the console shows the conversation (a lone surrogate once made one unreadable).
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import create_app

from .conftest import FUZZ_SECONDS, fuzz_settings
from .harness import Findings, HttpFuzz, run_for
from .reach import LANGS, targets
from .texts import CORE, MESSAGES

CHANNELS = ("sms", "web")
TARGETS = {channel: [t for t in targets("en") if channel in t.channels] for channel in CHANNELS}
# Part of the fixed corpus (all of it in every state takes too long over HTTP; the engine's test sends all of
# it to every state): a lone surrogate everywhere, then four of the others in turn.
SURROGATE = "help \udfff me"
HTTP_CORE = ("\ud800", "\x00", "ST\x00OP", " ", "\u3000", "a" * 1601, "😀" * 1600, "٩" * 5000, "٩٣٣٠٥", "१६",
             "1\u0301", "👨‍👩‍👧‍👦", "\u202e1\u202c", "yes" + "\u0300" * 40, "<Message>x</Message>]]>&amp;", "ＳＴＯＰ")
assert {SURROGATE, *HTTP_CORE} <= set(CORE)


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_state_survives_the_core_texts_over_http(config, channel):
    fuzz = HttpFuzz(create_app(config), channel)
    for n, target in enumerate(TARGETS[channel]):
        fuzz.fuzz(target, LANGS[n % 2], SURROGATE)
        for i in range(4):
            fuzz.fuzz(target, LANGS[n % 2], HTTP_CORE[(4 * n + i) % len(HTTP_CORE)])
    assert set(fuzz.sent) == {t.name for t in TARGETS[channel]}


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_state_survives_generated_text_over_http(config, channel):
    fuzz = HttpFuzz(create_app(config), channel)

    @fuzz_settings(max_examples=80)
    @given(target=st.sampled_from(TARGETS[channel]), lang=st.sampled_from(LANGS), texts=MESSAGES)
    def messages(target, lang, texts):
        fuzz.fuzz(target, lang, *texts)

    messages()


@pytest.mark.fuzz
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.timeout(int(FUZZ_SECONDS * 0.275) + 300)
def test_long_run_http(config, channel, capsys):
    fuzz = HttpFuzz(create_app(config), channel)
    findings = Findings()

    @fuzz_settings(max_examples=200)
    @given(target=st.sampled_from(TARGETS[channel]), lang=st.sampled_from(LANGS), texts=MESSAGES)
    def messages(target, lang, texts):
        findings.check(fuzz.fuzz, target, lang, *texts)

    searches = run_for(FUZZ_SECONDS * 0.275, messages, findings)
    with capsys.disabled():
        print(f"\n{channel}: {findings.examples} examples in {searches} searches over {len(fuzz.sent)} targets; "
              f"{len(findings.first)} distinct failures")
    assert not findings.first, findings.report()
