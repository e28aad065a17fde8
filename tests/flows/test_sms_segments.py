"""Every catalog text, rendered as a texter gets it, within its SMS segment budget.

Each SMS segment shows on the texter's bill and lights up a phone someone may be watching, so the
count that matters is the carrier's, not the number of characters:

- GSM-7, when every character is in the GSM 03.38 alphabet: 160 septets in a single SMS, 153 a part
  once split (the rest of each part is the concatenation header). The extension table's characters
  (^ { } \\ [ ~ ] | € and form feed) take two septets, and a part never ends between the two.
- UCS-2 otherwise: one character outside that alphabet (á í ó ú, an en dash, a curly quote, an
  emoji) sends the whole text as UTF-16 code units, 70 in a single SMS, 67 a part; a surrogate pair
  (an emoji) counts 2 and is never split between parts.

Spanish keeps its accents, so a Spanish text is UCS-2 as soon as it has an á, í, ó or ú (é, ñ, ü, ¿ and
¡ are GSM-7): it is written short, or with words that need none of those letters where that reads
just as naturally. English sticks to GSM-7 (a hyphen, not an en dash; straight quotes).

Budgets are in BUDGETS below; web-only texts (`key@web`, the chat page's `chat_*` words) travel over
no carrier and have none. `python -m tests.flows.test_sms_segments` prints the per-key table
(docs/conversation.md, "SMS length", copies the main replies from it).
"""
from __future__ import annotations

import functools
import itertools
import string
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.extensions import flow_engine
from flows import when
from flows.conversation import Conversation

NAME = "Kern Support Line"  # HELPLINE_NAME's default

DEFAULT_BUDGET = 2  # most replies: two segments at most
BUDGETS = {
    "welcome": 2,  # the first thing anyone reads, in either language
    "help": 3,  # HELP or AYUDA: the name, 911, the national line, how to stop and erase
    "resources_list": 3,  # a list of places, rendered with the directory's real listings (worst case)
}
# Replies that go out together: a step's replies are joined into one SMS (bot/sms.py, twiml), so the
# texter pays for the whole.
COMBINED_BUDGETS = {
    # HELP / AYUDA at the safety question: the help text, then the question again (the issue measured 8).
    "HELP at the start": 3,
    # "who is this?" as a first message: the answer, then the welcome.
    "who is this? first": 3,
    # An emergency: 911 (and 988 for self-harm), then the offer of a counselor.
    "an emergency": 3,
    "self-harm": 3,
    # Joining the line: `queued`, then the wait, that nobody is free, or when counselors are back
    # (bot/engine.py appends bot.hours.Staffing.announce to the same reply).
    "queued + queue_wait": 3,
    "queued + nobody_online": 3,
    "queued + after_hours": 3,
    # A check-in the texter asked for: the time said back, then the question the flow goes on with.
    "check_in_set + after_info": 2,
}
# What the texter sends for the combinations the engine makes (the last message's reply is measured).
SENT = {
    "HELP at the start": {"en": ["hi", "HELP"], "es": ["hola", "AYUDA"]},
    "who is this? first": {"en": ["who is this?"], "es": ["¿quién eres?"]},
    "an emergency": {"en": ["hi", "1", "he has a gun"], "es": ["hola", "1", "tiene una pistola"]},
    "self-harm": {"en": ["hi", "1", "i want to kill myself"], "es": ["hola", "1", "me quiero matar"]},
}
# The exceptions, by (key or combination, language), each with its reason.
EXCEPTIONS = {
    ("queued + after_hours", "es"): (
        4, "counselors back on a Saturday: the á of 'sábado' makes the whole reply UCS-2 (2 segments "
           "on any other day); `after_hours` alone stays within 2 even then"),
    ("check_in_set + after_info", "es"): (
        3, "a check-in on a Saturday: the á of 'sábado' makes the reply UCS-2 (2 segments on any other day); "
           "`check_in_set` alone stays within 2 even then"),
}
# Keys whose text never travels by SMS, and why.
EXEMPT_PREFIXES = ("chat_",)  # words of the web chat page (buttons, labels), never sent as a message
EXEMPT_SUFFIXES = ("@web",)  # the web chat's own wording of a message: no carrier, no segments

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# Realistic values for every placeholder the catalogs use; a new placeholder needs one here.
# Longest realistic values: the budget must hold for the longest a texter can get.
SAMPLES = {
    "name": NAME,
    "minutes": "15",  # queue_wait: a wait of 15 minutes
    "zip": "93305",  # resources_list heading (the ZIP the texter sent)
    "number": "START to 88788",  # resource_text: the longest text line in flows/resources.yaml
    "miles": "34",  # resource_miles
    "keyword": "START",  # resource_text_keyword ("text START to 88788")
    "place": "Pine Mountain Club",  # resources_near and the like: the longest Kern County place name
    "max": "40",  # resources_far: flows.resources.MAX_MILES
    "agency": "Kern County Family Justice Center",  # referral_*: the longest agency name in flows/resources.yaml
    "hour": "10", "hour12": "10", "minute": "30", "ampm": "PM",  # clock, as bot/hours.py fills it
}
# Where the list of places is looked up: Bakersfield, Delano, Ridgecrest, Lake Isabella, Taft, a town by
# its name, and a ZIP outside the county; every category of help; an adult, a minor, and no age asked.
RESOURCE_PLACES = ("93305", "93215", "93555", "93240", "93268", "Arvin", "10001")
RESOURCE_CATEGORIES = ("shelter", "youth", "food", "legal", "medical", "counselling")
RESOURCE_AGES = (None, "15", "25")


