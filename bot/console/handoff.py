"""What counsellors do to a conversation: claim, release, transfer, note, reply, end.

Each change is made under the conversation's lock and written in one transaction with the
queue, the index of active conversations, the live event and the audit entry.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app

from flows.conversation import Conversation

from .. import audit, blocking, events, followups
from ..delivery import status_key
from ..engine import handoff_priority
from ..errors import HelplineError, NoConsent, RecipientOptedOut
from ..extensions import flow_engine, get_redis, get_store, get_waiting
from ..outbound import check_may_text, missing_settings, outbound_key, queue_reply, requeue
from ..outbound import load as load_outbound
from ..store import entry
from . import accounts, capacity, wrapup
from .accounts import Counsellor
from .present import CHANNELS, Failure, failure

ACTIVE = "console:active"  # conversation id -> the counsellor holding it
MAX_TEXT = 1600  # one SMS body at most


class HandoffError(HelplineError):
    """A counsellor asked for something the conversation's state does not allow."""


class AlreadyTaken(HandoffError):
    """Someone else claimed the conversation first."""

    def __init__(self, holder: str | None):
        super().__init__(f"already taken by {holder or 'another counselor'}")
        self.holder = holder


class Blocked(HandoffError):
    """A supervisor blocked this sender: nobody takes their conversation."""


class LeftTheLine(HandoffError):
    """The texter left the line (or their conversation ended) after the claim took its place in it."""


class NotHolder(HandoffError):
    """Only the counsellor holding a conversation (or a supervisor) may do that."""


class Gone(HandoffError):
    """The conversation no longer exists (the texter erased it, or it expired)."""


class CannotSend(HandoffError):
    """Nothing can go to this texter now, or this reply is already on its way again."""


@dataclass(frozen=True)
class Delivery:
    """Where a reply is, as the console shows it beside the message."""

    status: str  # queued, sending, sent, delivered or failed
    recorded: str  # the reply's own record's status: "sent" for a message the carrier then could not deliver
    failure: Failure | None = None


@dataclass
class Row:
    """One line of the queue or the supervisor's overview."""

    conv: Conversation
    priority: str
    waited: float  # seconds since the texter asked for a person
    holder: str | None = None


# -- reading -----------------------------------------------------------------------


def waiting_rows(limit: int) -> list[Row]:
    """The most urgent waiting conversations, oldest first within a priority."""
    waiting = get_waiting()
    listed = waiting.waiting(limit)
    convs = get_store().load_many([cid for cid, _, _ in listed])
    now, rows, stale = time.time(), [], []
    for (cid, priority, since), conv in zip(listed, convs):
        if conv is None:
            stale.append(cid)  # expired under retention while it waited
            continue
        rows.append(Row(conv, priority, now - since))
    if stale:
        pipe = get_redis().pipeline(transaction=True)
        for cid in stale:
            waiting.remove(pipe, cid)
        pipe.execute()
    return rows


def active_rows(holder: str | None = None) -> list[Row]:
    """Conversations a counsellor holds (one counsellor's, or everyone's for supervisors)."""
    client = get_redis()
    held = {k.decode(): v.decode() for k, v in client.hgetall(ACTIVE).items()}
    ids = [cid for cid, name in held.items() if holder is None or name == holder]
    now, rows, stale = time.time(), [], []
    for cid, conv in zip(ids, get_store().load_many(ids)):
        if conv is None or conv.handoff != "active":
            stale.append(cid)
            continue
        since = float(conv.slots.get("queued_at") or conv.created_at)
        rows.append(Row(conv, handoff_priority(conv, conv.slots.get("reason")), now - since, conv.counsellor))
    if stale:
        client.hdel(ACTIVE, *stale)
    rows.sort(key=lambda r: r.waited, reverse=True)
    return rows


def can_view(counsellor: Counsellor, conv: Conversation) -> bool:
    """Supervisors see everything; counsellors see what waits and what they hold. A tip waits in the
    queue without a handoff of its own (the tipster may not want to talk): it waits all the same."""
    return (counsellor.supervisor or conv.handoff == "waiting" or conv.counsellor == counsellor.name
            or (conv.handoff is None and conv.slots.get("kind") == "tip"
                and get_waiting().position(conv.id) is not None))


