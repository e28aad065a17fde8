"""Warm referrals: what a counsellor passed on to a partner agency with the texter's consent, and what
the agency did with it.

A referral lives under `rf:<referral id>` (a Redis hash): agency, conv, status, created, changed, by (the
counsellor), shared (sealed JSON: alias, language, need, how, the callback number only when the texter agreed
to it, a note), reason (why declined), partner (who acted last), contact_on and contact_note (sealed). Two
indexes: `rf:a:<agency id>`, the agency's referral ids scored by last change, and `rf:c:<conversation id>`.
Key names hold ids, never a number. Every change gives all three keys the retention TTL again, so a referral
expires HELPLINE_RETENTION_DAYS after its last change (workers.retention drops the expired ids from the
agency's index).

status: new -> accepted -> contacted (again, for a later contact), or new -> declined; and from any of them,
withdrawn: the texter erased the conversation (DELETE). The agency keeps only a line that says so.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import date

import redis

from flows.resources import Resource

STATUSES = {"new": "New", "accepted": "Accepted", "declined": "Declined", "contacted": "Contact made",
            "withdrawn": "Withdrawn by the texter"}
DECLINE_REASONS = {"capacity": "No capacity now", "eligibility": "Outside who we serve",
                   "area": "Outside the area we serve", "duplicate": "Already known to us", "other": "Other"}
OPEN = ("new", "accepted")  # the agency has yet to answer or to reach the texter
HOW = ("callback", "texter_calls")  # the agency calls the number the texter agreed to, or the texter calls them
ALIAS_MAX, NOTE_MAX = 60, 500
_ID = re.compile(r"^[0-9a-f]{24}$")
# A US number as a counsellor may type it: 10 digits, or 11 starting with 1, in any punctuation. ASCII digits
# only (an Arabic-Indic or full-width one is no number an agency can dial), a "+" only before the 1 (+52… is
# Mexico, not a US number), and an area code starting 2-9 as every North American one does.
_US_PHONE = re.compile(r"^(?:\+?1)?[^\d+]*([2-9]\d{2})[^\d+]*(\d{3})[^\d+]*(\d{4})$", re.ASCII)


class ReferralError(ValueError):
    """A referral, or a change to one, that cannot be made; the message says why in the console's words."""


class NotFound(ReferralError):
    """No such referral for this agency (another agency's is not found either)."""


class Conflict(ReferralError):
    """The referral is not in a state that allows this change (declined, withdrawn, changed by someone else)."""


def referral_key(referral_id: str) -> str:
    return f"rf:{referral_id}"


def agency_key(agency: str) -> str:
    return f"rf:a:{agency}"


def conversation_key(conv_id: str) -> str:
    return f"rf:c:{conv_id}"


@dataclass(frozen=True)
class Agency:
    """A coalition agency as flows/resources.yaml names it: the entries it runs, the first one naming it."""

    id: str
    entries: tuple[Resource, ...]

    def name(self, lang: str = "en") -> str:
        first = self.entries[0]
        return first.short_name if first.short_name and not first.names else first.name_for(lang)

    @property
    def phone(self) -> str | None:
        """The number a texter calls, as the directory prints it; None when none of its entries gives one."""
        return next((r.phone for r in self.entries if r.phone), None)


def agencies(directory) -> dict[str, Agency]:
    return {agency: Agency(agency, entries) for agency, entries in directory.agencies().items()}


@dataclass(frozen=True)
class Shared:
    """What the texter agreed the agency may know."""

    lang: str
    need: str
    how: str
    alias: str = ""
    callback: str = ""  # E.164, only when the texter agreed to be called or texted there
    note: str = ""


@dataclass(frozen=True)
class Referral:
    id: str
    agency: str
    status: str
    created: float
    changed: float
    conv: str = ""
    by: str = ""
    shared: Shared | None = None  # None once withdrawn
    reason: str = ""
    partner: str = ""
    contact_on: str = ""
    contact_note: str = ""

    @property
    def shown_status(self) -> str:
        return STATUSES.get(self.status, self.status)


