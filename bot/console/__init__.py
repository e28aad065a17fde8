"""The counsellor console at /console: sign-in, the live queue, conversations, supervision."""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("console", __name__, url_prefix="/console")


def _error_page(error):
    # Counsellors get a readable page with a way back, not the API's JSON.
    return render_template("console/error.html", error=error), error.code


for _code in (400, 403, 404, 409, 413, 429):
    bp.register_error_handler(_code, _error_page)

# The views register themselves on bp.
from . import auth, blocking, conversation, listings, live, supervision, waiting_list  # noqa: E402,F401
from . import next_texter  # noqa: E402,F401
from . import followups  # noqa: E402,F401
from . import partners  # noqa: E402,F401