def holds(counsellor: Counsellor, conv: Conversation) -> bool:
    return conv.handoff == "active" and (conv.counsellor == counsellor.name or counsellor.supervisor)


def may_text(conv: Conversation) -> tuple[bool, str]:
    """May a counsellor write to this texter now? (yes/no, and why not, in the console's words)."""
    try:
        check_may_text(conv)
    except RecipientOptedOut:
        return False, "The texter sent STOP. Nothing can be sent until they text START."
    except NoConsent:
        return False, "The texter has not agreed to be texted at this number."
    if missing_settings(conv.channel):
        return False, _not_set_up(conv) + "."
    return True, ""


def _not_set_up(conv: Conversation) -> str:
    return (f"Replies by {CHANNELS.get(conv.channel, conv.channel)} cannot be sent: texting is not set up on this "
            f"help line. An operator must set {' and '.join(missing_settings(conv.channel))}, then restart it")


def delivery(transcript: list[dict]) -> dict[str, Delivery]:
    """outbound id -> where each reply shown is (and why, when it did not reach the texter)."""
    return deliveries([item["outbound"] for item in transcript if item.get("outbound")])


def deliveries(ids: list[str]) -> dict[str, Delivery]:
    if not ids:
        return {}
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    for outbound_id in ids:
        pipe.hmget(outbound_key(outbound_id), "status", "error", "sids")
    records = {i: (status.decode(), (error or b"").decode(), sids)
               for i, (status, error, sids) in zip(ids, pipe.execute()) if status}
    # Twilio accepting a message is not the phone receiving it: its status callbacks say what became of each part.
    parts = {i: json.loads(sids or "[]") for i, (status, _, sids) in records.items() if status == "sent"}
    for sid in (sid for sids in parts.values() for sid in sids):
        pipe.hmget(status_key(sid), "status", "error")
    reported = dict(zip((sid for sids in parts.values() for sid in sids), pipe.execute()))
    found = {}
    for i, (status, error, _) in records.items():
        heard = [reported[sid] for sid in parts.get(i, ())]
        lost = next((h for h in heard if h[0] in (b"undelivered", b"failed")), None)
        if lost is not None:
            # No code in the callback: Twilio's own "unknown error" reads the same to a counsellor.
            found[i] = Delivery("failed", status, failure((lost[1] or b"").decode() or "30008"))
        elif heard and all(h[0] in (b"delivered", b"read") for h in heard):
            found[i] = Delivery("delivered", status)
        else:
            found[i] = Delivery(status, status, failure(error) if status == "failed" else None)
    return found


# -- changing ----------------------------------------------------------------------


@contextmanager
def _changing(conv_id: str):
    """Lock and load; yield (conversation, effects); save with every effect(pipe) in one transaction."""
    store = get_store()
    session = store.begin(conv_id)
    effects: list = []
    try:
        if session.conv is None:
            raise Gone("this conversation no longer exists")
        yield session.conv, effects
    except BaseException:
        store.release(session)
        raise
    store.commit(session, session.conv, also=lambda pipe: [effect(pipe) for effect in effects])


def claim(counsellor: Counsellor, conv_id: str | None = None) -> Conversation:
    """Take a waiting conversation, or with no id the most urgent, longest waiting one ("help the next
    texter"); of counsellors claiming at once each gets a different one. capacity.Refused at the
    counsellor's limit or on a break; capacity.NobodyWaiting when no id is given and nobody waits."""
    client = get_redis()
    # Off the queue and into ACTIVE (so a loser can say who won) in one step with the capacity check.
    conv_id, holder = capacity.take(client, ACTIVE, counsellor, conv_id)
    if conv_id is None:
        raise AlreadyTaken(holder or None)
    try:
        with _changing(conv_id) as (conv, effects):
            # A block made between taking the queue's entry and this lock: the sender is no one's now.
            if blocking.of_conversation(client, get_store().vault, conv_id, time.time()) is not None:
                raise Blocked("this sender was blocked: a blocked sender is never taken")
            # Another counsellor's claim got here first: the texter was queued again (they left and asked
            # again, or wrote something urgent) while that claim waited for this lock, and this claim took
            # the new entry.
            if conv.handoff == "active":
                raise AlreadyTaken(conv.counsellor)
            # Left the line (or ended) between taking the queue's entry and this lock: leaving, and
            # an end, drop queued_at, which asking for a person and a tip always set.
            if conv.handoff != "waiting" and "queued_at" not in conv.slots:
                raise LeftTheLine("the texter left the line")
            conv.handoff, conv.counsellor = "active", counsellor.name
            priority = handoff_priority(conv, conv.slots.get("reason"))
            effects += [
                # A texter's message between the claim and the lock may have queued it again.
                lambda pipe: get_waiting().remove(pipe, conv_id),
                lambda pipe: events.publish(pipe, "claimed", conv_id, by=counsellor.name),
                # The priority: the supervisors' overview counts each counsellor's emergencies this shift.
                lambda pipe: audit.record(pipe, counsellor.name, "claim", conv_id, detail=priority),
            ]
    except Gone:
        client.hdel(ACTIVE, conv_id)
        raise
    except AlreadyTaken as exc:
        client.hset(ACTIVE, conv_id, exc.holder)  # this claim's take wrote its own name over the holder's
        raise
    except HelplineError:
        # Busy or unreachable store: the texter must not drop out of the queue because of it.
        client.hdel(ACTIVE, conv_id)
        left = get_store().load(conv_id)
        if left is not None and left.handoff == "waiting":
            get_waiting().add(client, conv_id, handoff_priority(left, left.slots.get("reason")),
                              float(left.slots.get("queued_at") or left.created_at))
        raise
    return conv


