"""Live updates for the console and the chat page, over Redis pub/sub. Events carry ids, never content."""
from __future__ import annotations

import json
import threading
import time

import orjson
import redis
from flask import Response, current_app, request

CONSOLE = "ev:console"


def conversation_channel(conv_id: str) -> str:
    return f"ev:c:{conv_id}"


# Events that change nothing on the console's queue page: only whoever watches the conversation hears them.
CONVERSATION_ONLY = frozenset({"message", "reply", "outbound", "note"})
# A live stream ends after this long and the browser's EventSource reconnects, so no web thread is
# held for ever; a comment line keeps proxies from closing a quiet stream.
STREAM_SECONDS = 60
# A stream only learns that its browser left when it next writes: the heartbeat is that often, so a
# closed page frees its thread within seconds.
HEARTBEAT_SECONDS = 5
# What a browser gets when it may not have a stream now: come back in 10 s (its EventSource
# reconnects by itself; the console and the chat page poll meanwhile).
BUSY = "retry: 10000\nevent: busy\ndata: {}\n\n"


def publish(pipe, kind: str, conv_id: str, **data) -> None:
    """Tell anyone watching this conversation (and the console's queue, where it matters) what happened."""
    for channel, message in messages(kind, conv_id, **data):
        pipe.publish(channel, message)


def messages(kind: str, conv_id: str, **data) -> list[tuple[str, bytes]]:
    """The (channel, message) pairs that publish() sends, for a save that publishes them itself."""
    # orjson: every message publishes one, and json.dumps cost about 5 µs of it (issue 17).
    message = orjson.dumps({"kind": kind, "conv": conv_id, "at": time.time(), **data})
    channels = [conversation_channel(conv_id)] if kind in CONVERSATION_ONLY else [CONSOLE, conversation_channel(conv_id)]
    return [(channel, message) for channel in channels]


# How long a stream waits for Redis to confirm its subscriptions before giving up (RedisError).
SUBSCRIBE_SECONDS = 5.0


def subscribe(client, *channels: str):
    """A pub/sub on `channels` that Redis has confirmed: whatever is published from the moment this
    returns is heard. (redis-py's subscribe() only sends the command, so an event published on
    another connection just after it could be missed.)"""
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(*channels)
        confirmed, deadline = 0, time.monotonic() + SUBSCRIBE_SECONDS
        while confirmed < len(channels):
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.TimeoutError("Redis did not confirm a subscription")
            message = pubsub.get_message(timeout=left)
            confirmed += bool(message and message["type"] == "subscribe")
    except BaseException:
        pubsub.close()
        raise
    pubsub.ignore_subscribe_messages = True
    return pubsub


def listen(pubsub, seconds: float = STREAM_SECONDS, heartbeat: float = HEARTBEAT_SECONDS):
    """Each event on the subscribed channels as a dict, and None every `heartbeat` seconds; for `seconds`.

    The caller owns (and closes) the subscription. A connection closed under the stream (the app
    shutting down) comes out as redis.ConnectionError, whatever redis-py raised.
    """
    deadline = time.monotonic() + seconds
    beat = time.monotonic() + heartbeat
    while time.monotonic() < deadline:
        try:
            message = pubsub.get_message(timeout=1.0)
        except (ValueError, OSError, TypeError) as exc:
            raise redis.ConnectionError("the event stream lost its connection") from exc
        if message:
            yield json.loads(message["data"])
        if time.monotonic() >= beat:
            beat = time.monotonic() + heartbeat
            yield None


def init_app(app) -> None:
    # Each open stream holds one of the process's threads for up to a minute; the rest must stay
    # free for webhooks, or a room of open consoles would leave a texter unanswered.
    app.extensions["stream_slots"] = threading.BoundedSemaphore(app.config["LIVE_STREAMS"])


def live_response(open_stream) -> Response:
    """A text/event-stream of `open_stream()`'s frames when this process has a stream slot free,
    else BUSY at once. `open_stream` subscribes and returns the generator; it is called only with
    a slot, so a refused stream costs no Redis connection."""
    if request.method == "HEAD":
        # Flask answers HEAD with the GET view, but never runs the body: a stream opened here would
        # hold its slot, and its claim, until they expire.
        return Response(mimetype="text/event-stream")
    slots = current_app.extensions["stream_slots"]
    if not slots.acquire(blocking=False):
        return Response(BUSY, mimetype="text/event-stream")
    try:
        response = Response(open_stream(), mimetype="text/event-stream", headers={"X-Accel-Buffering": "no"})
    except BaseException:
        slots.release()
        raise
    response.call_on_close(slots.release)  # however the stream ends, the browser leaving included
    return response
