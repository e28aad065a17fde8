"""Counsellors see the resource listings the bot sends, each with when it was last verified."""
from __future__ import annotations

import html
import re
from datetime import date

from tests.console.conftest import Console


def test_counsellors_see_every_listing_with_when_it_was_last_verified(staff):
    alice = Console(staff, "alice")
    alice.sign_in()
    page = html.unescape(alice.get("/console/resources").get_data(as_text=True))
    resources = list(staff.extensions["helpline"].flows.resources)
    assert resources
    rows = re.findall(r"<tr( class=\"past-review\")?>\s*<td>(.*?)(?: <span|</td>)", page)
    for r in resources:
        assert r.name in page
        assert (r.verified_on.isoformat() if r.verified_on else "never") in page
    past = {name for flag, name in rows if flag}
    assert past == {r.name for r in resources if r.past_review(date.today())}  # marked, and only those
    assert Console(staff).get("/console/resources").status_code == 302  # signed-in counsellors only
