"""The pure conversation engine: one shared `transitions` Machine per flow, no I/O.

A message goes in with the conversation record; replies and effects come out. The
web side (bot.engine) loads and saves the record and carries the effects out.
"""
from __future__ import annotations

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, process
from transitions import Machine

from . import when
from .catalog import Catalog
from .conversation import Conversation
from .nlu import NOTHING, IntentModel, Reading
from .spec import NUMBER_WORDS, Flow, IntentAction, State, normalize

MAX_TEXT = 1600
REASSURE_EVERY = 600.0  # seconds: at most one "still waiting" reply per ten minutes
RETURN_AFTER = 86400.0  # seconds away mid-flow after which a texter is asked the safety question again
# What someone in line can still do with the bot (by intent): find help, the runaway questions, a report.
SERVED_IN_LINE = ("find_help", "runaway", "report_tip")

# How sure the intent model must be before its reading is acted on; below it the bot asks which of the
# two likeliest meanings was meant. Chosen on the held-out split (tests/data/intents_heldout.tsv).
CONFIDENT = 0.5
# A message the model alone reads as danger (its two danger labels together) is an emergency from this
# probability on, unless the triage lexicon saw the danger words negated. Chosen with `helpline nlu eval`:
# at 0.45 the labelled triage sets' normal lines stay under 5 % emergencies; from GUESS up to here the
# texter is asked plainly whether they are safe, with 911 and 988 (`danger_check`).
DANGER = 0.45
# A later message switches the reply language only when it is this clearly the other one and has words enough.
SWITCH_LANG, SWITCH_WORDS = 0.9, 3
# Intents the bot never offers as a meaning to choose from: they are not something a texter asks for.
NOT_OFFERED = frozenset({"unclear", "greeting", "thanks_bye", "danger_now", "want_person", "yes", "no"})
# Below CONFIDENT, a reading this likely is worth a "Did you mean…"; one less likely says too little.
GUESS = 0.35
# Words in a message the model could not read from which the bot offers a person at once.
LONG_UNREAD = 8
MEANING = 0.1  # and each meaning offered must be at least this likely
OTHER_LANG = 0.8  # the language head's confidence before "we have interpreters" is the answer
# Someone who said it is not safe to talk is answered that way when the model thinks it this likely,
# even if something else is likelier: a wrong discreet line costs one more message, a missed one more.
NOT_SAFE, NOT_SAFE_TOP = 0.4, 0.2  # (or it is the likeliest reading and at least this likely)
# Replies that say nothing new: after "he is next to me" they get no answer, and the quiet stays.
ACKNOWLEDGEMENTS = frozenset({"ok", "k", "kk", "okay", "oki", "okey", "ok gracias", "ok thanks", "thanks", "thx",
                              "ty", "gracias", "vale", "va", "sale", "bueno", "got it", "entendido", "👍", "🙏"})
# Carrier opt-out words are an SMS rule (Twilio's and the carriers'); a web page has no carrier.
CARRIER_CHANNELS = frozenset({"sms", "whatsapp", "cli"})
# Who can be texted a check-in later: a web chat is gone once its page closes, and the CLI is a terminal.
TEXTED_LATER = CARRIER_CHANNELS - {"cli"}

# Twilio's own opt-out and opt-in words; they count only as the whole message, as Twilio matches them.
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
# In line, these ask "leave the line?" rather than opting out: someone waiting who writes "cancel"
# most likely means the wait (STOP, STOPALL, UNSUBSCRIBE still opt out everywhere).
LEAVE_LINE_WORDS = frozenset({"cancel", "end", "quit", "cancelar", "salir", "terminar"})
# A question in line is always answered; only unprompted reassurances keep to REASSURE_EVERY.
QUESTION_STARTS = ("what", "when", "where", "who", "why", "how", "can ", "could", "is ", "are ", "do ", "does",
                   "will", "qué", "que ", "cuándo", "cuando", "dónde", "donde", "quién", "quien", "por qué",
                   "cómo", "como ", "puedo", "puede", "hay ", "cuánto", "cuanto")
START_WORDS = frozenset({"start", "unstop"})
DELETE_WORDS = frozenset({"delete", "borrar", "erase", "borra"})
# Only what the prompt names erases (YES / SÍ, or the delete word again): "1" or "ok" keeps everything.
CONFIRM_WORDS = frozenset({"yes", "si", "sí"}) | DELETE_WORDS
# "si borralo", "yes delete it all": that YES said with the words of erasing; any other word ("yes please
# keep it") keeps everything.
ERASING = CONFIRM_WORDS | {"borralo", "bórralo", "borrala", "bórrala", "borrenlo", "bórrenlo", "borren", "todo",
                           "it", "all", "everything", "please", "pls", "porfa", "por", "favor"}
