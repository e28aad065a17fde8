"""Consented check-ins: a follow-up text at a time the texter said is safe, sent once by workers.followups.

A follow-up is scheduled by a counsellor (or asked for by the texter, flows) for a window on one day in the
help line's time zone (HELPLINE_TIMEZONE, the texter's), and is one of two kinds, both neutral catalog texts
that never name the service's purpose: "check_in" (catalog `check_in`) or "counsellor" (catalog
`check_in_counsellor`, a counsellor will text). Only a texter who agreed to be texted first gets one, never
after STOP.

Keys, named by a random follow-up id or the conversation id, never a number:
- `fu:<id>`: the record, sealed with the vault, with the retention TTL;
- `fu:c:<conversation id>`: the ids of its follow-ups, for the conversation page and erasing;
- UPCOMING: id -> start of its window, the follow-ups still to send (for the console's lists);
- PREFERRED: conversation id -> the counsellor the texter answered, while it waits again in the queue
  (bot.console.capacity's take gives it to them first among equals).

A record is changed only under the conversation's lock (bot.store), so the worker's send, a cancel and a
change never cross. The RQ job carries the follow-up id alone; its job id names the id and the window's
start, so a follow-up is never scheduled twice for one time.
"""
from __future__ import annotations

import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

from flows.conversation import Conversation
from flows.engine import Effect, FlowEngine, Step
# No text from 9 p.m. to 8 a.m. local unless the texter chose such a time: the hours flows.when reads as chosen
# at night, so that a time it reads as not at night is never refused as quiet.
from flows.when import NIGHT_FROM as QUIET_FROM, NIGHT_UNTIL as QUIET_UNTIL

from . import audit, blocking
from .errors import HelplineError, NoConsent, RecipientOptedOut
from .extensions import get_queue, get_redis, get_store
from .outbound import TWILIO_CHANNELS, check_may_text, retry_seconds
from .store import conv_key as stored_key

KINDS = {"check_in": "Checking in (neutral)", "counsellor": "A counselor will text you"}
CATALOG_KEYS = {"check_in": "check_in", "counsellor": "check_in_counsellor"}
TEXTER = "the texter"  # `by` of a follow-up the texter asked for themselves: no account can be so named
UPCOMING = "followups:upcoming"
PREFERRED = "followups:preferred"
SENT_SLOT = "followup_sent"  # on the conversation: the last follow-up went out; its answer re-opens it
ASKED_FOR = "asked_for"  # on the conversation: the counsellor the texter answered (the queue shows it)
JOB = "workers.followups.send"
WEB = "check-ins go by text message only"
BLOCKED = "the sender is blocked"


class FollowUpError(HelplineError):
    """A follow-up that cannot be scheduled, changed or cancelled as asked (the message says why)."""


@dataclass(frozen=True)
class FollowUp:
    id: str
    conv: str
    start: float  # the window, epoch seconds
    end: float
    kind: str  # a key of KINDS
    by: str  # the counsellor who scheduled it, or TEXTER
    chosen_quiet: bool  # the texter chose a time at night: quiet hours do not apply
    status: str = "scheduled"  # scheduled, sent, skipped, cancelled
    why: str = ""  # why it was skipped
    created: float = 0.0

    @property
    def job_id(self) -> str:
        return job_id(self.id, self.start)


def key(followup_id: str) -> str:
    return f"fu:{followup_id}"


def conv_key(conv_id: str) -> str:
    return f"fu:c:{conv_id}"


def job_id(followup_id: str, start: float) -> str:
    return f"followup-{followup_id}-{int(start)}"


def zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["HELPLINE_TIMEZONE"])


def is_quiet(moment: float, tz: ZoneInfo) -> bool:
    hour = datetime.fromtimestamp(moment, tz).hour
    return hour >= QUIET_FROM or hour < QUIET_UNTIL


def quiet_ends(moment: float, tz: ZoneInfo) -> float:
    """The first 08:00 local at or after `moment` (inside quiet hours: the end of this night)."""
    local = datetime.fromtimestamp(moment, tz)
    morning = local.replace(hour=QUIET_UNTIL, minute=0, second=0, microsecond=0)
    if local.hour >= QUIET_FROM:
        morning = datetime.fromordinal(local.toordinal() + 1).replace(hour=QUIET_UNTIL, tzinfo=tz)
    return morning.timestamp()


