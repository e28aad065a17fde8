"""Sending a follow-up at its window's start (bot.followups), at most once and surely once.

Everything is checked again when it is due, under the conversation's lock: the record is still there
(not erased by DELETE, not expired under retention), the texter still agreed to be texted first, has not
sent STOP, is not blocked, and it is not between 9 p.m. and 8 a.m. in the help line's time zone unless
they chose such a time (then it waits for 08:00 if the window is still open, or is skipped; a skip is
recorded with why). Then the catalog text, in the texter's language, goes through bot.outbound's
queue_reply (sent exactly once by workers.sender, retried like every reply) in one transaction with the
follow-up marked sent and the conversation told so (its answer re-opens it: bot.followups.reopen).

A worker killed before that transaction leaves the follow-up scheduled, and RQ runs the job again; one
killed after it leaves it sent, and the job run again does nothing.
"""
from __future__ import annotations

import time

from flask import current_app

from bot import followups
from bot.errors import NoConsent, RecipientOptedOut
from bot.extensions import flow_engine, get_store
from bot.outbound import check_may_text, queue_reply

from . import context

# A job may start a little before its time (the scheduler looks every second or so); not earlier than this.
EARLY = 60


def send(followup_id: str) -> str:
    """The job: what became of the follow-up ("sent", "moved", "skipped: why", or "nothing")."""
    with context.app().app_context():
        return due(followup_id, time.time())


def due(followup_id: str, now: float) -> str:
    found = followups.load(followup_id)
    if found is None:
        return "nothing"  # erased or expired
    store = get_store()
    session = store.begin(found.conv)
    try:
        # Read again, now that nothing else changes them: the window may have changed while this job waited.
        found, conv = followups.load(followup_id), session.conv
        if found is None or found.status != "scheduled" or now < found.start - EARLY:
            store.release(session)
            return "nothing"  # cancelled, sent or skipped already, or a job for a window since changed
        why = _why_not(found, conv, now)
        if why == "moved":
            followups.move(found, followups.quiet_ends(now, followups.zone()))
            store.release(session)
            return why
        if why:
            followups.skipped(found, why)
            store.release(session)
            return f"skipped: {why}"
        text = flow_engine(current_app.config["HELPLINE_NAME"]).say(conv, followups.CATALOG_KEYS[found.kind])
        conv.slots[followups.SENT_SLOT] = followups.sent_slot(found, now)
        author = "system" if found.by == followups.TEXTER else found.by

        def also(pipe) -> None:
            queue_reply(found.conv, text, author, pipe=pipe)
            followups.mark_sent(pipe, found)
    except BaseException:
        store.release(session)
        raise
    store.commit(session, conv, also=also)
    return "sent"


def _why_not(found: followups.FollowUp, conv, now: float) -> str:
    """Why it must not go now: a reason to record, "moved" (to 08:00), or "" to send it."""
    if conv is None:
        return "the conversation is no longer kept"
    try:
        check_may_text(conv)
    except RecipientOptedOut:
        return "the texter sent STOP"
    except NoConsent:
        return "not safe to text now" if conv.slots.get("quiet") else "no consent to text first"
    if followups.blocked(conv.id):
        return "the sender is blocked"
    if now >= found.end:
        return "its window passed before a worker could send it"
    zone = followups.zone()
    if not found.chosen_quiet and followups.is_quiet(now, zone):
        return "moved" if followups.quiet_ends(now, zone) < found.end else "its window falls in quiet hours"
    return ""
