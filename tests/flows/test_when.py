"""Safe times in a texter's own words (flows/when.py), in English and Spanish, as windows in the help line's zone.

The held-out file (tests/data/when_heldout.tsv) was written before the parser was tuned; its figure is printed
and held to the floor measured. The cases below are the development set: what the tuning looked at.
"""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.extensions import flow_engine
from flows import when

ZONE = ZoneInfo("America/Los_Angeles")
NOW = datetime(2025, 12, 1, 14, 30, tzinfo=ZONE)  # a Monday afternoon, as in the held-out file
HELDOUT = Path(__file__).parents[1] / "data" / "when_heldout.tsv"
# Measured: 72/75 (96.0 %) with the first version, before any tuning; 75/75 after (commit history).
HELDOUT_FLOOR = 0.97
# Red team 4's phrases, written before reading the parser: 67/86 (77.9 %) measured once, untuned; 85/86 after
# the fixes that generalised (denied times, days of the month, "last friday"...): a tuned figure from then on.
FRESH = Path(__file__).parents[1] / "data" / "when_fresh.tsv"
FRESH_FLOOR = 0.98


def window(text: str, now: datetime = NOW):
    found = when.read(text, now)
    return None if found is None else (found.start.strftime("%a %H:%M"), found.end.strftime("%a %H:%M"), found.night)