def _epoch(moment: datetime | float) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise FollowUpError("a time without a time zone")
        return moment.timestamp()
    return float(moment)


# -- scheduling ------------------------------------------------------------------------------


def may_schedule(conv: Conversation) -> str:
    """Why no follow-up can be scheduled for this texter ("" when one can), in the console's words."""
    try:
        _check(conv)
    except RecipientOptedOut:
        return "The texter sent STOP. Nothing can be sent until they text START."
    except NoConsent as exc:
        return {WEB: "Check-ins go by text message: this texter is not on a phone.",
                BLOCKED: "This sender is blocked: a blocked sender never gets a check-in."}.get(
            str(exc), "The texter has not agreed to be texted first at this number.")
    return ""


def schedule(conv_id: str, start: datetime | float, end: datetime | float, kind: str, by: str,
             chosen_quiet: bool = False, pipe=None, conv: Conversation | None = None) -> FollowUp:
    """Schedule a follow-up for a window. NoConsent without consent to be texted first (or on a web chat),
    RecipientOptedOut after STOP; FollowUpError for a window in the past, past the retention, or all of it
    in quiet hours when the texter did not choose a time at night.

    With `pipe` (a transaction in MULTI, whose caller holds the conversation's lock: the engine) the writes
    join it and `conv` is the conversation as it will be saved; without, the lock is taken here.
    """
    start, end = _window(start, end, kind, chosen_quiet)
    ttl, now = get_store().ttl, time.time()
    found = FollowUp(secrets.token_hex(12), conv_id, start, end, kind, by, bool(chosen_quiet), created=now)
    if pipe is not None:
        _check(conv or get_store().load(conv_id))
        _write(pipe, found, ttl)
        audit.record(pipe, by, "followup_scheduled", conv_id, detail=kind)
        return found
    with _locked(conv_id) as (loaded, write):
        _check(loaded)
        write(lambda p: [_write(p, found, ttl), audit.record(p, by, "followup_scheduled", conv_id, detail=kind)])
    return found


def _window(start: datetime | float, end: datetime | float, kind: str, chosen_quiet: bool) -> tuple[float, float]:
    """(start, end) in epoch seconds, a start already past moved to now; FollowUpError when it cannot be."""
    if kind not in KINDS:
        raise FollowUpError("choose what kind of check-in")
    start, end, now = _epoch(start), _epoch(end), time.time()
    if end <= start:
        raise FollowUpError("the window ends before it starts")
    if end <= now:
        raise FollowUpError("that window is in the past")
    days = get_store().ttl // 86400
    if end > now + get_store().ttl:
        raise FollowUpError(f"a check-in must be within {days} days: nothing of the conversation is kept longer")
    start = max(start, now)
    if not chosen_quiet and is_quiet(start, zone()) and quiet_ends(start, zone()) >= end:
        raise FollowUpError("that window is all between 9 p.m. and 8 a.m.; tick that the texter chose a time "
                            "at night if they did")
    return start, end


def _check(conv: Conversation | None) -> None:
    """Raise unless this texter may get a follow-up: outbound's rules for texting first, a phone, no block."""
    if conv is None:
        raise FollowUpError("this conversation no longer exists")
    check_may_text(conv)
    if conv.channel not in TWILIO_CHANNELS:
        raise NoConsent(WEB)
    if blocked(conv.id):
        raise NoConsent(BLOCKED)


def blocked(conv_id: str) -> bool:
    store = get_store()
    return blocking.of_conversation(store.redis, store.vault, conv_id, time.time()) is not None


def _write(pipe, found: FollowUp, ttl: int) -> None:
    """The record, its indexes and its job, on `pipe`."""
    pipe.set(key(found.id), get_store().vault.seal(asdict(found)), ex=ttl)
    pipe.sadd(conv_key(found.conv), found.id)
    pipe.expire(conv_key(found.conv), ttl)
    pipe.zadd(UPCOMING, {found.id: found.start})
    enqueue(pipe, found, found.start)


