"""Reading a flow file into plain records, and checking it the way `helpline flows check` reports."""
from __future__ import annotations

import re
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .catalog import Catalog

HERE = Path(__file__).parent
INPUT_KINDS = ("any", "zip", "age", "text", "when")  # when: a safe time for a check-in (flows/when.py)
EFFECTS = ("request_handoff", "record_tip", "emergency_alert", "leave_queue", "schedule_check_in")
# Conditions a conditional `to` may name; each is a method of flows.engine.Model.
CONDITIONS = ("screen_strong", "is_minor", "is_youth", "has_consent", "can_text_later", "has_check_in")
# Intents the engine decides without the model: the language head says other_language.
INTENTS_WITHOUT_MODEL = ("other_language",)
NUMBER_WORDS = {
    1: ("one", "uno", "una", "first", "primero", "1️⃣"),
    2: ("two", "dos", "second", "segundo", "2️⃣"),
    3: ("three", "tres", "third", "tercero", "3️⃣"),
    4: ("four", "cuatro", "4️⃣"),
    5: ("five", "cinco", "5️⃣"),
    6: ("six", "seis", "6️⃣"),
    7: ("seven", "siete", "7️⃣"),
    8: ("eight", "ocho", "8️⃣"),
    9: ("nine", "nueve", "9️⃣"),
}


class FlowError(ValueError):
    """A flow file cannot be read into a flow at all (bad YAML or wrong shape)."""


