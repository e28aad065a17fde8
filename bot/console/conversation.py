"""One conversation: transcript, reply, notes, canned text, release, transfer, end, reveal."""
from __future__ import annotations

import re

from flask import abort, redirect, render_template, request, url_for

from .. import audit
from ..errors import SendFailed
from ..extensions import get_redis, get_store
from . import accounts, bp, canned, handoff, monitoring, presence, wrapup
from .auth import current_counsellor, first_in_session, login_required, supervisor_required, tell

_CONV_ID = re.compile(r"^[a-z2-7]{32}$")  # Vault.conversation_id: base32 of 20 bytes
_OUTBOUND_ID = re.compile(r"^[0-9a-f]{24}$")  # bot.outbound: token_hex(12)


def _load(conv_id: str):
    conv = get_store().load(conv_id) if _CONV_ID.match(conv_id) else None
    if conv is None:
        abort(404, "This conversation does not exist (any more): the texter may have erased it.")
    me = current_counsellor()
    if not handoff.can_view(me, conv):
        by = monitoring.taken_by(me, conv)
        abort(403, f"Taken over by {by}, a supervisor, who holds this conversation now." if by
              else f"{conv.counsellor or 'Another counselor'} holds this conversation.")
    return conv


def _live_context(conv, monitoring: bool = False) -> dict:
    """What the live region shows; rendering it also counts the counsellor as viewing the conversation."""
    me = current_counsellor()
    can_text, why_not = handoff.may_text(conv)
    transcript = get_store().transcript(conv.id)
    client = get_redis()
    return {
        "conv": conv, "transcript": transcript, "delivery": handoff.delivery(transcript),
        "holding": not monitoring and handoff.holds(me, conv), "monitoring": monitoring,
        "can_text": can_text, "why_not": why_not,
        "viewers": presence.described(client, presence.seen(client, conv.id, me.name)),
    }


def _page(conv_id: str, error: str | None = None, status: int = 200, draft: str = "", note_draft: str = "",
          revealed: str | None = None, monitoring: bool = False, wrapup_draft: dict | None = None):
    conv = _load(conv_id)
    others = [n for n in accounts.names(get_redis()) if n != conv.counsellor]
    return render_template(
        "console/conversation.html", error=error, draft=draft, note_draft=note_draft, revealed=revealed,
        snippets=canned.snippets(conv.lang), others=others, **wrapup.page(conv_id, wrapup_draft),
        **_live_context(conv, monitoring)), status


@bp.get("/c/<conv_id>")
@login_required
def conversation(conv_id):
    _load(conv_id)  # 404/403 before the audit trail says it was opened
    if first_in_session(f"open:{conv_id}"):
        audit.record(get_redis(), current_counsellor().name, "open", conv_id)
    return _page(conv_id)


@bp.get("/c/<conv_id>/live")
@login_required
def conversation_live(conv_id):
    """The status line and transcript alone; the page polls this every second or two."""
    return render_template("console/_conversation_live.html", **_live_context(_load(conv_id)))


@bp.post("/c/<conv_id>/reply")
@login_required
def reply(conv_id):
    text = request.form.get("text", "")
    return _change(conv_id, lambda me: handoff.reply(me, conv_id, text),
                   url_for("console.conversation", conv_id=conv_id, _anchor="reply"), "Not sent", draft=text)


@bp.post("/c/<conv_id>/note")
@login_required
def note(conv_id):
    text = request.form.get("text", "")
    return _change(conv_id, lambda me: handoff.note(me, conv_id, text),
                   url_for("console.conversation", conv_id=conv_id), "Note not saved", note_draft=text,
                   said=lambda _: "Note saved. Only counselors see it.")


@bp.post("/c/<conv_id>/retry/<outbound_id>")
@login_required
def retry(conv_id, outbound_id):
    if not _OUTBOUND_ID.match(outbound_id):
        abort(404, "There is no such reply.")
    return _change(conv_id, lambda me: handoff.retry(me, conv_id, outbound_id),
                   url_for("console.conversation", conv_id=conv_id, _anchor="transcript"), "Not sent again",
                   said=lambda _: "Sending the reply again. Its status shows beside it.")


@bp.post("/c/<conv_id>/release")
@login_required
def release(conv_id):
    return _change(conv_id, lambda me: handoff.release(me, conv_id), url_for("console.index"),
                   said=lambda _: "Conversation put back in the queue.")


@bp.post("/c/<conv_id>/transfer")
@login_required
def transfer(conv_id):
    to = request.form.get("to", "").strip().lower()
    return _change(conv_id, lambda me: handoff.transfer(me, conv_id, to), url_for("console.index"),
                   said=lambda _: f"Conversation transferred to {to}.")


@bp.post("/c/<conv_id>/end")
@login_required
def end(conv_id):
    answers = wrapup.answers(request.form)
    return _change(conv_id, lambda me: handoff.end(me, conv_id, answers), url_for("console.index"), "Not ended",
                   said=lambda closing_sent: _ended(conv_id, answers, closing_sent),
                   wrapup_draft=answers)


def _ended(conv_id: str, answers: dict, closing_sent: bool) -> str:
    outcome = wrapup.FORM.check(answers)[0]["outcome"]  # as the end read it (trimmed, the first given), not as posted
    said = f"Conversation ended (outcome: {wrapup.OUTCOMES[outcome].lower()})."
    if closing_sent:
        return said + " The closing message is on its way."
    conv = get_store().load(conv_id)
    why = handoff.may_text(conv)[1] if conv is not None else ""
    return f"{said} No closing message was sent. {why}".rstrip()


@bp.post("/c/<conv_id>/reveal")
@supervisor_required
def reveal(conv_id):
    _load(conv_id)
    return _page(conv_id, revealed=handoff.reveal(current_counsellor(), conv_id))


def _change(conv_id: str, action, then: str, failed: str = "Not done", said=None, **drafts):
    """Do it and go on to `then` (saying what happened, when `said` words it from the action's result);
    or show the page again with why not (and what was typed)."""
    try:
        done = action(current_counsellor())
    except handoff.Gone:
        abort(404, "This conversation does not exist any more: the texter erased it.")
    except (handoff.NotHolder, handoff.CannotSend, SendFailed) as exc:
        # SendFailed: STOP or no consent, found by bot.outbound as it queued the reply.
        return _page(conv_id, f"{failed}: {exc}.", 409, **drafts)
    except handoff.HandoffError as exc:
        return _page(conv_id, f"{failed}: {exc}.", 400, **drafts)
    if said is not None:
        tell(said(done))
    return redirect(then)
