"""Server-sent events that tell an open console page to refresh at once; its polling stays as the fallback.

Events carry only what kind of thing happened, never content: the page then fetches its own
fragment, through the same access checks as everything else.
"""
from __future__ import annotations

import logging
import re

import redis
from flask import abort, request

from .. import events
from ..extensions import get_redis, get_store
from . import bp, handoff
from .auth import current_counsellor, login_required

log = logging.getLogger(__name__)
_CONV_ID = re.compile(r"[a-z2-7]{32}")


@bp.get("/events")
@login_required
def live_events():
    """The queue's events, or one conversation's with ?conv=<id>."""
    conv_id = request.args.get("conv")
    if conv_id is not None:
        conv = get_store().load(conv_id) if _CONV_ID.fullmatch(conv_id) else None
        if conv is None:
            abort(404)
        if not handoff.can_view(current_counsellor(), conv):
            abort(403)  # the same rule as the conversation page: its live events are no less private
    return events.live_response(lambda: _stream(_subscribed(conv_id)))


def _subscribed(conv_id: str | None):
    return events.subscribe(get_redis(), events.conversation_channel(conv_id) if conv_id else events.CONSOLE)


def _stream(pubsub):
    try:
        yield "retry: 1000\n\n"
        for event in events.listen(pubsub):
            yield ": still here\n\n" if event is None else f"event: change\ndata: {event.get('kind', '')}\n\n"
    except redis.RedisError:
        log.warning("a console stream lost Redis; the page reconnects and keeps polling")
    finally:
        pubsub.close()
