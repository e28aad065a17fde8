"""Local resource directory: "find help near me" by ZIP code or town.

The directory is data (``flows/resources.yaml``, beside this module).  This
module loads it once, checks it, and answers "the nearest places offering
<category> to this ZIP code", followed by national lines.  No network: ZIP
and town coordinates come from the ``zipcodes`` package, which ships its data.

    d = ResourceDirectory.load()
    report = d.check(today=date.today())   # ResourceCheck(errors, warnings, due)
    d.nearest("93215", "shelter")          # [Match(resource, miles), ...]
    resolve_place("estoy en Délano")       # "Delano" (what the texter's answer names)
    d.reply("Delano", "shelter", "en", render, age=15)   # the texter's list, <= 3 SMS segments

``reply`` is what a texter reads: never empty (outside Kern County, or with
nothing near, the national lines), places beyond ``MAX_MILES`` only as "the
nearest, N mi" after a phone line, hotlines as hotlines (no distance), listings
filtered by the person's age, youth lines first for a minor, and the National
Human Trafficking Hotline added whenever a local listing is past its review.

Run ``python -m flows.resources`` to print the check for today.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator, Mapping

import yaml
import zipcodes

__all__ = [
    "CATEGORIES",
    "SCOPES",
    "STALE_AFTER_DAYS",
    "DEFAULT_PATH",
    "Match",
    "Resource",
    "ResourceCheck",
    "ResourceDirectory",
    "ResourceError",
    "MAX_MILES",
    "RESOURCE_KEYS",
    "normalize_zip",
    "resolve_place",
    "sms_segments",
]

CATEGORIES: tuple[str, ...] = ("shelter", "youth", "food", "legal", "medical", "counselling")
SCOPES: tuple[str, ...] = ("local", "national")
STALE_AFTER_DAYS = 180  # a listing is past its review this long after verified_on (or at once, without one)
# Places farther than this are not listed as "near"; with none closer, the nearest is given with its
# distance, after a phone line (a 76-mile food bank is no help tonight unless the texter knows it is far).
MAX_MILES = 40
NEAR_MILES = 10  # a hotline's own address is shown only this close; farther, it is just a number to call
REPLY_SEGMENTS = 3  # a resource reply's SMS budget ...
REPLY_RESERVE = 80  # ... with room for the question sent in the same SMS ("Reply 1 to talk with a counselor...")
TRAFFICKING_HOTLINE = "national-human-trafficking-hotline"  # added to any reply with a listing past review
# Catalog keys reply() renders (both catalogs must have them; `helpline flows check` asks the engine's list).
RESOURCE_KEYS: tuple[str, ...] = (
    "resources_near", "resources_far", "resources_nothing", "resources_outside", "resources_national",
    "resources_stale", "resources_211", "resource_call", "resource_call_text", "resource_text",
    "resource_text_keyword", "resource_or", "resource_miles", "resource_mile",
)
DEFAULT_PATH = Path(__file__).resolve().with_name("resources.yaml")
_REPO_ROOT = DEFAULT_PATH.parent.parent
_COUNTY = ("CA", "Kern County")
_EARTH_RADIUS_MILES = 3958.7613

# Phone numbers as they are printed in our sources:
#   (661) 327-1091   1-888-373-7888   988   2-1-1
_PHONE_RE = re.compile(r"\(\d{3}\) \d{3}-\d{4}|1-\d{3}-\d{3}-\d{4}|\d{3}|\d-\d-\d")
# SMS numbers / short codes, optionally with a keyword: "66008", "START to 88788"
_TEXT_RE = re.compile(r"(?:([A-Z]+) to )?(\d{3,6})|\(\d{3}\) \d{3}-\d{4}")
_ZIP_RE = re.compile(r"([0-9]{5})(?:[-\s]?[0-9]{4})?")  # ASCII only: zipcodes' core panics on other digits
_LANG_RE = re.compile(r"[a-z]{2,3}")
_AGENCY_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LINE_KEY = "__line__"
_DUP_KEY = "__duplicate_keys__"
_FIELDS = frozenset(
    {"id", "name", "categories", "phone", "text", "address", "zip", "city", "languages",
     "hours", "notes", "scope", "source", "verified_on", "hotline", "min_age", "max_age", "eligibility",
     "short_name", "reviewed_by", "agency"}
)


class ResourceError(ValueError):
    """Raised when the directory file cannot be read or a lookup is asked for something unknown."""


@dataclass(frozen=True)
class Resource:
    """One directory entry: the YAML fields, its YAML line, and where it was located."""

    id: str
    name: str
    categories: tuple[str, ...]
    phone: str | None
    text: str | None
    address: str | None
    zip: str | None
    city: str | None
    languages: tuple[str, ...]
    hours: str | None
    scope: str
    source: str | None
    verified_on: date | None
    line: int
    lat: float | None = None
    lon: float | None = None
    located_by: str | None = None  # "zip", "city", or None when unlocated
    notes: str | None = None
    # Per-language names, only when the YAML gives name as {en: ..., es: ...}.
    names: tuple[tuple[str, str], ...] = ()
    # A line to call (shown with its hours, never with a distance), not a place to go to.
    hotline: bool = False
    # Who it is for, as the source says: ages (either may be None) and words per language.
    min_age: int | None = None
    max_age: int | None = None
    eligibility: tuple[tuple[str, str], ...] = ()
    # Hours per language when they are words ({en: 24 hours, es: 24 horas}); "24/7" needs none.
    hours_by_lang: tuple[tuple[str, str], ...] = ()
    # The name as an SMS shows it: part of the printed name ("Dream Center"), without who runs it.
    short_name: str | None = None
    # The coalition agency that runs it (an id, lower-case-with-dashes): its partner accounts receive warm
    # referrals (bot.referrals), and the texter is told this entry's name.
    agency: str | None = None

    def name_for(self, lang: str) -> str:
        """The name printed for ``lang`` when the source gives one, else ``name``."""
        return dict(self.names).get(lang, self.name)

    def hours_for(self, lang: str) -> str | None:
        """The hours in ``lang``; None when they are words not written in that language (never mixed)."""
        if self.hours_by_lang:
            return dict(self.hours_by_lang).get(lang)
        if self.hours is None or (lang != "en" and re.search(r"[A-Za-z]", self.hours)):
            return None
        return self.hours

    def eligibility_for(self, lang: str) -> str | None:
        """Who it is for, in ``lang`` (None when the YAML gives no words in that language)."""
        return dict(self.eligibility).get(lang)

    def fits_age(self, age: object) -> bool:
        """False only when the person's age is known and outside the ages the source gives."""
        if not isinstance(age, int) or isinstance(age, bool):
            return True
        return not ((self.min_age is not None and age < self.min_age)
                    or (self.max_age is not None and age > self.max_age))

    def review_due(self) -> date | None:
        """The day this listing must be verified again; None: never verified, due now."""
        return self.verified_on + timedelta(days=STALE_AFTER_DAYS) if self.verified_on else None

    def past_review(self, today: date) -> bool:
        due = self.review_due()
        return due is None or due < today


