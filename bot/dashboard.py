"""The supervisor dashboard at /console/dashboard: the queue now, today and this week, failed jobs.

Everything shown is a count from bot.metrics (kept per local day in Redis) or RQ's failed-job
registry: no conversation, number or message appears here. The views register on the console's
blueprint, so its sign-in, CSRF check and error pages apply.
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import abort, current_app, jsonify, redirect, render_template, url_for
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.registry import FailedJobRegistry

from .console import accounts, bp
from .console.auth import current_counsellor, supervisor_required
from .console.wrapup import OUTCOMES
from .extensions import get_queues, get_redis
from .metrics import WAIT_BUCKETS, Stats, bucket, median

DAYS_CHARTED = 14
FAILED_SHOWN = 50
REASONS = {"counsellor": "Asked for a person", "emergency": "Emergency", "triage": "Triage raised it", "tip": "Tip"}
PATHS = {"counsellor": "Talk to a counselor", "questions": "Screening questions", "runaway": "Running away",
         "report": "Report something", "find_help": "Find help nearby", "signs": "Warning signs"}
LEVELS = {"high": "High risk", "emergency": "Emergency"}


def _stats() -> Stats:
    return current_app.extensions["stats"]


def _split(counts: dict[str, int], prefix: str, names: dict[str, str]) -> list[dict]:
    """Counters named prefix|key, in the order of `names` (known ones first, then any others)."""
    found = {k.split("|", 1)[1]: v for k, v in counts.items() if k.startswith(prefix + "|")}
    keys = list(names) + sorted(k for k in found if k not in names)
    return [{"key": k, "label": names.get(k, k.replace("_", " ").capitalize()), "value": found.get(k, 0)} for k in keys]


def _sum(days: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in days:
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    return total


def _period(counts: dict[str, int], waits: list[float]) -> dict:
    return {
        "conversations": counts.get("conversations", 0),
        "messages": counts.get("messages", 0),
        "handoffs": sum(v for k, v in counts.items() if k.startswith("handoff|")),
        "claimed": counts.get("claimed", 0),
        "median_wait": median(waits),
        "paths": _split(counts, "path", PATHS),
        "reasons": _split(counts, "handoff", REASONS),
        "outcomes": _split(counts, "outcome", OUTCOMES),
        "levels": _split(counts, "triage", LEVELS),
        "waits": [{"label": f"≤ {_duration(b)}" if b != "+Inf" else f"> {_duration(WAIT_BUCKETS[-1])}",
                   "value": sum(1 for w in waits if bucket(w, WAIT_BUCKETS) == b)}
                  for b in [f"{b:g}" for b in WAIT_BUCKETS] + ["+Inf"]],
    }


def _duration(seconds: float | str) -> str:
    seconds = float(seconds)
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def dashboard_data() -> dict:
    """Everything the page shows, as plain numbers (also served as JSON for the page's refresh)."""
    stats = _stats()
    stats.fold_console_actions()
    today = stats.day(stats.clock())
    monday = today - timedelta(days=today.weekday())
    first = min(monday, today - timedelta(days=DAYS_CHARTED - 1))
    days = stats.days(first, today)
    depth, longest = stats.queue_now()
    week_days = [days[d] for d in days if d >= monday]
    return {
        "now": {"depth": depth, "longest_wait": longest, "online": len(accounts.online(get_redis())),
                "failed_jobs": sum(FailedJobRegistry(queue=q).count for q in get_queues())},
        "today": _period(days[today], stats.waits(today, today)),
        "week": _period(_sum(week_days), stats.waits(monday, today)),
        "week_starts": monday.isoformat(),
        "daily": [{"day": d.isoformat(), "label": _day_label(d, today), "conversations": c.get("conversations", 0),
                   "handoffs": sum(v for k, v in c.items() if k.startswith("handoff|"))}
                  for d, c in days.items() if d > today - timedelta(days=DAYS_CHARTED)],
    }


def _day_label(day: date, today: date) -> str:
    return "today" if day == today else day.strftime("%a %-d")


def failed_jobs() -> list[dict]:
    """The newest failed jobs: what ran, when it failed and the error's kind (never its message or arguments)."""
    jobs = []
    for queue in get_queues():
        ids = FailedJobRegistry(queue=queue).get_job_ids(0, FAILED_SHOWN - 1)
        jobs += queue.job_class.fetch_many(ids, connection=get_redis(), serializer=queue.serializer)
    rows = []
    for job in jobs:
        if job is None:
            continue
        result = job.latest_result()
        error = (result.exc_string or "").strip().splitlines()[-1:] if result else []
        rows.append({"id": job.id, "func": job.func_name, "ended_at": job.ended_at,
                     "error": error[0].split(":", 1)[0] if error else "unknown"})
    rows.sort(key=lambda row: (row["ended_at"] is not None, row["ended_at"] or 0), reverse=True)
    return rows[:FAILED_SHOWN]


@bp.get("/dashboard")
@supervisor_required
def dashboard():
    return render_template("dashboard.html", data=dashboard_data(), jobs=failed_jobs(), outcomes=OUTCOMES)


@bp.get("/dashboard/data")
@supervisor_required
def dashboard_json():
    return jsonify(dashboard_data())


@bp.post("/dashboard/jobs/<job_id>/retry")
@supervisor_required
def retry_job(job_id: str):
    """Put a failed job back on its queue (the console's CSRF check has already run)."""
    registry = next((r for r in (FailedJobRegistry(queue=q) for q in get_queues()) if job_id in r), None)
    try:
        if registry is None:
            raise NoSuchJobError(job_id)
        registry.requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation):
        abort(404, "That job is no longer in the failed list.")
    current_app.logger.info("failed job requeued", extra={"job": job_id, "by": current_counsellor().name})
    return redirect(url_for("console.dashboard") + "#jobs")
