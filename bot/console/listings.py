"""The resource listings as counsellors see them: what the bot sends, and how recently each was verified.

Counsellors pass these on by hand too; a listing past its review date (flows/resources.yaml,
`verified_on` + 180 days) is marked so, and the bot adds the national hotline to any reply that uses one.
"""
from __future__ import annotations

from datetime import date

from flask import render_template

from ..extensions import get_helpline
from . import bp
from .auth import current_counsellor, login_required
from .resource_review import review_context


@bp.get("/resources")
@login_required
def listings():
    today = date.today()
    # As the bot reads them: a supervisor's review in the console counts as soon as it is made.
    rows = [{"resource": r, "due": r.review_due(), "past": r.past_review(today)}
            for r in get_helpline().flows.resources.current()]
    rows.sort(key=lambda row: (not row["past"], row["resource"].name.lower()))
    review = review_context([row["resource"].id for row in rows]) if current_counsellor().supervisor else {}
    return render_template("console/resources.html", rows=rows, today=today,
                           past=sum(row["past"] for row in rows), **review)
