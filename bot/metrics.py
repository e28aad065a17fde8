"""Counters kept in Redis, so that every web process and worker adds to the same numbers.

Why Redis and not prometheus-client's multiprocess mode: the help line runs several gunicorn
processes and RQ workers, possibly on several hosts, and a scrape through a load balancer reaches
one process at random. Counters that live in Redis are whole from any process, survive restarts,
and cost no extra round trip: the engine adds its increments to the MULTI/EXEC that saves the
message. The supervisor dashboard reads the same counters, kept per local day.

Nothing here carries personal data: labels and fields are channels, priorities, reasons, menu
paths, triage levels and outcomes; the only ids are HMAC conversation ids inside key values.
"""
from __future__ import annotations

import hmac
import ipaddress
import math
import threading
import time
from bisect import bisect_left
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import redis
from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from rq.registry import FailedJobRegistry

from . import audit
from .engine import handed_off
from .waiting import _BAND, PRIORITIES
from .waiting import KEY as WAITING_KEY

TOTALS = "st:all"  # cumulative counters for /metrics
CURSOR = "st:audit"  # the last audit entry folded into the counters
FOLD_LOCK = "st:fold"
DAY_TTL = 400 * 86400  # a year of daily counters, for the weekly view and year-on-year questions
QUEUED_TTL = 30 * 86400
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)
TIMED_ENDPOINTS = ("sms.inbound", "chat.post_message")  # answers a texter waits on
PENDING_EVERY = 1.0  # seconds: how often a message's save also carries this process's latencies

bp = Blueprint("metrics", __name__)

# KEYS: the totals hash and a day's hash; ARGV: the day's TTL, how many totals follow, then field/amount pairs
# (the totals first, then the day's).
_COUNT = """
local totals = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('hincrby', (i - 3) / 2 < totals and KEYS[1] or KEYS[2], ARGV[i], ARGV[i + 1])
end
if #ARGV > 2 + 2 * totals then redis.call('expire', KEYS[2], ARGV[1]) end
"""


def day_key(day: date) -> str:
    return f"st:d:{day.isoformat()}"


def waits_key(day: date) -> str:
    return f"st:w:{day.isoformat()}"


def queued_key(conv_id: str) -> str:
    return f"st:q:{conv_id}"


def bucket(value: float, bounds: tuple) -> str:
    """The smallest upper bound that holds value ("+Inf" past the last)."""
    return next((f"{b:g}" for b in bounds if value <= b), "+Inf")


def menu_paths(flow) -> dict[str, str]:
    """Catalog key said first on each menu path -> the option's label (e.g. "ask_category" -> "find_help")."""
    menu = flow.states.get("menu")
    paths = {}
    for opt in menu.options if menu else ():
        key = opt.say or flow.states[opt.branches[0].to].say
        if key:
            paths[key] = opt.label
    return paths


