"""Supervisors mark resource listings verified today, with what they checked; the bot believes it at once."""
from __future__ import annotations

import difflib
import html
import os
import re
from datetime import date
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from playwright.sync_api import expect

from bot import audit, resource_reviews
from bot.cli import main
from flows.resources import DEFAULT_PATH, ResourceDirectory

from .conftest import PASSWORD

DELANO = "open-door-network-delano"  # the only local listing a counselling list for Delano shows
STALE = "Details may be out of date"


def counselling_near_delano(texter) -> str:
    """Menu 5 (find help near me), counselling, Delano's ZIP: the list the texter reads."""
    for text in ("hi", "1", "5", "6"):
        texter.send(text)
    return texter.send("93215")


def page_of(browser) -> str:
    return html.unescape(browser.get("/console/resources").get_data(as_text=True))


def review_card(page: str, resource_id: str) -> str:
    found = re.search(rf'<article [^>]*id="review-{resource_id}">(.*?)</article>', page, re.S)
    assert found, resource_id
    return found.group(1)


def test_a_listing_verified_today_stops_the_out_of_date_warning_at_once(staff, console, make_texter):
    before = counselling_near_delano(make_texter())
    assert "(661) 327-1091" in before and STALE in before  # verified 2023-10-19: past review

    sam = console("sam")
    answer = sam.post(f"/console/resources/{DELANO}/verified", data={"note": "called them, same number and hours"})
    assert answer.status_code == 302

    after = counselling_near_delano(make_texter())
    assert "(661) 327-1091" in after and STALE not in after
    # Another listing that is still past review keeps its warning: food near downtown Bakersfield.
    other = make_texter()
    for text in ("hi", "1", "5", "3"):
        other.send(text)
    assert STALE in other.send("93305")


def test_the_review_is_shown_with_who_when_and_what_and_kept_as_history(staff, console):
    sam = console("sam")
    card = review_card(page_of(sam), DELANO)
    assert "2023-10-19 (flows/resources.yaml)" in card and "past review" in card
    assert 'href="https://theshafterpress.com/story/2023/10/19/news/' in card  # the source, as a link
    assert "<details class=\"history\" hidden>" in card

    sam.post(f"/console/resources/{DELANO}/verified", data={"note": "read the source page"})
    sam.post(f"/console/resources/{DELANO}/verified", data={"note": "  called   (661) 327-1091  "})
    page = page_of(sam)
    card = review_card(page, DELANO)
    today = date.today().isoformat()
    assert f"{today} by sam" in card and "past review" not in card
    history = re.findall(r"<li><time>(.*?)</time> (.*?)</li>", card)
    assert history == [(today, "sam: called (661) 327-1091"), (today, "sam: read the source page")]
    # Past-review listings come first; this one is current now, so it is no longer among them.
    order = re.findall(r'<article class="panel listing-review( past-review)?" id="review-([a-z0-9-]+)"', page)
    flags = [bool(flag) for flag, _ in order]
    assert flags == sorted(flags, reverse=True) and (False, DELANO) in [(bool(f), i) for f, i in order]
    # The counsellors' table reads the same date.
    assert re.search(rf"<td>Open Door Network.*?<td>{today}</td>", page, re.S)

    client = staff.extensions["redis"]
    logged = [e for e in audit.entries(client) if e["action"] == "review_resource"]
    assert [(e["actor"], e["detail"]) for e in logged] == [("sam", DELANO), ("sam", DELANO)]
    assert resource_reviews.reviewed_on(client) == {DELANO: date.today()}


@pytest.mark.parametrize("note", ["", "   "])
def test_a_review_needs_a_note(staff, console, note):
    sam = console("sam")
    answer = sam.post(f"/console/resources/{DELANO}/verified", data={"note": note})
    assert answer.status_code == 400 and "say what you checked" in answer.get_data(as_text=True)
    assert resource_reviews.reviewed_on(staff.extensions["redis"]) == {}


def test_an_unknown_listing_or_an_overlong_note_is_refused(staff, console):
    sam = console("sam")
    assert sam.post("/console/resources/no-such-place/verified", data={"note": "called"}).status_code == 404
    long = sam.post(f"/console/resources/{DELANO}/verified", data={"note": "x" * 301})
    assert long.status_code == 400 and "300 characters" in long.get_data(as_text=True)
    assert resource_reviews.reviewed_on(staff.extensions["redis"]) == {}


