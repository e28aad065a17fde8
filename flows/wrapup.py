"""The wrap-up form (flows/wrapup.yaml): its fields read and checked, and a counsellor's answers checked.

The form is data, like the flows: a definition that is wrong fails when it is loaded (and in
`helpline flows check`), each problem pointing at file and line, never when a counsellor ends a
conversation.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .resources import ResourceDirectory
from .spec import _construct_mapping as _line_mapping, _LineLoader

HERE = Path(__file__).parent
DEFAULT_PATH = HERE / "wrapup.yaml"
KINDS = ("one", "many", "text")
ATTRIBUTES = {"label", "choose", "required", "except_when", "choices", "resources", "max"}
TEXT_MAX = 2000  # a text field's `max` when it gives none
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # stored and counted: never a space, a `|` or a capital
_LINE = "__line__"


class WrapupError(ValueError):
    """The wrap-up form's definition cannot be used; `problems` says each thing wrong, with its line."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _Loader(_LineLoader):
    """The flows' loader (lines kept, yes/no stay words), and a key given twice in one mapping is an error:
    YAML would keep the second silently, and a choice would vanish from the form."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"{key!r} is given twice",
                                                    key_node.start_mark)
        seen.add(key)
    return _line_mapping(loader, node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class Field:
    """One question of the form."""

    key: str
    label: str
    choose: str  # one, many or text
    required: bool = False
    choices: dict[str, str] = field(default_factory=dict)  # key -> label, in the file's order
    except_when: dict[str, frozenset[str]] = field(default_factory=dict)  # field -> answers that waive it
    max: int = TEXT_MAX
    line: int = 0

    @property
    def counter(self) -> str | None:
        """The name its answers are counted under (bot.metrics.Stats.count); None for text."""
        return None if self.choose == "text" else f"contact_{self.key}"

    def needed(self, answers: Mapping[str, object]) -> bool:
        """Required, given the other answers (a silent contact has no categories)."""
        return self.required and not any(answers.get(other) in waived for other, waived in self.except_when.items())


@dataclass(frozen=True)
class WrapupForm:
    fields: dict[str, Field]
    path: Path = DEFAULT_PATH

    @classmethod
    def load(cls, path: Path | str | None = None, resources: ResourceDirectory | None = None) -> "WrapupForm":
        """Read and check the form; WrapupError lists every problem found."""
        path = Path(path) if path is not None else DEFAULT_PATH
        shown = path.name
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader
        except OSError as exc:
            raise WrapupError([f"{shown}: cannot read the wrap-up form: {exc.strerror}"]) from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{shown}:{mark.line + 1}" if mark else shown
            raise WrapupError([f"{where}: {getattr(exc, 'problem', None) or exc}"]) from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("fields"), dict):
            raise WrapupError([f"{shown}: the wrap-up form must be a mapping with `fields:`"])
        resources = resources if resources is not None else ResourceDirectory.load()
        problems: list[str] = []
        fields = {}
        for key, spec in raw["fields"].items():
            if key == _LINE:
                continue
            built = _field(key, spec, resources, lambda line, what: problems.append(f"{shown}:{line}: {what}"),
                           raw["fields"][_LINE])
            if built is not None:
                fields[key] = built
        for item in fields.values():
            for other, waived in item.except_when.items():
                known = fields.get(other)
                if known is None or known.choose != "one":
                    problems.append(f"{shown}:{item.line}: {item.key}: except_when names {other!r}, "
                                    "which is not a single-choice field of this form")
                    continue
                for answer in sorted(waived - set(known.choices)):
                    problems.append(f"{shown}:{item.line}: {item.key}: except_when: {answer!r} is not a choice "
                                    f"of {other} ({', '.join(known.choices)})")
        outcome = fields.get("outcome")
        if outcome is None or outcome.choose != "one" or not outcome.required:
            problems.append(f"{shown}: the form needs an `outcome` field (choose: one, required: true): "
                            "ending a conversation records it")
        if problems:
            raise WrapupError(problems)
        return cls(fields, path)

    def check(self, given: Mapping[str, str | list[str]]) -> tuple[dict, list[str]]:
        """A counsellor's answers (field key -> the value, or every value, posted) as a record, and what is
        wrong with them.

        The record holds only answered fields: one -> a key, many -> a list of keys, text -> the words."""
        record: dict = {}
        wrong, refused = [], set()
        for item in self.fields.values():
            posted = given.get(item.key) or []
            values = [v.strip() for v in ([posted] if isinstance(posted, str) else posted) if v and v.strip()]
            if item.choose == "text":
                text = "\n".join(values)
                if len(text) > item.max:
                    wrong.append(f"{item.label} can be at most {item.max} characters")
                elif text:
                    record[item.key] = text
                continue
            unknown = [v for v in values if v not in item.choices]
            if unknown or (item.choose == "one" and len(values) > 1):
                wrong.append(f"choose {item.label} from the list")
                refused.add(item.key)
            elif values:
                record[item.key] = values[0] if item.choose == "one" else list(dict.fromkeys(values))
        missing = [item.label for item in self.fields.values()
                   if item.key not in record and item.key not in refused and item.needed(record)]
        if missing:
            wrong.insert(0, "fill in " + ", ".join(missing))
        return record, wrong

    def labels(self, record: Mapping[str, object]) -> list[tuple[str, str]]:
        """(field label, the answer in words) for each answered field, in the form's order."""
        shown = []
        for item in self.fields.values():
            value = record.get(item.key)
            if value is None or value == []:
                continue
            if item.choose == "text":
                shown.append((item.label, str(value)))
            else:
                keys = value if isinstance(value, list) else [value]
                shown.append((item.label, ", ".join(item.choices.get(str(k), str(k)) for k in keys)))
        return shown