def enqueue(pipe, found: FollowUp, at: float) -> None:
    """The send job at `at`, in the caller's transaction (the same follow-up and time: the same job, written again)."""
    retries = retry_seconds()  # a killed worker's job is retried too: the record says whether it went
    get_queue().enqueue_at(datetime.fromtimestamp(at, timezone.utc), JOB, found.id, pipeline=pipe,
                           job_id=job_id(found.id, at), retry=Retry(max=len(retries), interval=retries),
                           result_ttl=0, failure_ttl=7 * 86400)


def _unschedule(found: FollowUp) -> None:
    """Drop the job of the window it had (a job that finds the record changed sends nothing anyway)."""
    queue = get_queue()
    try:
        job = Job.fetch(found.job_id, connection=queue.connection, serializer=queue.serializer)
    except NoSuchJobError:
        return
    queue.scheduled_job_registry.remove(job)
    job.delete()


# -- reading -------------------------------------------------------------------------------


def load(followup_id: str) -> FollowUp | None:
    return _opened(get_redis().get(key(followup_id)))


def _opened(raw) -> FollowUp | None:
    return FollowUp(**get_store().vault.open(raw)) if raw else None


def of_conversation(conv_id: str) -> list[FollowUp]:
    """Its follow-ups still kept, soonest first."""
    client = get_redis()
    ids = sorted(i.decode() for i in client.smembers(conv_key(conv_id)))
    found = [f for f in (_opened(raw) for raw in (client.mget([key(i) for i in ids]) if ids else [])) if f]
    return sorted(found, key=lambda f: f.start)


def upcoming(by: str | None = None, limit: int = 500) -> list[FollowUp]:
    """Follow-ups still to send, soonest first: one counsellor's, or everyone's (None)."""
    client = get_redis()
    ids = [i.decode() for i in client.zrange(UPCOMING, 0, limit - 1)]
    raws = client.mget([key(i) for i in ids]) if ids else []
    found = [f for f in map(_opened, raws) if f is not None and f.status == "scheduled"]
    return [f for f in found if by is None or f.by == by]


# -- changing ------------------------------------------------------------------------------


@contextmanager
def _locked(conv_id: str):
    """`with _locked(conv_id) as (conv, write)`: the conversation's lock; write(effect) runs effect(pipe) in
    the transaction that gives the lock back (the store's commit, the conversation itself left as it is)."""
    store, effects = get_store(), []
    session = store.begin(conv_id)
    try:
        yield session.conv, effects.append
    except BaseException:
        store.release(session)
        raise
    store.commit(session, None, also=(lambda pipe: [effect(pipe) for effect in effects]) if effects else None)


def _scheduled(followup_id: str, conv_id: str | None = None) -> FollowUp:
    found = load(followup_id)
    if found is None or (conv_id is not None and found.conv != conv_id):
        raise FollowUpError("there is no such check-in (any more)")
    if found.status != "scheduled":
        raise FollowUpError(f"this check-in was {found.status} already")
    return found


def cancel(followup_id: str, by: str) -> FollowUp:
    found = _scheduled(followup_id)
    with _locked(found.conv):
        found = replace(_scheduled(followup_id), status="cancelled")
        _unschedule(found)
        _save(found, also=lambda p: audit.record(p, by, "followup_cancelled", found.conv, detail=found.kind))
    return found


def change(followup_id: str, start: datetime | float, end: datetime | float, kind: str, by: str,
           chosen_quiet: bool = False) -> FollowUp:
    """Another window (and kind): the same checks as scheduling; the old window's job is dropped."""
    start, end = _window(start, end, kind, chosen_quiet)
    ttl = get_store().ttl
    found = _scheduled(followup_id)
    with _locked(found.conv) as (conv, write):
        _check(conv)
        old = _scheduled(followup_id)
        found = replace(old, start=start, end=end, kind=kind, chosen_quiet=bool(chosen_quiet))
        _unschedule(old)
        write(lambda p: [_write(p, found, ttl), audit.record(p, by, "followup_changed", found.conv, detail=kind)])
    return found


