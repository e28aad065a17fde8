"""The supervisor dashboard: counts by day from the engine and the console, failed jobs with a retry."""
from __future__ import annotations

import json
import re

import pytest
from rq.registry import FailedJobRegistry

from tests.console.conftest import ask_for_counsellor, wrapped_up
from tests.conftest import Texter, watch_problems


def data(browser) -> dict:
    page = browser.get("/console/dashboard").get_data(as_text=True)
    return json.loads(re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', page, re.S).group(1))


def by_key(rows: list[dict]) -> dict:
    return {row["key"]: row["value"] for row in rows}


def test_dashboard_counts_todays_conversations_paths_handoffs_and_outcomes(app, client, console):
    ask_for_counsellor(Texter(client))  # menu: talk to a counsellor, consents
    finder = Texter(client)
    for text in ("hi", "1", "find help", "shelter", "93301"):
        finder.send(text)
    worried = Texter(client)
    worried.send("i need help, he is going to kill me")
    worried.send("yes")
    sam = console("sam")
    before = data(sam)
    assert before["now"]["depth"] == 2
    assert before["today"]["conversations"] == 3 and before["week"]["conversations"] >= 3
    assert by_key(before["today"]["paths"])["counsellor"] == 1
    assert by_key(before["today"]["paths"])["find_help"] == 1
    assert by_key(before["today"]["reasons"]) == {"counsellor": 1, "emergency": 1, "triage": 0, "tip": 0}
    assert by_key(before["today"]["levels"])["emergency"] == 1

    # The emergency is first in line; sam picks it up and ends it.
    conv_id = sam.queue_order()[0]
    assert sam.post(f"/console/claim/{conv_id}").status_code == 302
    assert sam.post(f"/console/c/{conv_id}/end", data=wrapped_up("referred")).status_code in (200, 302)
    after = data(sam)
    assert after["now"]["depth"] == 1
    assert after["today"]["claimed"] == 1
    assert by_key(after["today"]["outcomes"])["referred"] == 1
    assert after["today"]["median_wait"] is not None and after["today"]["median_wait"] >= 0
    # The day's waits are kept for the charts long past the retention: they must not name the conversation.
    redis = app.extensions["redis"]
    [waits] = redis.keys("st:w:*")
    assert redis.zcard(waits) == 1
    assert not any(conv_id.encode() in member for member in redis.zrange(waits, 0, -1))


def test_dashboard_is_for_supervisors_only(app, console, client):
    assert client.get("/console/dashboard").status_code == 302  # to sign-in
    assert console("alice").get("/console/dashboard").status_code == 403
    assert console("sam").get("/console/dashboard").status_code == 200
    assert console("alice").get("/console/dashboard/data").status_code == 403


def test_dashboard_shows_no_numbers_or_messages(app, client, console):
    texter = Texter(client, "+16615550123")
    ask_for_counsellor(texter)
    page = console("sam").get("/console/dashboard").get_data(as_text=True)
    assert "5550123" not in page and "in line" not in page


@pytest.mark.parametrize("queue_name", ["queue", "replies"])  # alerts' queue and counsellors' replies' own
def test_failed_jobs_are_listed_by_kind_and_retried_with_the_console_token(app, console, run_jobs, queue_name):
    # A job that really fails in a worker, with an error message that quotes its input.
    queue = app.extensions[queue_name]
    job = queue.enqueue_call("builtins.int", args=("+16615550123 said hi",))
    run_jobs()
    registry = FailedJobRegistry(queue=queue)
    assert job.id in registry.get_job_ids()
    sam = console("sam")
    page = sam.get("/console/dashboard").get_data(as_text=True)
    assert "builtins.int" in page and "ValueError" in page
    assert sam.get("/console/dashboard/data").json["now"]["failed_jobs"] == 1
    assert "5550123" not in page  # the error's kind, never its message or arguments
    # Without the form's token the retry is refused and the job stays failed.
    assert sam.client.post(f"/console/dashboard/jobs/{job.id}/retry").status_code == 400
    assert job.id in registry.get_job_ids()
    assert sam.post(f"/console/dashboard/jobs/{job.id}/retry").status_code == 302
    assert job.id not in registry.get_job_ids()
    assert job.id in queue.get_job_ids()  # back on its own queue
    assert sam.post(f"/console/dashboard/jobs/{job.id}/retry").status_code == 404  # not failed any more


@pytest.fixture
def served(app, live_server, console):
    return live_server


def test_dashboard_draws_its_charts_in_a_browser_under_the_csp(app, client, served, browser, staff):
    ask_for_counsellor(Texter(client))
    page = browser.new_page()
    problems = watch_problems(page)
    page.goto(served.url + "/console/signin")
    page.fill("input[name=name]", "sam")
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit], form button")
    page.goto(served.url + "/console/dashboard")
    page.wait_for_selector('[data-chart="daily"] svg')
    assert page.locator('[data-period="today"] [data-chart="paths"] svg').count() == 1
    assert page.locator('[data-now="depth"]').inner_text() == "1"
    assert problems == []
    page.close()
