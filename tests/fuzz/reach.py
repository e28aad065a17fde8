"""Paths of inputs to every state of the flow, and to the conditions in which the bot may stay silent.

Found by a breadth-first walk of flows/helpline.yaml on the pure engine (no Redis): from each state
the walk tries the state's numbered options ("1", "2", …, from the spec), a sample answer for its free
input (any, zip, age, text), two misses (the fallback), the texts the intent model reads as the
intents that lead to states no option reaches (danger, a disclosure, a missing child, another
language, "he is next to me"), and what a counsellor does (claim, then end: chat_ended is only
reached that way). A state the walk cannot reach has no path, and `test_every_state_has_a_path`
names it: a new state needs either an option that leads to it or a text for the intent that does.

A pass-through state (`next:`, e.g. signs, tip_sent) never holds a conversation: a message that ends
in it goes straight on. It counts as reached when its `say` is among what a step said and the step
came to rest where its `next` chain leads; the fuzz text after that path then meets the state the
conversation rests in, which is all a texter can ever write to.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from bot.extensions import flow_engine
from flows.conversation import Conversation
from flows.engine import Model, Step
from flows.spec import CONDITIONS

NAME = "Kern Support Line"  # HELPLINE_NAME's default, which the app fixtures use too
ENGINE = flow_engine(NAME)
FLOW = ENGINE.flow
LANGS = ("en", "es")


@dataclass(frozen=True)
class Counsellor:
    """Not a text: what a counsellor does in the console (claim a waiting conversation, end it)."""

    action: str  # "claim" | "end"

    def __repr__(self) -> str:
        return f"<counsellor {self.action}s>"


CLAIM, END = Counsellor("claim"), Counsellor("end")
Move = str | Counsellor

# Known texts, per language. The intent texts are checked by the walk itself: a text the model no
# longer reads as its intent leaves a state without a path, and the test says which.
TEXTS = {
    "en": {
        "first": "hi", "any": "hi", "when": "tomorrow after 6", "zip": "93305", "age": "16", "text": "a van behind the motel, girls inside",
        "miss": "zzz",
        "danger_now": "he has a gun",
        "disclosure": "my boss keeps my passport and says i owe him",
        "family_missing": "my 14 year old daughter has not come home since friday",
        "other_language": "kailangan ko ng tulong, hindi ako makaalis",
        "not_safe_now": "he is next to me",
        "stop": "STOP", "delete": "DELETE", "nudge": "are you still there?",
        # "Did you mean…": messages the model is unsure about; the first that asks is used.
        "unsure": ("my job", "papers", "my boss", "i need something", "my family"),
    },
    "es": {
        "first": "hola", "any": "hola", "when": "mañana en la tarde", "zip": "93305", "age": "16", "text": "una camioneta detrás del motel, con chicas",
        "miss": "zzz",
        "danger_now": "tiene una pistola",
        "disclosure": "el patrón tiene mi pasaporte y dice que le debo",
        "family_missing": "mi hija de 14 años no ha vuelto a casa desde el viernes",
        "other_language": "kailangan ko ng tulong, hindi ako makaalis",
        "not_safe_now": "él está aquí",
        "stop": "STOP", "delete": "BORRAR", "nudge": "¿sigues ahí?",
        "unsure": ("mi trabajo", "papeles", "mi jefe", "necesito algo"),
    },
}
# The intents whose texts the walk tries from every state (see `intents:` in the flow).
DETOUR_INTENTS = ("danger_now", "disclosure", "family_missing", "other_language", "not_safe_now")


@dataclass(frozen=True)
class Target:
    """Where a fuzz message is sent: a state of the flow, or a condition of the conversation."""

    name: str
    kind: str  # "state" (a resting state), "passing" (a pass-through state), "mode"
    path: tuple[Move, ...]  # the inputs from nothing (no conversation yet) to it
    holds: Callable[[Conversation | None], bool] = field(compare=False, repr=False)
    channels: frozenset[str] = frozenset({"sms", "web"})

    def __str__(self) -> str:
        return self.name


def resting_end(name: str) -> str:
    """Where a state's `next` chain comes to rest."""
    while FLOW.states[name].next:
        name = FLOW.states[name].next
    return name


