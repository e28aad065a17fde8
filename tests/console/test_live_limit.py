"""The console's live streams count against the process's limit like the chat's (bot.events)."""
from __future__ import annotations

import pytest

from bot.events import BUSY


@pytest.fixture
def config(config):
    config["LIVE_STREAMS"] = 1
    return config


def test_a_second_console_stream_past_the_limit_is_told_to_come_back_and_the_page_keeps_polling(console):
    alice, bob = console("alice"), console("bob")
    holding = alice.get("/console/events", buffered=False)
    assert next(holding.response).startswith(b"retry: 1000")

    refused = bob.get("/console/events")
    assert refused.status_code == 200 and refused.get_data(as_text=True) == BUSY
    assert bob.get("/console/queue/live").status_code == 200  # what the page polls meanwhile

    holding.close()
    again = bob.get("/console/events", buffered=False)
    assert next(again.response).startswith(b"retry: 1000")
    again.close()
