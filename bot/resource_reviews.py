"""Supervisors' reviews of resource listings: "verified today", by whom, and what they checked.

flows/resources.yaml in git stays the source of truth for every fact a texter reads. A review changes no fact:
it only says "on this day someone checked this listing against its source (or called them)", which moves the
listing's verified_on forward. Reviews live in Redis so the bot stops calling the listing possibly out of date
at once, in every process (ResourceDirectory asks ``overlay()`` on each reply); `helpline resources
export-reviews` then writes them into the YAML (verified_on, reviewed_by) for an operator to commit.

Keys (a listing id is an operator's word from the YAML, never anything a texter sent):
  resources:reviewed        hash    id -> yyyy-mm-dd of its newest review (what the bot reads)
  resources:history:<id>    stream  every review: at, by, on, note; appended to, never changed
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import redis
from flask import current_app, has_app_context

from flows import resources_file

from . import audit

REVIEWED = "resources:reviewed"
HISTORY = "resources:history:"
NOTE_MAX = 300


class ReviewError(ValueError):
    """A review that cannot be kept: an unknown listing or no word on what was checked."""


@dataclass(frozen=True)
class Review:
    at: float  # when it was recorded (epoch seconds)
    by: str  # the supervisor's console name
    on: date  # the day the listing was verified
    note: str  # what was checked: "called the number, hours unchanged"


def verify(client: redis.Redis, directory, resource_id: str, by: str, note: str, today: date,
           now: float) -> Review:
    """Record that ``by`` verified ``resource_id`` on ``today``, with what they checked; audited."""
    if directory.get(resource_id) is None:
        raise ReviewError("there is no such listing in flows/resources.yaml")
    note = " ".join(note.split())
    if not note:
        raise ReviewError("say what you checked (called the number, read the source page)")
    if len(note) > NOTE_MAX:
        raise ReviewError(f"the note is longer than {NOTE_MAX} characters")
    review = Review(now, by, today, note)
    pipe = client.pipeline(transaction=True)
    pipe.xadd(HISTORY + resource_id, {"at": f"{now:.3f}", "by": by, "on": today.isoformat(), "note": note})
    pipe.hset(REVIEWED, resource_id, today.isoformat())
    audit.record(pipe, by, "review_resource", detail=resource_id)
    pipe.execute()
    return review


def reviewed_on(client: redis.Redis) -> dict[str, date]:
    """{listing id: day of its newest review}."""
    return {k.decode(): date.fromisoformat(v.decode()) for k, v in client.hgetall(REVIEWED).items()}


def histories(client: redis.Redis, resource_ids: list[str]) -> dict[str, list[Review]]:
    """{id: its reviews, newest first} for many listings at once."""
    pipe = client.pipeline(transaction=False)
    for rid in resource_ids:
        pipe.xrevrange(HISTORY + rid)
    return {rid: [_review(fields) for _, fields in found] for rid, found in zip(resource_ids, pipe.execute())}


def export(client: redis.Redis, directory) -> list[str]:
    """Write the reviews newer than ``directory``'s file into it; the ids of the listings written.

    Each gets verified_on (the review's day) and reviewed_by ("sam, 2026-12-01: called them"), in place: the
    rest of the file, comments too, stays as the operator wrote it. The full history stays in Redis.
    """
    newest = {rid: found[0] for rid, found in histories(client, [r.id for r in directory]).items() if found}
    edits = {}
    for r in directory:
        review = newest.get(r.id)
        if review is not None and (r.verified_on is None or r.verified_on < review.on):
            edits[r.line] = {"verified_on": review.on,
                             "reviewed_by": f"{review.by}, {review.on.isoformat()}: {review.note}"}
    resources_file.set_fields(directory.path, edits)
    return [r.id for r in directory if r.line in edits]


def overlay() -> dict[str, date]:
    """The reviews the bot's replies read (flows.resources.ResourceDirectory ``reviewed``).

    Outside an app (`helpline flows check`, the flow tests) and with Redis unreachable there are none: the
    listing then reads as the YAML dates it, so at worst the bot adds "may be out of date" to a reply; a
    texter's answer never fails for want of a review date.
    """
    if not has_app_context():
        return {}
    try:
        return reviewed_on(current_app.extensions["redis"])
    except redis.RedisError:
        return {}


def _review(fields: dict) -> Review:
    f = {k.decode(): v.decode() for k, v in fields.items()}
    return Review(float(f["at"]), f["by"], date.fromisoformat(f["on"]), f["note"])
