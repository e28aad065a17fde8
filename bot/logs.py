"""Structured logs: one JSON object per line on stderr, with a request (or job) id, and no personal data.

Our own code never puts a number or a message in a log message; this module keeps the rest of
the record from doing it either: an exception is logged as its type and where it was raised,
never its message (which may quote input), and a request is logged by its route, never its path
or query string (which may carry a chat token).
"""
from __future__ import annotations

import json
import logging
import re
import random
import sys
import traceback

from flask import Flask, g, has_app_context, request

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
_MARK = "_helpline_json"
SLOW_REQUEST_SECONDS = 1.0  # a request this slow is logged at INFO (Twilio gives up at 15 s)


class JsonFormatter(logging.Formatter):
    """A record as one JSON line: time, level, logger, message, request id and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "process": record.process,
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            kind, _, tb = record.exc_info
            line["error"] = kind.__name__
            line["where"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in traceback.extract_tb(tb)][-5:]
        return json.dumps(line, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def current_request_id() -> str | None:
    # An app context, not only a request's: the texter's webhook is answered without Flask's
    # request context (bot.sms.FastLane), and a worker's app context has no id of its own.
    if has_app_context() and g.get("request_id"):
        return g.request_id
    from rq import get_current_job  # a worker's "request" is its job

    job = get_current_job()
    return job.id if job is not None else None


def configure(level: str = "INFO") -> None:
    """Send every log record in this process through one JSON handler on stderr (once per process)."""
    root = logging.getLogger()
    if not any(getattr(h, _MARK, False) for h in root.handlers):
        handler = StderrHandler()
        handler.setFormatter(JsonFormatter())
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(level)
    # The Twilio client logs request parameters (a recipient's number) at INFO, and transitions
    # logs every callback of every message at INFO: neither belongs in operators' logs.
    for noisy in ("twilio.http_client", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    """JSON logs for this process (the request id and the request's line: bot.every_request)."""
    configure(app.config.get("LOG_LEVEL") or "INFO")


def request_id(given: str) -> str:
    """The request's id: the proxy's when it looks like one (Heroku's router and most proxies send
    one), else a new one."""
    # Random enough to tell requests apart, from the process's own generator: os.urandom would be one
    # more system call a webhook, each letting go of the GIL (issue 17). It guards nothing.
    return given if _SAFE_ID.fullmatch(given) else f"{random.getrandbits(64):016x}"


_request_log = logging.getLogger("bot.request")


def log_request(response, took: float) -> None:
    """Only what needs a look (refusals, errors, slow answers) at INFO; every request at DEBUG.

    A line per text would be a timestamped record of each time someone wrote to the help line, and
    writing it cost a webhook more than a tenth of its time; volumes and latencies are in /metrics."""
    log_answer(request.method, request.url_rule.rule if request.url_rule else None, response.status_code, took)


def log_answer(method: str, route: str | None, status: int, took: float) -> None:
    """log_request's line, for an answer given without Flask's request (bot.sms.FastLane)."""
    level = logging.INFO if status >= 400 or took >= SLOW_REQUEST_SECONDS else logging.DEBUG
    if _request_log.isEnabledFor(level):
        _request_log.log(level, "request", extra={"method": method, "route": route, "status": status,
                                                  "ms": round(took * 1000, 1)})
