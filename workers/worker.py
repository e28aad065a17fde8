"""Runs RQ workers with the app's settings and the scheduler for timed jobs."""
from __future__ import annotations

from rq import Worker
from rq.serializers import JSONSerializer

from . import context


def run(burst: bool = False, name: str | None = None) -> bool:
    """Work the help line's queue until stopped (or until it is empty, with burst)."""
    app = context.app()
    queue = app.extensions["queue"]
    worker = Worker([queue], connection=app.extensions["redis"], serializer=JSONSerializer, name=name)
    return worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
