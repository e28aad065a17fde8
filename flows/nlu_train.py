"""Fitting and measuring the intent model: `helpline nlu train` and `helpline nlu eval`.

Training needs scikit-learn (the `train` extra); the web process never imports this module. The fit is
deterministic (lbfgs, no random state), so the same examples always give the same flows/intents/model.json.
"""
from __future__ import annotations

import csv
import functools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from .nlu import FORMAT, MODEL_PATH, IntentModel, features

EXAMPLES = MODEL_PATH.parent  # flows/intents: en*.yaml, es*.yaml (intent: [lines]) and other.yaml
NGRAM_RANGE = (2, 5)
MIN_DF = 2  # an n-gram seen in one example only is noise, and memory in every web process
C_INTENT = 10.0
C_LANG = 4.0


class ExamplesError(ValueError):
    """An examples file is malformed (the message names the file)."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str | None  # None: a line in another language, for the language head only
    lang: str


class _ExamplesLoader(yaml.SafeLoader):
    """Refuses a label given twice in one file: YAML would keep the second list and drop the first unsaid."""


def _labels_once(loader: _ExamplesLoader, node, deep: bool = False) -> dict:
    labels = [loader.construct_object(key) for key, _ in node.value]
    for at, (key, _) in enumerate(node.value):
        if labels[at] in labels[:at]:
            raise yaml.constructor.ConstructorError(None, None, f"label {labels[at]!r} is given twice", key.start_mark)
    return loader.construct_mapping(node, deep)


_ExamplesLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _labels_once)


def load_examples(folder: Path = EXAMPLES) -> list[Example]:
    out: list[Example] = []
    paths = [(lang, path) for lang in ("en", "es", "other") for path in sorted(Path(folder).glob(f"{lang}*.yaml"))]
    for lang, path in paths:
        try:
            doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_ExamplesLoader)  # noqa: S506 - SafeLoader subclass
        except (OSError, yaml.YAMLError) as exc:
            raise ExamplesError(f"{path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ExamplesError(f"{path}: a mapping of intent: [lines] expected")
        for label, lines in doc.items():
            if not isinstance(label, str):  # YAML 1.1 reads a bare yes or no as a boolean
                raise ExamplesError(f"{path}: label {label!r} is not text: quote it (\"yes\", \"no\")")
            if not isinstance(lines, list) or not all(isinstance(x, str) and x.strip() for x in lines):
                raise ExamplesError(f"{path}: {label}: a list of non-empty lines expected")
            intent = None if lang == "other" else str(label)
            out += [Example(line.strip(), intent, lang) for line in lines]
    return out


def read_tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def fit(examples: list[Example]):
    """The scikit-learn objects: (vectorizer, intent classifier, language classifier)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=functools.partial(features, low=NGRAM_RANGE[0], high=NGRAM_RANGE[1]),
                                 min_df=MIN_DF)
    matrix = vectorizer.fit_transform([e.text for e in examples])
    rows = [i for i, e in enumerate(examples) if e.intent is not None]
    intents = LogisticRegression(C=C_INTENT, max_iter=5000).fit(matrix[rows], [examples[i].intent for i in rows])
    langs = LogisticRegression(C=C_LANG, max_iter=5000).fit(matrix, [e.lang for e in examples])
    return vectorizer, intents, langs


def export(vectorizer, intents, langs) -> dict:
    """The fitted model as plain JSON: labels, intercepts, and per n-gram its idf and coefficients."""
    if len(langs.classes_) < 3:
        raise ExamplesError("the language head needs lines in en, es and other")
    coef = [[*intents.coef_[:, j], *langs.coef_[:, j]] for j in range(len(vectorizer.idf_))]
    table = {
        gram: [round(float(vectorizer.idf_[j]), 7), [round(float(c), 7) for c in coef[j]]]
        for gram, j in sorted(vectorizer.vocabulary_.items())
    }
    return {
        "format": FORMAT,
        "ngram_range": list(NGRAM_RANGE),
        "labels": [str(c) for c in intents.classes_],
        "langs": [str(c) for c in langs.classes_],
        "intercept": [round(float(b), 7) for b in intents.intercept_],
        "lang_intercept": [round(float(b), 7) for b in langs.intercept_],
        "features": table,
    }


