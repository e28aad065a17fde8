"""Contact records: the wrap-up form a counsellor fills in to end a conversation, kept with the texter.

Each record is sealed with the vault like the transcript, in a list named by the conversation id
(so a texter who comes back, with the same id, brings their earlier contacts along), erased with
the conversation (bot.erasure) and kept no longer than the conversation itself: the list's TTL is
the retention, and a record older than the retention is dropped on the next write and never shown.
Each choice answered is counted per local day (bot.metrics.Stats.count, contact_<field>), in the
transaction that ends the conversation; the summary and the ids never are.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app
from werkzeug.datastructures import MultiDict

from flows.wrapup import WrapupForm

from ..extensions import get_store

FORM = WrapupForm.load()  # a bad definition stops the app at start, not a counsellor at the end of a contact
OUTCOMES = FORM.fields["outcome"].choices
CONTACTS_MAX = 100  # records kept per texter; the oldest fall off


def contacts_key(conv_id: str) -> str:
    return f"cr:{conv_id}"


@dataclass(frozen=True)
class Contact:
    """One earlier contact, as the conversation page shows it."""

    at: float
    counsellor: str
    record: dict

    @property
    def answers(self) -> list[tuple[str, str]]:
        return FORM.labels(self.record)


def answers(form: MultiDict) -> dict[str, list[str]]:
    """The form's fields as posted (every value of each), to check, or to show again as typed."""
    return {key: form.getlist(key) for key in FORM.fields}


def keeping(conv_id: str, record: dict, counsellor: str, now: float):
    """The effect that keeps this contact record and counts its answers, for the ending transaction.

    Called under the conversation's lock: the records past the retention are found now, and dropped
    by the effect, so a returning texter's list never holds more than the retention allows."""
    store = get_store()
    stale = sum(1 for contact in _read(conv_id) if contact.at < now - store.ttl)
    sealed = store.vault.seal({"at": now, "by": counsellor, "record": record})
    stats = current_app.extensions["stats"]

    def effect(pipe) -> None:
        key = contacts_key(conv_id)
        if stale:
            pipe.ltrim(key, stale, -1)
        pipe.rpush(key, sealed)
        pipe.ltrim(key, -CONTACTS_MAX, -1)
        pipe.expire(key, store.ttl)
        for item in FORM.fields.values():
            if item.counter is not None and item.key in record:
                value = record[item.key]
                for label in value if isinstance(value, list) else [value]:
                    stats.count(pipe, item.counter, label)

    return effect


def earlier(conv_id: str, now: float | None = None) -> list[Contact]:
    """This texter's contact records within the retention, newest first."""
    now = time.time() if now is None else now
    oldest = now - get_store().ttl
    return [c for c in reversed(_read(conv_id)) if c.at >= oldest]


def _read(conv_id: str) -> list[Contact]:
    """Every record kept, oldest first; one not in the shape written counts as from the beginning of time."""
    store = get_store()
    found = []
    for raw in store.redis.lrange(contacts_key(conv_id), 0, -1):
        item = store.vault.open(raw)
        if isinstance(item, dict) and isinstance(item.get("record"), dict) and isinstance(item.get("at"), (int, float)):
            found.append(Contact(float(item["at"]), str(item.get("by") or ""), item["record"]))
        else:
            found.append(Contact(0.0, "", {}))
    return found


def page(conv_id: str, draft: dict | None) -> dict:
    """What the conversation page's end form and earlier-contacts banner show."""
    return {"wrapup": FORM, "wrapup_draft": draft or {}, "contacts": earlier(conv_id)}
