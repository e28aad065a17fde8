"""The wrap-up form's definition (flows/wrapup.yaml): what loads, what is refused and where, and how a
counsellor's answers are checked against it."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from flows.wrapup import DEFAULT_PATH, WrapupError, WrapupForm

GOOD = """\
fields:
  type:
    label: Contact type
    choose: one
    required: true
    choices:
      conversation: Conversation
      silent: Silent
  category:
    label: Categories
    choose: many
    required: true
    except_when: {type: [silent]}
    choices:
      sex_trafficking: Sex trafficking
      basic_needs: Basic needs
  referral:
    label: Referrals given
    choose: many
    resources: [national-runaway-safeline]
    choices:
      other: Another service
  safety_plan:
    label: Safety plan made
    choose: one
    choices: {"yes": "Yes", "no": "No"}
  outcome:
    label: Outcome
    choose: one
    required: true
    choices:
      resolved: Resolved
  summary:
    label: Summary
    choose: text
    max: 40
"""


def load(tmp_path, text: str) -> WrapupForm:
    path = tmp_path / "wrapup.yaml"
    path.write_text(text, encoding="utf-8")
    return WrapupForm.load(path)


def refused(tmp_path, text: str) -> list[str]:
    with pytest.raises(WrapupError) as caught:
        load(tmp_path, text)
    return caught.value.problems


def test_the_shipped_form_loads_with_every_field_the_reports_count():
    form = WrapupForm.load()
    assert [f.counter for f in form.fields.values()] == [
        "contact_type", "contact_category", "contact_risk", "contact_referral", "contact_safety_plan",
        "contact_follow_up", "contact_outcome", None]  # the summary is never counted
    assert list(form.fields["outcome"].choices) == ["resolved", "referred", "no_response", "emergency_services", "other"]
    assert form.fields["safety_plan"].choices == {"yes": "Yes", "no": "No"}  # yes/no stay words, not booleans
    # Referrals are named as resources.yaml names them.
    assert form.fields["referral"].choices["national-human-trafficking-hotline"] == \
        "National Human Trafficking Hotline (Polaris)"


def test_a_good_definition_loads_in_the_files_order(tmp_path):
    form = load(tmp_path, GOOD)
    assert list(form.fields) == ["type", "category", "referral", "safety_plan", "outcome", "summary"]
    assert form.fields["referral"].choices == {"national-runaway-safeline": "National Runaway Safeline",
                                               "other": "Another service"}


def test_an_except_when_answer_that_is_not_a_choice_is_refused_with_its_line(tmp_path):
    problems = refused(tmp_path, GOOD.replace("except_when: {type: [silent]}", "except_when: {type: [silnet]}"))
    assert problems == ["wrapup.yaml:10: category: except_when: 'silnet' is not a choice of type (conversation, silent)"]


def test_a_form_without_a_required_outcome_is_refused(tmp_path):
    problems = refused(tmp_path, GOOD.replace("    required: true\n    choices:\n      resolved", "    choices:\n      resolved"))
    assert problems == ["wrapup.yaml: the form needs an `outcome` field (choose: one, required: true): "
                        "ending a conversation records it"]


def test_a_field_without_a_label_or_choices_is_refused(tmp_path):
    problems = refused(tmp_path, GOOD.replace("    label: Safety plan made\n", "").replace(
        '    choices: {"yes": "Yes", "no": "No"}\n', ""))
    assert problems == ["wrapup.yaml:24: safety_plan: needs a label", "wrapup.yaml:24: safety_plan: needs choices (or resources)"]


def test_an_unknown_attribute_or_field_is_refused(tmp_path):
    problems = refused(tmp_path, GOOD.replace("    choose: text\n", "    choose: text\n    maxlength: 40\n")
                       .replace("except_when: {type: [silent]}", "except_when: {kind: [silent]}"))
    assert problems == [
        "wrapup.yaml:34: summary: unknown attribute 'maxlength' "
        "(known: choices, choose, except_when, label, max, required, resources)",
        "wrapup.yaml:10: category: except_when names 'kind', which is not a single-choice field of this form",
    ]


def test_a_kind_of_field_not_known_is_refused(tmp_path):
    assert refused(tmp_path, GOOD.replace("choose: text", "choose: words")) == [
        "wrapup.yaml:34: summary: choose must be one of one, many, text, not 'words'"]


def test_a_field_given_twice_is_refused_at_its_line(tmp_path):
    problems = refused(tmp_path, GOOD + "  type:\n    label: Again\n    choose: text\n")
    assert problems == ["wrapup.yaml:37: 'type' is given twice"]


def test_a_choice_given_twice_is_refused_at_its_line(tmp_path):
    # YAML alone would keep the second silently.
    problems = refused(tmp_path, GOOD.replace("      basic_needs: Basic needs\n",
                                              "      basic_needs: Basic needs\n      sex_trafficking: Again\n"))
    assert problems == ["wrapup.yaml:17: 'sex_trafficking' is given twice"]


def test_a_referral_that_is_not_in_resources_yaml_is_refused(tmp_path):
    problems = refused(tmp_path, GOOD.replace("resources: [national-runaway-safeline]",
                                              "resources: [national-runaway-safeline, kern-runaway-shelter]"))
    assert problems == ["wrapup.yaml:18: referral: resource 'kern-runaway-shelter' is not an id in flows/resources.yaml"]


def test_a_yes_left_unquoted_is_still_a_word(tmp_path):
    form = load(tmp_path, GOOD.replace('choices: {"yes": "Yes", "no": "No"}', "choices: {yes: Yes, no: No}"))
    assert form.fields["safety_plan"].choices == {"yes": "Yes", "no": "No"}


def test_yaml_that_does_not_parse_says_where(tmp_path):
    problems = refused(tmp_path, GOOD.replace("    choose: many\n    required: true", "    choose: [many\n    required: true"))
    assert len(problems) == 1 and problems[0].startswith("wrapup.yaml:")


def test_helpline_flows_check_reports_a_broken_wrapup_form(tmp_path, monkeypatch):
    assert CliRunner().invoke(main, ["flows", "check"]).exit_code == 0
    broken = tmp_path / "wrapup.yaml"
    broken.write_text(DEFAULT_PATH.read_text(encoding="utf-8").replace("- 988-lifeline", "- 989-lifeline"))
    monkeypatch.setattr("flows.wrapup.DEFAULT_PATH", broken)
    answer = CliRunner().invoke(main, ["flows", "check"])
    assert answer.exit_code == 1
    assert "referral: resource '989-lifeline' is not an id in flows/resources.yaml" in answer.output


# -- a counsellor's answers --------------------------------------------------------


@pytest.fixture
def form(tmp_path):
    return load(tmp_path, GOOD)


def test_complete_answers_become_the_record(form):
    record, wrong = form.check({"type": ["conversation"], "category": ["sex_trafficking", "basic_needs"],
                                "referral": ["national-runaway-safeline"], "outcome": ["resolved"],
                                "summary": ["  Safe at a friend's.  "], "safety_plan": [""]})
    assert wrong == []
    assert record == {"type": "conversation", "category": ["sex_trafficking", "basic_needs"],
                      "referral": ["national-runaway-safeline"], "outcome": "resolved", "summary": "Safe at a friend's."}


def test_missing_required_answers_are_named(form):
    assert form.check({"type": ["conversation"]})[1] == ["fill in Categories, Outcome"]


def test_a_silent_contact_needs_no_categories(form):
    assert form.check({"type": "silent", "outcome": "resolved"}) == ({"type": "silent", "outcome": "resolved"}, [])


def test_an_answer_not_on_the_list_is_refused_not_kept(form):
    record, wrong = form.check({"type": ["conversation", "silent"], "category": ["sex_trafficking", "made_up"],
                                "outcome": ["resolved"]})
    assert wrong == ["choose Contact type from the list", "choose Categories from the list"]


def test_a_summary_over_its_length_is_refused(form):
    answers = {"type": "silent", "outcome": "resolved", "summary": "x" * 41}
    assert form.check(answers)[1] == ["Summary can be at most 40 characters"]
