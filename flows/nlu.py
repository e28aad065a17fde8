"""What a texter means, read from their own words: intent, confidence and language. Pure, no I/O at message time.

The model is fitted by scikit-learn (`helpline nlu train`, flows/nlu_train.py) from the examples in
flows/intents/*.yaml and written to flows/intents/model.json: the character n-grams it knows, each
with its idf and the coefficients of two linear heads (the intents, and the language: en, es or
other). This module scores that model directly: TF-IDF over `features(text)`, L2-normalised, then
a dot product with each head and a softmax. That is exactly what scikit-learn's predict_proba computes
(tests/flows/test_nlu.py proves it on every held-out line) without importing scikit-learn into the
web process, which costs ~1 ms per message and ~110 MB.
"""
from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
MODEL_PATH = HERE / "intents" / "model.json"
FORMAT = 2  # the model file's layout and features; a file of another format is refused, not misread
MAX_CHARS = 600  # what the intent is read from (its start and its end); triage reads the whole message
# Fixed-point packing of a model row (see IntentModel.__init__): every coefficient of an n-gram, in
# both heads, is one field of one Python int, so a message's n-grams are summed in one big-int add each.
_SCALE = 1 << 24
_WIDTH = 58
_BIAS = 1 << 44
_MASK = (1 << _WIDTH) - 1

_APOSTROPHES = re.compile("['\u2019\u2018`\u00b4\u02bc]")
_RUNS = re.compile(r"(.)\1{2,}")
_TOKENS = re.compile(r"\w+|[^\w\s]")


class ModelError(ValueError):
    """The intent model file is missing or not a model this code can score."""


def fold(text: str) -> str:
    """The form both training and scoring read: case, accents, apostrophes and letter runs folded."""
    text = _APOSTROPHES.sub("", text.casefold())
    if not text.isascii():
        text = text.replace("\U0001f198", " sos ")  # 🆘, the emoji people send for help
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
        text = unicodedata.normalize("NFC", text)
    return _RUNS.sub(r"\1\1", text)  # "pleeease" and "pleease" are one spelling


def features(text: str, low: int = 2, high: int = 5) -> list[str]:
    """What the model reads: character n-grams of each word, padded with a space (robust to typos, joined
    words and Spanglish), plus the words and word pairs themselves ("w:gone", "b:he_left"), which tell
    "he's gone now" from "he's gonna" where the letters alone are alike."""
    if len(text) > MAX_CHARS:  # the start and the end: "…long story… gotta go he's here"
        text = text[:MAX_CHARS // 2] + " " + text[-MAX_CHARS // 2:]
    words = _TOKENS.findall(fold(text))
    out: list[str] = []
    for word in words:
        padded = f" {word} "
        size = len(padded)
        for n in range(low, min(high, size) + 1):
            out.extend(padded[i:i + n] for i in range(size - n + 1))
    out += ["w:" + w for w in words]
    out += ["b:" + a + "_" + b for a, b in zip(words, words[1:])]
    return out


def script_is_other(text: str) -> bool:
    """True when most letters are in a script neither English nor Spanish is written in (Arabic, Gurmukhi, …)."""
    if text.isascii():
        return False
    latin = other = 0
    for ch in text:
        if ch.isalpha():
            if unicodedata.name(ch, "").startswith("LATIN"):
                latin += 1
            else:
                other += 1
    return other > latin


@dataclass(frozen=True)
class Reading:
    """What one message seems to say."""

    intent: str  # a label from the examples: "want_person", "find_help.food", …
    confidence: float
    ranked: tuple[tuple[str, float], ...]  # every label, likeliest first
    lang: str  # "en", "es" or "other"
    lang_confidence: float
    words: int = 0  # how many words the message has

    @property
    def name(self) -> str:
        """The intent without its kind: "find_help" for "find_help.food"."""
        return self.intent.split(".", 1)[0]

    def probability(self, label: str) -> float:
        """How likely the label is: an intent's kinds together ("danger_now" and "danger_now.self_harm")."""
        return sum(p for name, p in self.ranked if name == label or name.startswith(label + "."))


NOTHING = Reading("unclear", 0.0, (), "en", 0.0, 0)


class IntentModel:
    """A fitted model, scored in pure Python."""

    def __init__(self, doc: dict):
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ModelError(f"not an intent model of format {FORMAT}: run `helpline nlu train`")
        try:
            self.labels: tuple[str, ...] = tuple(doc["labels"])
            self.langs: tuple[str, ...] = tuple(doc["langs"])
            self.low, self.high = doc["ngram_range"]
            intercepts = list(doc["intercept"]) + list(doc["lang_intercept"])
            features = doc["features"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"not an intent model: {exc}") from exc
        self.fields = len(self.labels) + len(self.langs)
        if len(intercepts) != self.fields:
            raise ModelError("intercepts do not match the labels")
        self.intercept = intercepts
        # n-gram -> (idf, packed row). A row's fields are round(idf * coefficient * 2**24) + 2**44, 58 bits
        # apart, one per label then per language: adding a message's rows (times their counts) adds every
        # field at once, one C-level operation per n-gram instead of one Python operation per label.
        # 600 characters make at most ~3,500 features: 2**44 * 3,500 stays below 2**58, so no field overflows.
        self.rows: dict[str, tuple[float, int]] = {}
        for gram, (idf, coefs) in features.items():
            if len(coefs) != self.fields:
                raise ModelError(f"n-gram {gram!r} has {len(coefs)} coefficients, not {self.fields}")
            packed = 0
            for c in reversed(coefs):
                packed = (packed << _WIDTH) | (round(idf * c * _SCALE) + _BIAS)
            self.rows[gram] = (float(idf), packed)

    @classmethod
    def load(cls, path: Path | str = MODEL_PATH) -> "IntentModel":
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: {exc}") from exc
        return cls(doc)

    def scores(self, text: str) -> list[float] | None:
        """The linear scores of both heads (what decision_function gives), or None with no known n-gram."""
        counts: dict[str, int] = {}
        for gram in features(text, self.low, self.high):
            counts[gram] = counts.get(gram, 0) + 1
        total = n = 0
        norm2 = 0.0
        rows = self.rows
        for gram, tf in counts.items():
            row = rows.get(gram)
            if row is not None:
                norm2 += (tf * row[0]) ** 2
                total += tf * row[1]
                n += tf
        if not n:
            return None
        inv = 1.0 / (math.sqrt(norm2) * _SCALE)
        out = []
        for b in self.intercept:
            out.append(b + ((total & _MASK) - n * _BIAS) * inv)
            total >>= _WIDTH
        return out

    def read(self, text: str) -> Reading:
        """The likeliest intents and the language of one message."""
        words = len(text.split())
        if script_is_other(text):
            return Reading("unclear", 0.0, (), "other", 1.0, max(2, words))
        scores = self.scores(text)
        if scores is None:
            return NOTHING
        k = len(self.labels)
        ranked = sorted(zip(self.labels, softmax(scores[:k])), key=lambda lp: -lp[1])
        lang, lang_p = max(zip(self.langs, softmax(scores[k:])), key=lambda lp: lp[1])
        return Reading(ranked[0][0], ranked[0][1], tuple(ranked), lang, lang_p, words)


def softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]
