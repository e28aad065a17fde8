"""The pure conversation engine: one shared `transitions` Machine per flow, no I/O.

A message goes in with the conversation record; replies and effects come out. The
web side (bot.engine) loads and saves the record and carries the effects out.
"""
from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field

from transitions import Machine

from .catalog import Catalog
from .conversation import Conversation
from .spec import Flow, State, normalize

MAX_TEXT = 1600
MAX_MILES = 100
REASSURE_EVERY = 600.0  # seconds: at most one "still waiting" reply per ten minutes

# Twilio's own opt-out and opt-in words; they count only as the whole message, as Twilio matches them.
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
START_WORDS = frozenset({"start", "unstop"})
DELETE_WORDS = frozenset({"delete", "borrar", "erase", "borra"})
CONFIRM_WORDS = frozenset({"yes", "y", "si", "sí", "1", "delete", "borrar", "ok"})
# A first message in Spanish gets Spanish straight away.
SPANISH_HINTS = frozenset(
    "hola buenas buenos buen dias días tardes noches necesito ayuda ayudame ayúdame quiero tengo estoy "
    "por favor informacion información gracias quien quién donde dónde como cómo puedo hablar alguien "
    "mi soy trabajo miedo auxilio socorro español espanol menú borrar que qué de el la los las en un una "
    "es está esta con para tu ya tiene hay pero porque mucho".split()
)
# Words that say a message is English; "me" is in neither list (it is both).
ENGLISH_HINTS = frozenset(
    "i im i'm you he she they is are am the my hi hello hey help need please what how can want to it "
    "this and of with not don't dont".split()
)
# Catalog keys the engine itself says; `flows check` makes sure every language has them.
ENGINE_KEYS = (
    "stopped", "restarted", "confirm_delete", "erased", "not_erased", "not_understood",
    "emergency", "emergency_self_harm", "waiting_reassure", "resource_text", "resource_miles",
    "resources_none", "language_set", "text_more",
)


@dataclass
class Effect:
    """Something the web side must do: queue a handoff, alert a supervisor, erase, …"""

    name: str
    params: dict = field(default_factory=dict)


@dataclass
class Step:
    """What one inbound message produced."""

    replies: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    level: str = "normal"
    matched: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n\n".join(self.replies)

    def effect(self, name: str) -> Effect | None:
        return next((e for e in self.effects if e.name == name), None)


class Model:
    """A conversation attached to the shared Machine for the length of one message."""

    def __init__(self, engine: "FlowEngine", conv: Conversation, step: Step):
        self.engine, self.conv, self.step = engine, conv, step

    # callbacks named in the machine's states --------------------------------
    def enter(self, event) -> None:
        self.engine._enter(self, self.engine.flow.states[event.state.name])

    # conditions named in flows (spec.CONDITIONS) ------------------------------
    def screen_strong(self, event=None) -> bool:
        return any(v is True for k, v in self.conv.slots.items() if k.startswith("screen_strong_"))

    def is_minor(self, event=None) -> bool:
        age = self.conv.slots.get("age")
        return isinstance(age, int) and age < 18

    def has_consent(self, event=None) -> bool:
        return self.conv.consent is True


