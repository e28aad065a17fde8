"""The queue page: what waits (most urgent first), what I hold, claiming, and my online/away status."""
from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for

from ..extensions import get_redis, get_store, get_waiting
from . import accounts, bp, capacity, handoff
from .auth import current_counsellor, login_required, tell

PAGE = 50  # rows shown by default; the most urgent are all a counsellor needs to see
MAX_PAGE = 500


def _shown() -> int:
    try:
        return max(1, min(int(request.args.get("show", PAGE)), MAX_PAGE))
    except ValueError:
        return PAGE


def _queue_context() -> dict:
    me = current_counsellor()
    shown = _shown()
    return {"waiting": handoff.waiting_rows(shown), "mine": handoff.active_rows(me.name),
            "depth": get_waiting().depth(), "shown": shown}


@bp.get("/")
@login_required
def index(error: str | None = None, status: int = 200):
    return render_template("console/queue.html", error=error, **_queue_context()), status


@bp.get("/queue/live")
@login_required
def queue_live():
    """The queue's rows alone; the page polls this every second or two."""
    return render_template("console/_queue_live.html", **_queue_context())


@bp.post("/claim/<conv_id>")
@login_required
def claim(conv_id):
    try:
        handoff.claim(current_counsellor(), conv_id)
    except handoff.AlreadyTaken as exc:
        if exc.holder == current_counsellor().name:
            return redirect(url_for("console.conversation", conv_id=conv_id))  # a double click: the first won
        left = get_store().load(conv_id) if exc.holder is None else None
        if left is not None and left.handoff not in ("waiting", "active"):
            return index(error="That conversation is no longer waiting: it has ended.", status=409)
        return index(error=f"That conversation was already taken by {exc.holder or 'another counselor'}.",
                     status=409)
    except handoff.Gone:
        return index(error="That conversation no longer exists: the texter erased it.", status=404)
    except handoff.Blocked:
        return index(error="That sender was just blocked: nobody takes their conversation.", status=409)
    except handoff.LeftTheLine:
        return index(error="That texter left the line just before you took it.", status=409)
    except capacity.Refused as exc:
        return index(error=f"You cannot take a conversation now: {exc}.", status=409)
    tell("You hold this conversation now.")
    return redirect(url_for("console.conversation", conv_id=conv_id))


@bp.post("/status")
@login_required
def status():
    wanted = request.form.get("status")
    if wanted not in ("online", "away"):
        abort(400, "Status is either online or away.")
    accounts.set_online(get_redis(), current_counsellor().name, wanted == "online")
    return redirect(request.form.get("back") if (request.form.get("back") or "").startswith("/console")
                    else url_for("console.index"))
