"""Check-ins from the console: schedule one on a conversation's page, change or cancel it, list what is coming.

Counsellors see and manage the check-ins they scheduled; supervisors everyone's. The lists show no number
and no text: when, what kind, who, and the conversation's channel and language.
"""
from __future__ import annotations

import re
from datetime import datetime

from flask import abort, redirect, render_template, request, url_for

from .. import followups
from ..errors import SendFailed
from ..extensions import get_store
from . import bp, handoff
from .auth import current_counsellor, login_required, tell

_CONV_ID = re.compile(r"^[a-z2-7]{32}$")  # Vault.conversation_id
_FOLLOWUP_ID = re.compile(r"^[0-9a-f]{24}$")  # bot.followups: token_hex(12)


def _window(form) -> tuple[datetime, datetime, str, bool]:
    """(start, end, kind, chosen at night) from the form: a day and a from-to time in the texter's time zone."""
    try:
        day = datetime.strptime(form.get("day", "").strip(), "%Y-%m-%d")
        start, end = (datetime.strptime(form.get(name, "").strip(), "%H:%M") for name in ("from", "to"))
    except ValueError:
        raise followups.FollowUpError("give a day and a from and to time") from None
    tz = followups.zone()
    return (day.replace(hour=start.hour, minute=start.minute, tzinfo=tz),
            day.replace(hour=end.hour, minute=end.minute, tzinfo=tz),
            form.get("kind", ""), form.get("night") == "yes")


def _back(conv_id: str):
    if request.form.get("back") == "conversation" and _CONV_ID.match(conv_id):
        return redirect(url_for("console.conversation", conv_id=conv_id, _anchor="checkins"))
    return redirect(url_for("console.followups_page"))


@bp.post("/c/<conv_id>/checkins")
@login_required
def schedule_checkin(conv_id):
    conv = get_store().load(conv_id) if _CONV_ID.match(conv_id) else None
    if conv is None:
        abort(404, "This conversation does not exist (any more): the texter may have erased it.")
    me = current_counsellor()
    if not handoff.holds(me, conv):
        abort(403, "Only the counselor holding this conversation (or a supervisor) can schedule a check-in.")
    try:
        start, end, kind, night = _window(request.form)
        found = followups.schedule(conv_id, start, end, kind, me.name, chosen_quiet=night)
    except (followups.FollowUpError, SendFailed) as exc:
        abort(400, f"No check-in scheduled: {exc}.")
    tell(f"Check-in scheduled for {when(found)}.")
    return redirect(url_for("console.conversation", conv_id=conv_id, _anchor="checkins"))


def _mine(followup_id: str) -> followups.FollowUp:
    found = followups.load(followup_id) if _FOLLOWUP_ID.match(followup_id) else None
    if found is None:
        abort(404, "There is no such check-in (any more).")
    me = current_counsellor()
    if not (me.supervisor or found.by == me.name):
        abort(403, f"Only {found.by} (or a supervisor) can change this check-in.")
    return found


@bp.post("/checkins/<followup_id>/cancel")
@login_required
def cancel_checkin(followup_id):
    found = _mine(followup_id)
    try:
        followups.cancel(followup_id, current_counsellor().name)
    except followups.FollowUpError as exc:
        abort(409, f"Not cancelled: {exc}.")
    tell("Check-in cancelled: nothing will be sent.")
    return _back(found.conv)


@bp.post("/checkins/<followup_id>/change")
@login_required
def change_checkin(followup_id):
    found = _mine(followup_id)
    try:
        start, end, kind, night = _window(request.form)
        changed = followups.change(followup_id, start, end, kind, current_counsellor().name, chosen_quiet=night)
    except followups.FollowUpError as exc:
        abort(400, f"Not changed: {exc}.")
    except SendFailed as exc:
        abort(409, f"Not changed: {exc}.")
    tell(f"Check-in moved to {when(changed)}.")
    return _back(found.conv)


@bp.get("/followups")
@login_required
def followups_page():
    me = current_counsellor()
    found = followups.upcoming(None if me.supervisor else me.name)
    convs = dict(zip([f.conv for f in found], get_store().load_many([f.conv for f in found])))
    return render_template("console/followups.html", upcoming=[(f, convs.get(f.conv)) for f in found])


def when(found: followups.FollowUp) -> str:
    """"Tue Mar 4, 16:00-18:00" in the help line's time zone."""
    tz = followups.zone()
    start, end = datetime.fromtimestamp(found.start, tz), datetime.fromtimestamp(found.end, tz)
    last = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%a %b %d, %H:%M")
    return f"{start.strftime('%a %b %d, %H:%M')}-{last}"


@bp.context_processor
def _checkins():
    """What the check-in partials read, fetched only on the pages that show them."""
    def checkins_of(conv):
        return {"all": followups.of_conversation(conv.id), "why_not": followups.may_schedule(conv)}

    def checkin_fields(found: followups.FollowUp | None = None) -> dict:
        tz = followups.zone()
        if found is None:
            return {"day": datetime.now(tz).strftime("%Y-%m-%d"), "from": "", "to": "", "kind": "check_in",
                    "night": False}
        start, end = datetime.fromtimestamp(found.start, tz), datetime.fromtimestamp(found.end, tz)
        return {"day": start.strftime("%Y-%m-%d"), "from": start.strftime("%H:%M"), "to": end.strftime("%H:%M"),
                "kind": found.kind, "night": found.chosen_quiet}

    return {"checkins_of": checkins_of, "checkin_fields": checkin_fields, "checkin_when": when,
            "checkin_kinds": followups.KINDS, "checkin_zone": lambda: str(followups.zone())}
