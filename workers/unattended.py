"""Emergencies nobody is free for: tell the supervisors, once per wait.

An emergency that has waited EMERGENCY_UNATTENDED_SECONDS while no online counsellor has a free place
(everyone at their capacity or on a break, or nobody online) is flagged for the console's banner and
posted to ALERT_WEBHOOK_URL with ids and counts only, once per wait: an alert the webhook did not take (it
refused, or the worker died mid-post) is posted again by the first check after its lease ends. A periodic
job rather than a check on a console page: when nobody is online no page asks, and that is the case that
matters most.

Scheduling as the retention purge does: the worker schedules the next check when it starts, every run
schedules the one after it first, and the job id names the slot, so any number of workers run one.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from flask import current_app
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Job

from bot.console import capacity
from bot.console.handoff import ACTIVE
from bot.errors import SendFailed
from bot.extensions import get_redis, get_waiting

from . import alerts, context

log = logging.getLogger(__name__)

JOB = "workers.unattended.check"
EVERY_SECONDS = 15  # an alert comes at most this long after the wait passes the setting


def schedule(queue: Queue, now: float | None = None) -> Job | None:
    """Schedule the check at the next slot; None when that one is already scheduled."""
    slot = int((time.time() if now is None else now) // EVERY_SECONDS) + 1
    try:
        return queue.enqueue_at(datetime.fromtimestamp(slot * EVERY_SECONDS, timezone.utc), JOB,
                                job_id=f"unattended-{slot}", unique=True, result_ttl=0, failure_ttl=86400)
    except DuplicateJobError:
        return None


def check() -> dict:
    """Scheduled job: schedule the next run, then look; returns counts (never ids or content)."""
    app = context.app()
    schedule(app.extensions["queue"])
    with app.app_context():
        return sweep(app.config["EMERGENCY_UNATTENDED_SECONDS"])


def sweep(longer_than: float, now: float | None = None) -> dict:
    """One look at the queue; safe to run at any time, any number of times (in an app context)."""
    client, waiting, now = get_redis(), get_waiting(), time.time() if now is None else now
    forgotten = capacity.forget_left(client, waiting)
    late = capacity.emergencies_waiting(waiting, longer_than, now)
    alerted = 0
    if late:
        nobody, online = capacity.nobody_free(client, ACTIVE)
        if nobody:
            for found in late:
                if not capacity.flag(client, found.conv_id, now):
                    continue
                try:
                    _alert(found, online)
                except SendFailed:
                    continue  # logged by alerts.post; the first check after its lease asks again
                capacity.sent(client, found.conv_id)
                alerted += 1
    return {"late": len(late), "alerted": alerted, "forgotten": forgotten}


def _alert(found: capacity.Unattended, online: int) -> None:
    url = current_app.config.get("ALERT_WEBHOOK_URL")
    if not url:
        log.warning("emergency %s has waited %d s with no counsellor free; no ALERT_WEBHOOK_URL is set, only "
                    "the console shows it", found.conv_id, found.waited)
        return
    public = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    alert = {
        "kind": "emergency_unattended",
        "helpline": current_app.config["HELPLINE_NAME"],
        "conversation": found.conv_id,
        "priority": "emergency",
        "waited_seconds": int(found.waited),
        "counsellors_online": online,
        "counsellors_free": 0,
        "console": f"{public}/console/c/{found.conv_id}",
        "at": time.time(),
    }
    alerts.post(url, alert, found.conv_id)