def callback_number(typed: str) -> str:
    """A US number in E.164, or ReferralError: the agency must be able to call it."""
    found = _US_PHONE.match((typed or "").strip())
    if not found:
        raise ReferralError("the callback number must be a US phone number of 10 digits")
    return "+1" + "".join(found.groups())


def create(store, conv_id: str, agency: str, shared: Shared, by: str, now: float | None = None) -> Referral:
    """Keep a new referral to `agency` (the caller has checked the texter's consent and the fields).

    Conflict while one to the same agency is still open (new or accepted): a form sent twice (a double
    click, two tabs) would give the agency two referrals and the texter two texts. The check and the write
    are one transaction on the conversation's list, so two sent at the same moment make one.
    """
    now = time.time() if now is None else now
    referral = Referral(id=secrets.token_hex(12), agency=agency, status="new", created=now, changed=now,
                        conv=conv_id, by=by, shared=shared)
    with store.redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(conversation_key(conv_id))
                if any(r.agency == agency and r.status in OPEN for r in for_conversation(store, conv_id)):
                    raise Conflict("the texter was referred to this agency already, and it is still open")
                pipe.multi()
                pipe.hset(referral_key(referral.id), mapping={
                    "agency": agency, "conv": conv_id, "status": "new", "created": f"{now:.3f}",
                    "changed": f"{now:.3f}", "by": by, "shared": store.vault.seal(shared.__dict__)})
                pipe.sadd(conversation_key(conv_id), referral.id)
                _touch(pipe, store.ttl, referral.id, agency, conv_id, now)
                pipe.execute()
                return referral
            except redis.WatchError:
                continue  # another referral of this conversation at the same moment: look again


def _touch(pipe, ttl: int, referral_id: str, agency: str, conv_id: str, now: float) -> None:
    """The referral changed: its place in the agency's list, and the retention TTL again on all its keys."""
    pipe.zadd(agency_key(agency), {referral_id: now})
    for key in (referral_key(referral_id), agency_key(agency)) + ((conversation_key(conv_id),) if conv_id else ()):
        pipe.expire(key, ttl)


def load(store, referral_id: str) -> Referral | None:
    raw = store.redis.hgetall(referral_key(referral_id)) if _ID.match(referral_id or "") else {}
    return _referral(store, referral_id, raw) if raw else None


def _referral(store, referral_id: str, raw: dict) -> Referral:
    doc = {k.decode(): v for k, v in raw.items()}
    text = {k: v.decode() for k, v in doc.items() if k not in ("shared", "contact_note")}
    shared = Shared(**store.vault.open(doc["shared"])) if doc.get("shared") else None
    return Referral(id=referral_id, agency=text["agency"], status=text["status"], created=float(text["created"]),
                    changed=float(text["changed"]), conv=text.get("conv", ""), by=text.get("by", ""),
                    shared=shared, reason=text.get("reason", ""), partner=text.get("partner", ""),
                    contact_on=text.get("contact_on", ""),
                    contact_note=store.vault.open(doc["contact_note"]) if doc.get("contact_note") else "")


def _load_many(store, ids: list[str]) -> list[Referral]:
    pipe = store.redis.pipeline(transaction=False)
    for referral_id in ids:
        pipe.hgetall(referral_key(referral_id))
    return [_referral(store, i, raw) for i, raw in zip(ids, pipe.execute()) if raw]


def for_agency(store, agency: str) -> list[Referral]:
    """The agency's referrals, the last changed first (expired ones are skipped)."""
    return _load_many(store, [i.decode() for i in store.redis.zrevrange(agency_key(agency), 0, -1)])


def for_conversation(store, conv_id: str) -> list[Referral]:
    found = _load_many(store, sorted(i.decode() for i in store.redis.smembers(conversation_key(conv_id))))
    return sorted(found, key=lambda r: r.created)