def release(counsellor: Counsellor, conv_id: str) -> None:
    """Put a conversation back in the queue at its original priority and arrival time."""
    with _changing(conv_id) as (conv, effects):
        _check_holder(counsellor, conv)
        conv.handoff, conv.counsellor = "waiting", None
        priority = handoff_priority(conv, conv.slots.get("reason"))
        since = float(conv.slots.setdefault("queued_at", conv.created_at))
        effects += [
            lambda pipe: get_waiting().add(pipe, conv_id, priority, since),
            lambda pipe: pipe.hdel(ACTIVE, conv_id),
            lambda pipe: events.publish(pipe, "queued", conv_id, priority=priority),
            lambda pipe: audit.record(pipe, counsellor.name, "release", conv_id),
        ]


def transfer(counsellor: Counsellor, conv_id: str, to: str) -> None:
    """Hand a conversation to another counsellor by name."""
    target = accounts.get(get_redis(), (to or "").strip().lower())
    if target is None:
        raise HandoffError("there is no counselor with that name")
    with _changing(conv_id) as (conv, effects):
        _check_holder(counsellor, conv)
        if conv.counsellor == target.name:
            raise HandoffError(f"{target.name} already holds this conversation")
        why_not = capacity.cannot_receive(get_redis(), ACTIVE, target)
        if why_not:
            raise HandoffError(why_not)
        # Handing it to oneself (only a supervisor can) is taking it over: the trail names who had it.
        former, conv.counsellor = conv.counsellor, target.name
        taken = target.name == counsellor.name
        effects += [
            lambda pipe: pipe.hset(ACTIVE, conv_id, target.name),
            lambda pipe: events.publish(pipe, "transferred", conv_id, by=counsellor.name, to=target.name),
            lambda pipe: audit.record(pipe, counsellor.name, "take_over" if taken else "transfer", conv_id,
                                      detail=former if taken else target.name),
        ]


def note(counsellor: Counsellor, conv_id: str, text: str, whisper: bool = False) -> None:
    """An internal note: kept encrypted in the transcript, never sent to the texter. A whisper is a
    supervisor's note to the counsellor holding the conversation, marked as such."""
    text = _text(text)
    conv = get_store().load(conv_id)
    if conv is None:
        raise Gone("this conversation no longer exists")
    if not can_view(counsellor, conv):
        raise NotHolder("you cannot write notes on a conversation someone else holds")
    pipe = get_redis().pipeline(transaction=True)
    marked = {"whisper": True} if whisper else {}
    get_store().append(conv_id, entry("note", text, time.time(), by=counsellor.name, **marked), pipe=pipe)
    events.publish(pipe, "note", conv_id)
    audit.record(pipe, counsellor.name, "whisper" if whisper else "note", conv_id)
    pipe.execute()


