"""Reports for the coalition: contacts by month or by week, at /console/reports and `helpline report`.

A report reads only the per-day counters of bot.metrics (channels, languages, menu paths, reasons,
priorities, outcomes, the wrap-up form's choices) and the day's waits: they hold no number, address,
conversation id or text, so no report can show one. A report is plain rows (a dimension, a value, a
count per period); the page draws them, the CSV and the command print them with small counts hidden:

- a count from 1 to 4 is printed as "<5", so that no one can be picked out;
- where a table (one dimension, one period) has exactly one such count, its next smallest count is
  hidden too (printed "*"): a table's values add up to a total that is printed or can be worked out
  (conversations started, queued, or the sum of another table), and with one hidden cell the total
  would give it back. With two or more hidden, a total only gives their sum;
- wait percentiles are left out ("-") for a period with fewer than 5 measured waits.
Comparing overlapping reports (a month and the weeks in it) can still narrow a hidden count: the
page says so.
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Response, abort, current_app, render_template, request

from .console import bp, wrapup
from .console.auth import supervisor_required
from .console.present import CHANNELS, LANGUAGES
from .dashboard import LEVELS, OUTCOMES, PATHS, REASONS
from .errors import HelplineError
from .metrics import DAY_TTL, Stats
from .waiting import PRIORITIES

SMALL = 5  # counts from 1 to SMALL - 1 are hidden in exports
SMALL_MARK = "<5"
ALSO_HIDDEN = "*"
NO_FIGURE = "-"
WEEKS = 12  # the page's "by week" view
MAX_WEEKS = 52
KEPT_DAYS = DAY_TTL // 86400
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits: \d and str.isdigit take others int() refuses
_WHOLE = re.compile(r"[0-9]+")

NOTES = (
    f"Counts from 1 to {SMALL - 1} are shown as {SMALL_MARK}, so that no one can be identified.",
    f"Where a table has only one count under {SMALL}, its next smallest count is shown as {ALSO_HIDDEN}, "
    "so that a total cannot give the small one back.",
    f"Wait percentiles are left out ({NO_FIGURE}) for a period with fewer than {SMALL} measured waits.",
    "Comparing overlapping reports (a month and the weeks in it) can narrow a hidden count: share one kind.",
    "Counts only: no phone number, address, conversation id or message is kept with them.",
)


class PeriodError(HelplineError):
    """A period that is not a month or a number of weeks the counters can answer for."""


@dataclass(frozen=True)
class Period:
    label: str  # "2026-11", or a week's Monday ("2026-11-23")
    first: date
    last: date


@dataclass
class Row:
    key: str
    label: str
    counts: list[int]
    hidden: list[str]  # per period: "" (printed), SMALL_MARK or ALSO_HIDDEN

    def printed(self, i: int) -> str:
        return self.hidden[i] or str(self.counts[i])


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row]

    @property
    def peak(self) -> int:
        return max((n for row in self.rows for n in row.counts), default=0)


@dataclass
class Waits:
    measured: int
    p50: float | None  # seconds
    p90: float | None

    def printed(self) -> list[str]:
        shown = self.measured >= SMALL
        return [SMALL_MARK if 0 < self.measured < SMALL else str(self.measured),
                *(f"{s / 60:.1f}" if shown else NO_FIGURE for s in (self.p50, self.p90))]


WAIT_TITLE = "Wait for a counselor (minutes)"
WAIT_ROWS = ("Waits measured", "Median (p50)", "90th percentile (p90)")


@dataclass
class Report:
    name: str  # what the period is: "2026-11" or "12 weeks to 2026-11-29"
    periods: list[Period]
    sections: list[Section]
    waits: list[Waits]
    timezone: str

    def rows(self) -> list[list[str]]:
        """What the CSV and the command print: a header, a row per value, the waits, the notes."""
        out = [["dimension", "value", *(p.label for p in self.periods)]]
        for section in self.sections:
            out += [[section.title, row.label, *(row.printed(i) for i in range(len(self.periods)))]
                    for row in section.rows]
        figures = [w.printed() for w in self.waits]
        out += [[WAIT_TITLE, label, *(f[n] for f in figures)] for n, label in enumerate(WAIT_ROWS)]
        out += [["note", text] for text in (*NOTES, f"Days are local days in {self.timezone}.")]
        return out

    def csv(self) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(self.rows())
        return buffer.getvalue()

    def text(self) -> str:
        """The rows as aligned columns, for a terminal."""
        rows = self.rows()
        counts = [r for r in rows if r[0] != "note"]
        label_w = max(len(r[1]) for r in counts) + 2
        col_w = max(len(c) for r in counts for c in r[2:]) + 2
        lines, title = [], None
        for r in counts[1:]:
            if r[0] != title:
                title = r[0]
                lines += ["", title.ljust(label_w + 2) + "".join(c.rjust(col_w) for c in counts[0][2:])]
            lines.append("  " + r[1].ljust(label_w) + "".join(c.rjust(col_w) for c in r[2:]))
        notes = ["", "Notes:", *("  " + r[1] for r in rows if r[0] == "note")]
        return "\n".join([f"Contacts, {self.name}", *lines, *notes]) + "\n"


# -- periods ----------------------------------------------------------------------


def month(text: str, today: date) -> Period:
    """The month YYYY-MM, if it has begun and its counters are still kept."""
    found = _MONTH.fullmatch(text.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:  # there is no year 0
        raise PeriodError(f"{text[:20]!r} is not a month: write it as YYYY-MM, e.g. {today:%Y-%m}.")
    first = date(int(found.group(1)), int(found.group(2)), 1)
    if first > today:
        raise PeriodError(f"{first:%Y-%m} has not begun yet.")
    oldest = today - timedelta(days=KEPT_DAYS - 1)
    if first < oldest:
        raise PeriodError(f"Counts are kept for {KEPT_DAYS} days: the oldest whole month is "
                          f"{_next_month(oldest) if oldest.day > 1 else oldest:%Y-%m}.")
    return Period(f"{first:%Y-%m}", first, min(_next_month(first) - timedelta(days=1), today))


def weeks(n: int | str, today: date) -> list[Period]:
    """The last n weeks (Monday to Sunday), oldest first; the last is this week so far."""
    if not _WHOLE.fullmatch(str(n).strip()) or not 1 <= int(n) <= MAX_WEEKS:
        raise PeriodError(f"weeks must be a whole number from 1 to {MAX_WEEKS}.")
    monday = today - timedelta(days=today.weekday())
    mondays = [monday - timedelta(weeks=k) for k in range(int(n) - 1, -1, -1)]
    return [Period(m.isoformat(), m, min(m + timedelta(days=6), today)) for m in mondays]


def months_offered(today: date, count: int = 13) -> list[str]:
    """The months a report can be asked for, newest first."""
    first, out = today.replace(day=1), []
    while len(out) < count:
        try:
            out.append(month(f"{first:%Y-%m}", today).label)
        except PeriodError:
            break
        first = (first - timedelta(days=1)).replace(day=1)
    return out


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def periods_asked(month_text: str | None, weeks_text: str | None, today: date) -> tuple[str, list[Period]]:
    """A report's name and periods from what was asked: a month, a number of weeks, or (neither) this month."""
    if month_text is not None and weeks_text is not None:
        raise PeriodError("Ask for a month or for a number of weeks, not both.")
    if weeks_text is not None:
        periods = weeks(weeks_text, today)
        return f"{len(periods)} weeks to {periods[-1].last}", periods
    period = month(month_text if month_text is not None else f"{today:%Y-%m}", today)
    return period.label, [period]


