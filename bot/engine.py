"""One inbound message, from any channel, end to end: dedupe, lock, load, flow, save, effects."""
from __future__ import annotations

import functools
import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field

from flows.conversation import RISK_ORDER, Conversation
from flows.engine import MAX_TEXT, FlowEngine, Step

from . import blocking, events
from .errors import ConversationGone, HelplineError, Throttled
from .ratelimit import SenderLimit, allow
from .store import ConversationStore, entry
from .waiting import WaitingQueue


@dataclass(frozen=True)
class Inbound:
    """A texter's message as every channel hands it over."""

    channel: str  # "sms", "whatsapp", "web", "cli"
    address: str  # phone number, whatsapp:+1…, or a web session token; never logged
    text: str
    message_id: str | None = None  # the channel's id; a repeat gets the first answer again
    media: int = 0

    def __post_init__(self):
        # The one edge every channel passes: what is stored and read is valid, normalised, bounded text.
        object.__setattr__(self, "text", valid_text(self.text))


# Control characters (C0 but line breaks and tabs, DEL, C1) and lone surrogates: nothing a person
# writes, and a surrogate would make the stored transcript unreadable.
_UNWRITTEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def valid_text(text: str | None) -> str:
    """Unicode scalar values without control characters, NFC, at most Twilio's 1600 characters."""
    text = _UNWRITTEN.sub("", text or "")
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text[:MAX_TEXT]


@dataclass
class Outcome:
    """What to answer on the channel."""

    conv_id: str
    replies: list[str] = field(default_factory=list)
    duplicate: bool = False
    level: str = "normal"

    @property
    def text(self) -> str:
        return "\n\n".join(self.replies)


# The flow's effects that write outside the conversation (the rest change it: see _prepare).
_STORE_EFFECTS = frozenset({"request_handoff", "record_tip", "emergency_alert", "erase", "opt_out", "opt_in",
                            "leave_queue", "block_notice", "prefer_counsellor", "schedule_check_in"})


log = logging.getLogger(__name__)
KEPT_PAST_CAP = 160  # characters of each message kept once a conversation has passed its cap


