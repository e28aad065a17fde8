"""The front door at /: for whoever runs the help line, what is running and where to go next; and the favicon.

FRONT_DOOR decides what / does (see bot.settings). The page says nothing about conversations or texters:
only whether the parts are up, and whether a counselor account exists yet.
"""
from __future__ import annotations

import redis
from flask import Blueprint, abort, current_app, redirect, render_template

from .console import accounts
from .extensions import get_redis
from .health import check
from .settings import FRONT_DOOR_OFF

bp = Blueprint("front_door", __name__)


@bp.get("/")
def index():
    choice = current_app.config.get("FRONT_DOOR") or ""
    if choice == FRONT_DOOR_OFF or (not choice and current_app.config["HELPLINE_ENV"] == "production"):
        abort(404)
    if choice:
        return redirect(choice, 302)
    health, _ = check()
    return render_template("front_door.html", health=health, counsellors=_any_counsellor(health),
                           min_password=accounts.MIN_PASSWORD)


def _any_counsellor(health: dict) -> bool | None:
    """Whether an account exists; None when Redis cannot say."""
    if not health["redis"]:
        return None
    try:
        return bool(get_redis().scard(accounts.NAMES))
    except redis.RedisError:
        return None


@bp.get("/favicon.ico")
def favicon():
    # Browsers ask for /favicon.ico whatever the page links to; without it every console shows a 404.
    return current_app.send_static_file("favicon.ico")