class PureChat:
    """One texter on the pure engine; a clock one second per message, as in tests/flows."""

    def __init__(self, channel: str = "sms"):
        self.conv = Conversation(id="c-fuzz", channel=channel, address="+16615550100")
        self.now = 1_700_000_000.0

    def clone(self) -> "PureChat":
        other = PureChat(self.conv.channel)
        other.conv, other.now = Conversation.from_doc(copy.deepcopy(self.conv.to_doc())), self.now
        return other

    def send(self, move: Move) -> Step:
        self.now += 1
        if move == CLAIM:
            assert self.conv.handoff == "waiting"
            self.conv.handoff, self.conv.counsellor = "active", "fuzz"  # what bot.console.handoff.claim does
            return Step()
        if move == END:
            return ENGINE.end_handoff(self.conv)  # what bot.console.handoff.end does
        step = ENGINE.step(self.conv, move, self.now)
        self.conv.new = False  # as the store's reload would
        return step


def _moves(conv: Conversation, texts: dict) -> list[list[Move]]:
    if conv.handoff == "waiting" and FLOW.states[conv.state].handoff:
        return [[CLAIM], ["cancel"]]  # in line, a counsellor moves the conversation, or "leave the line?"
    if conv.handoff == "active":
        return [[END]]
    state = FLOW.states[conv.state]
    moves: list[list[Move]] = [[str(n)] for n in range(1, len(state.options) + 1)]
    if state.input == "text":
        moves.append([texts["text"], *sorted(state.until)[:1]])
    elif state.input:
        moves.append([texts[state.input]])
    if state.input == "age":
        moves.append(["25"])  # past the Runaway Safeline's ages: the adult runaway states
    moves.append([texts["miss"], texts["miss"]])
    moves += [[texts[intent]] for intent in DETOUR_INTENTS]
    return moves


@functools.cache
def walk(lang: str, channel: str = "sms") -> dict[str, tuple[Move, ...]]:
    """The shortest path to every state the walk reaches, in one language, on one channel."""
    texts = TEXTS[lang]
    start = PureChat(channel)
    found: dict[str, tuple[Move, ...]] = {FLOW.initial: ()}
    seen = set()
    todo = deque([(start, ())])
    passing = {name: state for name, state in FLOW.states.items() if state.next}
    while todo:
        chat, path = todo.popleft()
        moves = [[texts["first"]]] if not path else _moves(chat.conv, texts)
        for move in moves:
            nxt = chat.clone()
            steps = [nxt.send(m) for m in move]
            said = {key for step in steps for key in step.keys}
            here = nxt.conv.state
            for name, state in passing.items():
                if name not in found and state.say in said and resting_end(name) == here:
                    found[name] = path + tuple(move)
            found.setdefault(here, path + tuple(move))
            # The flow's conditions (screen_strong, …) pick between branches: a state is explored again
            # when they differ, or screen_none (every screening answer "no") would stay out of reach.
            model = Model(ENGINE, nxt.conv, None)
            key = (here, nxt.conv.handoff, tuple(getattr(model, name)() for name in CONDITIONS))
            if key not in seen:
                seen.add(key)
                todo.append((nxt, path + tuple(move)))
    return found


def _state_target(name: str, path: tuple[Move, ...]) -> Target:
    if name == FLOW.initial:
        # Nothing sent yet: the fuzz text is the first message. The web chat has no such moment (opening
        # the page is its first message), so this one is SMS only.
        return Target(name, "state", path, lambda conv: conv is None, frozenset({"sms"}))
    rest = resting_end(name)
    kind = "passing" if rest != name else "state"
    return Target(name, kind, path, lambda conv, rest=rest: conv is not None and conv.state == rest)


def _unsure_text(lang: str, base: tuple[Move, ...]) -> str:
    """A text the model is unsure about where the base path leads (the bot then asks "Did you mean…")."""
    for candidate in TEXTS[lang]["unsure"]:
        chat = PureChat()
        for move in (*base, candidate):
            chat.send(move)
        if chat.conv.slots.get("_clarify"):
            return candidate
    raise AssertionError(f"none of TEXTS[{lang!r}]['unsure'] makes the bot ask 'Did you mean…' any more: add one")