def train(folder: Path = EXAMPLES) -> dict:
    return export(*fit(load_examples(folder)))


def same_model(a: dict, b: dict, tolerance: float = 1e-4) -> bool:
    """Equal but for float noise: the same labels and n-grams, every number within `tolerance`
    (another BLAS or thread count may round the fit's last digits differently)."""
    if {k: v for k, v in a.items() if k not in ("features", "intercept", "lang_intercept")} != \
            {k: v for k, v in b.items() if k not in ("features", "intercept", "lang_intercept")}:
        return False
    if a["features"].keys() != b["features"].keys():
        return False

    def close(x, y):
        return len(x) == len(y) and all(abs(p - q) <= tolerance for p, q in zip(x, y))

    return (close(a["intercept"], b["intercept"]) and close(a["lang_intercept"], b["lang_intercept"])
            and all(close([fa[0], *fa[1]], [fb[0], *fb[1]])
                    for fa, fb in zip(a["features"].values(), b["features"].values())))


def write(doc: dict, path: Path = MODEL_PATH) -> None:
    # One n-gram a line: a retrain shows as a readable diff.
    lines = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in doc["features"].items()]
    head = {k: v for k, v in doc.items() if k != "features"}
    body = json.dumps(head, ensure_ascii=False, indent=1)[:-2]
    text = body + ',\n "features": {\n' + ",\n".join(lines) + "\n }\n}\n"
    Path(path).write_text(text, encoding="utf-8")


# -- measuring ------------------------------------------------------------------------------------

@dataclass
class Report:
    name: str
    rows: int
    macro_f1: float
    per_label: dict[str, tuple[float, float, float, int]]  # precision, recall, f1, support
    confusion: Counter  # (true, predicted) -> count, mistakes only
    text: str


def evaluate(model: IntentModel, rows: list[dict], name: str, by_intent: bool = True) -> Report:
    """Precision, recall and F1 per label on labelled lines (columns intent, lang, text)."""
    from sklearn.metrics import precision_recall_fscore_support

    key = (lambda label: label.split(".", 1)[0]) if by_intent else (lambda label: label)
    truth = [key(r["intent"]) for r in rows]
    guess = [key(model.read(r["text"]).intent) for r in rows]
    labels = sorted(set(truth))
    p, r, f, s = precision_recall_fscore_support(truth, guess, labels=labels, zero_division=0)
    per = {lab: (float(p[i]), float(r[i]), float(f[i]), int(s[i])) for i, lab in enumerate(labels)}
    macro = sum(v[2] for v in per.values()) / len(per)
    confusion = Counter((t, g) for t, g in zip(truth, guess) if t != g)
    out = [f"{name}: {len(rows)} lines, macro F1 {macro:.3f}",
           f"  {'intent':28} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>4}"]
    out += [f"  {lab:28} {v[0]:6.2f} {v[1]:6.2f} {v[2]:6.2f} {v[3]:4d}" for lab, v in per.items()]
    if confusion:
        out.append("  most confused (true -> read as: count):")
        out += [f"    {t} -> {g}: {n}" for (t, g), n in confusion.most_common(12)]
    return Report(name, len(rows), macro, per, confusion, "\n".join(out))


def language_accuracy(model: IntentModel, rows: list[dict]) -> tuple[float, Counter]:
    mistakes = Counter()
    right = 0
    for r in rows:
        got = model.read(r["text"]).lang
        right += got == r["lang"]
        if got != r["lang"]:
            mistakes[(r["lang"], got)] += 1
    return right / max(1, len(rows)), mistakes
