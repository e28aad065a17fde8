"""A time a texter says is safe ("tomorrow after 6", "mañana en la tarde") as a window in the help line's zone.

What people write is read by rules first: days (today, tomorrow, pasado mañana, a weekday, the weekend,
next week), parts of the day, hours (an hour 1-7 without am/pm is p.m.: nobody asks for a text at 5 a.m.
by writing "5"), "after", "before", "between", "in 2 hours", in English and Spanish, with typos and
without accents. A written date ("dec 5", "12/10", "5 de diciembre") is left to dateparser, which is
slow to import (about half a second) and to call the first time: it is imported only when a message
has a date in it, and told to read English and Spanish only.

Windows (tests/data/when_heldout.tsv says the same): a day alone 09:00-18:00; morning 08-12;
afternoon/tarde 12-18; evening 17-21; night/noche/tonight 19-22; "at H" H to H+1; "after H" H to H+3;
"before H" 08:00 to H; a window under way starts now; "el 15", "the 15th": that day of the month. Nothing
in the past, nothing more than HORIZON_DAYS ahead, nothing the texter rules out ("not tonight he's home",
"hoy no", "never at night"): None, as for words that say no time at all.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, process

ZONE = "America/Los_Angeles"  # HELPLINE_TIMEZONE's default (bot/settings.py); the app gives its own
HORIZON_DAYS = 30  # the retention: nothing of the conversation is kept longer, so nor is a check-in
DAY = (9, 18)
PARTS = {"morning": (8, 12), "afternoon": (12, 18), "evening": (17, 21), "night": (19, 22)}
AT, AFTER = 1, 3  # hours a window lasts from "at 6" and from "after 6"
EARLIEST = 8  # "before noon" starts here, not at midnight
NIGHT_FROM, NIGHT_UNTIL = 21, 8  # an hour asked for in here means the texter chose a time at night

WEEKDAYS = {
    "monday": 0, "mon": 0, "lunes": 0, "tuesday": 1, "tues": 1, "tue": 1, "martes": 1,
    "wednesday": 2, "wed": 2, "weds": 2, "miercoles": 2, "thursday": 3, "thurs": 3, "thur": 3, "thu": 3, "jueves": 3,
    "friday": 4, "fri": 4, "viernes": 4, "saturday": 5, "sat": 5, "sabado": 5, "sunday": 6, "sun": 6, "domingo": 6,
}
# Words, after accents and case are gone, as what they mean here.
WORDS = {
    "today": "today", "hoy": "today", "oy": "today", "tonight": "tonight", "tonite": "tonight",
    "tomorrow": "tomorrow", "tmrw": "tomorrow", "tmr": "tomorrow", "tmw": "tomorrow", "tomm": "tomorrow",
    "2morrow": "tomorrow", "2moro": "tomorrow", "2mrw": "tomorrow",
    "yesterday": "past", "ayer": "past", "anoche": "past", "ago": "past",
    "morning": "morning", "early": "early", "temprano": "early", "afternoon": "afternoon", "tarde": "afternoon",
    "evening": "evening",
    "night": "night", "noche": "night", "nite": "night",
    "noon": "noon", "mediodia": "noon", "midday": "noon", "midnight": "midnight", "medianoche": "midnight",
    "weekend": "weekend", "finde": "weekend", "later": "later", "luego": "later", "rato": "later",
    "after": "after", "despues": "after", "desde": "after", "past": "after",
    "before": "before", "antes": "before", "by": "before", "b4": "before",
    "between": "between", "entre": "between",
    "hour": "hour", "hours": "hour", "hr": "hour", "hrs": "hour", "hora": "hour", "horas": "hour",
    "minutes": "minute", "minute": "minute", "mins": "minute", "min": "minute", "minutos": "minute",
    "day": "dayunit", "days": "dayunit", "dia": "dayunit", "dias": "dayunit",
    "week": "week", "weeks": "week", "semana": "week", "semanas": "week",
    "month": "month", "months": "month", "mes": "month", "meses": "month",
    "next": "next", "proxima": "next", "proximo": "next", "que": "", "viene": "next",
    "am": "am", "pm": "pm", "a.m": "am", "p.m": "pm",
    **{name: name for name in WEEKDAYS},
}
# Words worth reading through a typo ("tomorow", "wensday", "afternon"): long ones only.
FUZZY = [w for w in WORDS if len(w) >= 5 and not w.isdigit()]
NUMBER_WORDS = {"one": 1, "an": 1, "a": 1, "una": 1, "un": 1, "uno": 1, "two": 2, "dos": 2, "three": 3, "tres": 3,
                "four": 4, "cuatro": 4, "five": 5, "cinco": 5, "six": 6, "seis": 6, "seven": 7, "siete": 7,
                "eight": 8, "ocho": 8, "nine": 9, "nueve": 9, "ten": 10, "diez": 10, "eleven": 11, "once": 11,
                "twelve": 12, "doce": 12}
SHORT_MONTHS = {"dic": "diciembre", "ene": "enero", "abr": "abril"}  # Spanish ones dateparser's list lacks
MONTHS = ("jan feb mar apr may jun jul aug sep oct nov dec enero febrero marzo abril mayo junio julio agosto "
          "septiembre setiembre octubre noviembre diciembre").split()
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?(am|pm|a\.?m\.?|p\.?m\.?)?$")
_MONTH = r"(?:" + "|".join(MONTHS) + r")[a-z]*"
# "12/10", "dec 5", "december 5th", "5 de diciembre", "the 5th of december"
_WRITTEN_DATE = re.compile(rf"\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
                           rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:de\s+|of\s+)?{_MONTH}\b|\b{_MONTH}\b")


_DAYS = "|".join(name for name in WEEKDAYS)
# "el 15", "dia 15", "the 15th", "15th": a day of the month (Spanish hours are "las 3", never "el 3")
_DAY_OF_MONTH = re.compile(r"\b(?:el|dia|the) \d{1,2}(?:st|nd|rd|th)?\b|\b\d{1,2}(?:st|nd|rd|th)\b")
NEGATIONS = {"not", "never", "nunca", "no", "dont", "cant", "except", "excepto"}
TIME_WORDS = {"today", "tonight", "tomorrow", "+2", "morning", "early", "afternoon", "evening", "night", "noon",
              "midnight", "weekend", "later", "week", "after", "before", "between", "am", "pm", "date", *WEEKDAYS}
# Between a "not" and the time it denies: "never AT night", "no EN LA noche", "hoy no" ...
LINKS = {"at", "in", "on", "the", "this", "by", "during", "en", "la", "las", "el", "los", "de", "del", "por", "a",
         "al", "and", "y", "to", "-", "es", "is", "s", "are"}
# ... and before it only: "don't TEXT ME tonight", "no ME ESCRIBAS en la noche", "not GOOD tomorrow"
HEDGES = {"me", "us", "text", "txt", "call", "message", "msg", "send", "write", "contact", "good", "safe", "ok", "okay",
          "escribas", "escriban", "mandes", "manden", "llames", "llamen", "mensaje", "mensajes", "puedo", "puede",
          "can", "do", "does", "seguro", "segura", "bueno", "buena", "it", "that", "esta", "hay"}
# Between "after" and its hour: "after like 6", "anytime after 7", "despues de como las 7".
HEDGE_HOURS = {"around", "about", "like", "como", "eso", "approx", "maybe", "anytime", "any", "time"}


@dataclass(frozen=True)
class Window:
    """When a check-in may be sent: [start, end) in the help line's zone, and whether it is at night."""

    start: datetime
    end: datetime
    night: bool

    def as_slot(self) -> dict:
        return {"start": self.start.timestamp(), "end": self.end.timestamp(), "night": self.night}


