"""A live stream ends after a minute (bot.events.STREAM_SECONDS) and the page reconnects, so no web thread
is held for ever by an open console; tested on a clock the test moves, not by waiting a minute."""
from __future__ import annotations

import threading
import time

from bot import events


class Clock:
    """bot.events' view of the time module: a monotonic clock the test moves; the wall clock as it is."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def monotonic(self) -> float:
        return self.now

    @staticmethod
    def time() -> float:
        return time.time()


def next_change(frames) -> bytes:
    """The next frame that is not a heartbeat comment."""
    for frame in frames:
        if not frame.startswith(b":"):
            return frame
    raise AssertionError("the stream ended")


def rest_of(frames, within: float = 10.0) -> tuple[bool, list[bytes]]:
    """(ended, frames) of what the stream still sends; a stream that never ends fails the test, not hangs it."""
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.extend(frames), daemon=True)
    reader.start()
    reader.join(timeout=within)
    return not reader.is_alive(), out


def test_a_console_stream_is_open_at_59_seconds_and_ends_at_a_minute(console, app, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(events, "time", clock)
    redis = app.extensions["redis"]
    answer = console("alice").get("/console/events", buffered=False)
    frames = iter(answer.response)
    assert next(frames).startswith(b"retry:")

    events.publish(redis, "queued", "c-one")
    assert next_change(frames) == b"event: change\ndata: queued\n\n"  # the stream's minute starts here

    clock.now += 59
    events.publish(redis, "left", "c-one")
    assert next_change(frames) == b"event: change\ndata: left\n\n"  # still open, still heard at once

    clock.now += 1
    ended, last = rest_of(frames)
    answer.close()
    assert ended, "the stream outlived its minute"
    assert all(frame.startswith(b":") for frame in last)  # nothing but a heartbeat on the way out