def segments(text: str) -> tuple[str, int, int]:
    """(encoding, length in septets or UTF-16 code units, SMS segments), as a carrier counts them."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        encoding, single, part = "GSM-7", 160, 153
    else:
        sizes = [len(ch.encode("utf-16-le")) // 2 for ch in text]
        encoding, single, part = "UCS-2", 70, 67
    total = sum(sizes)
    if total <= single:
        return encoding, total, 1 if text else 0
    count, used = 1, 0
    for size in sizes:  # an escape pair or a surrogate pair never straddles two parts
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return encoding, total, count


def is_exempt(key: str) -> bool:
    return key.startswith(EXEMPT_PREFIXES) or key.endswith(EXEMPT_SUFFIXES)


def budget(key: str, lang: str) -> int:
    if (key, lang) in EXCEPTIONS:
        return EXCEPTIONS[key, lang][0]
    return COMBINED_BUDGETS[key] if key in COMBINED_BUDGETS else BUDGETS.get(key, DEFAULT_BUDGET)


@functools.cache
def engine():
    return flow_engine(NAME)


def catalog():
    return engine().catalog


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _worst(pairs):
    """The (label, text) that costs most: most segments, then the longest."""
    return max(pairs, key=lambda pair: (segments(pair[1])[2], segments(pair[1])[1]))


@functools.cache
def candidates(lang: str) -> dict[str, tuple[str, ...]]:
    """Every value a placeholder can realistically take in `lang`; the nested ones rendered from the catalog.

    A day name with an accent (sábado) makes a whole Spanish text UCS-2, so every day is tried, not
    just the longest; likewise every "back ..." wording and every meaning the clarify question offers.
    """
    cat = catalog()
    values = {name: (value,) for name, value in SAMPLES.items()}
    values["day"] = tuple(d.strip() for d in cat.render(lang, "weekdays").split(","))
    values["ampm"] = ("AM", "PM")
    values["daypart"] = tuple(cat.render(lang, k) for k in cat.texts[lang] if k.startswith("daypart_"))
    values["time"] = tuple(dict.fromkeys(
        cat.render(lang, "clock", **SAMPLES | {"ampm": ampm, "daypart": daypart})
        for ampm in values["ampm"] for daypart in values["daypart"] or ("",)))
    values["back"] = tuple(dict.fromkeys(
        cat.render(lang, key, time=time, day=day)
        for key in cat.texts[lang] if key.startswith("back_") for day in values["day"] for time in values["time"]))
    values["first"] = values["second"] = tuple(cat.render(lang, k) for k in cat.texts[lang] if k.startswith("meaning_"))
    # A check-in's time stated back (flows/when.py describe): every weekday and month, today, tomorrow or later.
    values["weekday"] = values["day"]
    values["month"] = tuple(m.strip() for m in cat.render(lang, "months").split(","))
    values["date"], values["start"], values["end"] = ("30",), values["time"], values["time"]
    values["when"] = check_in_times(lang)
    return values


def check_in_times(lang: str) -> tuple[str, ...]:
    """The window of a check-in as flows.when.describe words it, for the longest clocks there are."""
    zone = ZoneInfo(when.ZONE)
    now = datetime(2025, 12, 1, 9, 0, tzinfo=zone)
    days = [now.date() + timedelta(days=n) for n in range(8)] + [date(2026, month, 28) for month in range(1, 13)]
    say = functools.partial(catalog().render, lang)
    return tuple(dict.fromkeys(
        when.describe({"start": datetime.combine(day, time(10, 30), zone).timestamp(),
                       "end": datetime.combine(day, time(22, 30), zone).timestamp()}, now.timestamp(), zone, say)
        for day in days))


def renderings(lang: str, key: str) -> list[tuple[str, str]]:
    """Every realistic rendering of `key` in `lang`: (what it was rendered with, text)."""
    cat = catalog()
    raw = cat.texts[lang][key]
    wanted = sorted(placeholders(raw))
    if "resources" in wanted:
        return resource_lists(lang)
    values = candidates(lang)
    unknown = set(wanted) - values.keys()
    assert not unknown, f"{lang}.yaml {key}: give {sorted(unknown)} a realistic value in SAMPLES"
    out = []
    for combo in itertools.product(*(values[name] for name in wanted)):
        chosen = dict(zip(wanted, combo))
        varied = ", ".join(f"{n}={v!r}" for n, v in chosen.items() if len(values[n]) > 1)
        out.append((varied, cat.render(lang, key, **chosen)))
    return out


def resource_lists(lang: str) -> list[tuple[str, str]]:
    """resources_list as the engine renders it, for every place, category and age above: (where, text)."""
    out = []
    for place in RESOURCE_PLACES:
        for category in RESOURCE_CATEGORIES:
            for age in RESOURCE_AGES:
                slots = {"zip": place, "category": category} | ({"age": age} if age else {})
                conv = Conversation(id="seg", channel="sms", address="+16615550100", lang=lang, slots=slots)
                out.append((f"{place} {category}{' age ' + age if age else ''}", engine().say(conv, "resources_list")))
    return out


def rendered(lang: str, key: str) -> tuple[str, str]:
    """The costliest text a texter can get for `key`: (what it was rendered with, text)."""
    return _worst(renderings(lang, key))


def combined(lang: str, name: str) -> tuple[str, str]:
    """The costliest text of replies sent together: (what it was rendered with, text)."""
    if name in SENT:
        conv = Conversation(id="seg", channel="sms", address="+16615550100")
        for now, message in enumerate(SENT[name][lang], start=1):
            step = engine().step(conv, message, float(now))
            conv.new = False
        assert conv.lang == lang, (name, lang)
        return "+".join(step.keys), step.text
    first, second = name.split(" + ")
    return _worst((f"{a} / {b}".strip(" /"), f"{x}\n\n{y}")
                  for a, x in renderings(lang, first) for b, y in renderings(lang, second))


def sms_keys(lang: str) -> list[str]:
    return [key for key in catalog().texts[lang] if not is_exempt(key)]


# -- the counter itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("", ("GSM-7", 0, 0)),
    ("a" * 160, ("GSM-7", 160, 1)),
    ("a" * 161, ("GSM-7", 161, 2)),
    ("a" * 306, ("GSM-7", 306, 2)),
    ("a" * 307, ("GSM-7", 307, 3)),
    ("€" * 80, ("GSM-7", 160, 1)),  # extension characters take two septets
    ("a" * 152 + "€" + "a" * 10, ("GSM-7", 164, 2)),  # the escape pair moves whole to part two
    ("a" * 152 + "€" + "a" * 152, ("GSM-7", 306, 3)),  # ... and so a third part is needed
    ("¿Qué pasó? ñ ¡é!", ("UCS-2", 16, 1)),  # ó is not GSM-7
    ("¿Qué pasa? ñ ¡é!", ("GSM-7", 16, 1)),  # ¿ ¡ é ñ are
    ("Mon–Fri", ("UCS-2", 7, 1)),  # an en dash alone makes it UCS-2
    ("á" * 70, ("UCS-2", 70, 1)),
    ("á" * 71, ("UCS-2", 71, 2)),
    ("á" * 134, ("UCS-2", 134, 2)),
    ("á" * 135, ("UCS-2", 135, 3)),
    ("🙂" * 35, ("UCS-2", 70, 1)),  # an emoji is two UTF-16 code units
    ("á" * 66 + "🙂" + "á" * 60, ("UCS-2", 128, 2)),  # a surrogate pair is not split: 66 | 2+60
    ("á" * 66 + "🙂" + "á" * 66, ("UCS-2", 134, 3)),
])
def test_segments_are_counted_as_carriers_count_them(text, expected):
    assert segments(text) == expected


# -- the catalogs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_text_fits_its_segment_budget(lang):
    over = {}
    for key in sms_keys(lang):
        where, text = rendered(lang, key)
        encoding, length, count = segments(text)
        if count > budget(key, lang):
            over[key] = f"{count} segments ({encoding}, {length}{' for ' + where if where else ''}), budget {budget(key, lang)}"
    assert over == {}


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("name", list(COMBINED_BUDGETS))
def test_replies_sent_together_fit_their_budget(lang, name):
    where, text = combined(lang, name)
    encoding, length, count = segments(text)
    assert count <= budget(name, lang), f"{name} ({lang}): {count} segments ({encoding}, {length}; {where})"


def test_english_is_gsm7():
    """English needs no character outside GSM-7: a hyphen, not an en dash; straight quotes; "..." not an
    ellipsis. The one exception is other_language, which is in English and Spanish at once."""
    mixed = {"other_language"}
    for key in sms_keys("en"):
        if key in mixed:
            continue
        where, text = rendered("en", key)
        odd = sorted({ch for ch in text if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION})
        assert not odd, f"en.yaml {key}{' (' + where + ')' if where else ''}: {odd} make it UCS-2"


def test_budgets_name_only_keys_that_exist():
    for lang in ("en", "es"):
        assert BUDGETS.keys() <= catalog().texts[lang].keys()
        for name in COMBINED_BUDGETS:
            assert name in SENT or set(name.split(" + ")) <= catalog().texts[lang].keys(), name
    assert {key for key, _ in EXCEPTIONS} <= set(catalog().texts["en"]) | set(COMBINED_BUDGETS)


# -- the table -----------------------------------------------------------------------------------------


def table() -> str:
    """Every SMS text: segments in English and Spanish (encoding, length), and its budget."""
    rows = ["| key | EN | ES | budget |", "|---|---|---|---|"]
    cell = lambda t: "{2} ({0}, {1})".format(*segments(t))  # noqa: E731

    def limit(key):
        en, es = budget(key, "en"), budget(key, "es")
        return str(en) if en == es else f"{en} / {es}"
    for key in sms_keys("en"):
        en, es = rendered("en", key)[1], rendered("es", key)[1] if catalog().has("es", key) else ""
        rows.append(f"| {key} | {cell(en)} | {cell(es)} | {limit(key)} |")
    for name in COMBINED_BUDGETS:
        rows.append(f"| *{name}* | {cell(combined('en', name)[1])} | {cell(combined('es', name)[1])} | {limit(name)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
