"""`helpline flows check` finds each kind of broken flow and points at file and line."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from flows.catalog import Catalog
from flows.engine import ENGINE_KEYS
from flows.spec import Flow, FlowError

FLOWS = Path(__file__).resolve().parents[2] / "flows"

GOOD = """\
flow: tiny
initial: new
fallback: ask
emergency: ask
after_handoff: ask
vocab:
  affirm: [yes, si]
states:
  - name: new
    input: any
    to: ask
  - name: ask
    say: menu
    options:
      - {match: [$affirm], to: done}
  - name: done
    say: signs
    next: ask
"""


def check(tmp_path, text):
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return Flow.load(path).check(Catalog.load(), ())


def test_the_real_flows_and_catalogs_pass():
    result = CliRunner().invoke(main, ["flows", "check"])
    assert result.exit_code == 0, result.output
    assert "flows ok" in result.output


def test_a_sound_small_flow_has_no_problems(tmp_path):
    assert check(tmp_path, GOOD) == []


def test_unknown_target_state(tmp_path):
    problems = check(tmp_path, GOOD.replace("to: done}", "to: nowhere}"))
    assert any("tiny.yaml:15:" in p and "unknown state 'nowhere'" in p for p in problems)


def test_message_key_missing_in_a_language(tmp_path):
    catalogs = tmp_path / "catalogs"
    shutil.copytree(FLOWS / "catalogs", catalogs)
    es = catalogs / "es.yaml"
    kept, in_signs = [], False
    for line in es.read_text().splitlines():  # the `signs:` key and its indented continuation lines go
        in_signs = line.startswith("signs:") or (in_signs and line.startswith("  "))
        if not in_signs:
            kept.append(line)
    es.write_text("\n".join(kept))
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD)
    problems = Flow.load(path).check(Catalog.load(catalogs), ())
    assert any("tiny.yaml:16:" in p and "'signs' missing" in p and "es.yaml" in p for p in problems), problems


def test_unreachable_state(tmp_path):
    problems = check(tmp_path, GOOD + "  - name: island\n    say: menu\n    next: ask\n")
    assert any("tiny.yaml:19:" in p and "island cannot be reached" in p for p in problems)


def test_state_with_no_way_out(tmp_path):
    problems = check(tmp_path, GOOD.replace("    say: signs\n    next: ask\n", "    say: signs\n"))
    assert any("tiny.yaml:16:" in p and "done has no way out" in p for p in problems)


def test_unknown_vocabulary_and_bad_yaml_are_reported_with_the_file(tmp_path):
    with pytest.raises(FlowError, match="tiny.yaml:15: unknown vocabulary"):
        check(tmp_path, GOOD.replace("$affirm", "$nothing"))
    with pytest.raises(FlowError, match="tiny.yaml"):
        check(tmp_path, GOOD + "  - [unclosed\n")


def test_cli_exits_non_zero_with_the_problems(tmp_path, monkeypatch):
    broken = tmp_path / "flows"
    shutil.copytree(FLOWS, broken)
    (broken / "helpline.yaml").write_text((FLOWS / "helpline.yaml").read_text().replace("to: tip_consent", "to: tip_gone"))
    monkeypatch.setattr("flows.spec.HERE", broken)
    result = CliRunner().invoke(main, ["flows", "check"])
    assert result.exit_code == 1
    assert "unknown state 'tip_gone'" in result.output


def test_engine_keys_exist_in_every_language():
    catalog = Catalog.load()
    for lang in catalog.texts:
        for key in ENGINE_KEYS:
            assert catalog.has(lang, key), (lang, key)


def test_diagram_is_mermaid_with_every_state():
    result = CliRunner().invoke(main, ["flows", "diagram"])
    assert result.exit_code == 0, result.output
    assert result.output.lstrip().startswith("---") or "stateDiagram" in result.output
    for state in Flow.load().states:
        assert state in result.output


INTENTS = GOOD.replace("states:\n", """resume: ask
intents:
  danger_now: {to: ask}
  other_language: {to: ask}
  want_person: {say: signs, to: done}
states:
""")
LABELS = ("danger_now", "want_person", "runaway")


def check_intents(tmp_path, text):
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return Flow.load(path).check(Catalog.load(), (), intents=LABELS)


def test_a_flow_with_intents_has_no_problems(tmp_path):
    assert check_intents(tmp_path, INTENTS) == []


FIRST_STATE = "    to: ask\n  - name: ask"


@pytest.mark.parametrize("broken, problem", [
    (INTENTS.replace("want_person:", "wnat_person:"), "unknown intent 'wnat_person'"),
    (INTENTS.replace("say: signs, to: done}", "to: nowhere}"), "unknown state 'nowhere'"),
    (INTENTS.replace("say: signs", "say: no_such_key"), "message 'no_such_key' missing"),
    (INTENTS.replace("  danger_now: {to: ask}\n", ""), "no default action for danger_now"),
    (INTENTS.replace(FIRST_STATE, "    to: ask\n    intents: {danger_now: null}\n  - name: ask"),
     "danger_now cannot be turned off"),
    (INTENTS.replace(FIRST_STATE, "    to: ask\n    hear: [runaways]\n  - name: ask"), "hears unknown intent 'runaways'"),
])
def test_intent_actions_are_checked(tmp_path, broken, problem):
    assert broken != INTENTS
    problems = check_intents(tmp_path, broken)
    assert any(problem in p for p in problems), problems