def heldout(path: Path = HELDOUT) -> list[tuple[str, str, str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("path, floor", [(HELDOUT, HELDOUT_FLOOR), (FRESH, FRESH_FLOOR)], ids=["held-out", "fresh"])
def test_the_held_out_phrases_are_read_at_least_as_well_as_measured(path, floor):
    rows = heldout(path)
    assert len(rows) >= 60 and {lang for lang, *_ in rows} == {"en", "es"}
    right, wrong = 0, []
    for lang, phrase, start, end in rows:
        found = when.read(phrase, NOW)
        got = ("-", "-") if found is None else (f"{found.start:%Y-%m-%d %H:%M}", f"{found.end:%Y-%m-%d %H:%M}")
        if got == (start, end):
            right += 1
        else:
            wrong.append((lang, phrase, (start, end), got))
    print(f"\n{path.name} safe times: {right}/{len(rows)} = {right / len(rows):.1%}")
    assert right / len(rows) >= floor, wrong


@pytest.mark.parametrize("text, expected", [
    ("tomorrow after 6", ("Tue 18:00", "Tue 21:00", False)),
    ("TOMORROW AFTER 6 PM", ("Tue 18:00", "Tue 21:00", False)),
    ("text me tmrw around 5", ("Tue 17:00", "Tue 18:00", False)),
    ("2morrow morning", ("Tue 08:00", "Tue 12:00", False)),
    ("thursday evening", ("Thu 17:00", "Thu 21:00", False)),
    ("wensday", ("Wed 09:00", "Wed 18:00", False)),  # a typo of a day
    ("6", ("Mon 18:00", "Mon 19:00", False)),  # a bare hour 1-7 is p.m.
    ("9", ("Tue 09:00", "Tue 10:00", False)),  # 8-11 is a.m.: today's 9 a.m. is past, so tomorrow's
    ("6:30pm", ("Mon 18:30", "Mon 19:30", False)),
    ("at 9pm", ("Mon 21:00", "Mon 22:00", True)),  # a time at night, chosen
    ("tonight", ("Mon 19:00", "Mon 22:00", True)),
    ("from 3 to 5", ("Mon 15:00", "Mon 17:00", False)),
    ("tomorrow between 10 and 2", ("Tue 10:00", "Tue 14:00", False)),
    ("noon tomorrow", ("Tue 12:00", "Tue 13:00", False)),
    ("in 45 minutes", ("Mon 15:15", "Mon 16:15", False)),
    ("next monday", ("Mon 09:00", "Mon 18:00", False)),
    ("i cant talk until after 7", ("Mon 19:00", "Mon 22:00", True)),
])
def test_english(text, expected):
    assert window(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("mañana en la tarde", ("Tue 12:00", "Tue 18:00", False)),
    ("manana en la tarde", ("Tue 12:00", "Tue 18:00", False)),  # no accent: still tomorrow afternoon
    ("MAÑANA POR LA MAÑANA", ("Tue 08:00", "Tue 12:00", False)),
    ("mañana a las 9", ("Tue 09:00", "Tue 10:00", False)),
    ("después de las 6", ("Mon 18:00", "Mon 21:00", False)),
    ("a las 10 de la mañana", ("Tue 10:00", "Tue 11:00", False)),
    ("a las 8 de la noche", ("Mon 20:00", "Mon 21:00", False)),
    ("de 3 a 5", ("Mon 15:00", "Mon 17:00", False)),
    ("sabdo", ("Sat 09:00", "Sat 18:00", False)),  # "sábado" misspelt
    ("el domingo en la mañana", ("Sun 08:00", "Sun 12:00", False)),
    ("el proximo lunes", ("Mon 09:00", "Mon 18:00", False)),
    ("noche", ("Mon 19:00", "Mon 22:00", True)),
    ("en 30 minutos", ("Mon 15:00", "Mon 16:00", False)),
    ("pasado mañana", ("Wed 09:00", "Wed 18:00", False)),
])
def test_spanish(text, expected):
    assert window(text) == expected


@pytest.mark.parametrize("text", [
    "yesterday", "ayer", "this morning", "hoy en la mañana",  # past
    "in 2 months", "en 3 meses", "march 3", "december 31st",  # more than 30 days ahead
    "yes", "no", "ok", "idk", "no gracias, así está bien", "esta bien", "whenever", "cuando puedas", "now", "ahorita", "pizza", "", "???",
])
def test_nothing_past_nothing_beyond_thirty_days_nothing_unread(text):
    assert when.read(text, NOW) is None


@pytest.mark.parametrize("text", [
    "not tonight he's home", "never at night", "don't text me after 9", "tonight is not good",
    "no me escribas en la noche", "hoy no", "en la noche no", "nunca en la noche", "can't tomorrow",
])
def test_a_time_the_texter_rules_out_is_never_read_as_the_time_to_text(text):
    assert when.read(text, NOW) is None


@pytest.mark.parametrize("text, expected", [
    ("not tonight, tomorrow morning", ("Tue 08:00", "Tue 12:00", False)),  # a comma ends what "not" denies
    ("no, tomorrow at 6", ("Tue 18:00", "Tue 19:00", False)),
    ("hoy no mañana si", ("Tue 09:00", "Tue 18:00", False)),  # Spanish "no" after the day it denies
    ("mañana no puedo, el jueves si", ("Thu 09:00", "Thu 18:00", False)),
    ("at 6 not 7", ("Mon 18:00", "Mon 19:00", False)),
    ("after 6 when he's not home", ("Mon 18:00", "Mon 21:00", False)),  # "not home" denies no time
    ("no one is home tonight", ("Mon 19:00", "Mon 22:00", True)),
])
def test_what_is_left_when_a_time_is_ruled_out(text, expected):
    assert window(text) == expected


@pytest.mark.parametrize("text", ["last friday", "last night", "el viernes pasado", "la semana pasada"])
def test_a_day_gone_by_is_past(text):
    assert when.read(text, NOW) is None


@pytest.mark.parametrize("text, expected", [
    ("el 15", ("Mon 12-15 09:00", "Mon 12-15 18:00")),  # Spanish hours are "las 3", never "el 3"
    ("the 3rd", ("Wed 12-03 09:00", "Wed 12-03 18:00")),
    ("dia 20 a las 4", ("Sat 12-20 16:00", "Sat 12-20 17:00")),
    ("el 5 de dic", ("Fri 12-05 09:00", "Fri 12-05 18:00")),
    ("el finde", ("Sat 12-06 09:00", "Sat 12-06 18:00")),
    ("la otra semana", ("Mon 12-08 09:00", "Mon 12-08 18:00")),
    ("after school", ("Mon 12-01 15:00", "Mon 12-01 18:00")),
    ("tmrw after skool", ("Tue 12-02 15:00", "Tue 12-02 18:00")),
    ("mañana temprano", ("Tue 12-02 08:00", "Tue 12-02 12:00")),
    ("tomorrow b4 noon", ("Tue 12-02 08:00", "Tue 12-02 12:00")),
    ("5ish", ("Mon 12-01 17:00", "Mon 12-01 18:00")),
    ("in like an hour", ("Mon 12-01 15:30", "Mon 12-01 16:30")),
    ("weds", ("Wed 12-03 09:00", "Wed 12-03 18:00")),
    ("como a las 6 y media", ("Mon 12-01 18:30", "Mon 12-01 19:30")),
    ("half past 5", ("Mon 12-01 17:30", "Mon 12-01 18:30")),
    ("despues del trabajo como a las 7", ("Mon 12-01 19:00", "Mon 12-01 20:00")),  # after work, at 7: not "after 7"
])
def test_days_of_the_month_slang_and_hours_in_passing(text, expected):
    found = when.read(text, NOW)
    assert (f"{found.start:%a %m-%d %H:%M}", f"{found.end:%a %m-%d %H:%M}") == expected


def test_a_day_of_the_month_gone_by_is_next_months():
    found = when.read("el 3", datetime(2025, 12, 20, 10, 0, tzinfo=ZONE))
    assert f"{found.start:%Y-%m-%d %H:%M}" == "2026-01-03 09:00"
    assert when.read("the 30th", datetime(2026, 1, 31, 9, 0, tzinfo=ZONE)) is None  # no February 30th


def test_a_window_under_way_starts_now():
    found = when.read("this afternoon", NOW)
    assert found.start == NOW and found.end.hour == 18


@pytest.mark.parametrize("lang, expected", [
    ("en", "tomorrow, Tuesday December 2, between 6:00 PM and 9:00 PM"),
    ("es", "mañana, martes 2 de diciembre, entre las 6:00 de la tarde y las 9:00 de la noche"),
])
def test_the_window_is_said_back_in_the_texters_language(lang, expected):
    catalog = flow_engine("Kern Support Line").catalog
    slot = when.read("tomorrow after 6", NOW).as_slot()
    said = when.describe(slot, NOW.timestamp(), ZONE, lambda key, **v: catalog.render(lang, key, **v))
    assert said == expected


def test_a_written_date_is_read_and_only_then_is_dateparser_imported():
    script = ("import sys; from datetime import datetime; from zoneinfo import ZoneInfo; from flows import when;"
              "now = datetime(2025, 12, 1, 14, 30, tzinfo=ZoneInfo('America/Los_Angeles'));"
              "assert when.read('mañana en la tarde', now) is not None; print('dateparser' in sys.modules);"
              "found = when.read('el 5 de diciembre a las 4', now); print('dateparser' in sys.modules);"
              "print(found.start.strftime('%m-%d %H:%M'))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout.split()
    assert out == ["False", "True", "12-05", "16:00"]