@dataclass(frozen=True)
class Match:
    """A nearest() result: the resource and its distance (None for national lines)."""

    resource: Resource
    miles: float | None


@dataclass(frozen=True)
class ResourceCheck:
    """Result of ResourceDirectory.check(): messages "file:LINE: id: problem".

    ``errors``: the entry is never offered.  ``due``: the entry is past its
    review date (or was never verified): still offered, with the national
    hotline added, but an operator must re-check it.  ``warnings``: the rest.
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    due: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def current(self) -> bool:
        """No errors and no listing past its review date."""
        return not self.errors and not self.due

    def __str__(self) -> str:
        lines = ([f"error: {m}" for m in self.errors] + [f"past review: {m}" for m in self.due]
                 + [f"warning: {m}" for m in self.warnings])
        lines.append(f"{len(self.errors)} error(s), {len(self.due)} past review, {len(self.warnings)} warning(s)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- ZIP codes


@functools.lru_cache(maxsize=8192)
def _zip_row(zip5: str) -> tuple[float, float, str, str] | None:
    """(lat, lon, state, county) for a 5-digit ZIP, or None when it is not a real ZIP."""
    rows = zipcodes.matching(zip5)
    if not rows:
        return None
    row = rows[0]
    return float(row["lat"]), float(row["long"]), row["state"], row["county"]


def normalize_zip(value: object) -> str | None:
    """The 5-digit ZIP in ``value`` (" 93305-1234 " -> "93305"), or None if it is not a real US ZIP."""
    if not isinstance(value, str):
        return None
    value = ascii_digits(value)
    m = _ZIP_RE.fullmatch(value.strip()) or _ZIP_IN_TEXT.search(value)
    if not m:
        return None
    zip5 = m.group(1)
    return zip5 if _zip_row(zip5) is not None else None


_ZIP_IN_TEXT = re.compile(r"(?<![0-9-])([0-9]{5})(?![0-9-])")  # "my zip is 93305", "arvin 93203"


def ascii_digits(text: str) -> str:
    """Digits of any script ("９３３０５", "٩٣٣٠٥") as ASCII digits; superscripts and circled ones are not digits."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if unicodedata.decimal(ch, None) is not None else ch for ch in text)


@functools.lru_cache(maxsize=256)
def _city_point(city: str) -> tuple[float, float] | None:
    """Mean lat/long of a Kern County city's active street ZIPs (PO-box ZIPs if it has none)."""
    want = city.strip().casefold()
    rows = [
        r for r in zipcodes.filter_by(state=_COUNTY[0], county=_COUNTY[1])
        if r["city"].casefold() == want and r["active"]
    ]
    street = [r for r in rows if r["zip_code_type"] == "STANDARD"] or rows
    if not street:
        return None
    lat = sum(float(r["lat"]) for r in street) / len(street)
    lon = sum(float(r["long"]) for r in street) / len(street)
    return lat, lon