class Stats:
    """Counts messages, handoffs and console outcomes; one instance per process in app.extensions."""

    def __init__(self, redis_client: redis.Redis, timezone: str, flow, clock=time.time):
        self.redis, self.tz, self.clock = redis_client, ZoneInfo(timezone), clock
        self.paths = menu_paths(flow)
        # Webhook latencies are known only after the answer is written; they wait here and go to
        # Redis with a message's save (at most once a second, so a busy line does not add their
        # counters to every save) or with a scrape: they cost no round trip.
        self._pending: Counter = Counter()
        self._taken_at = 0.0
        self._lock = threading.Lock()
        self._latency_keys: dict[str, tuple[str, ...]] = {}
        self._today = (0.0, 0.0, "")  # [start, end) of the local day last counted in, and its hash's key

    def day(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, self.tz).date()

    def _day_key(self, ts: float) -> str:
        """The key of ts's local day, worked out once a day rather than once a message (issue 17)."""
        start, end, key = self._today
        if start <= ts < end:
            return key
        day = self.day(ts)
        midnight = datetime.combine(day, datetime.min.time(), self.tz)  # a DST day is 23 or 25 hours long
        # Its last microsecond is left out: datetime rounds a time to the microsecond, and one half a
        # microsecond before midnight reads as the next day (day() works it out each time).
        key = day_key(day)
        self._today = (midnight.timestamp(), (midnight + timedelta(days=1)).timestamp() - 1e-6, key)
        return key

    # -- what a message adds, and writes inside someone else's pipeline ------------------

    def message(self, channel: str, before: tuple, conv, step, now: float, priority: str) -> list[tuple]:
        """The counters one inbound message adds, as ConversationStore.commit takes them;
        `before` is (new, state, handoff, risk)."""
        was_new, state, handoff, risk = before
        totals = Counter({f"in|{channel}": 1})
        daily = Counter({"messages": 1})
        if step.replies:
            totals[f"out|{channel}"] += len(step.replies)
        if was_new:
            totals[f"conversations|{channel}"] += 1
            daily["conversations"] += 1
            daily[f"channel|{channel}"] += 1
            daily[f"lang|{conv.lang}"] += 1  # the language of the first message, as the engine read it
        if state == "menu":
            path = next((self.paths[k] for k in step.keys if k in self.paths), None)
            if path:
                daily[f"path|{path}"] += 1
        if conv.risk != risk:
            daily[f"triage|{conv.risk}"] += 1
        if handed_off(before, conv, step):
            reason = "tip" if step.effect("record_tip") is not None else conv.slots.get("reason", "counsellor")
            totals[f"handoffs|{priority}"] += 1
            daily[f"handoff|{reason}"] += 1
            daily[f"priority|{priority}"] += 1
        totals.update(self._take_pending(every=PENDING_EVERY))
        return [(TOTALS, 0, totals), (self._day_key(now), DAY_TTL, daily)]

    def queued(self, pipe, conv_id: str, since: float) -> None:
        """Remember when a conversation was handed off, for its wait once a counsellor claims it."""
        pipe.set(queued_key(conv_id), since, ex=QUEUED_TTL)

    def count(self, client_or_pipe, name: str, label: str, n: int = 1) -> None:
        """A counter from outside the message path, e.g. count(pipe, "send_failed", "sms"): cumulative for
        /metrics and in today's hash, for the dashboard and the reports."""
        field = f"{name}|{label}"
        self._add(client_or_pipe, Counter({field: n}), self.day(self.clock()), Counter({field: n}))

    def observe_latency(self, endpoint: str, seconds: float) -> None:
        # Every webhook comes here: its keys are written once per endpoint (issue 17), one per bucket()
        # of each bound and past the last, so that bisect_left's index picks the one bucket() names.
        keys = self._latency_keys.get(endpoint)
        if keys is None:
            keys = self._latency_keys[endpoint] = (
                *(f"latency|{endpoint}|{bucket(b, LATENCY_BUCKETS)}" for b in (*LATENCY_BUCKETS, math.inf)),
                f"latency_count|{endpoint}", f"latency_ms|{endpoint}")
        with self._lock:
            pending = self._pending
            pending[keys[bisect_left(LATENCY_BUCKETS, seconds)]] += 1
            pending[keys[-2]] += 1
            pending[keys[-1]] += round(seconds * 1000)

    def flush(self, pipe) -> None:
        """Queue this process's pending latency observations on pipe."""
        pending = self._take_pending()
        if pending:
            self._add(pipe, pending, self.day(self.clock()), Counter())

    def _take_pending(self, every: float = 0.0) -> Counter:
        with self._lock:
            if time.monotonic() - self._taken_at < every:
                return Counter()
            pending, self._pending, self._taken_at = self._pending, Counter(), time.monotonic()
        return pending

    def _add(self, pipe, totals: Counter, day: date, daily: Counter) -> None:
        # One command, not one per counter: the message transaction's cost grows with its command count.
        flat = [x for field, n in totals.items() for x in (field, n)] + [x for field, n in daily.items() for x in (field, n)]
        pipe.eval(_COUNT, 2, TOTALS, day_key(day), DAY_TTL, len(totals), *flat)

    # -- console actions, folded in from the audit trail -----------------------------

    def fold_console_actions(self) -> None:
        """Count claims (with how long each waited) and ended conversations (by outcome).

        The console writes an audit entry for every claim and end; folding them here keeps
        counting out of the console's code. One process folds at a time, under a short lock.
        """
        token = str(time.monotonic())
        if not self.redis.set(FOLD_LOCK, token, nx=True, px=5000):
            return
        try:
            while True:
                cursor = (self.redis.get(CURSOR) or b"0-0").decode()
                rows = self.redis.xrange(audit.STREAM, min=f"({cursor}", max="+", count=500)
                if not rows:
                    return
                claims = [(row.decode(), f[b"conv"].decode(), float(f[b"at"]))
                          for row, f in rows if f[b"action"] == b"claim"]
                queued = self.redis.mget([queued_key(c) for _, c, _ in claims]) if claims else []
                pipe = self.redis.pipeline(transaction=True)
                for (row, conv_id, at), since in zip(claims, queued):
                    day = self.day(at)
                    self._add(pipe, Counter({"claimed": 1}), day, Counter({"claimed": 1}))
                    if since is not None:
                        wait = max(0.0, at - float(since))
                        pipe.hincrby(TOTALS, f"wait|{bucket(wait, WAIT_BUCKETS)}", 1)
                        pipe.hincrby(TOTALS, "wait_count", 1)
                        pipe.hincrbyfloat(TOTALS, "wait_sum", wait)
                        # Named by the audit row, not the conversation: kept past the retention, the
                        # day's waits must not say which conversation waited.
                        pipe.zadd(waits_key(day), {row: wait})
                        pipe.expire(waits_key(day), DAY_TTL)
                        pipe.delete(queued_key(conv_id))
                for _, f in rows:
                    if f[b"action"] == b"end":
                        outcome = f[b"detail"].decode() or "ended"
                        self._add(pipe, Counter(), self.day(float(f[b"at"])), Counter({f"outcome|{outcome}": 1}))
                pipe.set(CURSOR, rows[-1][0])
                pipe.execute()
        finally:
            if self.redis.get(FOLD_LOCK) == token.encode():
                self.redis.delete(FOLD_LOCK)

    # -- reads ------------------------------------------------------------------

    def totals(self) -> dict[str, float]:
        return {k.decode(): float(v) for k, v in self.redis.hgetall(TOTALS).items()}

    def days(self, first: date, last: date) -> dict[date, dict[str, int]]:
        """Daily counters from first to last (inclusive), one round trip."""
        span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        pipe = self.redis.pipeline(transaction=False)
        for day in span:
            pipe.hgetall(day_key(day))
        return {day: {k.decode(): int(float(v)) for k, v in raw.items()} for day, raw in zip(span, pipe.execute())}

    def waits(self, first: date, last: date) -> list[float]:
        """Seconds each conversation claimed between first and last waited, in order."""
        span = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        pipe = self.redis.pipeline(transaction=False)
        for day in span:
            pipe.zrange(waits_key(day), 0, -1, withscores=True)
        return sorted(score for rows in pipe.execute() for _, score in rows)

    def queue_now(self) -> tuple[int, float | None]:
        """(conversations waiting, seconds the longest has waited), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(WAITING_KEY)
        # Priority comes first in the score, so the oldest arrival is the first of some band, not of the set.
        for band in range(len(PRIORITIES)):
            pipe.zrangebyscore(WAITING_KEY, band * _BAND, (band + 1) * _BAND - 1, start=0, num=1, withscores=True)
        depth, *firsts = pipe.execute()
        arrivals = [rows[0][1] % _BAND / 1000 for rows in firsts if rows]
        return int(depth), (max(0.0, self.clock() - min(arrivals)) if arrivals else None)


def median(values: list[float]) -> float | None:
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def memory_ratio(info: dict) -> float | None:
    """Redis's used memory as a share of its maxmemory (from INFO memory); None without a maxmemory."""
    limit = int(info.get("maxmemory") or 0)
    return int(info["used_memory"]) / limit if limit else None