# -- the report -------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    key: str  # the counters' prefix: "channel" for channel|sms
    title: str
    names: dict[str, str]  # known values, in the order shown; others follow, by key


def dimensions() -> list[Dimension]:
    """What a report counts, with display names: the engine's and console's counters, then each choice
    of the wrap-up form (its outcome is "How conversations ended", counted at every end)."""
    form = [Dimension(item.counter, item.label, item.choices) for item in wrapup.FORM.fields.values()
            if item.counter is not None and item.key != "outcome"]
    return [
        Dimension("channel", "Channel", {k: CHANNELS[k] for k in ("sms", "web")}),
        Dimension("lang", "Language", LANGUAGES),
        Dimension("path", "What they chose at the menu", PATHS),
        Dimension("handoff", "Why they were queued", REASONS),
        Dimension("priority", "Priority in the queue", {p: p.capitalize() for p in PRIORITIES}),
        Dimension("triage", "Risk raised by triage", LEVELS),
        Dimension("outcome", "How conversations ended", OUTCOMES),
        *form,
    ]


def build(stats: Stats, name: str, periods: list[Period]) -> Report:
    stats.fold_console_actions()  # the latest claims and ends, as the dashboard counts them
    days = stats.days(periods[0].first, periods[-1].last)
    totals = [sum((Counter(c) for d, c in days.items() if p.first <= d <= p.last), Counter()) for p in periods]
    overview = Section("contacts", "Contacts", [
        _row("conversations", "Conversations started", [t["conversations"] for t in totals]),
        _row("messages", "Messages from texters", [t["messages"] for t in totals]),
        _row("handoffs", "Queued for a counselor", [_prefixed(t, "handoff") for t in totals]),
        _row("claimed", "Picked up by a counselor", [t["claimed"] for t in totals]),
    ])
    sections = [overview]
    for dim in dimensions():
        found = {k.split("|", 1)[1] for t in totals for k in t if k.startswith(dim.key + "|")}
        if not found:
            continue  # e.g. the wrap-up form's counts, before its first use
        keys = list(dim.names) + sorted(found - set(dim.names))
        rows = [_row(k, dim.names.get(k) or k.replace("_", " ").capitalize(), [t[f"{dim.key}|{k}"] for t in totals])
                for k in keys]
        sections.append(Section(dim.key, dim.title, _protect(rows, len(periods))))
    waits = []
    for p in periods:
        measured = stats.waits(p.first, p.last)
        waits.append(Waits(len(measured), percentile(measured, 0.5), percentile(measured, 0.9)))
    return Report(name, periods, sections, waits, stats.tz.key)


