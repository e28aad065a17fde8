"""The intent model: the pure scorer agrees with scikit-learn, the committed model is what the examples
give, and the held-out figures meet their targets (tests/data: a split kept apart from the examples)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.extensions import flow_engine
from flows import nlu_train as training
from flows.conversation import Conversation
from flows.nlu import MODEL_PATH, IntentModel, ModelError, Reading, fold, features, script_is_other

DATA = Path(__file__).parents[1] / "data"
HELDOUT = training.read_tsv(DATA / "intents_heldout.tsv")
FRESH = training.read_tsv(DATA / "intents_fresh.tsv")
FRESH2 = training.read_tsv(DATA / "intents_fresh2.tsv")  # a second writer, measured once after all tuning
MODEL = IntentModel.load()
ENGINE = flow_engine("Kern Support Line")


@pytest.fixture(scope="module")
def fitted():
    return training.fit(training.load_examples())


@pytest.mark.parametrize("rows", [FRESH, FRESH2], ids=["fresh", "fresh2"])
def test_fresh_lines_keep_their_figures(rows):
    report = training.evaluate(MODEL, rows, "fresh")
    assert report.macro_f1 >= 0.93, report.text


def test_the_pure_scorer_agrees_with_scikit_learn_on_every_held_out_line(fitted):
    vectorizer, intents, langs = fitted
    model = IntentModel(training.export(vectorizer, intents, langs))
    texts = [r["text"] for r in HELDOUT + FRESH + FRESH2]
    matrix = vectorizer.transform(texts)
    expected, expected_lang = intents.predict_proba(matrix), langs.predict_proba(matrix)
    for i, text in enumerate(texts):
        if script_is_other(text) or model.scores(text) is None:
            continue  # read by its script alone; or nothing the model knows: read as nothing, asked again
        got = model.read(text)
        probs = dict(got.ranked)
        assert got.intent == intents.classes_[expected[i].argmax()], text
        assert max(abs(probs[c] - expected[i][j]) for j, c in enumerate(intents.classes_)) < 1e-4, text
        assert got.lang == langs.classes_[expected_lang[i].argmax()], text


def test_the_committed_model_is_what_the_examples_give(fitted):
    committed = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    fresh = json.loads(json.dumps(training.export(*fitted)))
    assert training.same_model(committed, fresh), "flows/intents/model.json is out of date: run `helpline nlu train`"
    fresh["intercept"][0] += 0.01
    assert not training.same_model(committed, fresh)  # the comparison can fail


def _key(text: str) -> str:
    return " ".join(fold(text).split()).strip(" .!?¿¡")


@pytest.mark.parametrize("rows", [HELDOUT, FRESH, FRESH2], ids=["heldout", "fresh", "fresh2"])
def test_no_held_out_line_is_a_training_example(rows):
    examples = {_key(e.text) for e in training.load_examples()}
    leaked = [r["text"] for r in rows if _key(r["text"]) in examples]
    assert not leaked


def _recall(rows, intent, hit=lambda r, reading: False):
    mine = [r for r in rows if r["intent"].split(".")[0] == intent]
    found = [r for r in mine if MODEL.read(r["text"]).name == intent or hit(r, MODEL.read(r["text"]))]
    return len(found) / len(mine)


def test_held_out_split_keeps_its_figures():
    """Floors under the figures reached (docs/conversation.md): macro F1 0.898 (target 0.90), disclosure recall 0.93,
    not_safe_now 0.87 as the engine hears it (target 0.90). A change that loses more fails."""
    report = training.evaluate(MODEL, HELDOUT, "heldout")
    assert report.macro_f1 >= 0.88, report.text
    assert report.per_label["disclosure"][1] >= 0.90, report.text
    # not_safe_now as the engine acts on it: the likeliest reading, or likely enough (NOT_SAFE) to come first.
    not_safe = [r for r in HELDOUT if r["intent"] == "not_safe_now"]
    heard = [r for r in not_safe if ENGINE.decide(MODEL.read(r["text"])) == "not_safe_now"]
    assert len(heard) / len(not_safe) >= 0.85, [r["text"] for r in not_safe if r not in heard]
    for lang in ("en", "es"):
        part = [r for r in HELDOUT if r["lang"] == lang]
        assert training.evaluate(MODEL, part, lang).macro_f1 >= 0.83


def _at_menu(text: str, lang: str):
    """What a texter at the menu gets for one message (the engine, triage and model together)."""
    conv = Conversation(id="n", channel="sms", address="+16615550100")
    for i, first in enumerate(("hola" if lang == "es" else "hi", "1")):
        ENGINE.step(conv, first, i)
        conv.new = False
    return ENGINE.step(conv, text, 10)


@pytest.mark.parametrize("rows", [HELDOUT, FRESH, FRESH2], ids=["heldout", "fresh", "fresh2"])
def test_danger_is_heard(rows):
    """danger_now on the held-out lines: told 911 at once (an emergency, or the plain safety question
    with 911 and 988) for >= 97 %, and an emergency with the counsellors alerted for >= 90 %."""
    danger = [r for r in rows if r["intent"].startswith("danger_now")]
    steps = [(r["text"], _at_menu(r["text"], r["lang"])) for r in danger]
    told = [t for t, step in steps if "911" in step.text]
    alerted = [t for t, step in steps if step.effect("emergency_alert") is not None]
    assert len(told) / len(danger) >= 0.97, [t for t, _ in steps if t not in told]
    assert len(alerted) / len(danger) >= 0.90, [t for t, _ in steps if t not in alerted]


# The development sets only: the frozen one has floors of its own (test_triage.py), and a failure
# here prints lines, which would make it development data (tests/data/README.md).
@pytest.mark.parametrize("path", sorted(p for p in DATA.glob("triage_*.tsv") if p.stem != "triage_frozen"),
                         ids=lambda p: p.stem)
def test_the_model_keeps_false_emergencies_on_the_triage_sets_under_5_percent(path):
    rows = training.read_tsv(path)
    normal = [r for r in rows if r["level"] == "normal"]
    false = [r["text"] for r in normal if _at_menu(r["text"], r["lang"]).level == "emergency"]
    assert len(false) / max(1, len(normal)) <= 0.05, false
    emergencies = [r for r in rows if r["level"] == "emergency"]
    # Every emergency is told 911 at once and alerts the counsellors (with "he's next to me" that is
    # the short discreet line, which says 911, rather than the long emergency message).
    steps = [(r["text"], _at_menu(r["text"], r["lang"])) for r in emergencies]
    missed = [t for t, step in steps if "911" not in step.text or step.effect("emergency_alert") is None]
    assert not missed


def test_languages_are_told_apart():
    accuracy, mistakes = training.language_accuracy(MODEL, training.read_tsv(DATA / "language_fresh.tsv"))
    assert accuracy >= 0.85, mistakes
    # The costly mistake: English or Spanish taken for another language.
    assert sum(n for (truth, got), n in mistakes.items() if truth != "other" and got == "other") <= 3, mistakes


@pytest.mark.parametrize("text", ["ਮੈਨੂੰ ਮਦਦ ਚਾਹੀਦੀ ਹੈ", "أحتاج مساعدة من فضلك", "我需要帮助"])
def test_other_scripts_are_another_language(text):
    assert MODEL.read(text).lang == "other"


def test_features_fold_case_accents_and_letter_runs():
    assert features("AYÚDAME") == features("ayudame")
    assert features("pleeeease") == features("pleease")
    assert features("don’t") == features("dont")


def test_an_unknown_or_empty_message_reads_as_nothing():
    assert MODEL.read("").confidence == 0.0
    assert MODEL.read("𝄞𝄞𝄞").intent == "unclear"


@pytest.mark.parametrize("doc", [{}, {"format": 2, "labels": ["a"], "langs": ["en"]}, {"format": 1}, {
    "format": 2, "labels": ["a", "b"], "langs": ["en", "es", "other"], "ngram_range": [2, 5],
    "intercept": [0, 0], "lang_intercept": [0, 0, 0], "features": {" a": [1.0, [1, 2]]}}])
def test_a_broken_model_file_is_refused(doc):
    with pytest.raises(ModelError):
        IntentModel(doc)


def test_a_missing_model_file_is_refused(tmp_path):
    with pytest.raises(ModelError):
        IntentModel.load(tmp_path / "none.json")


def test_reading_probability_of_an_intent_adds_its_kinds():
    ranked = (("danger_now.self_harm", 0.4), ("danger_now", 0.3), ("runaway", 0.3))
    reading = Reading("danger_now.self_harm", 0.4, ranked, "en", 1.0)
    assert reading.name == "danger_now" and reading.probability("danger_now") == pytest.approx(0.7)
    assert reading.probability("runaway") == 0.3 and reading.probability("runaway.x") == 0.0
