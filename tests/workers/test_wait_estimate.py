"""The wait a texter is told when they join the line grows with the line and shrinks with more counsellors."""
from __future__ import annotations

import re

import pytest

from bot.console import accounts
from tests.workers.test_hours import queue_up


def told_wait(reply: str) -> int:
    """The minutes in "A counselor should reply in about N minutes."."""
    found = re.search(r"reply in about (\d+) minutes", reply)
    assert found, reply
    return int(found.group(1))


def test_each_texter_further_back_hears_a_longer_wait_and_a_second_counsellor_shortens_it(
        redis_client, make_texter):
    accounts.set_online(redis_client, "ana", True)

    # One counsellor, 15 minutes a conversation (the default): the one she is finishing, then each ahead.
    first = told_wait(queue_up(make_texter)[0])
    second = told_wait(queue_up(make_texter)[0])
    third = told_wait(queue_up(make_texter)[0])
    assert (first, second, third) == (15, 30, 45)

    accounts.set_online(redis_client, "ben", True)
    # Three ahead and the one being finished, shared by two: 30 minutes, not 60.
    assert told_wait(queue_up(make_texter)[0]) == 30


@pytest.fixture
def twenty_minute_conversations(config):
    """HELPLINE_MINUTES_PER_CONVERSATION=20 (request before `app`)."""
    config.update(HELPLINE_MINUTES_PER_CONVERSATION=20)


def test_the_minutes_per_conversation_setting_is_what_the_wait_is_counted_in(
        twenty_minute_conversations, redis_client, make_texter):
    accounts.set_online(redis_client, "ana", True)

    assert told_wait(queue_up(make_texter)[0]) == 20
    assert told_wait(queue_up(make_texter)[0]) == 40
