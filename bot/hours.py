"""Counsellor hours and the wait a newly queued texter is told about.

HELPLINE_HOURS reads like "Mon-Fri 08:00-20:00; Sat 10:00-16:00" in HELPLINE_TIMEZONE: days
(a range "Mon-Fri", a list "Sat,Sun" or one day) and a time range; a range that ends before it
starts runs past midnight ("Fri 20:00-02:00"). Empty means always staffed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis

from flows.when import said_clock

from . import waiting
from .errors import ConfigurationError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ONLINE = "counsellors:online"  # names of counsellors taking conversations (kept by the console)
SEEN = "counsellors:seen"  # name -> when that counsellor last did something (bot.console.accounts)
_PART = re.compile(r"^(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")
DAY_MINUTES = 24 * 60


def _minutes(clock: str, text: str) -> int:
    hours, minutes = (int(n) for n in clock.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ConfigurationError(f"HELPLINE_HOURS: {clock!r} is not a time of day in {text!r}")
    return hours * 60 + minutes


def _days(spec: str, text: str) -> list[int]:
    found: list[int] = []
    for item in spec.replace(" ", "").lower().split(","):
        first, _, last = item.partition("-")
        if first[:3] not in DAYS or (last and last[:3] not in DAYS):
            raise ConfigurationError(f"HELPLINE_HOURS: unknown day in {text!r} (use Mon Tue Wed Thu Fri Sat Sun)")
        start, end = DAYS.index(first[:3]), DAYS.index((last or first)[:3])
        found += [(start + n) % 7 for n in range((end - start) % 7 + 1)]
    return found


@dataclass(frozen=True)
class Hours:
    """Open intervals per weekday (Monday = 0), in minutes after local midnight."""

    week: tuple[tuple[tuple[int, int], ...], ...]
    zone: ZoneInfo
    always: bool = False

    @classmethod
    def parse(cls, text: str, timezone: str) -> "Hours":
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"HELPLINE_TIMEZONE: unknown time zone {timezone!r}") from exc
        week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        parts = [p.strip() for p in (text or "").split(";") if p.strip()]
        for part in parts:
            match = _PART.match(part)
            if not match:
                raise ConfigurationError(f"HELPLINE_HOURS: cannot read {part!r}; write e.g. 'Mon-Fri 08:00-20:00'")
            start, end = _minutes(match["start"], part), _minutes(match["end"], part)
            for day in _days(match["days"], part):
                if start < end:
                    week[day].append((start, end))
                elif start > end:  # past midnight: the rest of the night belongs to the next day
                    week[day].append((start, DAY_MINUTES))
                    week[(day + 1) % 7].append((0, end))
        return cls(tuple(tuple(sorted(day)) for day in week), zone, always=not parts)

    def is_open(self, moment: datetime) -> bool:
        if self.always:
            return True
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.week[local.weekday()])

    def next_opening(self, moment: datetime) -> datetime | None:
        """The next time the line opens after `moment` (local time); None when it never does."""
        if self.always:
            return None
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            for start, _ in self.week[day.weekday()]:
                if ahead == 0 and start <= minute:
                    continue
                return datetime(day.year, day.month, day.day, start // 60, start % 60, tzinfo=self.zone)
        return None


@dataclass
class Staffing:
    """What a texter who just joined the queue should hear: the wait, or when counsellors are back."""

    redis: redis.Redis
    hours: Hours
    minutes_per_conversation: int
    # A counsellor idle this long is not counted, even before the console drops them from ONLINE.
    idle_seconds: float = 20 * 60

    @classmethod
    def from_config(cls, client: redis.Redis, cfg) -> "Staffing":
        return cls(client, Hours.parse(cfg.get("HELPLINE_HOURS", ""), cfg["HELPLINE_TIMEZONE"]),
                   int(cfg["HELPLINE_MINUTES_PER_CONVERSATION"]), int(cfg["CONSOLE_IDLE_MINUTES"]) * 60)

    def announce(self, say, priority: str, since: float, now: float) -> str:
        """The wait (`queue_wait`); in open hours with nobody signed in, that plainly, the 24/7 lines
        first (`nobody_online`); out of hours, the 24/7 lines and when counsellors are back (`after_hours`).

        `say(key, **values)` renders a catalog message in the texter's language.
        """
        # One round trip, and only on the message that puts a conversation in the queue.
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(waiting.KEY, "-inf", f"({waiting.score(priority, since)}")
        pipe.smembers(ONLINE)
        pipe.zrangebyscore(SEEN, now - self.idle_seconds, "+inf")
        ahead, names, active = pipe.execute()
        # Signed in and active lately: a name left behind by a closed laptop is no one to wait for.
        online = len(set(names) & set(active))
        moment = datetime.fromtimestamp(now, self.hours.zone)
        if not self.hours.is_open(moment):
            return say("after_hours", back=back_text(say, moment, self.hours.next_opening(moment)))
        if not online:
            return say("nobody_online")
        return say("queue_wait", minutes=wait_minutes(ahead, online, self.minutes_per_conversation))


def wait_minutes(ahead: int, online: int, minutes_per_conversation: int) -> int:
    """Everyone ahead, plus the conversation a counsellor is finishing, shared among those online."""
    return max(1, math.ceil((ahead + 1) * minutes_per_conversation / max(online, 1)))


def back_text(say, moment: datetime, opening: datetime | None) -> str:
    """When counsellors are back, in words relative to `moment`'s local day."""
    if opening is None or opening <= moment:
        return say("back_soon")
    time = said_clock(opening, say)
    days = (opening.date() - moment.date()).days
    if days == 0:
        return say("back_today", time=time)
    if days == 1:
        return say("back_tomorrow", time=time)
    day = say("weekdays").split(",")[opening.weekday()].strip()
    return say("back_day", day=day, time=time)
