"""The retention purge: removes on a schedule what the per-key TTLs alone do not.

- waiting-queue entries whose conversation has expired (the queue is one sorted set, no TTL);
- a TTL on every key that holds personal data and lacks one (or has a longer one): a safety net
  for records written by code that forgot to set it;
- RQ's finished and failed job records older than the retention period, and failed-reply
  entries (bot.outbound.FAILED) as old;
- audit entries older than the audit retention (they hold no content, so they are kept longer);
- follow-ups (bot.followups) whose record expired, from the upcoming list;
- warm referrals unchanged for the retention period, from their agency's list (bot.referrals).

Scheduling: the worker schedules the next run when it starts, and every run schedules the
one after it before it does its work (so a failing run does not break the chain). Runs fall
on multiples of RETENTION_PURGE_MINUTES and the job id names the slot, so any number of
workers schedule exactly one job per slot.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timezone

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from bot import audit, followups, referrals
from bot.outbound import FAILED as FAILED_REPLIES
from bot.waiting import KEY as WAITING_KEY

from . import context

log = logging.getLogger(__name__)

# Every key family that holds a number or a message (encrypted) and so must expire:
# conversations, transcripts, dedupe records, outbound records, delivery statuses, contact records, follow-ups,
# referrals.
PERSONAL = ("c:*", "t:*", "m:*", "o:*", "s:*", "cr:*", "fu:*", "rf:*")
JOB = "workers.retention.purge"
SCAN_BATCH = 500

# Drops waiting-queue members whose conversation document is gone, in one atomic step each,
# so a conversation queued again in between is never dropped by mistake.
_DROP_EXPIRED = """
local dropped = 0
for _, id in ipairs(ARGV) do
  if redis.call('exists', 'c:' .. id) == 0 then
    dropped = dropped + redis.call('zrem', KEYS[1], id)
  end
end
return dropped
"""


def schedule(queue: Queue, every_minutes: int, now: float | None = None) -> Job | None:
    """Schedule the purge at the next multiple of the interval; None when that run is already scheduled."""
    interval = max(1, every_minutes) * 60
    slot = int((time.time() if now is None else now) // interval) + 1
    try:
        return queue.enqueue_at(datetime.fromtimestamp(slot * interval, timezone.utc), JOB,
                                job_id=f"retention-{slot}", unique=True, result_ttl=0, failure_ttl=7 * 86400)
    except DuplicateJobError:
        return None


def purge() -> dict:
    """Scheduled job: schedule the next run, then purge; returns counts (never ids or content)."""
    app = context.app()
    queue = app.extensions["queue"]
    schedule(queue, app.config["RETENTION_PURGE_MINUTES"])
    counts = sweep(app.extensions["redis"], app.extensions["queues"], app.config["HELPLINE_RETENTION_DAYS"],
                   app.config["HELPLINE_AUDIT_RETENTION_DAYS"])
    log.info("retention purge: %s", counts)
    return counts


def sweep(client: redis.Redis, queues: Iterable[Queue], retention_days: int, audit_days: int,
          now: float | None = None) -> dict:
    """One purge pass over the store; safe to run at any time, any number of times."""
    now = time.time() if now is None else now
    retention = int(retention_days * 86400)
    return {
        "waiting": drop_expired_waiting(client),
        "ttl_set": cap_ttls(client, retention),
        "jobs": sum(delete_old_jobs(queue, now - retention) for queue in queues),
        "failed_replies": int(client.zremrangebyscore(FAILED_REPLIES, 0, now - retention)),
        "audit": trim_audit(client, now - audit_days * 86400),
        "followups": followups.drop_expired(client),
        "referrals": referrals.drop_expired(client, now - retention, SCAN_BATCH),
    }


def drop_expired_waiting(client: redis.Redis) -> int:
    script = client.register_script(_DROP_EXPIRED)
    dropped = 0
    for start in range(0, client.zcard(WAITING_KEY), SCAN_BATCH):
        ids = [m.decode() for m in client.zrange(WAITING_KEY, start, start + SCAN_BATCH - 1)]
        if ids:
            dropped += script(keys=[WAITING_KEY], args=ids)
    return dropped


def cap_ttls(client: redis.Redis, retention: int) -> int:
    """Give every personal-data key without a TTL (or with a longer one) the retention TTL."""
    changed = 0
    for pattern in PERSONAL:
        for name in client.scan_iter(match=pattern, count=SCAN_BATCH):
            ttl = client.ttl(name)
            if ttl == -1 or ttl > retention:
                changed += bool(client.expire(name, retention))
    return changed


def delete_old_jobs(queue: Queue, cutoff: float) -> int:
    """Delete finished and failed job records that ended before cutoff (their registries too)."""
    deleted = 0
    for registry in (FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)):
        registry.cleanup()
        ids = registry.get_job_ids(cleanup=False)
        for job_id, job in zip(ids, Job.fetch_many(ids, connection=queue.connection, serializer=queue.serializer)):
            if job is None:
                registry.remove(job_id)
            elif job.ended_at is not None and job.ended_at.timestamp() < cutoff:
                job.delete()
                deleted += 1
    return deleted


def trim_audit(client: redis.Redis, cutoff: float) -> int:
    """XTRIM MINID: drop audit entries older than cutoff (stream ids start with milliseconds)."""
    return int(client.xtrim(audit.STREAM, minid=f"{int(cutoff * 1000)}-0", approximate=False))