def reply(counsellor: Counsellor, conv_id: str, text: str) -> str:
    """Send a counsellor's message to the texter over their channel; returns the outbound id."""
    text = _text(text)
    conv = get_store().load(conv_id)
    if conv is None:
        raise Gone("this conversation no longer exists")
    _check_holder(counsellor, conv)
    if missing_settings(conv.channel):
        raise CannotSend(_not_set_up(conv))
    outbound_id = queue_reply(conv_id, text, counsellor.name)
    audit.record(get_redis(), counsellor.name, "reply", conv_id)
    return outbound_id


def retry(counsellor: Counsellor, conv_id: str, outbound_id: str) -> None:
    """Send a reply that did not reach the texter again, the same words; once, however often it is asked."""
    conv = get_store().load(conv_id)
    if conv is None:
        raise Gone("this conversation no longer exists")
    _check_holder(counsellor, conv)
    record = load_outbound(outbound_id)
    if record is None or record.conv != conv_id:
        raise HandoffError("there is no such reply in this conversation")
    allowed, why_not = may_text(conv)
    if not allowed:
        raise CannotSend(why_not.rstrip("."))
    state = deliveries([outbound_id]).get(outbound_id)
    if state is None or state.status != "failed":
        raise CannotSend("this reply is already on its way again")
    if state.failure.final:
        raise CannotSend(f"sending it again cannot help: {state.failure.why}")
    # A failed reply keeps its text; one the carrier lost after Twilio took it has it only in the transcript.
    text = record.text or next((item["text"] for item in get_store().transcript(conv_id)
                                if item.get("outbound") == outbound_id), "")
    if not text:
        raise HandoffError("the text of this reply is no longer kept")
    if not requeue(record, state.recorded, text,
                   also=lambda pipe: audit.record(pipe, counsellor.name, "retry", conv_id)):
        raise CannotSend("this reply is already on its way again")


def end(counsellor: Counsellor, conv_id: str, answers: dict[str, str | list[str]]) -> bool:
    """End the conversation with the wrap-up form's answers, kept as its contact record (bot.console.wrapup);
    send the closing message when allowed (True if sent)."""
    record, wrong = wrapup.FORM.check(answers)
    if wrong:
        raise HandoffError("; ".join(wrong))
    outcome = record["outcome"]
    engine = flow_engine(current_app.config["HELPLINE_NAME"])
    with _changing(conv_id) as (conv, effects):
        _check_holder(counsellor, conv)
        holder, emergency = conv.counsellor, handoff_priority(conv, conv.slots.get("reason")) == "emergency"
        engine.end_handoff(conv)
        conv.slots["outcome"] = outcome
        # Out of line for good: a texter who asks again later waits from then, not from this contact.
        for slot in (followups.ASKED_FOR, "queued_at", "reason"):
            conv.slots.pop(slot, None)
        effects += [
            lambda pipe: followups.forget(pipe, conv_id),
            lambda pipe: get_waiting().remove(pipe, conv_id),
            lambda pipe: pipe.hdel(ACTIVE, conv_id),
            lambda pipe: events.publish(pipe, "ended", conv_id),
            lambda pipe: audit.record(pipe, counsellor.name, "end", conv_id, detail=outcome),
            wrapup.keeping(conv_id, record, counsellor.name, time.time()),
        ]
        if emergency:
            effects.append(lambda pipe: capacity.offer_pause(pipe, holder))
    if not may_text(conv)[0]:
        return False
    try:
        queue_reply(conv_id, engine.say(conv, "closing"), author="system")
    except (RecipientOptedOut, NoConsent):
        return False  # STOP arrived after the check above; nothing is sent, as it should be
    return True


def reveal(counsellor: Counsellor, conv_id: str) -> str:
    """The texter's full address, for a supervisor passing it to emergency services; audited."""
    if not counsellor.supervisor:
        raise NotHolder("only supervisors can reveal a number")
    conv = get_store().load(conv_id)
    if conv is None:
        raise Gone("this conversation no longer exists")
    audit.record(get_redis(), counsellor.name, "reveal", conv_id)
    return conv.address


def _check_holder(counsellor: Counsellor, conv: Conversation) -> None:
    if conv.handoff != "active":
        raise NotHolder("no counselor holds this conversation now")
    if not holds(counsellor, conv):
        raise NotHolder(f"{conv.counsellor} holds this conversation")


def _text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise HandoffError("write something first")
    if len(text) > MAX_TEXT:
        raise HandoffError(f"a message can be at most {MAX_TEXT} characters")
    return text
