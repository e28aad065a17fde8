"""A request that took a second or more is logged at INFO, so operators see what needs a look; a quick
one leaves no line (bot.logs.SLOW_REQUEST_SECONDS). Timed on a stopwatch the test sets, not by waiting."""
from __future__ import annotations

import pytest

from bot import sms
from tests.conftest import Texter
from tests.ops.test_logs import request_lines


class Stopwatch:
    """The webhook's view of the time module (bot.sms.FastLane times it): each perf_counter() reading comes `took` seconds after the last,
    so a request (one reading as it starts, one as it ends) takes exactly `took`."""

    def __init__(self, took: float):
        self.took, self.now = took, 0.0

    def perf_counter(self) -> float:
        self.now += self.took
        return self.now


@pytest.mark.parametrize("took, lines", [
    (1.0, [("/sms", 200, "info", 1000.0)]),  # a second: Twilio waits 15 s, but this one needs a look
    (0.999, []),  # under a second: no timestamped trace of someone writing
])
def test_a_text_answered_in_a_second_or_more_is_logged_at_info_and_a_quicker_one_not(
        client, capfd, monkeypatch, took, lines):
    texter = Texter(client, "+16615550177")
    monkeypatch.setattr(sms, "time", Stopwatch(took))

    texter.send("my boss took my passport")

    logged = request_lines(capfd)
    assert [(line["route"], line["status"], line["level"], line["ms"]) for line in logged] == lines
    assert "5550177" not in str(logged) and "passport" not in str(logged)