class Helpline:
    """The channel-agnostic engine every channel calls."""

    def __init__(self, store: ConversationStore, flows: FlowEngine, waiting: WaitingQueue, queue=None,
                 clock=time.time, stats=None, staffing=None, transcript_max_chars: int = 200_000, erase_also=None):
        self.store, self.flows, self.waiting, self.queue, self.clock = store, flows, waiting, queue, clock
        # Past this many characters of a texter's own words, each new message keeps only its start:
        # a script cannot grow one conversation without bound, and a person's words still show.
        self.transcript_max_chars = transcript_max_chars
        # erase_also(pipe, conv_id): what other owners keep of a conversation (bot.erasure), erased with it.
        self.erase_also = erase_also
        self.staffing = staffing  # bot.hours.Staffing: the wait a newly queued texter is told
        self.stats = stats  # bot.metrics.Stats: counters written in the same transaction as the message
        from . import followups  # here, not above: it reads the app's extensions, which build this engine

        self.followups = followups  # an answer to a check-in re-opens the conversation

    def conversation_id(self, channel: str, address: str) -> str:
        return self.store.vault.conversation_id(channel, address)

    def handle(self, inbound: Inbound, limit: SenderLimit | None = None, create: bool = True) -> Outcome:
        """Apply one message; a message id seen before gets the same replies and changes nothing.

        With `limit`, a sender past it gets Throttled instead (a retry of an answered message still
        gets its answer, and an emergency is still handled within its own allowance). Without
        `create`, a message for a conversation that does not exist raises ConversationGone.
        """
        cid = self.conversation_id(inbound.channel, inbound.address)
        # A block is read in the same round trip as the conversation: a message costs no more for it.
        blocked_as = blocking.digest_of(self.store.vault, cid)
        session = self.store.begin(cid, inbound.message_id, count=limit.counter() if limit else None,
                                   read=blocking.key(blocked_as))
        if session.previous is not None:
            self.store.release(session)
            return Outcome(cid, list(session.previous.get("replies", [])), duplicate=True,
                           level=session.previous.get("level", "normal"))
        if limit and session.count > limit.limit and not self._allowed_past_limit(inbound, limit, session.conv):
            self.store.release(session)
            raise Throttled("sender past the rate limit")
        if session.conv is None and not create:
            self.store.release(session)
            raise ConversationGone("no such conversation")
        try:
            now = self.clock()
            conv = session.conv or Conversation(id=cid, channel=inbound.channel, address=inbound.address)
            before = (conv.new, conv.state, conv.handoff, conv.risk)
            block = blocking.opened(self.store.vault, blocked_as, session.read, now)
            if block is None:
                step = self.flows.step(conv, inbound.text, now)
                self.followups.reopen(self.flows, conv, step)
            else:
                conv, step = blocking.answer(self.flows, self.store.vault, conv, inbound.text, now, block)
            # Before the transcript entries: it may add a reply (the wait), which the transcript must hold.
            self._prepare(conv, step, now, handoff_before=before[2])
            # The counsellor sees what the bot read the message as ("not_safe_now" above all).
            extra = {"intent": step.intent} if step.intent else {}
            session.entries.append(entry("texter", self._kept(conv, inbound.text), now, media=inbound.media,
                                         level=step.level, **extra))
            session.entries += [entry("bot", reply, now) for reply in step.replies]
            outcome = Outcome(cid, step.replies, level=step.level)
            erase = step.effect("erase") is not None
            self.store.commit(
                session,
                None if erase else conv,
                outcome={"replies": step.replies, "level": step.level},
                message_id=inbound.message_id,
                also=self._carry_out(conv, step, now, before),
                events=[] if erase else events.messages("message", cid),
                counters=() if self.stats is None else self.stats.message(
                    inbound.channel, before, conv, step, now, handoff_priority(conv, conv.slots.get("reason"))),
            )
        except BaseException:
            self.store.release(session)
            raise
        return outcome

    def _allowed_past_limit(self, inbound: Inbound, limit: SenderLimit, conv: Conversation | None) -> bool:
        """An emergency is handled past the limit, within an allowance of its own; and so is what a
        texter in danger writes next ("1" to reach a counsellor, where they are), within a second
        allowance as large as the ordinary one, so that the emergency is followed through."""
        redis = self.store.redis
        if self.flows.is_emergency(inbound.text) and allow(redis, "sms-emergency", limit.key,
                                                           limit.emergency_limit, limit.window):
            return True
        return conv is not None and conv.risk == "emergency" and allow(redis, "sms-danger", limit.key,
                                                                       limit.limit, limit.window)

    def _kept(self, conv: Conversation, text: str) -> str:
        """What the transcript keeps of a message: all of it, until the conversation's cap."""
        if conv.stored_chars >= self.transcript_max_chars and len(text) > KEPT_PAST_CAP:
            text = text[:KEPT_PAST_CAP] + " […]"
        conv.stored_chars += len(text)
        return text

    # -- effects ------------------------------------------------------------------

    def _prepare(self, conv: Conversation, step: Step, now: float, handoff_before: str | None = None) -> None:
        """Effects that change the conversation itself, before it is saved."""
        for effect in step.effects:
            if effect.name == "request_handoff":
                conv.slots.setdefault("queued_at", now)
                conv.slots["reason"] = effect.params.get("reason", conv.slots.get("reason", "counsellor"))
                if conv.handoff is None:
                    conv.handoff = "waiting"
                if handoff_before is None and self.staffing is not None:
                    # Just joined the queue: tell them the wait, or when counsellors are back.
                    step.replies.append(self.staffing.announce(
                        functools.partial(self.flows.say, conv),
                        handoff_priority(conv, conv.slots["reason"]), conv.slots["queued_at"], now))
                    if conv.slots.get("self_harm"):
                        # The 24/7 line in that answer is the trafficking line; 988 is the one for them.
                        step.replies.append(self.flows.say(conv, "emergency_self_harm"))
            elif effect.name == "record_tip":
                conv.slots["kind"] = "tip"
                conv.slots.setdefault("queued_at", now)
            elif effect.name == "leave_queue" and conv.handoff == "waiting":
                conv.handoff = None
                for slot in ("queued_at", "reason"):
                    conv.slots.pop(slot, None)

    def _carry_out(self, conv: Conversation, step: Step, now: float, before: tuple):
        """Effects on the rest of the store and the workers, as `also(pipe)` for the save's
        transaction; None when there are none (most messages), which saves in one command."""
        effects = [e for e in step.effects if e.name in _STORE_EFFECTS]
        queued = self.stats is not None and handed_off(before, conv, step)  # its wait is measured from now
        if not effects and not queued:
            return None
        cid = conv.id

        def carry_out(pipe) -> None:
            if queued:
                self.stats.queued(pipe, cid, conv.slots.get("queued_at", now))
            for effect in effects:
                if effect.name in ("request_handoff", "record_tip"):
                    priority = handoff_priority(conv, effect.params.get("reason"))
                    if conv.handoff != "active":
                        self.waiting.add(pipe, cid, priority, conv.slots["queued_at"])
                    events.publish(pipe, "queued", cid, priority=priority)
                    self._enqueue(pipe, "workers.alerts.notify_counsellors", cid)
                elif effect.name == "emergency_alert":
                    self._enqueue(pipe, "workers.alerts.emergency_alert", cid)
                elif effect.name == "erase":
                    self._erase(pipe, cid)
                elif effect.name == "leave_queue":
                    self.waiting.remove(pipe, cid)
                    events.publish(pipe, "left", cid)
                elif effect.name == "block_notice":
                    blocking.noted(pipe, **effect.params)
                elif effect.name == "prefer_counsellor":
                    self.followups.prefer(pipe, cid, effect.params["name"])
                elif effect.name == "schedule_check_in":
                    self._check_in(pipe, conv, effect.params["window"])
                else:  # opt_out, opt_in
                    events.publish(pipe, effect.name, cid)

        return carry_out

    def _check_in(self, pipe, conv: Conversation, window: dict) -> None:
        """The check-in the texter asked for, at the time they said (flows/when.py read it; their answer is
        their consent to that one text). Refused checks write nothing: the message is still saved."""
        try:
            self.followups.schedule(conv.id, window["start"], window["end"], "check_in", by=self.followups.TEXTER,
                                    chosen_quiet=window["night"], pipe=pipe, conv=conv)
        except HelplineError as exc:  # NoConsent, RecipientOptedOut, or a window FollowUpError refuses
            log.warning("check-in not scheduled: %s", exc)

    def erase(self, conv_id: str) -> None:
        """Forget a conversation now, as a confirmed DELETE does (the web chat's quick exit)."""
        session = self.store.begin(conv_id)
        try:
            self.store.commit(session, None, also=lambda pipe: self._erase(pipe, conv_id))
        except BaseException:
            self.store.release(session)
            raise

    def _erase(self, pipe, conv_id: str) -> None:
        self.waiting.remove(pipe, conv_id)
        self.store.erase(pipe, conv_id)
        if self.erase_also is not None:
            self.erase_also(pipe, conv_id)
        events.publish(pipe, "erased", conv_id)

    def _enqueue(self, pipe, func: str, *ids: str) -> None:
        # Jobs carry ids only; the worker reads the rest from the store.
        if self.queue is not None:
            self.queue.enqueue_call(func, args=ids, pipeline=pipe, result_ttl=0, failure_ttl=7 * 86400)


def handed_off(before: tuple, conv, step) -> bool:
    """Did this message hand the conversation to the counsellors (a new handoff, or a tip)?"""
    return (before[2] is None and conv.handoff == "waiting") or step.effect("record_tip") is not None


def handoff_priority(conv: Conversation, reason: str | None = None) -> str:
    """Emergency beats high beats normal: the highest of triage, the flow's floor and the reason."""
    levels = [conv.risk, conv.slots.get("priority_floor", "normal")]
    if reason == "emergency":
        levels.append("emergency")
    return max(levels, key=RISK_ORDER.index)
