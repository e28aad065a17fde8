"""Local resource directory: "find help near me" by ZIP code.

The directory is data (``flows/resources.yaml``, beside this module).  This
module loads it once, checks it, and answers "the nearest places offering
<category> to this ZIP code", followed by national lines.  No network: ZIP
coordinates come from the ``zipcodes`` package, which ships its data.

    d = ResourceDirectory.load()
    report = d.check(today=date.today())   # ResourceCheck(errors, warnings)
    d.nearest("93215", "shelter")          # [Match(resource, miles), ...]

Run ``python -m flows.resources`` to print the check for today.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator

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
    "normalize_zip",
]

CATEGORIES: tuple[str, ...] = ("shelter", "youth", "food", "legal", "medical", "counselling")
SCOPES: tuple[str, ...] = ("local", "national")
STALE_AFTER_DAYS = 180
DEFAULT_PATH = Path(__file__).resolve().with_name("resources.yaml")
_REPO_ROOT = DEFAULT_PATH.parent.parent
_COUNTY = ("CA", "Kern County")
_EARTH_RADIUS_MILES = 3958.7613

# Phone numbers as they are printed in our sources:
#   (661) 327-1091   1-888-373-7888   988   2-1-1
_PHONE_RE = re.compile(r"\(\d{3}\) \d{3}-\d{4}|1-\d{3}-\d{3}-\d{4}|\d{3}|\d-\d-\d")
# SMS numbers / short codes, optionally with a keyword: "66008", "START to 88788"
_TEXT_RE = re.compile(r"(?:[A-Z]+ to )?\d{3,6}|\(\d{3}\) \d{3}-\d{4}")
_ZIP_RE = re.compile(r"([0-9]{5})(?:[-\s]?[0-9]{4})?")  # ASCII only: zipcodes' core panics on other digits
_LANG_RE = re.compile(r"[a-z]{2,3}")
_LINE_KEY = "__line__"
_DUP_KEY = "__duplicate_keys__"
_FIELDS = frozenset(
    {"id", "name", "categories", "phone", "text", "address", "zip", "city", "languages",
     "hours", "notes", "scope", "source", "verified_on"}
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

    def name_for(self, lang: str) -> str:
        """The name printed for ``lang`` when the source gives one, else ``name``."""
        return dict(self.names).get(lang, self.name)


@dataclass(frozen=True)
class Match:
    """A nearest() result: the resource and its distance (None for national lines)."""

    resource: Resource
    miles: float | None


@dataclass(frozen=True)
class ResourceCheck:
    """Result of ResourceDirectory.check(): messages "file:LINE: id: problem"."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [f"error: {m}" for m in self.errors] + [f"warning: {m}" for m in self.warnings]
        lines.append(f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)")
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
                 file_errors: list[str], path: Path) -> None:
        self._resources = tuple(resources)
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
    def load(cls, path: str | Path | None = None) -> "ResourceDirectory":
        """Load and validate the YAML directory (default: resources.yaml beside this module)."""
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
        return cls(resources, problems, file_errors, p)

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

    def _has_error(self, index: int) -> bool:
        return any(kind == "error" for kind, _ in self._problems.get(index, ()))

    def check(self, today: date | None = None) -> ResourceCheck:
        """Errors (entry never offered) and warnings (offered, but fix or re-verify) as "file:LINE: id: ..."."""
        today = today or date.today()
        stale_before = today - timedelta(days=STALE_AFTER_DAYS)
        errors = list(self._file_errors)
        warnings: list[str] = []
        for i, r in enumerate(self._resources):
            prefix = f"{self.display_path}:{r.line}: {r.id or '?'}: "
            for kind, msg in self._problems.get(i, ()):
                (errors if kind == "error" else warnings).append(prefix + msg)
            if r.verified_on is None:
                warnings.append(prefix + "verified_on missing: unverified, re-check the source and date it")
            elif r.verified_on < stale_before:
                age = (today - r.verified_on).days
                warnings.append(
                    prefix + f"verified_on {r.verified_on.isoformat()} is {age} days old "
                    f"(over {STALE_AFTER_DAYS}): re-verify"
                )
            elif r.verified_on > today:
                warnings.append(prefix + f"verified_on {r.verified_on.isoformat()} is in the future")
        return ResourceCheck(errors=errors, warnings=warnings)

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
    hours = _opt_str(item.get("hours"))
    notes = _opt_str(item.get("notes"))
    source = _opt_str(item.get("source"))
    for label, val in (("address", address), ("city", city), ("hours", hours), ("notes", notes), ("source", source)):
        if val is not None and not isinstance(val, str):
            err(f"{label} must be text, got {val!r}")
    address, city, hours, notes = (v if isinstance(v, str) else None for v in (address, city, hours, notes))
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
        notes=notes, names=names,
    )
    return res, probs


def _main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else None
    report = ResourceDirectory.load(path).check(date.today())
    print(report)
    return 1 if report.errors else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv))
