"""The worker process's app: built once from the same settings as the web, used by every job."""
from __future__ import annotations

from flask import Flask

_app: Flask | None = None


def use(app: Flask) -> None:
    """Set the app jobs run against (the worker command does this before it starts)."""
    global _app
    _app = app


def app() -> Flask:
    """The app for jobs; built from the environment on first use in a fresh worker process."""
    global _app
    if _app is None:
        from bot import create_app

        _app = create_app()
    return _app