class FlowEngine:
    """Walks one flow for any number of conversations."""

    def __init__(self, flow: Flow, catalog: Catalog, triage=None, resources=None, helpline_name="Help line"):
        self.flow, self.catalog, self.triage, self.resources = flow, catalog, triage, resources
        self.helpline_name = helpline_name
        self._lock = threading.Lock()  # one conversation at a time walks the shared machine
        self.machine = Machine(
            model=None,
            states=[{"name": s, "on_enter": "enter"} for s in flow.states],
            transitions=machine_transitions(flow),
            initial=flow.initial,
            auto_transitions=False,
            send_event=True,
            model_override=False,
        )
        # One model, attached once: add_model/remove_model for every message cost more than the
        # rest of the flow step together (transitions sets up every trigger on each added model).
        self._model = Model(self, None, None)
        self.machine.add_model(self._model, initial=flow.initial)

    # -- the one entry point ----------------------------------------------------

    def step(self, conv: Conversation, text: str, now: float) -> Step:
        """Apply one texter message to the conversation; return what to say and do."""
        step = Step()
        text = clean(text)
        word = normalize(text)
        if conv.new:
            conv.created_at = now
            if _looks_spanish(word):
                conv.lang = "es"
        conv.updated_at = now
        conv.messages += 1

        if word in STOP_WORDS:
            conv.opted_out = True
            self._say(step, conv, "stopped")
            step.effects.append(Effect("opt_out"))
            return step
        if word in START_WORDS:
            conv.opted_out = False
            if not conv.handoff:  # someone in line keeps their place
                conv.state = self.flow.initial
            self._say(step, conv, "restarted")
            step.effects.append(Effect("opt_in"))
            return step
        if conv.opted_out:
            return step  # never a word after STOP until START

        # Danger is heard first, even in the middle of a delete confirmation.
        confirming = conv.slots.pop("_confirm_delete", False)
        if self.triage is not None:
            found = self.triage.assess(text)
            step.level, step.matched = found.level, tuple(found.matched)
            raised = conv.raise_risk(found.level, step.matched)
            if found.level == "emergency":
                return self._emergency(step, conv, self_harm=found.self_harm)
            if raised and conv.handoff == "waiting":
                step.effects.append(Effect("request_handoff", {"reason": "triage"}))

        if confirming:
            if word in CONFIRM_WORDS:
                self._say(step, conv, "erased")
                step.effects.append(Effect("erase"))
                return step
            self._say(step, conv, "not_erased")
            return step
        if word in DELETE_WORDS:
            conv.slots["_confirm_delete"] = True
            self._say(step, conv, "confirm_delete")
            return step

        if conv.handoff:
            # HELP and a language switch are answered even in line or with a counsellor.
            command = self._command(word)
            if command is not None and not command.to:
                return self._global(step, conv, command)
        if conv.handoff == "active":
            return step  # the counsellor answers; the bot is silent
        if conv.handoff == "waiting":
            if now - conv.reassured_at >= REASSURE_EVERY:
                conv.reassured_at = now
                self._say(step, conv, "waiting_reassure")
            return step

        return self._answer(step, conv, text, word)

    def end_handoff(self, conv: Conversation) -> Step:
        """A counsellor ended the conversation: leave the queue, go where the flow says."""
        step = Step()
        conv.handoff, conv.counsellor = None, None
        self._fire(step, conv, "handoff_end")
        return step

    def say(self, conv: Conversation, key: str, **values) -> str:
        """One catalog message in the conversation's language, for the web side."""
        return self._render(conv, key, values)

    # -- internals ------------------------------------------------------------

    def _emergency(self, step: Step, conv: Conversation, self_harm: bool) -> Step:
        self._say(step, conv, "emergency")
        if self_harm:
            self._say(step, conv, "emergency_self_harm")
        step.effects.append(Effect("emergency_alert"))
        if conv.handoff:
            # Already queued or talking: move to the top, the counsellor sees why.
            step.effects.append(Effect("request_handoff", {"reason": "emergency"}))
            return step
        conv.misses = 0
        self._fire(step, conv, "emergency")
        return step

    def _command(self, word: str):
        return next((g for g in self.flow.globals if word in g.words), None)

    def _global(self, step: Step, conv: Conversation, g) -> Step:
        if g.id in ("english", "spanish"):
            conv.lang = "es" if g.id == "spanish" else "en"
            self._say(step, conv, "language_set")
        elif g.say:
            self._say(step, conv, g.say)
        if g.to:
            conv.misses = 0
            self._fire(step, conv, g.id)
        elif not conv.handoff:
            self._ask_again(step, conv)  # the texter still needs the question they were on
        return step

    def _ask_again(self, step: Step, conv: Conversation) -> None:
        state = self.flow.states[conv.state]
        if state.say and not state.next and state.name != self.flow.initial:
            self._say(step, conv, state.say)

    def _answer(self, step: Step, conv: Conversation, text: str, word: str) -> Step:
        state = self.flow.states[conv.state]
        # The state's own answers come first, then the commands that work everywhere; a
        # first message always gets the welcome, whatever it says.
        opt = _pick(state, word) if state.options else None
        if opt is None and state.name != self.flow.initial:
            command = self._command(word)
            if command is not None:
                return self._global(step, conv, command)
        if state.options:
            if opt is not None:
                conv.misses = 0
                conv.slots.update(opt.set)
                if opt.say:
                    self._say(step, conv, opt.say)
                step.effects.extend(Effect(e["name"], {k: v for k, v in e.items() if k != "name"}) for e in opt.effects)
                self._fire(step, conv, f"{state.name}.{opt.label}")
                return step
        elif state.input:
            accepted = self._take_input(state, conv, text, word)
            if accepted is not None:
                conv.misses = 0
                if accepted:
                    self._fire(step, conv, "answer")
                else:
                    self._say(step, conv, "text_more")
                return step
        conv.misses += 1
        if conv.misses >= 2 and state.name != self.flow.fallback:
            conv.misses = 0
            self._fire(step, conv, "fallback")
            return step
        if state.name != self.flow.fallback:  # the fallback's own text already says so
            self._say(step, conv, "not_understood")
        self._ask_again(step, conv)
        return step

    def _take_input(self, state: State, conv: Conversation, text: str, word: str) -> bool | None:
        """Store a free answer. True: move on; False: kept, stay; None: not understood."""
        kind = state.input
        if kind == "any":
            return True
        if kind == "zip":
            from .resources import normalize_zip

            found = normalize_zip(word)
            if found is None:
                return None
            conv.slots[state.slot] = found
            return True
        if kind == "age":
            digits = "".join(ch for ch in word if ch.isdigit())
            if not digits or not 5 <= int(digits) <= 120:
                return None
            conv.slots[state.slot] = int(digits)
            return True
        if kind == "text":
            if word in state.until:
                return True if conv.slots.get(state.slot) else None  # DONE before anything: ask again
            parts = conv.slots.setdefault(state.slot, [])
            if len(parts) < 20:
                parts.append(text)
            return False
        return None

    def _fire(self, step: Step, conv: Conversation, trigger: str) -> None:
        with self._lock:
            model = self._model
            model.conv, model.step = conv, step
            self.machine.set_state(conv.state, model)
            try:
                model.trigger(trigger)
                while self.flow.states[model.state].next:
                    model.trigger("next")
            finally:
                conv.state = model.state
                model.conv = model.step = None

    def _enter(self, model: Model, state: State) -> None:
        conv, step = model.conv, model.step
        if state.say:
            self._say(step, conv, state.say)
        step.effects.extend(Effect(e["name"], {k: v for k, v in e.items() if k != "name"}) for e in state.effects)
        if state.handoff and conv.handoff is None:
            conv.handoff = "waiting"

    def _say(self, step: Step, conv: Conversation, key: str) -> None:
        step.keys.append(key)
        step.replies.append(self._render(conv, key, {}))

    def _render(self, conv: Conversation, key: str, values: dict) -> str:
        lang = conv.lang if conv.lang in self.catalog.texts else "en"
        # A channel may word a message its own way ("welcome@web" says chat, not text).
        if self.catalog.has(lang, f"{key}@{conv.channel}"):
            key = f"{key}@{conv.channel}"
        wanted = self.catalog.placeholders(lang, key) if self.catalog.has(lang, key) else set()
        values = dict(values)
        values.setdefault("name", self.helpline_name)
        if "resources" in wanted:
            values["resources"] = self._resources(conv, lang)
        if "summary" in wanted:
            values["summary"] = screening_summary(conv)
        for name in wanted - values.keys():
            values[name] = conv.slots.get(name, "")
        return self.catalog.render(lang, key, **values)

    def _resources(self, conv: Conversation, lang: str) -> str:
        if self.resources is None:
            return self.catalog.render(lang, "resources_none")
        matches = self.resources.nearest(conv.slots.get("zip", ""), conv.slots.get("category", "shelter"))
        if not matches:
            return self.catalog.render(lang, "resources_none")
        lines = []
        # A listing hours away helps no one tonight; the national lines still show.
        matches = [m for m in matches if m.miles is None or m.miles <= MAX_MILES]
        for m in matches:
            r = m.resource
            parts = [r.name_for(lang)]
            if r.phone:
                parts.append(r.phone)
            if r.text:
                parts.append(self.catalog.render(lang, "resource_text", number=r.text))
            if r.address:
                parts.append(r.address)
            if r.hours:
                parts.append(r.hours)
            if m.miles is not None:
                parts.append(self.catalog.render(lang, "resource_miles", miles=f"{max(1, round(m.miles))}"))
            lines.append("- " + ", ".join(parts))
        return "\n".join(lines)