def _row(key: str, label: str, counts: list[int]) -> Row:
    return Row(key, label, counts, [SMALL_MARK if 0 < n < SMALL else "" for n in counts])


def _prefixed(counts: Counter, prefix: str) -> int:
    return sum(v for k, v in counts.items() if k.startswith(prefix + "|"))


def _protect(rows: list[Row], periods: int) -> list[Row]:
    """Hide the next smallest count of a period's table that has exactly one small count."""
    for i in range(periods):
        small = [r for r in rows if r.hidden[i] == SMALL_MARK]
        rest = [r for r in rows if r.counts[i] >= SMALL]
        if len(small) == 1 and rest:
            min(rest, key=lambda r: r.counts[i]).hidden[i] = ALSO_HIDDEN
    return rows


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value that at least q of the values do not exceed."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else None


# -- the pages --------------------------------------------------------------------


def _asked() -> tuple[str, list[Period]]:
    stats: Stats = current_app.extensions["stats"]
    try:
        return periods_asked(request.args.get("month"), request.args.get("weeks"), stats.day(stats.clock()))
    except PeriodError as exc:
        abort(400, str(exc))


def _report() -> Report:
    name, periods = _asked()
    return build(current_app.extensions["stats"], name, periods)


@bp.get("/reports")
@supervisor_required
def reports():
    stats: Stats = current_app.extensions["stats"]
    report = _report()
    asked = {k: request.args[k] for k in ("month", "weeks") if k in request.args}
    return render_template("console/reports.html", report=report, months=months_offered(stats.day(stats.clock())),
                           asked=asked, weeks=WEEKS, notes=NOTES)


@bp.get("/reports.csv")
@supervisor_required
def reports_csv():
    report = _report()
    filename = f"contacts-{report.name.replace(' ', '-')}.csv"
    return Response(report.csv(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
