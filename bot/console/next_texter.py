""""Help the next texter", breaks and the pause after an emergency, and what the pages show of them:
a counsellor's load on the queue page; every online counsellor's load, break and shift, and the
emergencies nobody is free for, on the supervisors' pages."""
from __future__ import annotations

from dataclasses import dataclass

from flask import abort, redirect, request, url_for

from ..extensions import get_redis, get_waiting
from . import bp, capacity, handoff
from .auth import current_counsellor, login_required, tell
from .waiting_list import index


@bp.post("/next")
@login_required
def next_texter():
    me = current_counsellor()
    while True:
        try:
            conv = handoff.claim(me)
            break
        except (handoff.Gone, handoff.Blocked, handoff.LeftTheLine, handoff.AlreadyTaken):
            continue  # expired, blocked, left, or another's claim was first: it has left the queue; the next one
        except capacity.NobodyWaiting:
            return index(error="Nobody is waiting right now.", status=409)
        except capacity.Refused as exc:
            return index(error=f"You cannot take a conversation now: {exc}.", status=409)
    tell("You hold this conversation now: the most urgent, longest waiting texter.")
    return redirect(url_for("console.conversation", conv_id=conv.id))


@bp.post("/break")
@login_required
def take_break():
    """start a break, take the pause offered after an emergency, come back, or decline the pause."""
    client, name = get_redis(), current_counsellor().name
    wanted = request.form.get("break")
    if wanted in capacity.KINDS:
        capacity.start_break(client, name, wanted)
        tell("Break started: no new conversation comes to you until you come back."
             if wanted == "break" else "Pause started. Come back with one click when you are ready.")
    elif wanted == "back":
        capacity.end_break(client, name)
        tell("Welcome back: you can take conversations again.")
    elif wanted == "decline":
        capacity.decline_pause(client, name)
    else:
        abort(400, "Choose a break, a pause, or coming back.")
    return redirect(url_for("console.index"))


# -- what the pages show -------------------------------------------------------------------


@dataclass(frozen=True)
class Mine:
    places: int
    paused: capacity.Break | None
    pause_offered: bool


def _mine() -> Mine:
    client, me = get_redis(), current_counsellor()
    return Mine(capacity.capacity(client, me.name), capacity.on_break(client, me.name),
                capacity.pause_offered(client, me.name))


def _rota() -> list[tuple[capacity.Load, capacity.Shift]]:
    """Each online counsellor's load and their shift so far."""
    client = get_redis()
    loads = capacity.loads(client, capacity.held_counts(client, handoff.ACTIVE))
    shifts = capacity.shifts(client, [load.name for load in loads])
    return [(load, shifts[load.name]) for load in loads]


def _unattended() -> list[capacity.Unattended]:
    return capacity.unattended(get_redis(), get_waiting())


@bp.context_processor
def rota_helpers():
    # Functions, called only by the partials that show them: other pages pay nothing.
    return {"my_rota": _mine, "rota": _rota, "unattended_emergencies": _unattended}