def _save(found: FollowUp, also=None, pipe=None) -> None:
    """Write a record's new status (keeping its TTL); a finished one leaves the upcoming list."""
    own = pipe is None
    if own:
        pipe = get_redis().pipeline(transaction=True)
        pipe.multi()  # explicit, so that RQ's enqueue(pipeline=pipe) joins this transaction
    pipe.set(key(found.id), get_store().vault.seal(asdict(found)), xx=True, keepttl=True)
    if found.status != "scheduled":
        pipe.zrem(UPCOMING, found.id)
    if also is not None:
        also(pipe)
    if own:
        pipe.execute()


def move(found: FollowUp, at: float) -> FollowUp:
    """Quiet hours came first: the same window from `at` (08:00) on."""
    found = replace(found, start=at)
    _save(found, also=lambda p: [p.zadd(UPCOMING, {found.id: at}), enqueue(p, found, at)])
    return found


def skipped(found: FollowUp, why: str) -> FollowUp:
    """Not sent, for good: the record keeps why (the console shows it), the audit trail the reason."""
    found = replace(found, status="skipped", why=why)
    _save(found, also=lambda p: audit.record(p, "system", "followup_skipped", found.conv, detail=why))
    return found


def mark_sent(pipe, found: FollowUp) -> None:
    """In the send's transaction."""
    _save(replace(found, status="sent"), pipe=pipe,
          also=lambda p: audit.record(p, "system", "followup_sent", found.conv, detail=found.kind))


# -- the texter's answer -------------------------------------------------------------------


def sent_slot(found: FollowUp, now: float) -> dict:
    """What the conversation remembers of a follow-up that went out (see reopen)."""
    return {"by": "" if found.by == TEXTER else found.by, "at": now}


def reopen(flows: FlowEngine, conv: Conversation, step: Step) -> None:
    """The texter answered a follow-up: back into the queue at the priority triage gives (normal unless
    it says more), the counsellor who scheduled it preferred. An emergency keeps the flow's answer (911 at
    once, and the offer of a person); STOP, DELETE and "not safe now" are never overruled."""
    sent = conv.slots.get(SENT_SLOT)
    if not sent:
        return
    if conv.handoff is not None:  # in line or with a counsellor: the answer reached them, nothing to re-open later
        del conv.slots[SENT_SLOT]
        return
    if conv.opted_out or conv.slots.get("quiet") or any(step.effect(n) for n in ("erase", "opt_out",
                                                                                     "leave_queue")):
        return
    del conv.slots[SENT_SLOT]
    if sent.get("by"):
        conv.slots[ASKED_FOR] = sent["by"]
        step.effects.append(Effect("prefer_counsellor", {"name": sent["by"]}))
    if step.level == "emergency":
        return
    conv.state = next(name for name, state in flows.flow.states.items() if state.handoff)
    step.keys[:], step.replies[:] = ["queued"], [flows.say(conv, "queued")]
    step.effects.append(Effect("request_handoff", {"reason": "follow_up"}))


def prefer(pipe, conv_id: str, name: str) -> None:
    pipe.hset(PREFERRED, conv_id, name)


def forget(pipe, conv_id: str) -> None:
    """The conversation ended or was erased: nobody is asked for any more."""
    pipe.hdel(PREFERRED, conv_id)


# -- erasing and retention -------------------------------------------------------------------


def erase(client, pipe, conv_id: str) -> None:
    """Queue on `pipe` the deletion of every follow-up of the conversation (read on `client` first)."""
    ids = [i.decode() for i in client.smembers(conv_key(conv_id))]
    if ids:
        pipe.delete(*[key(i) for i in ids])
        pipe.zrem(UPCOMING, *ids)
    pipe.delete(conv_key(conv_id))
    forget(pipe, conv_id)


def drop_expired(client) -> int:
    """Upcoming entries whose record expired, and preferences of conversations gone (the retention purge)."""
    ids = [i.decode() for i in client.zrange(UPCOMING, 0, -1)]
    gone = [i for i, there in zip(ids, client.mget([key(i) for i in ids]) if ids else []) if there is None]
    dropped = int(client.zrem(UPCOMING, *gone)) if gone else 0
    convs = [c.decode() for c in client.hkeys(PREFERRED)]
    left = [c for c in convs if not client.exists(stored_key(c))]
    return dropped + (int(client.hdel(PREFERRED, *left)) if left else 0)