def _field(key, spec, resources: ResourceDirectory, problem, line: int) -> Field | None:
    """One field from its YAML mapping, or None (with the problems said) when it cannot be used."""
    if not isinstance(key, str) or not _KEY.match(key):
        problem(line, f"{key!r}: a field key is lowercase letters, digits and _ only")
        return None
    if not isinstance(spec, dict):
        problem(line, f"{key}: must be a mapping (label, choose, ...)")
        return None
    line = spec[_LINE]
    said = []

    def say(what):
        said.append(what)
        problem(line, f"{key}: {what}")

    for name in sorted(set(spec) - ATTRIBUTES - {_LINE}):
        say(f"unknown attribute {name!r} (known: {', '.join(sorted(ATTRIBUTES))})")
    label, choose, required = spec.get("label"), spec.get("choose"), spec.get("required", False)
    if not isinstance(label, str) or not label.strip():
        say("needs a label")
    if choose not in KINDS:
        say(f"choose must be one of {', '.join(KINDS)}, not {choose!r}")
    if not isinstance(required, bool):
        say(f"required must be true or false, not {required!r}")
    choices = {}
    wanted = spec.get("resources") or []
    if not isinstance(wanted, list):
        say("resources must be a list of ids from resources.yaml")
        wanted = []
    for resource_id in wanted:
        found = resources.get(resource_id) if isinstance(resource_id, str) else None
        if found is None:
            say(f"resource {resource_id!r} is not an id in {resources.display_path}")
        elif resource_id in choices:
            say(f"resource {resource_id!r} is given twice")
        else:
            choices[resource_id] = found.name_for("en")
    raw_choices = spec.get("choices") or {}
    if not isinstance(raw_choices, dict):
        say("choices must be a mapping of key: label")
        raw_choices = {}
    for choice, text in raw_choices.items():
        if choice == _LINE:
            continue
        if not isinstance(choice, str) or not _KEY.match(choice):
            say(f"choice {choice!r}: a key is lowercase letters, digits, - and _ only (quote yes and no)")
        elif not isinstance(text, str) or not text.strip():
            say(f"choice {choice}: needs a label")
        elif choice in choices:
            say(f"choice {choice!r} is also one of its resources")
        else:
            choices[choice] = text.strip()
    if choose == "text" and choices:
        say("a text field has no choices")
    if choose in ("one", "many") and not choices:
        say("needs choices (or resources)")
    waived = spec.get("except_when") or {}
    if not isinstance(waived, dict) or not all(isinstance(v, list) for k, v in waived.items() if k != _LINE):
        say("except_when must map a field to a list of its answers, e.g. {type: [silent]}")
        waived = {}
    if waived and required is not True:
        say("except_when only applies to a required field")
    limit = spec.get("max", TEXT_MAX)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        say(f"max must be a whole number above 0, not {limit!r}")
    if said:
        return None
    return Field(key, label.strip(), choose, required, choices,
                 {k: frozenset(map(str, v)) for k, v in waived.items() if k != _LINE}, limit, line)