# Command words only a Spanish reader writes: the answer comes in Spanish, whatever the conversation was in.
SPANISH_COMMANDS = frozenset({"ayuda", "información", "informacion"})
# A first message in Spanish gets Spanish straight away.
SPANISH_HINTS = frozenset(
    "hola buenas buenos buen dias días tardes noches necesito ayuda ayudame ayúdame quiero tengo estoy "
    "ola wenas oiga oye porfa porfis xfa holaa holi si sí "
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
    "stopped", "restarted", "confirm_delete", "erased", "not_erased", "still_in_line", "waiting_question",
    "welcome_back",
    "emergency", "emergency_self_harm", "waiting_reassure",
    "resources_none", "language_set", "text_more", "not_safe_now", "clarify", "emergency_followup",
    "emergency_waiting", "danger_check",
    # the resource list's words (flows.resources.RESOURCE_KEYS; resources.reply renders them)
    "resources_near", "resources_far", "resources_nothing", "resources_outside", "resources_national",
    "resources_stale", "resources_211", "resource_call", "resource_call_text", "resource_text",
    "resource_text_keyword", "resource_or", "resource_miles", "resource_mile",
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
    intent: str = ""  # what the message was read as, when the model was sure enough (for the counsellor)

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

    def is_youth(self, event=None) -> bool:
        """Of an age the National Runaway Safeline serves (12 to 21; younger children too, with help)."""
        age = self.conv.slots.get("age")
        return not isinstance(age, int) or age <= 21

    def has_consent(self, event=None) -> bool:
        return self.conv.consent is True

    def can_text_later(self, event=None) -> bool:
        return self.conv.channel in TEXTED_LATER

    def has_check_in(self, event=None) -> bool:
        return bool(self.conv.slots.get("check_in"))


class FlowEngine:
    """Walks one flow for any number of conversations."""

    def __init__(self, flow: Flow, catalog: Catalog, triage=None, resources=None, helpline_name="Help line",
                 intents: IntentModel | None = None, zone: ZoneInfo | None = None):
        self.flow, self.catalog, self.triage, self.resources = flow, catalog, triage, resources
        self.helpline_name = helpline_name
        self.intents = intents
        self.zone = zone or ZoneInfo(when.ZONE)  # where "tomorrow after 6" is read: HELPLINE_TIMEZONE
        # Answers the flow knows word for word ("1", "yes", "menu", "consejero"): the model has nothing to add.
        self._known = frozenset().union(*(o.words for st in flow.states.values() for o in st.options),
                                        *(g.words for g in flow.globals), STOP_WORDS, START_WORDS, DELETE_WORDS)
        self._triage_known = functools.lru_cache(maxsize=1024)(triage.assess) if triage is not None else None
        self._lock = threading.Lock()  # one conversation at a time walks the shared machine
        # The safety question (where a first message leads), and the states that ask it or lead to it.
        self._safety_state = flow.states[flow.initial].branches[0].to
        self._asks_safety = frozenset({self._safety_state, *(n for n, s in flow.states.items()
                                                             if s.branches and s.branches[0].to == self._safety_state)})
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
        reading = NOTHING if word in self._known else self.read(text)
        if conv.new:
            conv.created_at = now
        if conv.new or (conv.channel == "web" and conv.messages == 1):
            # The first thing they write (on the web, after the page opened in the language it was asked
            # in) is answered in its language, when it tells.
            conv.lang = first_language(reading, word) or conv.lang
        elif (reading.lang in ("en", "es") and reading.lang != conv.lang and reading.lang_confidence >= SWITCH_LANG
              and len(word.split()) >= SWITCH_WORDS):
            conv.lang = reading.lang  # they wrote a sentence in the other language: answer in it
        away = 0.0 if conv.new else now - conv.updated_at
        conv.updated_at = now
        conv.messages += 1
        clarify = conv.slots.pop("_clarify", None)  # "Did you mean…" holds for the very next message only

        carrier = conv.channel in CARRIER_CHANNELS
        in_line = conv.handoff == "waiting" and self.flow.states[conv.state].handoff
        # In line (waiting, or using the menu meanwhile) "cancel" asks about the line, not an opt-out.
        leaving = conv.handoff == "waiting" and word in LEAVE_LINE_WORDS and bool(self.flow.leave_line)
        if carrier and word in STOP_WORDS and not leaving:
            conv.opted_out = True
            self._say(step, conv, "stopped")
            step.effects.append(Effect("opt_out"))
            return step
        if carrier and word in START_WORDS:
            conv.opted_out = False
            if not conv.handoff:  # someone in line keeps their place
                conv.state = self.flow.initial
            self._say(step, conv, "restarted")
            step.effects.append(Effect("opt_in"))
            return step

        # Danger is heard first, even in the middle of a delete confirmation, and by either reader.
        danger, self_harm, raised = self._danger(step, conv, text, word, reading)
        if conv.opted_out and carrier:
            # Never a word after STOP (the carrier would block it), but the counsellors hear of danger.
            if danger:
                step.effects.append(Effect("emergency_alert"))
            return step
        confirming = conv.slots.pop("_confirm_delete", False)
        intent = self.decide(reading)
        if danger and intent == "not_safe_now":
            conv.slots["quiet"] = True  # "he's coming, don't text me": nobody texts them first
            if step.matched and all(m.startswith("intent:") for m in step.matched):
                # Only the model heard danger, and it heard "he's here" as much: the short discreet line
                # (which says 911) rather than a long message on a watched phone; the counsellors are alerted.
                self._say(step, conv, "not_safe_now")
                step.effects.append(Effect("emergency_alert"))
                return step
        if danger:
            return self._emergency(step, conv, text, self_harm=self_harm)
        if raised and conv.handoff == "waiting":
            step.effects.append(Effect("request_handoff", {"reason": "triage"}))

        if confirming and confirms_erasure(word):
            # Before "he is next to me": "si borra todo" also reads as that, and it is the YES asked for.
            self._say(step, conv, "erased")
            step.effects.append(Effect("erase"))
            return step
        if confirming and intent == "not_safe_now":
            pass  # "he is next to me" instead of an answer: nothing erased, the discreet line below
        elif confirming:
            self._say(step, conv, "not_erased")
            return step
        if word in DELETE_WORDS:
            conv.slots["_confirm_delete"] = True
            self._say(step, conv, "confirm_delete")
            return step

        step.intent = intent
        if intent == "not_safe_now":
            conv.slots["quiet"] = True  # nobody texts them first until they write again
        elif conv.slots.get("quiet"):
            # "ok", "👍" after "he is next to me": nothing that lights up the phone (but a question,
            # "is it ok now", is someone writing again: it is answered).
            if (word in ACKNOWLEDGEMENTS or intent == "thanks_bye" or not any(ch.isalnum() for ch in word)) \
                    and not asks(text, word):
                return step
            del conv.slots["quiet"]
        if leaving:
            self._fire_to(step, conv, self.flow.leave_line)  # "leave the line?": not an opt-out
            return step
        if conv.handoff == "active" or in_line:
            return self._in_handoff(step, conv, word, intent, reading, asked=asks(text, word))
        if away >= RETURN_AFTER and conv.state not in self._asks_safety:
            # Back after a day or more in the middle of something: things may have changed; the
            # safety question again before anything else.
            if self.flow.states[conv.state].say:  # a question to come back to (not "write anything")
                conv.slots["_back_to"] = conv.state
            conv.state, conv.misses = self._safety_state, 0
            self._say(step, conv, "welcome_back")
            return step
        # In line but using the menu meanwhile: the flow answers as ever, and their place is kept.
        return self._answer(step, conv, text, word, reading, intent, clarify)

    def language_of(self, text: str) -> str | None:
        """The language a message is written in, when it tells (for replies made without the store)."""
        text = clean(text)
        return first_language(self.read(text), normalize(text))

    def read(self, text: str) -> Reading:
        """The intent model's reading of a message (nothing, without a model)."""
        return self.intents.read(text) if self.intents is not None and text else NOTHING

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

    def is_emergency(self, text: str) -> bool:
        """Would this message be answered as an emergency, in whatever state (the rate limit asks)?"""
        text = clean(text)
        word = normalize(text)
        return self._assess(text, word, NOTHING if word in self._known else self.read(text))[0] == "emergency"

    def _assess(self, text: str, word: str, reading: Reading) -> tuple[str, tuple, bool]:
        """(level, matched, self_harm) of a message: triage's lexicon and the intent model together."""
        level, matched, self_harm, denied = "normal", (), False, False
        if self.triage is not None:
            # An answer the flow knows word for word ("1", "yes", "menu", "not safe") from a small cache:
            # the same few spellings come again and again. It holds only the flow's own option words as
            # typed (at most 1,024 spellings, in this process's memory), never a sentence of a texter's.
            found = (self._triage_known if word in self._known else self.triage.assess)(text)
            level, matched, self_harm, denied = found.level, tuple(found.matched), found.self_harm, found.denied
        if model_hears_danger(reading, denied):
            if level != "emergency":
                matched += ("intent:" + reading.intent,)
            level = "emergency"
            self_harm = self_harm or reading.intent == "danger_now.self_harm"
        elif reading.name == "disclosure" and reading.confidence >= CONFIDENT and level == "normal":
            level, matched = "high", matched + ("intent:disclosure",)
        return level, matched, self_harm

    def _danger(self, step: Step, conv: Conversation, text: str, word: str,
                reading: Reading) -> tuple[bool, bool, bool]:
        """Is this message an emergency (triage's lexicon or the intent model), about self-harm, and did
        it raise the conversation's risk?"""
        level, matched, self_harm = self._assess(text, word, reading)
        step.level, step.matched = level, matched
        raised = conv.raise_risk(level, matched)
        return level == "emergency", self_harm, raised

    def _emergency(self, step: Step, conv: Conversation, text: str, self_harm: bool) -> Step:
        self._say(step, conv, "emergency")
        if self_harm:
            self._say(step, conv, "emergency_self_harm")
            conv.slots["self_harm"] = True  # 988 again when they join the line (bot.engine)
        step.effects.append(Effect("emergency_alert"))
        state = self.flow.states[conv.state]
        if state.input == "text" and not conv.handoff:
            # A report of someone else in danger: 911 and the alert, and the report goes on being taken.
            self._take_input(state, conv, text, normalize(text))
            self._say(step, conv, "text_more")
            return step
        if conv.handoff:
            # Already queued or talking: move to the top, the counsellor sees why.
            step.effects.append(Effect("request_handoff", {"reason": "emergency"}))
            return step
        conv.misses = 0
        action = self.flow.action(state, "danger_now")
        if action is not None and action.answer is not None:
            opt = _pick(state, action.answer)
            if opt is not None:  # told 911 already, and asking again: the person they asked for
                return self._take_option(step, conv, state, opt)
        if action is not None and action.to:
            self._fire_to(step, conv, action.to)
        else:
            self._fire(step, conv, "emergency")
        return step

    def decide(self, reading: Reading) -> str:
        """The intent acted on: the model's, when it is sure enough; "" when it is not."""
        if reading.lang == "other" and reading.lang_confidence >= OTHER_LANG and reading.words >= 2:
            return "other_language"  # one word ("banana", "ok") is too little to tell a language by
        not_safe = reading.probability("not_safe_now")
        if not_safe >= NOT_SAFE or (reading.name == "not_safe_now" and not_safe >= NOT_SAFE_TOP):
            return "not_safe_now"  # "…but i can't talk now": safety first, the rest can wait
        return reading.intent if reading.confidence >= CONFIDENT else ""

    def _in_handoff(self, step: Step, conv: Conversation, word: str, intent: str, reading: Reading,
                    asked: bool = False) -> Step:
        """In line or with a counsellor: the counsellor answers; the bot answers only what cannot wait."""
        # HELP and a language switch are answered even in line or with a counsellor.
        command = self._command(word)
        if command is not None and not command.to:
            return self._global(step, conv, command, word)
        if intent == "not_safe_now":
            self._say(step, conv, "not_safe_now")  # and the counsellor sees "quiet": nothing is sent
            return step
        if conv.handoff == "waiting" and conv.risk != "emergency" and reading.probability("danger_now") >= GUESS:
            self._say(step, conv, "danger_check")
            return step
        if conv.handoff == "active":
            return step  # the counsellor answers; the bot is silent
        state = self.flow.states[conv.state]
        if command is not None or any(intent == i or intent.startswith(i + ".") for i in SERVED_IN_LINE):
            # The menu, resources, the runaway questions while they wait: their place in line is kept
            # (after danger, that line is the one that says 911 again).
            self._say(step, conv, "emergency_waiting" if conv.risk == "emergency" else "still_in_line")
            if command is not None and command.to == self.flow.resume:
                self._fire(step, conv, command.id)
            elif command is None:
                self._act(step, conv, state, intent, word)
            return step
        if intent.startswith("trust_question") or intent == "other_language":
            action = self.flow.action(self.flow.states[conv.state], intent)
            for key in action.say if action is not None else ():
                self._say(step, conv, key)
            if intent == "other_language":
                self._say(step, conv, "other_language")
        if conv.risk == "emergency":
            self._say(step, conv, "emergency_waiting")  # never silence after danger
            return step
        if step.replies:
            return step
        if asked:
            conv.reassured_at = conv.updated_at  # it says they are in line: the quiet minutes start again
            self._say(step, conv, "waiting_question")  # a question is always answered
            return step
        if conv.updated_at - conv.reassured_at >= REASSURE_EVERY:
            conv.reassured_at = conv.updated_at
            self._say(step, conv, "waiting_reassure")
        return step

    def _command(self, word: str):
        return next((g for g in self.flow.globals if word in g.words), None)

    def _global(self, step: Step, conv: Conversation, g, word: str = "") -> Step:
        if word in SPANISH_COMMANDS:
            conv.lang = "es"  # "ayuda" in an English conversation: they read Spanish
        if g.id in ("english", "spanish"):
            conv.lang = "es" if g.id == "spanish" else "en"
            self._say(step, conv, "language_set")
        elif g.say:
            self._say(step, conv, g.say)
        if g.to:
            conv.misses = 0
            self._fire(step, conv, g.id)
        elif conv.handoff != "active" and not (state := self.flow.states[conv.state]).handoff:
            if g.say and state.options and conv.state not in self._asks_safety and state.name != self.flow.fallback:
                # HELP is information, not an answer: asked again instead of answering, a person is offered.
                conv.misses += 1
                if conv.misses >= 2:
                    conv.misses = 0
                    self._fire(step, conv, "fallback")
                    return step
            self._ask_again(step, conv)  # the texter still needs the question they were on (in line too)
        return step

    def _ask_again(self, step: Step, conv: Conversation) -> None:
        state = self.flow.states[conv.state]
        if state.name == self.flow.emergency:
            self._say(step, conv, "emergency_followup")  # told 911 once: every answer says it again
        elif state.say and not state.next and state.name != self.flow.initial:
            self._say(step, conv, state.say)

    def _answer(self, step: Step, conv: Conversation, text: str, word: str, reading: Reading, intent: str,
                clarify: list[str] | None = None) -> Step:
        state = self.flow.states[conv.state]
        if clarify is not None and word in CLARIFY_ANSWERS:
            # "1" or "2" after "Did you mean…": the meaning they picked; "3": a person.
            choices = [*clarify, "want_person"]
            if CLARIFY_ANSWERS[word] < len(choices):
                return self._act(step, conv, state, choices[CLARIFY_ANSWERS[word]], word)
        # The state's own answers come first, then the commands that work everywhere; a
        # first message always gets the welcome, whatever it says.
        opt = _pick(state, word) if state.options else None
        if opt is not None and (word in opt.words or not self._heard(state, intent)):
            # "no puedo hablar ahorita" starts with "no", but says more: the whole message wins.
            return self._take_option(step, conv, state, opt)
        if state.name != self.flow.initial:
            command = self._command(word)
            if command is not None:
                return self._global(step, conv, command, word)
        # A time is read once: it answers before the model's reading does, and it is what is kept.
        said_when = self._read_when(conv, text) if state.input == "when" else None
        if state.input in ("zip", "age") or said_when:
            accepted = self._take_input(state, conv, text, word, said_when)
            if accepted:
                conv.misses = 0
                self._fire(step, conv, "answer")
                return step
        if intent == "danger_now":
            # Likely danger, not sure enough for an emergency: yes where the state takes it as one (told
            # 911 already, "please hurry"), else the plain question about their safety.
            action = self.flow.action(state, intent)
            opt = _pick(state, action.answer) if action is not None and action.answer and state.options else None
            if opt is not None:
                return self._take_option(step, conv, state, opt)
            return self._miss(step, conv, state, reading, word)
        if self._heard(state, intent):
            if state.input == "any":
                return self._first_contact(step, conv, state, intent, word)
            return self._act(step, conv, state, intent, word)
        if state.input in ("any", "text", "when"):
            accepted = self._take_input(state, conv, text, word, said_when)
            if accepted is not None:
                conv.misses = 0
                if accepted:
                    self._fire(step, conv, "answer")
                else:
                    self._say(step, conv, "text_more")
                return step
        if state.options:
            opt = _pick_fuzzy(state, word)  # "councelor", "refugoi"
            if opt is not None:
                return self._take_option(step, conv, state, opt)
        return self._miss(step, conv, state, reading, word)

    def _heard(self, state: State, intent: str) -> bool:
        """Does this state do something with a (confident) intent?"""
        return bool(intent) and self.flow.action(state, intent) is not None

    def _take_option(self, step: Step, conv: Conversation, state: State, opt) -> Step:
        conv.misses = 0
        conv.slots.update(opt.set)
        if opt.say:
            self._say(step, conv, opt.say)
        step.effects.extend(_effects(opt.effects))
        self._fire(step, conv, f"{state.name}.{opt.label}")
        return step

    def _act(self, step: Step, conv: Conversation, state: State, intent: str, word: str) -> Step:
        """Carry out what `intent` does in this state (flows/helpline.yaml `intents`)."""
        action = self.flow.action(state, intent)
        if action is None:
            return self._miss(step, conv, state, NOTHING, word)
        if action.answer is not None:
            opt = _pick(state, action.answer) if state.options else None
            if opt is None:  # "yes" with nothing to say yes to here
                return self._miss(step, conv, state, NOTHING, word)
            return self._take_option(step, conv, state, opt)
        conv.misses = 0
        self._do(step, conv, action)
        if action.to:
            asked = len(step.replies)
            self._fire_to(step, conv, action.to)
            told = stated_age(word) if self.flow.states[conv.state].input == "age" else None
            if told is not None:
                # "i ran away, im 15": the age question it leads to is answered already.
                conv.slots[self.flow.states[conv.state].slot] = told
                del step.replies[asked:]
                self._fire(step, conv, "answer")
        elif not action.say or intent.startswith("trust_question"):
            self._ask_again(step, conv)
        return step

    def _do(self, step: Step, conv: Conversation, action: IntentAction) -> None:
        conv.slots.update(action.set)
        for key in action.say:
            self._say(step, conv, key)
        step.effects.extend(_effects(action.effects))

    def _first_contact(self, step: Step, conv: Conversation, state: State, intent: str, word: str) -> Step:
        """A first message (or the first after a pause) with a meaning: the safety check comes first."""
        action = self.flow.action(state, intent)
        if action.remember:
            conv.slots["_resume"] = intent
        elif action.to or action.answer is not None:
            return self._act(step, conv, state, intent, word)
        else:
            self._do(step, conv, action)  # e.g. "who is this?": answered, then the welcome
        conv.misses = 0
        self._fire(step, conv, "answer")
        return step

    def _miss(self, step: Step, conv: Conversation, state: State, reading: Reading, word: str) -> Step:
        if conv.risk == "emergency":
            self._say(step, conv, "emergency_followup")  # never "did not understand" after danger
            return step
        conv.misses += 1
        if conv.misses >= 2 and state.name != self.flow.fallback:
            conv.misses = 0
            self._fire(step, conv, "fallback")
            return step
        if reading.probability("danger_now") >= GUESS:
            # Perhaps danger, perhaps not: ask plainly, with 911 and 988, and a person on "1".
            conv.slots["_clarify"] = []
            self._say(step, conv, "danger_check")
            return step
        # A question that wants a ZIP code, an age or a report is simply asked again: guesses at what
        # else the texter meant would only get in the way of the answer it needs.
        guess = state.name != self.flow.fallback and not state.input
        meanings = self._meanings(state, reading) if guess else []
        if meanings:
            conv.slots["_clarify"] = meanings
            first, second = (self.meaning(conv.lang, m) for m in meanings)
            step.keys.append("clarify")
            step.replies.append(self._render(conv, "clarify", {"first": first, "second": second}))
            return step
        if guess and reading.words >= LONG_UNREAD:
            # Someone who wrote a lot in words the model cannot place (little schooling, another
            # language's Spanish): a person reads it better than the menu again.
            conv.misses = 0
            self._fire(step, conv, "fallback")
            return step
        # Nothing to read ("???", "🙏"): the question again, never "Sorry, I did not understand".
        self._ask_again(step, conv)
        return step

    def _meanings(self, state: State, reading: Reading) -> list[str]:
        """The two likeliest meanings the texter can pick from here (a person is always the third); none
        when the message says too little to guess from (then the state's question is asked again)."""
        if reading.intent == "unclear" or reading.confidence < GUESS:
            return []
        out, shown = [], set()
        for label, p in reading.ranked:
            if p < MEANING:
                break
            if label.split(".", 1)[0] in NOT_OFFERED or self.flow.action(state, label) is None:
                continue
            key = self._meaning_key(label)
            if key is None or key in shown:
                continue
            out.append(label)
            shown.add(key)
            if len(out) == 2:
                return out
        return []

    def _meaning_key(self, label: str) -> str | None:
        for key in (f"meaning_{label}", f"meaning_{label.split('.', 1)[0]}"):
            if self.catalog.has("en", key):
                return key
        return None

    def meaning(self, lang: str, label: str) -> str:
        """How a meaning is offered in "Did you mean…" (and on the web chat's buttons)."""
        # A label with no words of its own (kept in a conversation since an older model) reads as help near you.
        return self.catalog.render(lang, self._meaning_key(label) or "meaning_find_help")

    def _take_input(self, state: State, conv: Conversation, text: str, word: str,
                    said_when: dict | None = None) -> bool | None:
        """Store a free answer. True: move on; False: kept, stay; None: not understood.
        `said_when`: for a "when" state, the window _read_when found in `text` (None: no time read)."""
        kind = state.input
        if kind == "any":
            return True
        if kind == "zip":
            from .resources import resolve_place

            found = resolve_place(word)  # a ZIP ("93305") or a town ("arvin", "Délano" -> "Delano")
            if found is None:
                return None
            conv.slots[state.slot] = found
            return True
        if kind == "age":
            from .numbers import number_in
            from .resources import ascii_digits

            # The first number ("I am 16, born 2008"); other scripts' digits ("١٦") read as ASCII, and "¹⁶" as 16 (NFKC).
            found = re.search(r"[0-9]+", ascii_digits(word))
            age = int(found.group()) if found else number_in(word, conv.lang)  # "fifteen", "tengo quince"
            if age not in AGES:
                return None
            conv.slots[state.slot] = age
            return True
        if kind == "when":
            # A time read is their consent to that one text; asked once more, then the flow goes on without.
            if said_when is None:
                if conv.misses == 0:
                    return None
                conv.slots.pop(state.slot, None)  # an earlier check-in's window is not this answer
                return True
            conv.slots[state.slot] = said_when
            conv.slots["consent"] = True  # bot.followups texts only with consent (and never after STOP)
            # "only between 1 and 2 when he's at work" is also heard as "not safe now": the time they name
            # is when it is safe, and the check-in said back must be the one scheduled.
            conv.slots.pop("quiet", None)
            return True
        if kind == "text":
            if word in state.until:
                return True if conv.slots.get(state.slot) else None  # DONE before anything: ask again
            parts = conv.slots.setdefault(state.slot, [])
            if len(parts) < 20:
                parts.append(text)
            return False
        return None

    def _read_when(self, conv: Conversation, text: str) -> dict | None:
        """The window a safe time in `text` asks for, as the check_in slot keeps it (None: no time read)."""
        found = when.read(text, datetime.fromtimestamp(conv.updated_at, self.zone))
        return found.as_slot() if found is not None else None

    def _fire_to(self, step: Step, conv: Conversation, target: str) -> None:
        self._fire(step, conv, "to_" + target)

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
        if conv.state == self.flow.resume and "_back_to" in conv.slots:
            # Safe again after a day away: back to the question they were on, instead of the menu.
            back = self.flow.states.get(conv.slots.pop("_back_to"))
            if back is not None:
                conv.state = back.name
                if back.say:
                    self._say(step, conv, back.say)
        elif conv.state == self.flow.resume and "_resume" in conv.slots:
            # Safe to talk now: what their first message asked for, instead of the menu (_enter kept quiet).
            self._act(step, conv, self.flow.states[conv.state], conv.slots.pop("_resume"), "")

    def _enter(self, model: Model, state: State) -> None:
        conv, step = model.conv, model.step
        if state.say and not (state.name == self.flow.resume and ("_resume" in conv.slots or "_back_to" in conv.slots)):
            self._say(step, conv, state.say)
        step.effects.extend(_effects(state.effects, conv.slots))
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
        wanted = self.catalog.placeholders(lang, key) if self.catalog.has(lang, key) else frozenset()
        values = dict(values)
        values.setdefault("name", self.helpline_name)
        if "resources" in wanted:
            values["resources"] = self._resources(conv, lang)
        if "summary" in wanted:
            values["summary"] = screening_summary(conv)
        if "when" in wanted and conv.slots.get("check_in"):
            values["when"] = when.describe(conv.slots["check_in"], conv.updated_at, self.zone,
                                           lambda key, **v: self.catalog.render(lang, key, **v))
        for name in wanted - values.keys():
            values[name] = conv.slots.get(name, "")
        return self.catalog.render(lang, key, **values)

    def _resources(self, conv: Conversation, lang: str) -> str:
        if self.resources is None:
            return self.catalog.render(lang, "resources_none")
        # Where, what, and for whom (the age slot, when the flow asked): flows.resources.reply decides the list.
        return self.resources.reply(conv.slots.get("zip"), conv.slots.get("category", "shelter"), lang,
                                    lambda key, **values: self.catalog.render(lang, key, **values),
                                    age=conv.slots.get("age"))


def _effects(raw: list[dict], slots: dict | None = None) -> list[Effect]:
    """A flow's effect entries ({name, params…}) as Effects; a value "$slot" is that slot's value."""
    def value(v):
        return slots.get(v[1:]) if slots is not None and isinstance(v, str) and v.startswith("$") else v

    return [Effect(e["name"], {k: value(v) for k, v in e.items() if k != "name"}) for e in raw]


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
    # Intents lead to states from anywhere (flow.action decides which applies where).
    targets = {a.to for a in flow.intents.values() if a.to}
    targets |= {a.to for st in flow.states.values() for a in st.intents.values() if a is not None and a.to}
    targets |= {flow.leave_line} - {""}
    out += [{"trigger": f"to_{t}", "source": "*", "dest": t} for t in sorted(targets)]
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


AGES = range(5, 121)  # what an answer to "how old are you?" can be
# An age said in passing, with the words that make it one ("im 15", "15 years old", "tengo 15 años"):
# a bare number in a sentence ("left 2 days ago") is not one.
_STATED_AGE = re.compile(r"\b(?:i am|im|i'm|age|aged|tengo)\s+([0-9]{1,2})\b(?!\s*(?:mi|min|hour|hr|day|dia|día|week|"
                         r"semana|block|cuadra|km|kilo|dollar|dolar|dólar|peso|buck|\$|minuto|hora|mes|month))"
                         r"|\b([0-9]{1,2})\s*(?:years? old|yrs? old|yo|y/o|años|anos)\b")


def confirms_erasure(word: str) -> bool:
    said = re.split(r"[\s,.!]+", word)
    return said[0] in CONFIRM_WORDS and set(said) <= ERASING


def stated_age(word: str) -> int | None:
    found = _STATED_AGE.search(word)
    age = int(found.group(1) or found.group(2)) if found else None
    return age if age in AGES else None


def asks(text: str, word: str) -> bool:
    """Is this message a question ("hello?", "¿cuánto falta", "when will someone answer")?"""
    return "?" in text or "¿" in text or word.startswith(QUESTION_STARTS)


def model_hears_danger(reading: Reading, denied: bool) -> bool:
    """Does the intent model's reading make a message an emergency? Not when the triage lexicon saw the
    danger words negated ("i don't want to die"): the model does not read negation."""
    return reading.probability("danger_now") >= DANGER and not denied


def first_language(reading: Reading, word: str) -> str | None:
    """The language a first message is written in (the model's language head; the word lists when the
    model is unsure), or None when it does not tell ("1", "ok", "👍")."""
    if reading.lang in ("en", "es") and reading.lang_confidence >= 0.75 and reading.words >= 2:
        return reading.lang  # one word ("no", "delete") is too little to tell a language by
    tokens = set(word.replace(",", " ").replace("¿", " ").replace("¡", " ").split())
    spanish, english = len(tokens & SPANISH_HINTS), len(tokens & ENGLISH_HINTS)
    if spanish != english:
        return "es" if spanish > english else "en"
    return "es" if reading.lang == "es" and reading.words >= 2 else None


NUMBERS = frozenset(str(n) for n in range(10)) | {f"{n}\ufe0f\u20e3" for n in range(10)} | frozenset(
    word for words in NUMBER_WORDS.values() for word in words)
CLARIFY_ANSWERS = {"1": 0, "2": 1, "3": 2, "1️⃣": 0, "2️⃣": 1, "3️⃣": 2, "one": 0, "two": 1, "three": 2,
                   "uno": 0, "dos": 1, "tres": 2}


def _pick_fuzzy(state: State, word: str):
    """An option word written with a typo ("councelor", "find hlep"): one close match or nothing."""
    if not 4 <= len(word) <= 24:
        return None
    choices = {w: opt for opt in state.options for w in opt.words if len(w) >= 4 and not w.isdigit()}
    found = process.extract(word, list(choices), scorer=fuzz.ratio, score_cutoff=80, limit=2)
    options = {id(choices[w]) for w, _, _ in found}
    return choices[found[0][0]] if len(options) == 1 else None


def _pick(state: State, word: str):
    for opt in state.options:
        if word in opt.words:
            return opt
    # "1 yes", "2." or "1)" count as the number's answer, "no, i have my papers" as "no": a first word set
    # apart by punctuation or a number alone. "2 guys are holding my cousin" and "no se" do not.
    head, _, rest = word.partition(" ")
    first = head.strip(".):-,")
    if first and (head != first or (rest and first in NUMBERS and len(word.split()) <= 2)):
        for opt in state.options:
            if first in opt.words:
                return opt
    return None