def of_agency(store, referral_id: str, agency: str) -> Referral:
    """The referral, only when it was sent to `agency`: another agency's is NotFound, as a missing one is."""
    referral = load(store, referral_id)
    if referral is None or referral.agency != agency:
        raise NotFound("there is no such referral for your agency (it may have expired)")
    return referral


def accept(store, referral_id: str, agency: str, partner: str) -> Referral:
    return _change(store, referral_id, agency, partner, ("new",), {"status": "accepted"})


def decline(store, referral_id: str, agency: str, partner: str, reason: str) -> Referral:
    if reason not in DECLINE_REASONS:
        raise ReferralError("choose why you decline it")
    return _change(store, referral_id, agency, partner, ("new",), {"status": "declined", "reason": reason})


def contact_made(store, referral_id: str, agency: str, partner: str, day: str, note: str,
                 today: date | None = None) -> Referral:
    """Record that the agency reached the texter (on `day`, yyyy-mm-dd), with a note of its own."""
    try:
        when = date.fromisoformat((day or "").strip())
    except ValueError:
        raise ReferralError("give the day contact was made (yyyy-mm-dd)") from None
    if when > (today or date.today()):
        raise ReferralError("the day contact was made cannot be in the future")
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ReferralError(f"the note is longer than {NOTE_MAX} characters")
    fields = {"status": "contacted", "contact_on": when.isoformat()}
    if note:
        fields["contact_note"] = store.vault.seal(note)
    return _change(store, referral_id, agency, partner, ("accepted", "contacted"), fields, day=when)


def _change(store, referral_id: str, agency: str, partner: str, allowed_from: tuple[str, ...], fields: dict,
            day: date | None = None) -> Referral:
    """Move the referral on, only from one of `allowed_from` (two partners acting at once: one wins)."""
    key = referral_key(referral_id)
    with store.redis.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(key)
            referral = of_agency(store, referral_id, agency)
            if referral.status not in allowed_from:
                raise Conflict(f"this referral is {referral.shown_status.lower()}: it cannot be changed so")
            if day is not None and day < date.fromtimestamp(referral.created):
                raise ReferralError("the day contact was made is before the referral was received")
            now = time.time()
            pipe.multi()
            pipe.hset(key, mapping={**fields, "partner": partner, "changed": f"{now:.3f}"})
            _touch(pipe, store.ttl, referral_id, agency, referral.conv, now)
            pipe.execute()
        except redis.WatchError:
            raise Conflict("someone else changed this referral at the same moment: look again") from None
    return load(store, referral_id)


def withdraw(store, pipe, conv_id: str) -> None:
    """The texter erased the conversation: queue on `pipe` (the erasing transaction) the end of everything
    they shared; each agency keeps only that a referral of that day was withdrawn."""
    ids = [i.decode() for i in store.redis.smembers(conversation_key(conv_id))]
    now = time.time()
    for referral in _load_many(store, ids):
        pipe.delete(referral_key(referral.id))
        pipe.hset(referral_key(referral.id), mapping={"agency": referral.agency, "status": "withdrawn",
                                                      "created": f"{referral.created:.3f}", "changed": f"{now:.3f}"})
        _touch(pipe, store.ttl, referral.id, referral.agency, "", now)
    pipe.delete(conversation_key(conv_id))


def drop_expired(client: redis.Redis, cutoff: float, batch: int = 500) -> int:
    """Take out of each agency's list the referrals unchanged since `cutoff` or already expired."""
    dropped = 0
    for name in client.scan_iter(match=agency_key("*"), count=batch):
        dropped += client.zremrangebyscore(name, 0, cutoff)
        ids = [i.decode() for i in client.zrange(name, 0, -1)]
        pipe = client.pipeline(transaction=False)
        for referral_id in ids:
            pipe.exists(referral_key(referral_id))
        gone = [i for i, there in zip(ids, pipe.execute()) if not there]
        if gone:
            dropped += client.zrem(name, *gone)
    return dropped
