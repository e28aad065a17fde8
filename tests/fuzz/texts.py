"""What texters (and broken phones, gateways and pages) may send: text drawn from all of Unicode.

CORE is a fixed corpus every state gets in the default run; TEXT is the generated one.
"""
from __future__ import annotations

import sys
import unicodedata

from hypothesis import strategies as st

from .reach import FLOW

def _scan() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    zeros, numbers, spaces = set(), [], []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        category = unicodedata.category(ch)
        if category == "Nd":
            zeros.add(chr(cp - unicodedata.decimal(ch)))
        elif category in ("No", "Nl"):
            numbers.append(ch)
        if ch.isspace():
            spaces.append(ch)
    return tuple(sorted(zeros)), tuple(numbers), tuple(spaces)


# ZEROS: the zero of every script's decimal digits (Nd). OTHER_NUMBERS: numbers that are not decimal
# digits (superscripts, circled, fractions, Roman numerals). WHITESPACE: what Python calls space, and
# blanks it does not.
ZEROS, OTHER_NUMBERS, _SPACES = _scan()
WHITESPACE = _SPACES + ("\u200b", "\u2060", "\ufeff", "\u180e", "\u3164", "\u115f")


def in_script(ascii_text: str, zeros) -> str:
    """'93305' in other digits (one script, or a script per digit when `zeros` is a list)."""
    zeros = [zeros] * len(ascii_text) if isinstance(zeros, str) else zeros
    return "".join(chr(ord(z) + int(ch)) if ch.isdigit() and ch.isascii() else ch
                   for ch, z in zip(ascii_text, zeros))


CORE = (
    # digits of other scripts and compatibility forms: ZIP codes, ages, option numbers
    "٩٣٣٠٥", "９３３０５", "۹۳۳۰۵", "९३३०५", "𝟗𝟑𝟑𝟎𝟓", "¹⁶", "①⑥", "١٦", "१६", "٢", "２", "Ⅻ", "½",
    # lone surrogates (a JSON \ud800 escape, a broken gateway), alone and inside words
    "\ud800", "help \udfff me", "1\ud83d",
    # combining marks, on their own and piled on an answer
    "1\u0301", "\u0301", "yes" + "\u0300" * 40, "Z̴̧̛̝͎a̸l̷g̵o̶",
    # emoji, ZWJ sequences, keycaps, flags, skin tones
    "👨‍👩‍👧‍👦", "🏳️‍🌈", "1️⃣", "1\u20e3", "🇺🇸", "👍🏽", "👍",
    # right-to-left text and bidi controls
    "\u200f1", "\u202e1\u202c", "\u2066yes\u2069", "مرحبا ساعدني", "\u061c\u200e",
    # NUL and control characters
    "\x00", "1\x00", "ST\x00OP", "\x1b[31mhi\x1b[0m", "\x7f\x08\x85", "\r\n",
    # whitespace only, and invisible characters
    "", " ", "\t\n", "\u3000", "\u00a0\u2028\u2029", "\ufeff\u200b",
    # the lengths that matter: Twilio's limit, one past it, far past it
    "a" * 1600, "a" * 1601, "😀" * 1600, "help " * 1000, "٩" * 5000, "\u0301" * 5000,
    # answers in compatibility forms, markup and format strings
    "ＳＴＯＰ", "ＤＥＬＥＴＥ", "İ", "ß", "<Message>x</Message>]]>&amp;", "{name} {0} %s {{7*7}}",
)
assert len(CORE) == len(set(CORE))

# What the flow itself answers to: every option word, global command and number. Decorated with the
# characters above, they reach the parts of a state that only a near-answer gets to.
ANSWERS = tuple(sorted({w for s in FLOW.states.values() for o in s.options for w in o.words}
                       | {w for g in FLOW.globals for w in g.words}
                       | {"stop", "start", "delete", "borrar", "done", "listo", "93305", "16"}))

ANY_CHAR = st.characters(exclude_categories=())  # every code point, lone surrogates included
ODD_CHAR = st.one_of(
    st.characters(categories=["Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me", "Zs", "Zl", "Zp"]),
    st.sampled_from(WHITESPACE), st.sampled_from(OTHER_NUMBERS),
    st.sampled_from(["\u200d", "\ufe0f", "\u20e3", "\u200f", "\u202e", "\u0301", "\x00", "\ud800", "\udc00"]),
)


def _decorate(word: str, odd: str, where: int) -> str:
    if where == 0:
        return odd + word
    if where == 1:
        return word + odd
    if where == 2:
        return odd.join(word)  # between every letter
    return "".join(ch + odd for ch in word)  # after every letter (combining marks pile up)


def _digits(ascii_text: str, zeros: list[str]) -> str:
    return in_script(ascii_text, zeros)


DIGITS = st.builds(
    _digits,
    st.sampled_from(["93305", "93305-1234", "16", "1", "2", "0", "120", "my zip is 93305", "i am 16"]),
    st.lists(st.sampled_from(ZEROS), min_size=20, max_size=20),
)
LONG = st.builds(
    lambda unit, n: (unit * n)[:n],
    st.text(ANY_CHAR, min_size=1, max_size=6),
    st.sampled_from([1599, 1600, 1601, 5000]),
)
# Hypothesis draws lone surrogates from all of Unicode only rarely: put them in on purpose.
SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff", "\ud83d")
WITH_SURROGATE = st.builds(lambda text, sur, at: text[:at] + sur + text[at:],
                           st.text(max_size=20), st.sampled_from(SURROGATES), st.integers(0, 20))
TEXT = st.one_of(
    st.sampled_from(CORE),
    WITH_SURROGATE,
    st.text(ANY_CHAR, max_size=40),
    st.builds(_decorate, st.sampled_from(ANSWERS), ODD_CHAR, st.integers(0, 3)),
    DIGITS,
    st.text(ODD_CHAR, max_size=12),
    st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=12),
    LONG,
)
# One to three messages in a row: the state a fuzz message leaves is fuzzed too ("quiet" then DELETE, …).
MESSAGES = st.lists(TEXT, min_size=1, max_size=3)