def machine_transitions(flow: Flow) -> list[dict]:
    """The flow's answers, inputs, pass-throughs and global commands as `transitions` definitions."""
    out = []
    for state in flow.states.values():
        for opt in state.options:
            out += [
                {"trigger": f"{state.name}.{opt.label}", "source": state.name, "dest": b.to,
                 "conditions": [b.when] if b.when else []}
                for b in opt.branches
            ]
        out += [
            {"trigger": "answer", "source": state.name, "dest": b.to, "conditions": [b.when] if b.when else []}
            for b in state.branches
        ]
        if state.next:
            out.append({"trigger": "next", "source": state.name, "dest": state.next})
    out += [{"trigger": g.id, "source": "*", "dest": g.to} for g in flow.globals if g.to]
    out += [
        {"trigger": "emergency", "source": "*", "dest": flow.emergency},
        {"trigger": "fallback", "source": "*", "dest": flow.fallback},
        {"trigger": "handoff_end", "source": "*", "dest": flow.after_handoff},
    ]
    return out


def screening_summary(conv: Conversation) -> dict:
    """The screening answers as a structured record for the counsellor."""
    return {k.split("_", 2)[-1]: v for k, v in conv.slots.items() if k.startswith(("screen_strong_", "screen_other_"))}


def clean(text: str) -> str:
    """What we keep of a message: no NUL or control characters, at most 1600 characters."""
    text = "".join(ch for ch in (text or "") if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    return text.strip()[:MAX_TEXT]


def _looks_spanish(word: str) -> bool:
    tokens = set(word.replace(",", " ").replace("¿", " ").replace("¡", " ").split())
    return len(tokens & SPANISH_HINTS) > len(tokens & ENGLISH_HINTS)


def _pick(state: State, word: str):
    for opt in state.options:
        if word in opt.words:
            return opt
    # "1 yes", "2." or "1)" count as the first token's answer.
    first = word.split(" ", 1)[0].strip(".):-") if word else ""
    if first and first != word:
        for opt in state.options:
            if first in opt.words:
                return opt
    return None