class HelplineCollector:
    """prometheus-client Collector that reads the shared counters at scrape time (one pipeline)."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        stats: Stats = self.app.extensions["stats"]
        totals = stats.totals()
        depth, longest = stats.queue_now()

        def family(cls, name, doc, prefix, label):
            metric = cls(name, doc, labels=[label])
            for field, value in sorted(totals.items()):
                kind, _, value_label = field.partition("|")
                if kind == prefix:
                    metric.add_metric([value_label], value)
            return metric

        yield family(CounterMetricFamily, "helpline_messages_in", "Inbound texter messages.", "in", "channel")
        yield family(CounterMetricFamily, "helpline_messages_out", "Messages sent to texters (bot replies and counsellor messages).",
                     "out", "channel")
        yield family(CounterMetricFamily, "helpline_conversations", "Conversations started.", "conversations", "channel")
        yield family(CounterMetricFamily, "helpline_handoffs", "Conversations queued for a counsellor.", "handoffs", "priority")
        yield family(CounterMetricFamily, "helpline_send_failures", "Outbound messages the carrier refused or lost.",
                     "send_failed", "channel")
        yield CounterMetricFamily("helpline_claims", "Conversations a counsellor picked up.", value=totals.get("claimed", 0.0))
        yield GaugeMetricFamily("helpline_queue_depth", "Conversations waiting for a counsellor now.", value=depth)
        yield GaugeMetricFamily("helpline_longest_wait_seconds", "How long the longest-waiting conversation has waited.",
                                value=longest or 0.0)
        yield GaugeMetricFamily("helpline_failed_jobs", "RQ jobs in the failed registry.",
                                value=sum(FailedJobRegistry(queue=q).count for q in self.app.extensions["queues"]))
        ratio = memory_ratio(self.app.extensions["redis"].info("memory"))
        yield GaugeMetricFamily("helpline_redis_memory_ratio",
                                "Redis used memory over its maxmemory (0 when it has none); alert at 0.8.",
                                value=ratio or 0.0)
        yield HistogramMetricFamily("helpline_wait_seconds", "Time from joining the queue to a counsellor's claim.",
                                    buckets=_cumulative(totals, "wait|", WAIT_BUCKETS), sum_value=totals.get("wait_sum", 0.0))
        latency = HistogramMetricFamily("helpline_webhook_seconds", "Time to answer a texter's webhook.",
                                        labels=["endpoint"])
        for endpoint in sorted({f.split("|")[1] for f in totals if f.startswith("latency_count|")}):
            latency.add_metric([endpoint], _cumulative(totals, f"latency|{endpoint}|", LATENCY_BUCKETS),
                               sum_value=totals.get(f"latency_ms|{endpoint}", 0.0) / 1000)
        yield latency


def _cumulative(totals: dict, prefix: str, bounds: tuple) -> list[tuple[str, float]]:
    running, out = 0.0, []
    for b in [f"{b:g}" for b in bounds] + ["+Inf"]:
        running += totals.get(prefix + b, 0.0)
        out.append((b, running))
    return out


# -- the web side ---------------------------------------------------------------


def init_app(app: Flask) -> None:
    """/metrics (the webhooks' timing: bot.every_request)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HelplineCollector(app))
    app.extensions["metrics_registry"] = registry
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics():
    _only_operators()
    stats: Stats = current_app.extensions["stats"]
    try:
        stats.fold_console_actions()
        pipe = stats.redis.pipeline(transaction=False)
        stats.flush(pipe)
        pipe.execute()
        body = generate_latest(current_app.extensions["metrics_registry"])
    except redis.RedisError:
        abort(503, "Redis is unavailable")
    return Response(body, mimetype="text/plain; version=0.0.4")


def _only_operators() -> None:
    """With METRICS_TOKEN: that bearer token. Without: only a direct request from this machine."""
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            abort(403)
        return
    # A forwarding header means a proxy on this machine passed on someone else's request.
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        abort(403)
    try:
        local = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        local = False
    if not local:
        abort(403)
