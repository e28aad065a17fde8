"""Draw docs/reports.png: last month of simulated texters, their pickups and wrap-up forms, and the report.

    .venv/bin/python -m tests.console.reports_screenshot [docs/reports.png]

Everything goes through the real app (signed SMS webhooks, the console's claim and end with a filled-in
wrap-up form) on an embedded Redis in a temp folder; only the clock is moved back, to spread a month
over its days.
"""
from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timedelta

from bot.console import accounts, handoff, wrapup
from tests.conftest import Texter
from tests.console.conftest import PASSWORD
from tests.ops.dashboard_screenshot import SCRIPTS, shoot, shot_app

NOT_A_CONVERSATION = ("silent", "testing", "wrong_number", "prank")


def main(out: str = "docs/reports.png") -> None:
    with shot_app() as app:
        month = simulate(app)
        shoot(app, out, f"/console/reports?month={month}", ready=None)


def simulate(app) -> str:
    """Every day of last month: texters, and those who queued picked up and ended with the form."""
    rng = random.Random(15)
    client, helpline, vault, stats = (app.test_client(), app.extensions["helpline"], app.extensions["vault"],
                                      app.extensions["stats"])
    with app.app_context():
        accounts.add(app.extensions["redis"], "sam", PASSWORD, supervisor=True)
        sam = accounts.get(app.extensions["redis"], "sam")
    fields = wrapup.FORM.fields
    real_time, real_clock = time.time, stats.clock
    today = stats.day(real_time())
    last = today.replace(day=1) - timedelta(days=1)
    day = last.replace(day=1)
    try:
        while day <= last:
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=stats.tz).timestamp()
            for _ in range(rng.randint(5, 13)):
                moment = noon + rng.randint(-4 * 3600, 9 * 3600)
                # The month's history: the whole app (engine, console, audit trail, counters) lives at `moment`.
                time.time = helpline.clock = stats.clock = lambda: moment
                texter = Texter(client)
                for text in rng.choice(SCRIPTS):
                    texter.send(text)
                conv_id = vault.conversation_id("sms", texter.number)
                if app.extensions["waiting"].position(conv_id) is None:
                    continue
                with app.test_request_context():
                    moment += rng.choice([1, 2, 3, 4, 6, 9, 15, 25, 40]) * 60
                    handoff.claim(sam, conv_id)
                    moment += rng.randint(5 * 60, 40 * 60)
                    handoff.end(sam, conv_id, form(rng, fields))
            day += timedelta(days=1)
    finally:
        time.time, helpline.clock, stats.clock = real_time, real_time, real_clock
    return f"{last:%Y-%m}"


def form(rng: random.Random, fields) -> dict[str, list[str]]:
    """A counsellor's wrap-up answers, weighted as a trafficking and runaway line's might be."""
    kind = rng.choices(list(fields["type"].choices), weights=[60, 8, 8, 6, 4, 4, 3, 2])[0]
    answers = {"type": [kind], "outcome": [rng.choices(list(fields["outcome"].choices), weights=[5, 6, 2, 1, 1])[0]]}
    if kind in NOT_A_CONVERSATION or kind == "abusive":
        return answers
    categories = list(fields["category"].choices)
    weights = [9, 6, 2, 8, 5, 3, 2, 1, 6, 3, 3, 1, 1, 3, 2, 1][:len(categories)]
    answers["category"] = sorted(set(rng.choices(categories, weights=weights, k=rng.randint(1, 2))))
    answers["risk"] = [rng.choices(list(fields["risk"].choices), weights=[2, 5, 4, 2, 1])[0]]
    answers["referral"] = sorted(set(rng.sample(list(fields["referral"].choices), rng.randint(0, 2))))
    answers["safety_plan"] = [rng.choice(["yes", "no", "no"])]
    answers["follow_up"] = [rng.choice(["yes", "no"])]
    return answers




if __name__ == "__main__":
    main(*sys.argv[1:])
