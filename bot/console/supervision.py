"""Supervisors: every conversation and who holds it, the counsellors online, the audit trail."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from flask import Response, render_template, request

from .. import audit, outbound
from ..extensions import get_redis, get_waiting
from . import accounts, bp, handoff, monitoring
from .auth import current_counsellor, hashed_name, supervisor_required
from .waiting_list import MAX_PAGE

AUDIT_ROWS = 500
FAILED_ROWS = 50
CSV_ROWS = 100_000


@bp.get("/all")
@supervisor_required
def overview():
    client = get_redis()
    return render_template("console/all.html", waiting=handoff.waiting_rows(MAX_PAGE), depth=get_waiting().depth(),
                           active=monitoring.watched(), online=accounts.online(client),
                           counsellors=accounts.everyone(client), failed=outbound.failed(FAILED_ROWS), when=_when)


def _conv_filter() -> str | None:
    return (request.args.get("conv") or "").strip() or None


def _name_filter() -> str | None:
    return (request.args.get("name") or "").strip().lower() or None


def _actors() -> set[str] | None:
    """A name's own entries and its failed sign-ins, which the trail keeps under the name's keyed hash."""
    name = _name_filter()
    return None if name is None else {name, hashed_name(name)}


@bp.get("/audit")
@supervisor_required
def audit_trail():
    return render_template("console/audit.html", entries=audit.entries(get_redis(), AUDIT_ROWS, _conv_filter(),
                                                                         _actors()),
                           conv=_conv_filter(), name=_name_filter(), when=_when)


@bp.post("/audit.csv")  # an export is recorded in the audit trail: a change, so never on a GET
@supervisor_required
def audit_export():
    client = get_redis()
    rows = audit.entries(client, CSV_ROWS, _conv_filter(), _actors())
    audit.record(client, current_counsellor().name, "export", _conv_filter() or "")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time_utc", "actor", "action", "conversation", "detail"])
    for row in rows:
        writer.writerow([_when(row["at"])] + [_cell(row[k]) for k in ("actor", "action", "conv", "detail")])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=audit.csv", "Cache-Control": "no-store"})


def _cell(value) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): a leading = + - @ tab or CR
    gets a quote in front."""
    value = str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _when(at: str) -> str:
    return datetime.fromtimestamp(float(at), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
