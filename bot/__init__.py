"""The help line's web app: `create_app()` builds it; nothing is configured at import time."""
from __future__ import annotations

import os

import redis
from flask import Flask, jsonify

from . import every_request, events, extensions, logs, metrics, security
from .crypto import ensure_keys
from .errors import ConfigurationError, ConversationBusy, StoreUnavailable
from .settings import DEFAULTS, from_environ, production_problems


def create_app(test_config: dict | None = None) -> Flask:
    """Defaults, then the environment, then test_config; clients are built in extensions.init_app."""
    test_config = dict(test_config or {})
    instance = test_config.pop("INSTANCE_PATH", None) or os.environ.get("HELPLINE_INSTANCE_PATH")
    app = Flask(__name__, instance_path=os.path.abspath(instance) if instance else None,
                instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.update(from_environ())
    app.config.update(test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    problems = production_problems(app.config)
    if problems:
        raise ConfigurationError("the settings are not fit to run: " + "; ".join(problems))
    ensure_keys(app.config, app.instance_path)

    logs.init_app(app)
    extensions.init_app(app)
    security.init_app(app)
    metrics.init_app(app)
    events.init_app(app)
    every_request.init_app(app)

    from . import chat, console, dashboard, front_door, health, reports, sms  # noqa: F401 (dashboard and reports add their views to console.bp)

    app.register_blueprint(sms.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(front_door.bp)
    _register_error_pages(app)
    app.wsgi_app = sms.FastLane(app)  # a texter's signed webhook, answered before Flask's machinery
    return app


def _register_error_pages(app: Flask) -> None:
    """Bad input gets a short, clear answer; never a stack trace."""

    def plain(error):
        return jsonify(error=error.name, detail=error.description), error.code

    for code in (400, 403, 404, 405, 413, 429, 503):
        app.register_error_handler(code, plain)

    def unavailable(error):
        # A console action whose conversation another process held too long, or Redis unreachable:
        # nothing was changed, and it can be tried again. (A texter's webhook answers these itself.)
        detail = ("Someone else is changing this conversation right now. Nothing was changed: try again."
                  if isinstance(error, ConversationBusy) else
                  "The help line cannot reach its store right now. Nothing was changed: try again shortly.")
        return jsonify(error="Service Unavailable", detail=detail), 503, {"Retry-After": "2"}

    for kind in (ConversationBusy, StoreUnavailable, redis.RedisError):
        app.register_error_handler(kind, unavailable)
