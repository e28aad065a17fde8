"""Runs RQ workers with the app's settings and the scheduler for timed jobs."""
from __future__ import annotations

from rq import Worker
from rq.serializers import JSONSerializer

from . import context, retention, unattended

# RQ renews a worker's heartbeat every worker_ttl - 15 seconds while idle (and while a job runs);
# a minute keeps /healthz's WORKER_HEARTBEAT_MAX_AGE (two minutes) well above one renewal.
WORKER_TTL = 60
# RQ looks for jobs abandoned by a killed worker in its maintenance pass (every 10 minutes by
# default); a counsellor's reply should not wait that long, so look every minute.
MAINTENANCE_INTERVAL = 60


def run(burst: bool = False, name: str | None = None) -> bool:
    """Work the help line's queues, counsellors' replies first, until stopped (or until empty, with burst)."""
    app = context.app()
    queue = app.extensions["queue"]
    retention.schedule(queue, app.config["RETENTION_PURGE_MINUTES"])
    unattended.schedule(queue)
    # The app's factory has already sent this process's logs (RQ's too) through bot.logs as JSON lines.
    worker = Worker(list(app.extensions["queues"]), connection=app.extensions["redis"], serializer=JSONSerializer, name=name,
                    worker_ttl=WORKER_TTL, maintenance_interval=MAINTENANCE_INTERVAL)
    return worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
