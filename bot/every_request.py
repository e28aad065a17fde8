"""What every request gets, in one hook before it and one after: an id and a clock, the texters'
webhooks timed for /metrics, the security headers, and a log line when the answer needs a look.

One hook each way rather than one per concern (each is Flask's call, g's lookups and a header
written one by one: about 40 µs of a texter's webhook, issue 17). What each part does stays with
its owner: bot.logs, bot.metrics, bot.security.
"""
from __future__ import annotations

import time

from flask import Flask, g, request

from . import logs
from .metrics import TIMED_ENDPOINTS


def init_app(app: Flask) -> None:
    stats = app.extensions["stats"]
    security = app.extensions["security_headers"]

    @app.before_request
    def start():
        here = g._get_current_object()
        here.request_id = logs.request_id(request.headers.get("X-Request-Id", ""))
        here.request_started = time.perf_counter()

    @app.after_request
    def finish(response):
        here = g._get_current_object()
        security.apply(response, request.blueprint)
        started = getattr(here, "request_started", None)
        if started is None:  # the before-hook itself failed: no clock, no id to give
            return response
        took = time.perf_counter() - started
        endpoint = request.endpoint
        if endpoint in TIMED_ENDPOINTS:
            stats.observe_latency(endpoint, took)
        logs.log_request(response, took)
        response.headers["X-Request-Id"] = here.request_id  # replaces one a view or a proxied answer brought
        return response