def _miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in miles; arguments in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(h)))


# --------------------------------------------------------------------------- places (ZIP or town)

# Words around a town's name in an answer ("i live in arvin", "estoy en Délano, CA", "cerca de lamont porfa").
_PLACE_FILLER = frozenset(
    "i im i'm am we are live living stay staying near nearby around in at by from the my zip city town of "
    "area is it its it's code please pls plz thanks ca calif california usa us kern county "
    "yo estoy estamos vivo vivimos en cerca por de del la el mi ciudad pueblo area zona codigo postal "
    "porfa favor gracias condado hi hello hey ok okay so just um here now hola aqui ahora pues".split()
)
_WORD_RE = re.compile(r"[a-z0-9']+")


def _fold(text: str) -> str:
    """Lower case, accents off, anything but letters, digits and apostrophes as spaces ("Délano," -> "delano")."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(_WORD_RE.findall(text))


@functools.lru_cache(maxsize=1)
def _town_index() -> tuple[dict[str, str], dict[str, str]]:
    """({folded name: name} of Kern County's towns and communities, {folded name: name} of California's others).

    From the ``zipcodes`` data only (its city names and "acceptable" names); a name in Kern wins.
    """
    kern: dict[str, str] = {}
    other: dict[str, str] = {}
    for row in zipcodes.filter_by(state=_COUNTY[0]):
        target = kern if row["county"] == _COUNTY[1] else other
        for name in [row["city"], *(row.get("acceptable_cities") or [])]:
            for key in {_fold(name), _fold(name).replace(" ", "")}:  # "Mc Farland" and "mcfarland"
                if key and key not in kern:
                    target.setdefault(key, _town_name(name))
    return kern, {k: v for k, v in other.items() if k not in kern}


def _town_name(name: str) -> str:
    """A zipcodes city name as texters write it ("Mc Farland" -> "McFarland"; others unchanged)."""
    return re.sub(r"\bMc (?=[A-Z])", "Mc", name)


@functools.lru_cache(maxsize=256)
def _town_point(name: str) -> tuple[float, float] | None:
    """Mean lat/long of a Kern County town's active street ZIPs (its PO-box ZIPs, or the ZIPs that accept
    its name, when it has none)."""
    want = _fold(name).replace(" ", "")
    rows = [r for r in zipcodes.filter_by(state=_COUNTY[0], county=_COUNTY[1]) if r["active"]]
    own = [r for r in rows if _fold(r["city"]).replace(" ", "") == want]
    if not own:
        own = [r for r in rows
               if any(_fold(a).replace(" ", "") == want for a in (r.get("acceptable_cities") or []))]
    street = [r for r in own if r["zip_code_type"] == "STANDARD"] or own
    if not street:
        return None
    return (sum(float(r["lat"]) for r in street) / len(street),
            sum(float(r["long"]) for r in street) / len(street))


def resolve_place(value: object) -> str | None:
    """What a texter's answer to "What is your ZIP code?" names: a 5-digit ZIP ("93305"), a Kern County town
    or community ("bakersfield", "estoy en Délano", "Bakersfeild" -> "Bakersfield"), another California town
    ("Fresno", outside the county), or None (then the question is asked again).

    Offline: the ``zipcodes`` data.  Only ASCII digits ever reach ``zipcodes`` (its core panics on others).
    """
    if not isinstance(value, str):
        return None
    zip5 = normalize_zip(value)
    if zip5 is not None:
        return zip5
    words = _fold(ascii_digits(value)).split()
    if not words or any(w.isdigit() for w in words) or len(words) > 8:
        return None  # "9330", "00000": a wrong ZIP is asked again, never guessed at
    kern, other = _town_index()
    # The longest run of words that names a town, every other word being filler ("i live in california city").
    for size in range(min(len(words), 4), 0, -1):
        for i in range(len(words) - size + 1):
            if not all(w in _PLACE_FILLER for w in words[:i] + words[i + size:]):
                continue
            run = words[i:i + size]
            for key in (" ".join(run), "".join(run)):
                if key in kern:
                    return kern[key]
                if key in other:
                    return other[key]
    said = " ".join(w for w in words if w not in _PLACE_FILLER)
    if len(said) >= 5:
        from rapidfuzz import fuzz, process  # a typo in a Kern town's name: "bakersfeild", "ridgecrst"

        found = process.extractOne(said, list(kern), scorer=fuzz.ratio, score_cutoff=88)
        if found is not None:
            return kern[found[0]]
    return None


@dataclass(frozen=True)
class _Place:
    shown: str  # as the texter reads it: "93305", "Arvin"
    lat: float
    lon: float
    in_county: bool


def _locate(value: object) -> _Place | None:
    """Where a stored answer (a ZIP or a town's name, as resolve_place gave it) is; None when unknown."""
    if not isinstance(value, str) or not value.strip():
        return None
    zip5 = normalize_zip(value)
    if zip5 is not None:
        lat, lon, state, county = _zip_row(zip5)  # type: ignore[misc]  # a real ZIP: the row exists
        return _Place(zip5, lat, lon, (state, county) == _COUNTY)
    name = resolve_place(value)
    if name is None:
        return None
    kern, _ = _town_index()
    if name in kern.values():
        point = _town_point(name)
        if point is not None:
            return _Place(name, point[0], point[1], True)
    return _Place(name, 0.0, 0.0, False)  # elsewhere in California: only "outside Kern County" matters


# --------------------------------------------------------------------------- SMS segments

_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = frozenset("^{}\\[~]|€\f")  # two septets each
_GSM7_ALL = _GSM7 | _GSM7_EXT


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` takes: GSM-7 (160, or 153 a part) when every character is in it,
    else UCS-2 (70, or 67 a part, counted in UTF-16 units)."""
    # By the set of characters, not one Python step per character: a resource list is measured several
    # times as lines are dropped to fit (issue 17).
    chars = set(text)
    if chars <= _GSM7_ALL:
        units = len(text) + sum(text.count(ch) for ch in chars & _GSM7_EXT)
        return 1 if units <= 160 else -(-units // 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


# --------------------------------------------------------------------------- YAML


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records each mapping's 1-based line and any repeated keys."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        dups: list = []
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                dups.append(key)
            seen.add(key)
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE_KEY] = node.start_mark.line + 1
        if dups:
            mapping[_DUP_KEY] = dups
        return mapping


def _display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(_REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return value  # type: ignore[return-value]  # wrong type: reported by the checks


def _parse_date(value: object) -> tuple[date | None, bool]:
    """(date, ok) from a YAML date, an ISO string, or null."""
    if value is None:
        return None, True
    if isinstance(value, datetime):
        return value.date(), True
    if isinstance(value, date):
        return value, True
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()), True
        except ValueError:
            return None, False
    return None, False


# --------------------------------------------------------------------------- directory


class ResourceDirectory:
    """The loaded directory: entries in file order, their problems, and a nearest-by-ZIP index."""

    def __init__(self, resources: list[Resource], problems: dict[int, list[tuple[str, str]]],
                 file_errors: list[str], path: Path,
                 reviewed: Callable[[], Mapping[str, date]] | None = None) -> None:
        self._resources = tuple(resources)
        self._reviewed = reviewed
        # index in _resources -> [("error"|"warning", message)]; date warnings are added by check()
        self._problems = problems
        self._file_errors = list(file_errors)
        self.path = path
        self.display_path = _display_path(path)
        usable = [r for i, r in enumerate(self._resources) if not self._has_error(i)]
        self._usable = tuple(usable)
        self._local: dict[str, tuple[Resource, ...]] = {}
        self._national: dict[str, tuple[Resource, ...]] = {}
        for cat in CATEGORIES:
            self._local[cat] = tuple(
                r for r in usable
                if cat in r.categories and r.scope == "local" and r.lat is not None
            )
            self._national[cat] = tuple(
                r for r in usable if cat in r.categories and r.scope == "national"
            )

    # ---- loading

    @classmethod
    def load(cls, path: str | Path | None = None,
             reviewed: Callable[[], Mapping[str, date]] | None = None) -> "ResourceDirectory":
        """Load and validate the YAML directory (default: resources.yaml beside this module).

        ``reviewed()`` gives {id: day} of supervisors' reviews since the file was written (bot.resource_reviews):
        asked on every reply, so a listing verified in the console counts as verified at once in every process.
        """
        p = Path(path) if path is not None else DEFAULT_PATH
        shown = _display_path(p)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ResourceError(f"{shown}: cannot read the resource directory: {exc}") from exc
        try:
            data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ResourceError(f"{shown}: not valid YAML: {exc}") from exc
        if data is None:
            data = []
        if not isinstance(data, list):
            raise ResourceError(f"{shown}: the directory must be a YAML list of entries")

        resources: list[Resource] = []
        problems: dict[int, list[tuple[str, str]]] = {}
        file_errors: list[str] = []
        first_line_of_id: dict[str, int] = {}
        for item in data:
            if not isinstance(item, dict):
                file_errors.append(f"{shown}: entry {item!r} is not a mapping; skipped")
                continue
            res, probs = _build(item)
            if res.id:
                if res.id in first_line_of_id:
                    probs.append(("error", f"duplicate id (first used on line {first_line_of_id[res.id]})"))
                else:
                    first_line_of_id[res.id] = res.line
            problems[len(resources)] = probs
            resources.append(res)
        return cls(resources, problems, file_errors, p, reviewed)

    # ---- inspection

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)

    @property
    def resources(self) -> tuple[Resource, ...]:
        return self._resources

    def get(self, resource_id: str) -> Resource | None:
        return next((r for r in self._resources if r.id == resource_id), None)

    def reviewed_on(self) -> Mapping[str, date]:
        """{id: day} of reviews newer than the file (none without a ``reviewed`` source)."""
        return self._reviewed() if self._reviewed is not None else {}

    def current(self) -> tuple[Resource, ...]:
        """Every entry as it stands now: verified_on the later of the file's and a review since."""
        reviewed = self.reviewed_on()
        return tuple(_as_reviewed(r, reviewed.get(r.id)) for r in self._resources)

    def agencies(self) -> dict[str, tuple[Resource, ...]]:
        """{agency id: the usable entries it runs, in file order}: who may receive warm referrals."""
        found: dict[str, list[Resource]] = {}
        for r in self._usable:
            if r.agency:
                found.setdefault(r.agency, []).append(r)
        return {agency: tuple(entries) for agency, entries in found.items()}

    def _has_error(self, index: int) -> bool:
        return any(kind == "error" for kind, _ in self._problems.get(index, ()))

    def check(self, today: date | None = None) -> ResourceCheck:
        """Errors (entry never offered), entries past their review date, and warnings, as "file:LINE: id: ..."."""
        today = today or date.today()
        errors = list(self._file_errors)
        warnings: list[str] = []
        due: list[str] = []
        for i, r in enumerate(self._resources):
            prefix = f"{self.display_path}:{r.line}: {r.id or '?'}: "
            for kind, msg in self._problems.get(i, ()):
                (errors if kind == "error" else warnings).append(prefix + msg)
            if r.verified_on is None:
                due.append(prefix + "verified_on missing: never verified, review due now; re-check the "
                           "source (or call them) and date it")
            elif r.past_review(today):
                age = (today - r.verified_on).days
                due.append(
                    prefix + f"verified_on {r.verified_on.isoformat()} is {age} days old "
                    f"(review was due {r.review_due().isoformat()}, {STALE_AFTER_DAYS} days on): re-verify"
                )
            elif r.verified_on > today:
                warnings.append(prefix + f"verified_on {r.verified_on.isoformat()} is in the future")
        return ResourceCheck(errors=errors, warnings=warnings, due=due)

    def usable(self, today: date | None = None) -> list[Resource]:
        """Entries without errors, in file order (stale entries stay usable; check() warns about them)."""
        return list(self._usable)

    # ---- lookup

    def nearest(self, zip_code: str | None, category: str, limit: int = 3,
                today: date | None = None) -> list[Match]:
        """Usable local entries in ``category`` nearest ``zip_code`` first, then national lines.

        At most ``limit`` results, always keeping room for one national line
        when the category has one.  An unknown or malformed ZIP gives national
        lines only.  ``today`` is accepted for symmetry with check(); stale
        entries are still offered.
        """
        cat = category.strip().casefold() if isinstance(category, str) else category
        if cat not in CATEGORIES:
            raise ResourceError(f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}")
        if not isinstance(limit, int) or limit < 1:
            raise ResourceError(f"limit must be a positive integer, got {limit!r}")
        national = self._national[cat]
        local_slots = limit - 1 if national else limit
        matches: list[Match] = []
        zip5 = normalize_zip(zip_code)
        if zip5 is not None and local_slots > 0:
            lat, lon, _, _ = _zip_row(zip5)  # type: ignore[misc]  # real ZIP: row exists
            scored = sorted(
                ((_miles(lat, lon, r.lat, r.lon), r.line, r) for r in self._local[cat]),  # type: ignore[arg-type]
                key=lambda t: (t[0], t[1]),
            )
            matches = [Match(r, miles) for miles, _, r in scored[:local_slots]]
        matches.extend(Match(r, None) for r in national[: limit - len(matches)])
        return matches

    # ---- what a texter reads

    def reply(self, place: object, category: str, lang: str, render, age: object = None,
              today: date | None = None, budget: int = REPLY_SEGMENTS) -> str:
        """The resource list a texter reads, in ``lang``, at most ``budget`` SMS segments (lines dropped,
        least needed first, until it fits).

        ``place`` is what resolve_place() gave (a ZIP or a town's name; anything else reads as unknown);
        ``render(key, **values)`` gives a catalog text in ``lang`` (see RESOURCE_KEYS); ``age`` is the
        conversation's age slot, if the flow asked.  Never empty: outside Kern County, with nothing of
        the kind listed, or with the place unknown, it gives the national lines.
        """
        cat = category.strip().casefold() if isinstance(category, str) else category
        if cat not in CATEGORIES:
            raise ResourceError(f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}")
        today = today or date.today()
        where = _locate(place)
        minor = isinstance(age, int) and not isinstance(age, bool) and age < 18
        fits = [r for r in self._national[cat] if r.fits_age(age)]
        # A minor hears the youth lines (the Runaway Safeline) before anything else, whatever they asked for.
        youth = [r for r in self._national["youth"] if r.fits_age(age)] if minor else []
        # (priority, text): the lower the priority, the later a line is dropped to fit the budget.
        lines: list[tuple[int, str]] = []
        shown_local: list[Resource] = []
        hotline_too = cat in ("shelter", "legal", "counselling")  # the trafficking hotline, asked or not

        def line(r: Resource, miles: float | None = None, address: bool = True) -> str:
            return self._line(r, lang, render, miles, address)

        if where is None:
            header = render("resources_national")
        elif not where.in_county:
            header = render("resources_outside", place=where.shown)
            hotline_too = True
        else:
            scored = sorted(
                ((_miles(where.lat, where.lon, r.lat, r.lon), r.line, r)  # type: ignore[arg-type]
                 for r in self._local[cat] if r.fits_age(age)),
                key=lambda t: (t[0], t[1]),
            )
            hotlines, places, named = [], [], set()
            for miles, _, r in scored:
                if r.hotline:
                    if r.name not in named:  # one number per line: the nearest office's
                        named.add(r.name)
                        hotlines.append((miles, r))
                else:
                    places.append((miles, r))
            near = [(m, r) for m, r in places if m <= MAX_MILES][:3]
            if near:
                header = render("resources_near", place=where.shown)
                shown = sorted(near + hotlines, key=lambda t: t[0])
                for i, (miles, r) in enumerate(shown):
                    if r.hotline:
                        lines.append((2 if i == 0 else 3, line(r, None, miles <= NEAR_MILES)))
                    else:
                        lines.append((2 if i == 0 else 3, line(r, miles)))
                    shown_local.append(r)
            elif hotlines and not places:
                header = render("resources_near", place=where.shown)
                for miles, r in hotlines:
                    lines.append((2, line(r, None, miles <= NEAR_MILES)))
                    shown_local.append(r)
            elif places:
                # Nothing within reach: a phone line first, then only the nearest place, with its distance;
                # and the national hotline, whatever the kind of help.
                header = render("resources_far", place=where.shown, max=MAX_MILES)
                hotline_too = True
                for miles, r in hotlines:
                    lines.append((2, line(r, None, miles <= NEAR_MILES)))
                    shown_local.append(r)
                nearest = places[0][1]
                if not hotlines and not nearest.phone:
                    phoned = next((r for _, r in places if r.phone), None)
                    if phoned is not None:
                        lines.append((2, line(phoned, None, False)))
                        shown_local.append(phoned)
                lines.append((2, line(nearest, places[0][0])))
                shown_local.append(nearest)
            else:
                header = render("resources_nothing", place=where.shown)
                hotline_too = True
            if not any(r.phone for r in shown_local):
                lines.append((2, render("resources_211")))  # 2-1-1 Kern (CAPK): a number to call in the county

        reviewed = self.reviewed_on() if shown_local else {}
        stale = any(_as_reviewed(r, reviewed.get(r.id)).past_review(today) for r in shown_local)
        national: list[Resource] = list(fits)
        trafficking = self.get(TRAFFICKING_HOTLINE)
        if trafficking in fits:
            national = [trafficking] + [r for r in national if r is not trafficking]  # asked for: first
        elif trafficking is not None and trafficking in self._usable and (hotline_too or stale or not lines):
            national.append(trafficking)  # added: after the kind's own lines
        for r in youth:
            if r in national:
                national.remove(r)
        top = [(1, line(r)) for r in youth]
        # The trafficking hotline always stays, and so does the kind's own national line where the hotline is
        # not one (the Safeline for youth); other national lines go first when the list is too long.
        own = None if trafficking in fits else next(iter(fits), None)
        rest = [(1 if r.id == TRAFFICKING_HOTLINE or r is own else 4, line(r)) for r in national]
        return _fit([header], top + lines + rest, budget, [render("resources_stale")] if stale else [])

    def _line(self, r: Resource, lang: str, render, miles: float | None, address: bool) -> str:
        """One listing: "- Name: call ..., hours, who it is for, address, N mi" (a hotline: no distance)."""
        parts = []
        contact = []
        if r.phone and r.text and r.phone == r.text:
            contact.append(render("resource_call_text", number=r.phone))
        else:
            if r.phone:
                contact.append(render("resource_call", number=r.phone))
            if r.text:
                m = _TEXT_RE.fullmatch(r.text)
                if m is not None and m.group(1):
                    contact.append(render("resource_text_keyword", keyword=m.group(1), number=m.group(2)))
                else:
                    contact.append(render("resource_text", number=r.text))
        if contact:
            parts.append(f" {render('resource_or')} ".join(contact))
        for extra in (r.hours_for(lang), r.eligibility_for(lang)):
            if extra:
                parts.append(extra)
        if address and r.address:
            parts.append(r.address)
        if miles is not None and not r.hotline:
            whole = max(1, round(miles))
            parts.append(render("resource_mile" if whole == 1 else "resource_miles", miles=whole))
        name = r.short_name if r.short_name and not r.names else r.name_for(lang)
        return "- " + name + (": " + ", ".join(parts) if parts else "")


def _as_reviewed(r: Resource, reviewed: date | None) -> Resource:
    """``r`` with a supervisor's later review as its verified_on (an earlier one changes nothing)."""
    if reviewed is None or (r.verified_on is not None and r.verified_on >= reviewed):
        return r
    return dataclasses.replace(r, verified_on=reviewed)


def _fit(head: list[str], body: list[tuple[int, str]], budget: int, tail: list[str] = ()) -> str:
    """The header, as many body lines as fit ``budget`` SMS segments (with REPLY_RESERVE to spare), and the
    tail: the body line with the highest priority number goes first (the latest of them); priority 1 (what
    someone must always get) stays."""
    body = list(body)
    while True:
        text = "\n".join([*head, *(t for _, t in body), *tail])
        droppable = [i for i, (prio, _) in enumerate(body) if prio > 1]
        if sms_segments(text + "\n\n" + "x" * REPLY_RESERVE) <= budget or not droppable:
            return text
        del body[max(droppable, key=lambda i: (body[i][0], i))]


def _build(item: dict) -> tuple[Resource, list[tuple[str, str]]]:
    """A Resource from one YAML mapping, plus its date-independent problems."""
    probs: list[tuple[str, str]] = []
    err = lambda m: probs.append(("error", m))  # noqa: E731
    warn = lambda m: probs.append(("warning", m))  # noqa: E731
    line = int(item.get(_LINE_KEY, 0))

    for key in item.get(_DUP_KEY, ()):
        err(f"field {key!r} appears twice")
    unknown = sorted(str(k) for k in item if k not in _FIELDS and k not in (_LINE_KEY, _DUP_KEY))
    for key in unknown:
        warn(f"unknown field {key!r} (ignored; typo?)")

    rid = item.get("id")
    if not isinstance(rid, str) or not rid.strip():
        err("missing id")
        rid = ""
    rid = rid.strip()

    raw_name = item.get("name")
    name, names = "", ()
    if isinstance(raw_name, str) and raw_name.strip():
        name = raw_name.strip()
    elif isinstance(raw_name, dict):
        pairs = [(k, v.strip()) for k, v in raw_name.items()
                 if k not in (_LINE_KEY, _DUP_KEY) and isinstance(k, str) and isinstance(v, str) and v.strip()]
        if pairs and all(_LANG_RE.fullmatch(k) for k, _ in pairs):
            names = tuple(pairs)
            name = dict(pairs).get("en", pairs[0][1])
    if not name:
        err("missing name")

    raw_cats = item.get("categories")
    cats: tuple[str, ...] = ()
    if raw_cats is None:
        raw_cats = []
    if not isinstance(raw_cats, list):
        err(f"categories must be a list, got {raw_cats!r}")
    else:
        for c in raw_cats:
            if c not in CATEGORIES:
                err(f"unknown category {c!r} (allowed: {', '.join(CATEGORIES)})")
        cats = tuple(c for c in raw_cats if c in CATEGORIES)
        if not raw_cats:
            warn("no categories: nearest() will never offer it")

    phone = _opt_str(item.get("phone"))
    if phone is not None and not (isinstance(phone, str) and _PHONE_RE.fullmatch(phone)):
        err(f"malformed phone {phone!r} (write it as printed and quoted, e.g. \"(661) 327-1091\", "
            f"\"1-800-799-7233\", \"988\")")
        phone = None
    text = _opt_str(item.get("text"))
    if text is not None and not (isinstance(text, str) and _TEXT_RE.fullmatch(text)):
        err(f"malformed text number {text!r} (quoted, e.g. \"66008\" or \"START to 88788\")")
        text = None

    address = _opt_str(item.get("address"))
    city = _opt_str(item.get("city"))
    hours_by_lang = _per_lang(item.get("hours"), "hours", err)
    hours = dict(hours_by_lang).get("en") if hours_by_lang else _opt_str(item.get("hours"))
    eligibility = _per_lang(item.get("eligibility"), "eligibility", err)
    if item.get("eligibility") is not None and not isinstance(item.get("eligibility"), dict):
        err("eligibility must be words per language, e.g. {en: ages 12-21, es: de 12 a 21 años}")
    for label, pairs in (("hours", hours_by_lang), ("eligibility", eligibility)):
        if pairs and not {"en", "es"} <= dict(pairs).keys():
            warn(f"{label} not given in both en and es: left out of the replies in the other language")
    agency = _opt_str(item.get("agency"))
    if agency is not None and not (isinstance(agency, str) and _AGENCY_RE.fullmatch(agency)):
        warn(f"agency {agency!r} ignored: an agency id is lower-case-with-dashes, e.g. open-door-network")
        agency = None
    short_name = _opt_str(item.get("short_name"))
    if short_name is not None and not (isinstance(short_name, str) and short_name in name):
        err(f"short_name {short_name!r} must be part of the printed name {name!r}")
        short_name = None
    hotline = item.get("hotline", False)
    if not isinstance(hotline, bool):
        err(f"hotline must be true or false, got {hotline!r}")
        hotline = False
    ages = []
    for key in ("min_age", "max_age"):
        value = item.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 120):
            err(f"{key} must be a whole number of years, got {value!r}")
            value = None
        ages.append(value)
    min_age, max_age = ages
    if min_age is not None and max_age is not None and min_age > max_age:
        err(f"min_age {min_age} is over max_age {max_age}")
    notes = _opt_str(item.get("notes"))
    source = _opt_str(item.get("source"))
    for label, val in (("address", address), ("city", city), ("hours", hours), ("notes", notes), ("source", source)):
        if val is not None and not isinstance(val, str):
            err(f"{label} must be text, got {val!r}")
    address, city, hours, notes = (v if isinstance(v, str) else None for v in (address, city, hours, notes))
    if hours and not hours_by_lang and re.search(r"[A-Za-z]", hours):
        warn(f"hours {hours!r} are words in one language: left out of Spanish replies; "
             f"write them as {{en: ..., es: ...}}")
    if not isinstance(source, str):
        source = None
        err("missing source (every entry needs the page its facts were read on)")

    raw_zip = item.get("zip")
    zip5: str | None = None
    if raw_zip is not None:
        if isinstance(raw_zip, str) and re.fullmatch(r"\d{5}", raw_zip.strip()) and normalize_zip(raw_zip):
            zip5 = raw_zip.strip()
        else:
            err(f"bad zip {raw_zip!r} (must be a real US ZIP written as a quoted 5-digit string)")

    raw_langs = item.get("languages") or []
    langs: tuple[str, ...] = ()
    if isinstance(raw_langs, list) and all(isinstance(x, str) and _LANG_RE.fullmatch(x) for x in raw_langs):
        langs = tuple(raw_langs)
    else:
        err(f"languages must be a list of language codes like [en, es], got {raw_langs!r}")

    scope = item.get("scope")
    if scope not in SCOPES:
        err(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        scope = "local" if scope is None else str(scope)

    verified_on, ok = _parse_date(item.get("verified_on"))
    if not ok:
        err(f"bad verified_on {item.get('verified_on')!r} (use yyyy-mm-dd, or null if the page is undated)")

    lat = lon = None
    located_by = None
    if scope == "national":
        if zip5 or city or address:
            warn("national entry has an address/zip/city; it is not used for distance")
    else:
        if zip5:
            row = _zip_row(zip5)
            lat, lon, located_by = row[0], row[1], "zip"  # type: ignore[index]
            if (row[2], row[3]) != _COUNTY:  # type: ignore[index]
                warn(f"zip {zip5} is outside Kern County ({row[3]}, {row[2]})")  # type: ignore[index]
        elif city:
            point = _city_point(city)
            if point is not None:
                lat, lon, located_by = point[0], point[1], "city"
            else:
                warn(f"city {city!r} not found in Kern County: cannot be located, nearest() will not offer it")
        else:
            warn("local entry with no zip or city: cannot be located, nearest() will not offer it")

    res = Resource(
        id=rid, name=name, categories=cats, phone=phone, text=text, address=address, zip=zip5,
        city=city, languages=langs, hours=hours, scope=scope, source=source,
        verified_on=verified_on, line=line, lat=lat, lon=lon, located_by=located_by,
        notes=notes, names=names, hotline=hotline, min_age=min_age, max_age=max_age,
        eligibility=eligibility, hours_by_lang=hours_by_lang, short_name=short_name, agency=agency,
    )
    return res, probs


def _per_lang(value: object, label: str, err) -> tuple[tuple[str, str], ...]:
    """{en: ..., es: ...} as ((lang, text), ...); () for anything else (a plain string is not per language)."""
    if not isinstance(value, dict):
        return ()
    pairs = tuple((k, v.strip()) for k, v in value.items()
                  if k not in (_LINE_KEY, _DUP_KEY) and isinstance(k, str) and isinstance(v, str) and v.strip())
    bad = [k for k in value if k not in (_LINE_KEY, _DUP_KEY) and (not isinstance(k, str) or not _LANG_RE.fullmatch(k))]
    if bad or len(pairs) != len([k for k in value if k not in (_LINE_KEY, _DUP_KEY)]):
        err(f"{label} must map language codes to text, e.g. {{en: ..., es: ...}}")
        return ()
    return pairs


def _main(argv: list[str]) -> int:
    """``python -m flows.resources [--warn-only] [PATH]``: 1 on errors or listings past review (--warn-only:
    on errors only), as ``helpline resources check``."""
    warn_only = "--warn-only" in argv[1:]
    args = [a for a in argv[1:] if a != "--warn-only"]
    report = ResourceDirectory.load(args[0] if args else None).check(date.today())
    print(report)
    return 0 if report.current or (warn_only and report.ok) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv))
