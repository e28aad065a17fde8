"""Supervisors review resource listings: "verified today" with what they checked, and each listing's history.

The page is review-only: a listing's facts (phone, address, hours) change in flows/resources.yaml, with the
source they were read on, never from the browser. What a review records is bot/resource_reviews.py.
"""
from __future__ import annotations

import re
import time
from datetime import date

from flask import abort, redirect, request, url_for

from .. import resource_reviews
from ..extensions import get_helpline, get_redis
from . import bp
from .auth import current_counsellor, supervisor_required, tell

# A source as the YAML prints it: "kget.com (2019-12-24); turnto23.com Arvin article". Domains and paths link.
_SOURCE_WORD = re.compile(r"(\S+)")
_LINKABLE = re.compile(r"(?:https?://)?(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/\S*)?", re.IGNORECASE)


@bp.post("/resources/<resource_id>/verified")
@supervisor_required
def verified_today(resource_id):
    directory = get_helpline().flows.resources
    try:
        resource_reviews.verify(get_redis(), directory, resource_id, current_counsellor().name,
                                request.form.get("note", ""), date.today(), time.time())
    except resource_reviews.ReviewError as exc:
        abort(404 if directory.get(resource_id) is None else 400, f"Not recorded: {exc}.")
    tell(f"{directory.get(resource_id).name}: verified today. The bot counts it as current from now on; "
         "`helpline resources export-reviews` writes it into flows/resources.yaml to commit.")
    return redirect(url_for("console.listings", _anchor=f"review-{resource_id}"))


def review_context(resource_ids: list[str]) -> dict:
    """What the review partial shows a supervisor: each listing's reviews, newest first."""
    return {"reviews": resource_reviews.histories(get_redis(), resource_ids), "source_parts": source_parts,
            "note_max": resource_reviews.NOTE_MAX}


def source_parts(source: str) -> list[tuple[str, str | None]]:
    """The source's words, each with the link it names (None for words that are not a web address)."""
    parts = []
    for piece in _SOURCE_WORD.split(source):
        word = piece.rstrip(";,)")
        if piece.strip() and _LINKABLE.fullmatch(word):
            url = word if word.lower().startswith(("http://", "https://")) else "https://" + word
            parts.append((word, url))
            if word != piece:
                parts.append((piece[len(word):], None))
        else:
            parts.append((piece, None))
    return parts
