"""Reports for the coalition: /console/reports, its CSV and `helpline report`, on the real counters.

Counts come in the way the help line makes them: texters through signed webhooks, claims through the
console, and the wrap-up form's counters through Stats.count (as the end of a conversation adds them).
"""
from __future__ import annotations

import csv
import io
import re
import time

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.console import wrapup
from tests.conftest import Texter, watch_problems
from tests.console.conftest import PASSWORD, ask_for_counsellor


def this_month(app) -> str:
    stats = app.extensions["stats"]
    return f"{stats.day(stats.clock()):%Y-%m}"


def counted(page: str) -> dict[str, dict[str, list[int]]]:
    """The page's tables: section -> row -> counts per period."""
    tables = {}
    for section, body in re.findall(r'data-section="([^"]+)">(.*?)</table>', page, re.S):
        tables[section] = {row: [int(n) for n in re.findall(r'data-count="(\d+)"', cells)]
                           for row, cells in re.findall(r'<tr data-row="([^"]+)">(.*?)</tr>', body, re.S)}
    return tables


def exported(text: str) -> dict[tuple[str, str], list[str]]:
    """The CSV's rows: (dimension, value) -> what it prints per period."""
    rows = list(csv.reader(io.StringIO(text)))
    return {(r[0], r[1]): r[2:] for r in rows[1:] if r[0] != "note"}


def add(app, name: str, label: str, n: int) -> None:
    stats = app.extensions["stats"]
    stats.count(app.extensions["redis"], name, label, n)


def test_a_supervisor_sees_the_months_contacts_by_channel_language_path_and_form(app, client, console):
    ask_for_counsellor(Texter(client))  # talks to a counsellor
    finder = Texter(client)
    for text in ("hi", "1", "find help", "shelter", "93301"):
        finder.send(text)
    Texter(client).send("hola, necesito ayuda")
    add(app, "contact_type", "conversation", 6)
    add(app, "contact_category", "labour_trafficking", 2)
    sam = console("sam")
    answer = sam.get("/console/reports")
    assert answer.status_code == 200
    tables = counted(answer.get_data(as_text=True))
    assert tables["contacts"]["conversations"] == [3]
    assert tables["contacts"]["handoffs"] == [1]
    assert tables["channel"] == {"sms": [3], "web": [0]}
    assert tables["lang"] == {"en": [2], "es": [1]}
    assert tables["path"]["counsellor"] == [1] and tables["path"]["find_help"] == [1]
    assert tables["contact_type"]["conversation"] == [6]
    assert tables["contact_category"]["labour_trafficking"] == [2]
    # The page is for staff: exact counts, with the cells the CSV hides marked.
    assert 'title="The CSV shows &lt;5"' in answer.get_data(as_text=True)


def test_reports_are_for_supervisors_only(app, client, console):
    assert client.get("/console/reports").status_code == 302  # to sign-in
    alice = console("alice")
    assert alice.get("/console/reports").status_code == 403
    assert alice.get("/console/reports.csv").status_code == 403
    assert 'href="/console/reports"' not in alice.get("/console/").get_data(as_text=True)
    assert 'href="/console/reports"' in console("sam").get("/console/").get_data(as_text=True)


def test_the_csv_hides_small_counts_and_the_total_that_would_give_one_back(app, client, console):
    month = this_month(app)
    texters = [Texter(client) for _ in range(3)]
    for texter in texters:
        ask_for_counsellor(texter)
    add(app, "channel", "web", 9)  # with the 3 texters: sms 3, web 9
    add(app, "contact_type", "conversation", 7)
    add(app, "contact_type", "third_party", 5)
    add(app, "contact_type", "silent", 1)
    add(app, "contact_category", "labour_trafficking", 2)
    add(app, "contact_category", "sex_trafficking", 3)
    add(app, "contact_category", "other", 8)
    add(app, "contact_referral", "a_retired_choice", 6)  # a key the form no longer has: shown by its key
    answer = console("sam").get(f"/console/reports.csv?month={month}")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert f'filename="contacts-{month}.csv"' in answer.headers["Content-Disposition"]
    text = answer.get_data(as_text=True)
    rows = exported(text)
    assert text.splitlines()[0] == f"dimension,value,{month}"
    # One small count in a table: the next smallest is hidden too, or the total less web would give sms back.
    assert rows[("Channel", "SMS")] == ["<5"]
    assert rows[("Channel", "Web chat")] == ["*"]
    fields = wrapup.FORM.fields
    types = {value: shown for (dimension, value), shown in rows.items() if dimension == fields["type"].label}
    assert types[fields["type"].choices["conversation"]] == ["7"]
    assert types[fields["type"].choices["third_party"]] == ["*"]  # the next smallest, hidden with silent's 1
    assert types[fields["type"].choices["silent"]] == ["<5"]
    categories = [shown for (dimension, _), shown in rows.items() if dimension == fields["category"].label]
    assert categories.count(["<5"]) == 2 and ["8"] in categories  # two small ones hide each other: no more hidden
    assert rows[(fields["referral"].label, "A retired choice")] == ["6"]
    assert rows[("Wait for a counselor (minutes)", "Median (p50)")] == ["-"]
    assert "Counts from 1 to 4 are shown as <5" in text
    # Nothing that names a texter: no number, no conversation id.
    vault = app.extensions["vault"]
    for texter in texters:
        assert texter.number[-7:] not in text
        assert vault.conversation_id("sms", texter.number) not in text
    page = console("sam").get("/console/reports").get_data(as_text=True)
    assert not any(t.number[-7:] in page or vault.conversation_id("sms", t.number) in page for t in texters)