def test_counsellors_see_the_listings_but_cannot_review_them(staff, console):
    alice = console("alice")
    page = page_of(alice)
    assert "Open Door Network" in page and "Verified today" not in page and "review-" + DELANO not in page
    answer = alice.post(f"/console/resources/{DELANO}/verified", data={"note": "called them"})
    assert answer.status_code == 403
    assert resource_reviews.reviewed_on(staff.extensions["redis"]) == {}


def test_a_supervisor_verifies_a_listing_in_the_browser(live_server, browser, staff, tmp_path):
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)  # =docs refreshes docs/resource-review.png
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(f"{live_server.url}/console/")
    page.fill("input[name=name]", "sam")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Resources").click()
    card = page.locator(f"#review-{DELANO}")
    expect(card).to_have_class(re.compile(r"\bpast-review\b"))
    card.get_by_role("button", name="Verified today").click()
    # The note is required: the browser keeps the form and nothing is recorded.
    expect(card.locator(".verified")).to_contain_text("2023-10-19")
    card.get_by_label("What you checked").fill("called them, same hours")
    card.get_by_role("button", name="Verified today").click()
    expect(page.locator(f"#review-{DELANO} .verified")).to_contain_text(f"{date.today().isoformat()} by sam")
    expect(page.locator(f"#review-{DELANO}")).not_to_have_class(re.compile(r"\bpast-review\b"))
    page.locator(f"#review-{DELANO} .history summary").click()
    page.locator(f"#review-{DELANO}").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "resource-review.png"))
    expect(page.locator(f"#review-{DELANO} .history li")).to_have_text([f"{date.today().isoformat()} sam: "
                                                                          "called them, same hours"])
    assert resource_reviews.reviewed_on(staff.extensions["redis"]) == {DELANO: date.today()}
    page.close()


def test_export_reviews_writes_them_into_the_yaml_and_nothing_else(staff, console, cli_env, tmp_path):
    sam = console("sam")
    sam.post(f"/console/resources/{DELANO}/verified", data={"note": 'read the "source" page'})
    sam.post("/console/resources/kern-family-justice-center/verified", data={"note": "called them: same hours"})
    copy = tmp_path / "resources.yaml"
    copy.write_text(DEFAULT_PATH.read_text(encoding="utf-8").replace(
        "  verified_on: null   # page undated\n", "  verified_on: null   # page undated\n  reviewed_by: >-\n"
        "    someone, 2020-01-01: an older\n    review\n", 1), encoding="utf-8")
    before = copy.read_text(encoding="utf-8")
    result = CliRunner().invoke(main, ["resources", "export-reviews", "--file", str(copy)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"verified: {DELANO}", "verified: kern-family-justice-center",
                                          "2 review(s) written into " + str(copy) + "; check `git diff` and commit it"]
    today = date.today().isoformat()
    after = ResourceDirectory.load(copy)
    assert after.get(DELANO).verified_on == date.today() and f"  verified_on: {today}\n" in copy.read_text()
    assert after.get("kern-family-justice-center").verified_on == date.today()
    assert after.check().errors == [] and not [w for w in after.check().warnings if "reviewed_by" in w]
    entries = {e["id"]: e for e in yaml.safe_load(copy.read_text(encoding="utf-8"))}
    assert entries[DELANO]["reviewed_by"] == f'sam, {today}: read the "source" page'
    assert entries["kern-family-justice-center"]["reviewed_by"] == f"sam, {today}: called them: same hours"
    # Only those lines changed: every other line, comments too, is as it was.
    diff = difflib.ndiff(before.splitlines(), copy.read_text(encoding="utf-8").splitlines())
    removed = [line[2:] for line in diff if line.startswith("- ")]
    assert removed == ["  verified_on: 2023-10-19", "  verified_on: null   # page undated", "  reviewed_by: >-",
                       "    someone, 2020-01-01: an older", "    review"]
    # Run again: the file already says so.
    again = CliRunner().invoke(main, ["resources", "export-reviews", "--file", str(copy)], env=cli_env)
    assert again.exit_code == 0 and "0 review(s) written" in again.output