@functools.cache
def targets(lang: str) -> tuple[Target, ...]:
    """Every state of the flow, then the conditions that change what an answer must be."""
    found = walk(lang)
    # By text a check-in is offered where the web chat goes straight on (can_text_later): those states are
    # reached on the web alone, and the check-in states by text alone.
    web = walk(lang, "web")
    web_only = {name: path for name, path in web.items() if name not in found}
    missing = sorted(set(FLOW.states) - set(found) - set(web_only))
    assert not missing, (f"no path of inputs reaches {missing} in {lang}: give them an option that leads there, "
                         "or add the text of the intent that does to tests/fuzz/reach.py TEXTS and DETOUR_INTENTS")
    texts = TEXTS[lang]
    out = [_state_target(name, found[name]) for name in FLOW.states if name in found]
    for target in out[:]:
        if target.name not in web and target.name != FLOW.initial:
            out[out.index(target)] = dataclasses.replace(target, channels=frozenset({"sms"}))
    out += [dataclasses.replace(_state_target(name, path), channels=frozenset({"web"})) for name, path in web_only.items()]
    menu, emergency = found[FLOW.resume], found[FLOW.emergency]
    # In line by asking for a person (the waiting state's own path may have come through an emergency).
    ask = FLOW.states["ask_consent"]
    consent = next(n for n, opt in enumerate(ask.options, 1) if any(e["name"] == "request_handoff" for e in opt.effects))
    queued = (*found["ask_consent"], str(consent))
    # Told 911, then "1": the emergency offer's answer that queues for a person.
    urgent = next(n for n, opt in enumerate(FLOW.states[FLOW.emergency].options, 1)
                  if any(e["name"] == "request_handoff" for e in opt.effects))
    out += [
        # After STOP the help line says nothing at all (SMS and WhatsApp only: a web page has no carrier).
        Target("stopped", "mode", (*menu, texts["stop"]), lambda c: c is not None and c.opted_out, frozenset({"sms"})),
        # "He is next to me": the discreet line, then "ok" / 👍 get no reply.
        Target("quiet", "mode", (*menu, texts["not_safe_now"]), lambda c: c is not None and bool(c.slots.get("quiet"))),
        # DELETE asked; the next message confirms it or not.
        Target("confirm_delete", "mode", (*menu, texts["delete"]),
               lambda c: c is not None and bool(c.slots.get("_confirm_delete"))),
        # "Did you mean: 1 …, 2 …? Or 3 a person": the next message picks.
        Target("clarify", "mode", (*menu, _unsure_text(lang, menu)),
               lambda c: c is not None and bool(c.slots.get("_clarify"))),
        # Just queued (never reassured yet): the next message is answered ("still waiting").
        Target("waiting_normal", "mode", queued,
               lambda c: c is not None and c.handoff == "waiting" and c.risk == "normal" and not c.reassured_at),
        # In line and told "still waiting" just now: silence is allowed for the next ten minutes.
        Target("waiting_reassured", "mode", (*queued, texts["nudge"]),
               lambda c: c is not None and c.handoff == "waiting" and c.risk == "normal" and c.reassured_at > 0),
        # A counsellor holds the chat: the bot is silent (but HELP, language and danger are answered).
        Target("active", "mode", (*queued, CLAIM), lambda c: c is not None and c.handoff == "active"),
        # In line after an emergency: never silence.
        Target("waiting_emergency", "mode", (*emergency, str(urgent)),
               lambda c: c is not None and c.handoff == "waiting" and c.risk == "emergency"),
    ]
    return tuple(out)


def target(lang: str, name: str) -> Target:
    """The target of that name, with its path in that language."""
    return next(t for t in targets(lang) if t.name == name)


def web_path(path: tuple[Move, ...]) -> tuple[Move, ...]:
    """The same path in the web chat: opening the page is the first message (the welcome)."""
    return path[1:]