class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's line so that a check can point at file:line.

    Booleans are only true/false (YAML 1.2): answers like yes, no, si and on stay words.
    """


_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class Branch:
    to: str
    when: str | None = None


@dataclass
class Option:
    """One answer a state accepts: its words, what it sets, says and does, and where it leads."""

    label: str
    words: frozenset[str]
    branches: list[Branch]
    say: str | None = None
    set: dict = field(default_factory=dict)
    effects: list[dict] = field(default_factory=list)
    line: int = 0


@dataclass
class IntentAction:
    """What a message read as one intent does in a state (see `intents` in flows/helpline.yaml)."""

    say: tuple[str, ...] = ()
    set: dict = field(default_factory=dict)
    effects: list[dict] = field(default_factory=list)
    to: str | None = None
    answer: str | None = None  # handle the message as if the texter had written this word
    remember: bool = False  # before the safety check: carry it out once the texter is safe to talk
    line: int = 0


@dataclass
class State:
    name: str
    say: str | None = None
    options: list[Option] = field(default_factory=list)
    input: str | None = None
    slot: str | None = None
    until: frozenset[str] = frozenset()
    branches: list[Branch] = field(default_factory=list)  # where an accepted input leads
    next: str | None = None  # pass-through: said, then straight on
    effects: list[dict] = field(default_factory=list)
    handoff: bool = False  # the bot steps aside: the waiting queue and the counsellor own the talk
    intents: dict[str, IntentAction | None] = field(default_factory=dict)  # None: not heard here
    hear: frozenset[str] | None = None  # only these intents are heard here (danger_now always is)
    line: int = 0


@dataclass
class Global:
    """A command that works from every state (a fallback, in python-telegram-bot's words)."""

    id: str
    words: frozenset[str]
    to: str | None = None
    say: str | None = None
    line: int = 0


@dataclass
class Flow:
    name: str
    path: Path
    initial: str
    fallback: str
    emergency: str
    after_handoff: str
    states: dict[str, State]
    globals: list[Global]
    intents: dict[str, IntentAction] = field(default_factory=dict)
    resume: str = ""  # where an intent remembered before the safety check is carried out
    leave_line: str = ""  # where "cancel" in line goes: "leave the line?"
    line: int = 1

    def action(self, state: State, label: str) -> IntentAction | None:
        """What `label` ("find_help.food") does in `state`: the state's word first, then the flow's,
        the whole label before its intent ("find_help"). None: nothing here."""
        keys = (label, label.split(".", 1)[0]) if "." in label else (label,)
        if state.hear is not None and keys[-1] not in state.hear and keys[-1] != "danger_now":
            return None
        for table in (state.intents, self.intents):
            for key in keys:
                if key in table:
                    return table[key]
        return None

    @classmethod
    def load(cls, path: Path | str = HERE / "helpline.yaml") -> "Flow":
        path = Path(path)
        try:
            doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
        except (OSError, yaml.YAMLError) as exc:
            raise FlowError(f"{path}: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("states"), list):
            raise FlowError(f"{path}:1: a flow is a mapping with a list of states")
        vocab = {k: v for k, v in (doc.get("vocab") or {}).items() if k != "__line__"}

        def words(raw, line) -> frozenset[str]:
            found: set[str] = set()
            for word in raw or []:
                word = str(word)
                if word.startswith("$"):
                    if word[1:] not in vocab:
                        raise FlowError(f"{path}:{line}: unknown vocabulary {word}")
                    found.update(normalize(str(w)) for w in vocab[word[1:]])
                else:
                    found.add(normalize(word))
            return frozenset(found)

        def branches(raw, line) -> list[Branch]:
            if raw is None:
                return []
            if isinstance(raw, str):
                return [Branch(raw)]
            if isinstance(raw, list):
                return [Branch(str(b.get("to")), b.get("if")) for b in raw if isinstance(b, dict)]
            raise FlowError(f"{path}:{line}: `to` is a state name or a list of {{to, if}}")

        def effects(raw) -> list[dict]:
            out = []
            for item in raw or []:
                if isinstance(item, str):
                    out.append({"name": item})
                else:
                    params = {k: v for k, v in item.items() if k != "__line__"}
                    ((name, value),) = params.items()
                    out.append({"name": name, **{k: v for k, v in (value or {}).items() if k != "__line__"}})
            return out

        def intents(raw, line) -> dict[str, IntentAction | None]:
            if raw is None:
                return {}
            if not isinstance(raw, dict):
                raise FlowError(f"{path}:{line}: `intents` is a mapping of intent: action")
            out: dict[str, IntentAction | None] = {}
            for name, act in raw.items():
                if name == "__line__":
                    continue
                if act is None:
                    out[str(name)] = None
                    continue
                if not isinstance(act, dict):
                    raise FlowError(f"{path}:{line}: intent {name}: an action is a mapping (say, set, to, …)")
                say = act.get("say") or ()
                out[str(name)] = IntentAction(
                    say=(say,) if isinstance(say, str) else tuple(say),
                    set={k: v for k, v in (act.get("set") or {}).items() if k != "__line__"},
                    effects=effects(act.get("effects")),
                    to=act.get("to"),
                    answer=None if act.get("answer") is None else normalize(str(act["answer"])),
                    remember=bool(act.get("remember")),
                    line=act.get("__line__", line),
                )
            return out

        states: dict[str, State] = {}
        for raw in doc["states"]:
            if not isinstance(raw, dict) or "name" not in raw:
                raise FlowError(f"{path}:{getattr(raw, 'get', lambda *_: 1)('__line__', 1)}: a state needs a name")
            line = raw["__line__"]
            options = []
            for i, opt in enumerate(raw.get("options") or [], start=1):
                if not isinstance(opt, dict):
                    raise FlowError(f"{path}:{line}: option {i} of {raw['name']} is not a mapping")
                label = str(opt.get("label") or (opt.get("match") or [f"option{i}"])[0]).lstrip("$")
                options.append(
                    Option(
                        label=label,
                        words=words(opt.get("match"), opt["__line__"]) | {str(i), *NUMBER_WORDS.get(i, ())},
                        branches=branches(opt.get("to"), opt["__line__"]),
                        say=opt.get("say"),
                        set={k: v for k, v in (opt.get("set") or {}).items() if k != "__line__"},
                        effects=effects(opt.get("effects")),
                        line=opt["__line__"],
                    )
                )
            states[raw["name"]] = State(
                name=raw["name"],
                say=raw.get("say"),
                options=options,
                input=raw.get("input"),
                slot=raw.get("slot"),
                until=words(raw.get("until"), line),
                branches=branches(raw.get("to"), line),
                next=raw.get("next"),
                effects=effects(raw.get("effects")),
                handoff=bool(raw.get("handoff")),
                intents=intents(raw.get("intents"), line),
                hear=None if raw.get("hear") is None else frozenset(str(h) for h in raw["hear"]),
                line=line,
            )
        globals_ = [
            Global(
                id=str(g["id"]),
                words=words(g.get("match"), g["__line__"]),
                to=g.get("to"),
                say=g.get("say"),
                line=g["__line__"],
            )
            for g in doc.get("globals") or []
        ]
        return cls(
            name=str(doc.get("flow", path.stem)),
            path=path,
            initial=doc.get("initial", "new"),
            fallback=doc.get("fallback", ""),
            emergency=doc.get("emergency", ""),
            after_handoff=doc.get("after_handoff", ""),
            states=states,
            globals=globals_,
            intents={k: v for k, v in intents(doc.get("intents"), 1).items() if v is not None},
            resume=doc.get("resume", ""),
            leave_line=doc.get("leave_line", ""),
        )

    # -- checking ---------------------------------------------------------------

    def targets(self, state: State) -> list[tuple[str, int]]:
        """Every state this one can lead to, with the line that says so."""
        out = [(b.to, state.line) for b in state.branches]
        out += [(b.to, o.line) for o in state.options for b in o.branches]
        if state.next:
            out.append((state.next, state.line))
        out += [(a.to, a.line) for a in state.intents.values() if a is not None and a.to]
        return out

    def check(self, catalog: Catalog, required_keys: tuple[str, ...] = (), intents: tuple[str, ...] = ()) -> list[str]:
        """Problems as 'file:line: message' strings; empty when the flow is sound.

        `intents`: the labels the intent model knows; an action for any other name is a typo."""
        problems: list[str] = []
        where = f"{self.path}"
        names = set(self.states)

        def need_state(name, line, what):
            if name not in names:
                problems.append(f"{where}:{line}: {what} leads to unknown state {name!r}")

        def need_key(key, line):
            for lang in catalog.texts:
                if not catalog.has(lang, key):
                    problems.append(f"{where}:{line}: message {key!r} missing in {catalog.paths[lang]}")

        for attr in ("initial", "fallback", "emergency", "after_handoff"):
            need_state(getattr(self, attr), self.line, attr)
        if self.intents:
            need_state(self.resume, self.line, "resume")
        if self.leave_line:
            need_state(self.leave_line, self.line, "leave_line")
        known = {*intents, *(label.split(".", 1)[0] for label in intents), *INTENTS_WITHOUT_MODEL}

        def check_actions(table, where_name):
            for name, act in table.items():
                if intents and name not in known:
                    line = act.line if act else self.line
                    problems.append(f"{where}:{line}: {where_name}: unknown intent {name!r}")
                if act is None:
                    if name == "danger_now":
                        problems.append(f"{where}:{self.line}: {where_name}: danger_now cannot be turned off")
                    continue
                for key in act.say:
                    need_key(key, act.line)
                if act.to:
                    need_state(act.to, act.line, f"{where_name} intent {name}")
                for eff in act.effects:
                    if eff["name"] not in EFFECTS:
                        problems.append(f"{where}:{act.line}: unknown effect {eff['name']!r}")

        check_actions(self.intents, "intents")
        for name in ("danger_now", *INTENTS_WITHOUT_MODEL):
            if self.intents and name not in self.intents:
                problems.append(f"{where}:{self.line}: intents: no default action for {name}")
        for g in self.globals:
            if g.to:
                need_state(g.to, g.line, f"global {g.id}")
            if g.say:
                need_key(g.say, g.line)
        for state in self.states.values():
            if state.say:
                need_key(state.say, state.line)
            for target, line in self.targets(state):
                need_state(target, line, f"state {state.name}")
            for opt in state.options:
                if opt.say:
                    need_key(opt.say, opt.line)
                for b in opt.branches:
                    if b.when and b.when not in CONDITIONS:
                        problems.append(f"{where}:{opt.line}: unknown condition {b.when!r}")
                for eff in opt.effects:
                    if eff["name"] not in EFFECTS:
                        problems.append(f"{where}:{opt.line}: unknown effect {eff['name']!r}")
            for eff in state.effects:
                if eff["name"] not in EFFECTS:
                    problems.append(f"{where}:{state.line}: unknown effect {eff['name']!r}")
            check_actions(state.intents, f"state {state.name}")
            for name in sorted(state.hear or ()):
                if intents and name not in known:
                    problems.append(f"{where}:{state.line}: state {state.name}: hears unknown intent {name!r}")
            if state.input and state.input not in INPUT_KINDS:
                problems.append(f"{where}:{state.line}: state {state.name}: unknown input {state.input!r}")
            if state.input and not state.branches:
                problems.append(f"{where}:{state.line}: state {state.name} takes input but has no `to`")
            if not (state.options or state.input or state.next or state.handoff):
                problems.append(f"{where}:{state.line}: state {state.name} has no way out")
            if (state.input in ("zip", "age", "text", "when")) and not state.slot:
                problems.append(f"{where}:{state.line}: state {state.name}: input {state.input} needs a slot")
        for key in required_keys:
            need_key(key, self.line)
        # A channel's wording (key@web) must exist in every language, like any other message.
        for variant in sorted({k for texts in catalog.texts.values() for k in texts if "@" in k}):
            for lang in catalog.texts:
                if not catalog.has(lang, variant):
                    problems.append(f"{catalog.paths[lang]}: message {variant!r} missing")

        reached, todo = set(), deque([self.initial, self.fallback, self.emergency, self.after_handoff, self.leave_line])
        todo.extend(g.to for g in self.globals if g.to)
        todo.extend(a.to for a in self.intents.values() if a.to)
        while todo:
            name = todo.popleft()
            if name in reached or name not in self.states:
                continue
            reached.add(name)
            todo.extend(t for t, _ in self.targets(self.states[name]))
        for state in self.states.values():
            if state.name not in reached:
                problems.append(f"{where}:{state.line}: state {state.name} cannot be reached")
        return problems


def normalize(text: str) -> str:
    """The form answers are compared in: trimmed, lower case, no closing punctuation; full-width and
    other compatibility forms ("ＳＴＯＰ", "１") as their plain letters and digits."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.strip().casefold().replace("\x00", "").split()).strip(".!?¡¿,;:'\"")