def test_wait_percentiles_come_from_the_claims_and_need_five_waits(app, console, queued):
    stats, redis = app.extensions["stats"], app.extensions["redis"]
    sam = console("sam")
    for minutes in (1, 2, 3, 4, 10):
        conv = queued()
        stats.queued(redis, conv.id, time.time() - minutes * 60)
        assert sam.post(f"/console/claim/{conv.id}").status_code == 302
        if minutes == 4:
            four = exported(sam.get("/console/reports.csv").get_data(as_text=True))
            assert four[("Wait for a counselor (minutes)", "Waits measured")] == ["<5"]
            assert four[("Wait for a counselor (minutes)", "Median (p50)")] == ["-"]
    rows = exported(sam.get("/console/reports.csv").get_data(as_text=True))
    assert rows[("Wait for a counselor (minutes)", "Waits measured")] == ["5"]
    assert rows[("Wait for a counselor (minutes)", "Median (p50)")] == ["3.0"]
    assert rows[("Wait for a counselor (minutes)", "90th percentile (p90)")] == ["10.0"]
    assert rows[("Contacts", "Picked up by a counselor")] == ["5"]


def test_the_last_twelve_weeks_have_a_column_each(app, client, console):
    ask_for_counsellor(Texter(client))
    sam = console("sam")
    tables = counted(sam.get("/console/reports?weeks=12").get_data(as_text=True))
    assert tables["contacts"]["conversations"] == [0] * 11 + [1]
    header = sam.get("/console/reports.csv?weeks=12").get_data(as_text=True).splitlines()[0].split(",")
    assert len(header) == 2 + 12
    stats = app.extensions["stats"]
    today = stats.day(stats.clock())
    assert header[-1] == (today.fromordinal(today.toordinal() - today.weekday())).isoformat()  # this week's Monday


@pytest.mark.parametrize("query, said", [
    ("month=2026-13", "is not a month"),
    ("month=garbage", "is not a month"),
    ("month=0000-01", "is not a month"),  # year 0 does not exist: a 500 once
    ("month=%D9%A2%D9%A0%D9%A2%D9%A6-%D9%A1%D9%A1", "is not a month"),  # Arabic-Indic digits
    ("month=", "is not a month"),
    ("month=1999-01", "Counts are kept for 400 days"),
    ("month=2999-01", "has not begun"),
    ("weeks=0", "weeks must be a whole number"),
    ("weeks=many", "weeks must be a whole number"),
    ("weeks=%C2%B2", "weeks must be a whole number"),  # a superscript 2 is a digit to str.isdigit: a 500 once
    ("weeks=%EF%BC%93", "weeks must be a whole number"),  # a full-width 3
    ("month=2026-11&weeks=12", "not both"),
])
def test_a_bad_period_is_a_clear_400(app, console, query, said):
    sam = console("sam")
    for path in ("/console/reports", "/console/reports.csv"):
        answer = sam.get(f"{path}?{query}")
        assert answer.status_code == 400
        assert said in answer.get_data(as_text=True)


@pytest.fixture
def report(app, cli_env):
    return lambda *args: CliRunner().invoke(main, ["report", *args], env=cli_env)


def test_the_command_prints_the_same_rows(app, client, console, report):
    for _ in range(6):
        ask_for_counsellor(Texter(client))
    add(app, "contact_type", "silent", 2)
    month = this_month(app)
    printed = report("--month", month, "--csv")
    assert printed.exit_code == 0, printed.output
    assert printed.output == console("sam").get(f"/console/reports.csv?month={month}").get_data(as_text=True)
    table = report("--month", month)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0] == f"Contacts, {month}"
    assert re.search(r"^  Conversations started +6$", table.output, re.M)
    assert re.search(r"^  Silent +<5$", table.output, re.M)


@pytest.mark.parametrize("month", ["2026-13", "nov", "1999-01", "0000-01"])
def test_the_command_refuses_a_bad_month_in_one_line(app, report, month):
    printed = report("--month", month)
    assert printed.exit_code == 2
    assert len(printed.output.strip().splitlines()) == 1
    assert printed.output.startswith("Error: ")


@pytest.fixture
def served(app, live_server, staff):
    return live_server


def test_a_supervisor_reads_the_report_and_downloads_the_csv_in_a_browser(app, client, served, browser):
    for _ in range(5):
        ask_for_counsellor(Texter(client))
    add(app, "contact_type", "conversation", 4)
    page = browser.new_page(accept_downloads=True)
    problems = watch_problems(page)
    page.goto(served.url + "/console/signin")
    page.fill("input[name=name]", "sam")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button")
    page.click("nav >> text=Reports")
    assert page.locator('[data-figure="conversations"]').inner_text() == "5"
    bar = page.locator('[data-section="channel"] [data-row="sms"] rect.bar')
    assert float(bar.get_attribute("width")) == 100  # the biggest value of its table fills the row
    assert page.locator('[data-section="contact_type"] .csv-mark').inner_text() == "csv <5"
    with page.expect_download() as download:
        page.click("#csv")
    text = open(download.value.path(), encoding="utf-8").read()
    assert download.value.suggested_filename == f"contacts-{this_month(app)}.csv"
    assert exported(text)[("Contacts", "Conversations started")] == ["5"]
    assert "<5" in text
    page.click("text=Last 12 weeks, by week")
    page.wait_for_selector('[data-chart="weekly"] svg')
    assert page.locator('[data-section="contacts"] [data-row="conversations"] td').count() == 12
    page.select_option("select[name=month]", index=0)
    page.click("text=Show month")
    assert page.locator('[data-figure="conversations"]').inner_text() == "5"
    assert problems == []
    page.close()
