"""Of counsellors claiming one waiting conversation at the same instant, exactly one gets it, every time.

Two threads racing through HTTP (tests/console/test_queue.py) meet in the middle only now and then. Here
Redis itself lines the claims up: it holds every write (CLIENT PAUSE WRITE) until each claimer is
waiting on one, then lets them all go. A claim that reads ("still waiting?") and then writes ("take it")
lets every claimer read "yes" first, so all of them win; only a claim made in one Redis command
leaves one winner.
"""
from __future__ import annotations

import threading

import redis

from bot.console import capacity
from bot.console.accounts import Counsellor
from bot.console.handoff import ACTIVE
from tests.ops.test_chaos import wait_for

CLAIMERS = 8


def test_of_eight_counsellors_claiming_at_the_same_instant_exactly_one_gets_the_conversation(
        app, queued, redis_url):
    conv = queued()
    waiting = app.extensions["waiting"]
    admin = redis.Redis.from_url(redis_url)
    won: list[bool] = []

    def claim(name: str):
        won.append(capacity.take(admin, ACTIVE, Counsellor(name, supervisor=True), conv.id)[0] is not None)

    admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
    try:
        claimers = [threading.Thread(target=claim, args=(f"c{n}",)) for n in range(CLAIMERS)]
        for claimer in claimers:
            claimer.start()
        # Each claimer is held at its first write (or has finished: a claim that never writes).
        assert wait_for(lambda: admin.info("clients")["blocked_clients"] + len(won) >= CLAIMERS, timeout=10)
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
    for claimer in claimers:
        claimer.join(timeout=10)
    admin.close()

    assert sorted(won) == [False] * (CLAIMERS - 1) + [True]
    assert waiting.position(conv.id) is None  # and it has left the queue
