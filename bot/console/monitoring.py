"""Supervisors watching live conversations: the monitoring list, read-only monitor mode, a whisper to
the counsellor holding a conversation, and taking it over."""
from __future__ import annotations

import time
from dataclasses import dataclass

from flask import render_template, request, url_for

from flows.conversation import RISK_ORDER

from .. import audit
from ..extensions import get_redis, get_store
from . import bp, conversation, handoff
from .accounts import Counsellor
from .auth import current_counsellor, first_in_session, supervisor_required

# How far back in a transcript the list looks for the texter's and the counsellor's last words: a
# texter whose last message is further back than this has long had an answer.
TAIL = 50
# Long enough for the counsellor's page to hear it was taken over, however long they were away.
TAKEN_SECONDS = 24 * 3600


@dataclass
class Watched:
    """One line of the supervisor's list of live conversations."""

    row: handoff.Row
    texter_ago: float | None  # seconds since the texter's last message (None: none in the transcript's tail)
    reply_ago: float | None  # seconds since the counsellor's last reply

    @property
    def unanswered(self) -> float:
        """Seconds the texter's last message has waited for a reply (0 once answered)."""
        if self.texter_ago is None or (self.reply_ago is not None and self.reply_ago <= self.texter_ago):
            return 0.0
        return self.texter_ago


def watched() -> list[Watched]:
    """Every conversation a counsellor holds: the riskiest first, then the texter waiting longest."""
    store, rows, now = get_store(), [], time.time()
    for row in handoff.active_rows():
        tail = store.transcript(row.conv.id, -TAIL, -1)
        texter = _last(tail, lambda item: item["from"] == "texter")
        reply = _last(tail, lambda item: item["from"] == "counsellor" and item.get("by") != "system")
        rows.append(Watched(row, None if texter is None else now - texter, None if reply is None else now - reply))
    rows.sort(key=lambda w: (-RISK_ORDER.index(w.row.priority), -w.unanswered, -w.row.waited))
    return rows


def _last(items: list[dict], wanted) -> float | None:
    return next((item["at"] for item in reversed(items) if wanted(item)), None)


def taken_key(conv_id: str) -> str:
    return f"console:taken:{conv_id}"


def taken_by(counsellor: Counsellor, conv) -> str | None:
    """The supervisor who took this conversation over from `counsellor`, while they still hold it."""
    found = get_redis().hmget(taken_key(conv.id), "from", "by")
    by = found[1].decode() if found[1] else None
    return by if found[0] and found[0].decode() == counsellor.name and by == conv.counsellor else None


def _holder_besides(me: Counsellor, conv_id: str) -> str:
    conv = get_store().load(conv_id)
    if conv is None:
        raise handoff.Gone("this conversation no longer exists")
    if conv.handoff != "active" or conv.counsellor in (None, me.name):
        raise handoff.NotHolder("no other counselor holds this conversation now")
    return conv.counsellor


def whisper(me: Counsellor, conv_id: str, text: str) -> None:
    """A note only counsellors see (never the texter), marked as a supervisor's word to the holder."""
    _holder_besides(me, conv_id)
    handoff.note(me, conv_id, text, whisper=True)


def take_over(me: Counsellor, conv_id: str) -> str:
    """The supervisor takes the conversation from whoever holds it; returns who that was."""
    former = _holder_besides(me, conv_id)
    # Written first, so that the counsellor's page, refreshed by the transfer's own event, finds it.
    client = get_redis()
    pipe = client.pipeline(transaction=True)
    pipe.hset(taken_key(conv_id), mapping={"from": former, "by": me.name})
    pipe.expire(taken_key(conv_id), TAKEN_SECONDS)
    pipe.execute()
    handoff.transfer(me, conv_id, me.name)
    return former


# -- views -------------------------------------------------------------------------


@bp.get("/all/active")
@supervisor_required
def active_live():
    """The list of live conversations alone; the overview polls it, so the times since stay true."""
    return render_template("console/_monitor_rows.html", active=watched())


@bp.get("/c/<conv_id>/monitor")
@supervisor_required
def monitor(conv_id):
    conversation._load(conv_id)  # 404 before the audit trail says it was watched
    if first_in_session(f"monitor:{conv_id}"):
        audit.record(get_redis(), current_counsellor().name, "monitor", conv_id)
    return conversation._page(conv_id, monitoring=True)


@bp.get("/c/<conv_id>/monitor/live")
@supervisor_required
def monitor_live(conv_id):
    return render_template("console/_conversation_live.html",
                           **conversation._live_context(conversation._load(conv_id), monitoring=True))


@bp.post("/c/<conv_id>/whisper")
@supervisor_required
def whisper_view(conv_id):
    text = request.form.get("text", "")
    return conversation._change(conv_id, lambda me: whisper(me, conv_id, text),
                                url_for("console.monitor", conv_id=conv_id), "Whisper not sent",
                                said=lambda _: "Whisper sent. Only counselors see it; the texter never does.",
                                note_draft=text, monitoring=True)


@bp.post("/c/<conv_id>/take-over")
@supervisor_required
def take_over_view(conv_id):
    return conversation._change(conv_id, lambda me: take_over(me, conv_id),
                                url_for("console.conversation", conv_id=conv_id), "Not taken over",
                                said=lambda former: f"You took this conversation over from {former}.",
                                monitoring=True)
