"""Supervisors block an abusive sender from a conversation's page, and lift blocks on the overview."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from flask import abort, redirect, request, url_for

from .. import blocking
from ..extensions import get_redis, get_store, get_waiting
from . import bp
from .auth import current_counsellor, supervisor_required, tell

_CONV_ID = re.compile(r"^[a-z2-7]{32}$")  # Vault.conversation_id
_DIGEST = re.compile(r"^[0-9a-f]{32}$")  # Vault.digest


@bp.post("/c/<conv_id>/block")
@supervisor_required
def block(conv_id):
    if not _CONV_ID.match(conv_id):
        abort(404, "This conversation does not exist (any more): the texter may have erased it.")
    duration = request.form.get("duration", "")
    try:
        blocking.block(get_store(), get_waiting(), conv_id, current_counsellor().name, duration,
                       request.form.get("reason", ""), time.time())
    except blocking.BlockError as exc:
        abort(400, f"Not blocked: {exc}.")
    tell(f"Sender blocked ({blocking.DURATION_WORDS[duration]}). They get the national lines once a day at "
         "most, are never queued, and an emergency still gets 911 and an alert.")
    return redirect(url_for("console.conversation", conv_id=conv_id))


@bp.post("/blocks/<digest>/unblock")
@supervisor_required
def unblock(digest):
    if not _DIGEST.match(digest):
        abort(404, "There is no such block.")
    try:
        lifted = blocking.unblock(get_redis(), get_store().vault, digest, current_counsellor().name, time.time())
    except blocking.BlockError as exc:
        abort(409, f"Not unblocked: {exc}.")
    tell("Block lifted: the sender is answered as anyone else again.")
    if request.form.get("back") == "conversation":
        return redirect(url_for("console.conversation", conv_id=lifted.conv))
    return redirect(url_for("console.overview", _anchor="blocked"))


@bp.context_processor
def _blocks():
    """What the block partials read, fetched only when a supervisor's page shows them."""
    def block_of(conv_id: str):
        return blocking.of_conversation(get_redis(), get_store().vault, conv_id, time.time())

    def blocked_senders():
        found = blocking.listed(get_redis(), get_store().vault, time.time())
        # A label (channel, the number's last two digits) while the conversation itself is still kept.
        convs = get_store().load_many([b.conv for b in found])
        return list(zip(found, convs))

    return {"block_of": block_of, "blocked_senders": blocked_senders, "block_ends": _ends,
            "block_durations": blocking.DURATION_WORDS, "block_reason_max": blocking.REASON_MAX}


def _ends(block: blocking.Block) -> str:
    return datetime.fromtimestamp(block.until, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