def plain(text: str) -> str:
    """Lower case, no accents ("mañana" keeps its meaning through "manana", see _tokens), spaced punctuation;
    a comma stays, as a word: it ends what a "not" denies ("no, tomorrow at 6")."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"(\d)\s*([ap])\.?\s?m\b\.?", r"\1\2m", text)  # "6 p.m." -> "6pm"
    text = re.sub(r"(\d)\s*-\s*(\d)", r"\1 - \2", text)
    text = re.sub(r"(\d)ish\b", r"\1", text)  # "5ish"
    text = re.sub(r"\b(\d{1,2}) y (media|cuarto)\b", lambda m: f"{m[1]}:{30 if m[2] == 'media' else 15}", text)
    text = re.sub(r"\bhalf past (\d{1,2})\b", r"\1:30", text)
    text = re.sub(r"n['’]t\b", " not", text)  # "don't", "can't"
    text = re.sub(r"\b(dic|ene|abr)\b", lambda m: SHORT_MONTHS[m[1]], text)  # "el 5 de dic"
    return re.sub(r"[^\w:/.,\- ]+", " ", text).replace(".", " ").replace(",", " , ")


def _tokens(text: str) -> list[str]:
    words = plain(text).split()
    out = []
    for i, word in enumerate(words):
        if word == "manana":
            # "la/por la/en la/de la mañana" is the morning; any other "mañana" is tomorrow.
            out.append("morning" if i and words[i - 1] in ("la", "por", "en", "de") else "tomorrow")
            continue
        if word == "pasado" and i + 1 < len(words) and words[i + 1] == "manana":
            out.append("+2")
            continue
        if word in WORDS or word in NUMBER_WORDS or _CLOCK.match(word) or word in ("-", "y", "and", "to", "a"):
            out.append(WORDS.get(word, word))
            continue
        found = process.extractOne(word, FUZZY, scorer=fuzz.ratio, score_cutoff=80) if len(word) >= 5 else None
        out.append(WORDS[found[0]] if found else word)
    # The day of a written date ("dec 5", "5 de diciembre", "el 15", "the 15th") is no hour.
    for i, word in enumerate(words):
        if word.startswith(tuple(MONTHS)) and len(word) >= 3:
            for j in (i - 2, i - 1, i + 1):
                if 0 <= j < len(out) and out[j].isdigit():
                    out[j] = "date"
        if _DAY_OF_MONTH.fullmatch(word) or _DAY_OF_MONTH.fullmatch(" ".join(words[max(i - 1, 0):i + 1])):
            out[i] = "date"
    for i in _denied(words, out):
        out[i] = ""
    # "the day after tomorrow": two days on, not "after" an hour; "fin de semana": the weekend; a day gone by.
    joined = " ".join(word for word in out if word not in ("", ","))
    joined = re.sub(r"\b(?:the )?dayunit after tomorrow\b", "+2", joined)
    joined = re.sub(r"\bfin de week\b", "weekend", joined)
    joined = re.sub(r"\botra week\b", "next week", joined)  # "la otra semana": the next one
    joined = re.sub(r"\bafter (?:de )?(?:la )?(?:school|skool|escuela)\b", "after 3", joined)  # school is out at 3
    joined = re.sub(rf"\blast (?:{_DAYS}|night|week|weekend)\b|\b(?:{_DAYS}|week|weekend) pasad[oa]\b", "past", joined)
    return joined.split()


def _denied(words: list[str], out: list[str]) -> set[int]:
    """The words of a time the texter rules out: "not tonight", "never at night", "don't text me after 9", and
    in Spanish also after it ("hoy no, mañana sí", "en la noche no"). A comma or any other word ends it.
    Reading a time that was denied would text someone when they said it is not safe."""
    denied: set[int] = set()
    for i, word in enumerate(words):
        if word not in NEGATIONS:
            continue
        ways = (-1, 1) if word == "no" else (1, -1)  # Spanish "no" mostly follows what it denies
        for way in ways:
            span = _time_run(words, out, i, way)
            if span:
                denied |= span
                break
    return denied


def _time_run(words: list[str], out: list[str], at: int, way: int) -> set[int]:
    """The words of a time next to words[at] going one way, across words that only link them ("at", "me")."""
    j, run = at + way, set()
    while 0 <= j < len(words):
        timey = out[j] in TIME_WORDS or (out[j] not in ("a", "y", "un", "una") and _hour(out[j]) is not None)
        if timey:
            run.add(j)
        elif words[j] not in LINKS and (run or words[j] not in HEDGES):
            break
        j += way
    return run


def _hour(token: str) -> tuple[int, int, str] | None:
    """(hour, minute, "am"/"pm"/"") of "6", "6pm", "6:30", "six"."""
    if token in NUMBER_WORDS and token not in ("a", "an", "un", "una"):
        return NUMBER_WORDS[token], 0, ""
    found = _CLOCK.match(token)
    if not found or int(found[1]) > 23 or int(found[2] or 0) > 59:
        return None
    return int(found[1]), int(found[2] or 0), (found[3] or "").replace(".", "")[:1] + ("m" if found[3] else "")


def _clock(hour: int, minute: int, marker: str, part: str | None) -> time | None:
    """The time of day an hour means: am/pm as written, else the part of the day, else 1-7 p.m., 8-11 a.m."""
    if hour > 12 or hour == 0:
        return time(hour % 24, minute) if not marker else None
    if marker == "pm" or (not marker and part in ("afternoon", "evening", "night") and hour != 12):
        return time(hour % 12 + 12, minute)
    if marker == "am" or part == "morning":
        return time(hour % 12, minute)
    return time(hour + 12 if 1 <= hour <= 7 else hour, minute)


def read(text: str, now: datetime) -> Window | None:
    """The window a texter's words ask for, relative to `now` (aware, in the help line's zone); None
    when they name no time, a time already past, or one more than HORIZON_DAYS ahead."""
    tokens = _tokens(text[:200])
    if not tokens or "past" in tokens:
        return None
    found = _relative(tokens, now)
    if found is None:
        day, explicit = _day(tokens, text, now)
        if day is None:
            return None
        span = _span(tokens)
        if span is None:
            if not explicit:
                return None  # no day and no time of day: not a time at all
            span = (time(DAY[0]), time(DAY[1]), False)
        start_t, end_t, night = span
        found = _window_on(day, start_t, end_t, now.tzinfo)
        if found[1] <= now and not explicit:
            found = _window_on(day + timedelta(days=1), start_t, end_t, now.tzinfo)
        found = (*found, night)
    start, end, night = found
    if end <= now or end > now + timedelta(days=HORIZON_DAYS):
        return None
    return Window(max(start, now), end, night)


def _window_on(day: date, start: time, end: time, zone) -> tuple[datetime, datetime]:
    begin = datetime.combine(day, start, zone)
    finish = datetime.combine(day, end, zone) if end > start else datetime.combine(day + timedelta(days=1), end, zone)
    return begin, finish


def _relative(tokens: list[str], now: datetime) -> tuple[datetime, datetime, bool] | None:
    """"in 2 hours", "en una hora", "dentro de 3 horas", "later", "más tarde"."""
    joined = " ".join(tokens)
    if re.search(r"\b(?:mas afternoon|mas tarde|later|in a bit|al later)\b", joined) or joined in ("later", "al later"):
        start = now + timedelta(hours=1)
        return start, start + timedelta(hours=2), False
    found = re.search(r"\b(?:in|en|dentro de)\s+(?:like |about |around |como |unas? )?(\S+)\s+"
                      r"(minute|hour|dayunit|week|month)\b", joined)
    if not found:
        return None
    amount = NUMBER_WORDS.get(found[1]) or (int(found[1]) if found[1].isdigit() else None)
    if amount is None:
        return None
    unit = found[2]
    if unit in ("minute", "hour"):
        start = now + (timedelta(minutes=amount) if unit == "minute" else timedelta(hours=amount))
        return start, start + timedelta(hours=AT), _at_night(start.time(), (start + timedelta(hours=AT)).time())
    day = now.date() + timedelta(days=amount * {"dayunit": 1, "week": 7, "month": 30}[unit])
    begin, end = _window_on(day, time(DAY[0]), time(DAY[1]), now.tzinfo)
    return begin, end, False


def _day(tokens: list[str], text: str, now: datetime) -> tuple[date | None, bool]:
    """(the day named, whether one was named); without one, today (the caller moves on to tomorrow)."""
    today = now.date()
    if "+2" in tokens:
        return today + timedelta(days=2), True
    if "tomorrow" in tokens:
        return today + timedelta(days=1), True
    for token in tokens:
        if token in WEEKDAYS:
            ahead = (WEEKDAYS[token] - today.weekday()) % 7 or 7
            return today + timedelta(days=ahead), True
    if "weekend" in tokens:
        return today + timedelta(days=(5 - today.weekday()) % 7 if today.weekday() != 6 else 0), True
    if "week" in tokens and "next" in tokens:
        return today + timedelta(days=7 - today.weekday()), True
    if "today" in tokens or "tonight" in tokens:
        return today, True
    if {"this", "esta", "este"} & set(tokens) and set(PARTS) & set(tokens):
        return today, True  # "this morning": today's, even when it is over
    written = _written_date(text, now)
    if written is not None:
        return written, True
    return today, False


def _written_date(text: str, now: datetime) -> date | None:
    written = _WRITTEN_DATE.search(plain(text))
    if not written:
        return _day_of_month(text, now.date())
    import dateparser  # slow to import: only for a message that has a written date

    settings = {"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DATES_FROM": "future", "DATE_ORDER": "MDY",
                "REQUIRE_PARTS": ["day", "month"]}
    # Only the date: the rules read the time of day, which dateparser would take from a bare "at 4".
    found = dateparser.parse(written.group(), languages=["en", "es"], settings=settings)
    return found.date() if found else None


def _day_of_month(text: str, today: date) -> date | None:
    """"el 15", "the 15th": that day of this month, or of the next once it has gone by."""
    found = _DAY_OF_MONTH.search(plain(text))
    if not found:
        return None
    number = int(re.search(r"\d+", found.group())[0])
    if number < today.day:
        today = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    try:
        return today.replace(day=number)
    except ValueError:  # "the 31st" of a shorter month, or "el 0"
        return None


def _span(tokens: list[str]) -> tuple[time, time, bool] | None:
    """The time of day asked for: (start, end, at night), or None when the words name none."""
    part = next((t for t in tokens if t in PARTS), "night" if "tonight" in tokens else None)
    part = part or ("morning" if "early" in tokens else None)  # "mañana temprano"
    hours = []  # (index, hour, minute, marker) of every hour written
    for i, token in enumerate(tokens):
        found = _hour(token) if token not in ("a", "y") else None
        if found:
            marker = found[2] or (tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1] in ("am", "pm") else "")
            hours.append((i, found[0], found[1], marker))
    if "noon" in tokens:
        hours.append((tokens.index("noon"), 12, 0, "pm"))
    if "midnight" in tokens:
        hours.append((tokens.index("midnight"), 0, 0, ""))
    hours.sort()
    clocks = [_clock(h, m, marker, part) for _, h, m, marker in hours]
    if any(c is None for c in clocks):
        return None
    if len(clocks) >= 2 and ("between" in tokens or "-" in tokens or "to" in tokens or "y" in tokens or "a" in tokens):
        start, end = clocks[0], clocks[1]
        if end <= start and end.hour < 12:
            end = time(end.hour + 12, end.minute)
        return start, end, _at_night(start, end)
    if clocks:
        first = clocks[0]
        if "before" in tokens:
            return time(EARLIEST), first, _at_night(time(EARLIEST), first)
        lasts = AFTER if _after_leads_to(tokens, hours[0][0]) else AT
        end = (datetime.combine(date.min, first) + timedelta(hours=lasts)).time()
        end = min(end, time(23, 59)) if end > first else time(23, 59)
        return first, end, _at_night(first, end)
    if part:
        start, end = PARTS[part]
        return time(start), time(end), _at_night(time(start), time(end))
    return None


def _after_leads_to(tokens: list[str], at: int) -> bool:
    """Whether "after" leads to the hour at tokens[at]: "after 7", "despues de las 7", not "after work around 7"."""
    for token in reversed(tokens[:at]):
        if token == "after":
            return True
        if token not in LINKS and token not in HEDGE_HOURS:
            return False
    return False


def _at_night(start: time, end: time) -> bool:
    return start.hour < NIGHT_UNTIL or start.hour >= NIGHT_FROM or end > time(NIGHT_FROM) or end < start


def describe(window: dict, now: float, zone: ZoneInfo, say) -> str:
    """The window in the texter's words ("tomorrow, Tuesday December 2, between 6:00 PM and 9:00 PM");
    `say(key, **values)` renders a catalog message in their language."""
    start = datetime.fromtimestamp(window["start"], zone)
    end = datetime.fromtimestamp(window["end"], zone)
    names, months = say("weekdays").split(","), say("months").split(",")
    days = (start.date() - datetime.fromtimestamp(now, zone).date()).days
    relative = {0: "check_in_today", 1: "check_in_tomorrow"}.get(days)
    day = say("check_in_date", weekday=names[start.weekday()].strip(), month=months[start.month - 1].strip(),
              date=start.day)
    if relative:
        day = say(relative, day=day)
    return say("check_in_window", day=day, start=said_clock(start, say), end=said_clock(end, say))


def said_clock(moment: datetime, say) -> str:
    """A time of day as texters read it (catalog `clock`: "6:00 PM", "6:00 de la tarde")."""
    hour = moment.hour
    daypart = "morning" if 5 <= hour < 12 else "afternoon" if 12 <= hour < 19 else "night"
    return say("clock", hour=hour, hour12=(hour - 1) % 12 + 1, minute=f"{moment.minute:02d}",
               ampm="AM" if hour < 12 else "PM", daypart=say(f"daypart_{daypart}"))
