"""Open Referral HSDS 3.0: the resource directory written as HSDS services, and HSDS services read back.

Format: HSDS 3.0 JSON, one file (``services.json``) holding a list of service records as the HSDS API gives
``/services/{id}``: each with its organization, phones, schedules, languages and service_at_locations (each with
its location and address) nested. One of our listings is one service; nesting keeps its facts together, and a
211 provider's API output reads the same way (a page of ``/services``, ``{"contents": [...]}``, is read too).

What HSDS carries (both ways): name, short_name (alternate_name), phone (a "voice" phone), text (a "text"
phone), address/city/zip (the location's physical address; "" where the source gives none: a postal code is
never looked up), hours (a schedule's description: ours are words as printed, not RRULEs), languages, notes
(description), min_age/max_age, eligibility in English, verified_on (assured_date), and source (a metadata
record, field_name "source"). What it does not (categories, scope, hotline, Spanish words, agency) is this
help line's own: kept from our entry on import, and a new entry gets no categories, so it is not offered
until an operator classifies it.

A record is matched to our entry by the id our export gave it (uuid5 of our id), else by name; the rest are
new. Import reports; only ``--write`` changes the YAML, and it never deletes an entry.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import jsonschema
from referencing import Registry, Resource as SchemaResource

from . import resources_file
from .resources import Resource, ResourceDirectory, _build

SCHEMAS = Path(__file__).resolve().with_name("hsds")
EXPORT_FILE = "services.json"
# Fixed, so a listing's HSDS ids stay the same from one export to the next (uuid5 of our id).
NAMESPACE = uuid.UUID("5f0c7d2e-3b1a-4f6e-9c8d-2a7b6e4f1d30")
# The fields an import compares and may set: what HSDS carries.
FIELDS = ("name", "short_name", "phone", "text", "address", "zip", "city", "languages", "hours", "notes",
          "min_age", "max_age", "eligibility", "source", "verified_on")


class HsdsError(ValueError):
    """A file that cannot be read as HSDS at all (not JSON, not a list of services)."""


def hsds_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


# --------------------------------------------------------------------------- export


def to_service(r: Resource) -> dict:
    """One listing as an HSDS 3.0 service record."""
    sid = hsds_id("service", r.id)
    org = {"id": hsds_id("organization", r.id), "name": r.name, "description": r.notes or ""}
    service: dict = {"id": sid, "organization_id": org["id"], "name": r.name, "status": "active"}
    if r.short_name:
        service["alternate_name"] = r.short_name
    if r.notes:
        service["description"] = r.notes
    if r.eligibility_for("en"):
        service["eligibility_description"] = r.eligibility_for("en")
    for key, value in (("minimum_age", r.min_age), ("maximum_age", r.max_age)):
        if value is not None:
            service[key] = value
    if r.verified_on:
        service["assured_date"] = r.verified_on.isoformat()
    service["phones"] = [{"id": hsds_id("phone", r.id, kind), "service_id": sid, "number": number, "type": kind}
                         for kind, number in (("voice", r.phone), ("text", r.text)) if number]
    service["schedules"] = ([{"id": hsds_id("schedule", r.id), "service_id": sid, "description": r.hours}]
                            if r.hours else [])
    service["languages"] = [{"id": hsds_id("language", r.id, code), "service_id": sid, "code": code}
                            for code in r.languages]
    if r.address or r.city or r.zip:
        lid = hsds_id("location", r.id)
        # Every local listing is in Kern County, California: the directory holds no other (resources.py _COUNTY).
        address = {"id": hsds_id("address", r.id), "location_id": lid, "address_1": r.address or "",
                   "city": r.city or "", "state_province": "CA", "postal_code": r.zip or "", "country": "US",
                   "address_type": "physical"}
        service["service_at_locations"] = [{"id": hsds_id("service_at_location", r.id), "service_id": sid,
                                            "location_id": lid, "location": {"id": lid, "location_type": "physical",
                                                                             "addresses": [address]}}]
    service["organization"] = org
    service["metadata"] = [{"id": hsds_id("metadata", r.id, "source"), "resource_id": sid, "resource_type": "service",
                            "last_action_date": r.verified_on.isoformat() if r.verified_on else "",
                            "last_action_type": "verified", "field_name": "source", "previous_value": "",
                            "replacement_value": r.source or "", "updated_by": "flows/resources.yaml"}]
    return service


def export(directory: ResourceDirectory, out_dir: Path) -> Path:
    """Write the usable listings as ``out_dir/services.json``; its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / EXPORT_FILE
    path.write_text(json.dumps([to_service(r) for r in directory.usable()], indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------------- import


def _validator() -> jsonschema.Draft202012Validator:
    registry = Registry().with_resources(
        (p.name, SchemaResource.from_contents(json.loads(p.read_text(encoding="utf-8"))))
        for p in SCHEMAS.glob("*.json"))
    schema = json.loads((SCHEMAS / "service.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, registry=registry,
                                           format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def read(path: Path) -> tuple[list[tuple[str, dict]], list[str]]:
    """The service records in a file (or every *.json in a folder), each checked against the schema.

    Returns ([(label, record)], problems): a record with a problem is left out; a problem reads
    "services.json: record 3 (Open Door Network): phones/0/number: 'number' is a required property".
    """
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise HsdsError(f"{path}: no .json files")
    validator = _validator()
    good, problems = [], []
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"), parse_constant=_not_json)
        except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON
            raise HsdsError(f"{file.name}: not readable as JSON: {exc}") from exc
        except RecursionError:  # json's decoder recurses once per level of nesting
            raise HsdsError(f"{file.name}: not readable as JSON: nested too deep") from None
        records = data.get("contents") if isinstance(data, dict) and "contents" in data else data
        records = [records] if isinstance(records, dict) else records
        if not isinstance(records, list):
            raise HsdsError(f"{file.name}: expected a list of HSDS service records")
        for n, record in enumerate(records, 1):
            label = f"{file.name}: record {n}" + (f" ({record.get('name')})" if isinstance(record, dict)
                                                    and isinstance(record.get("name"), str) else "")
            errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
            for error in errors:
                where = "/".join(str(p) for p in error.absolute_path) or "(record)"
                problems.append(f"{label}: {where}: {error.message}")
            if not errors:
                good.append((label, record))
    return good, problems


def _not_json(constant: str):
    """Python's json reads NaN and Infinity; JSON (and so HSDS) has no such values."""
    raise ValueError(f"{constant} is not JSON")


def to_entry(record: dict, dataset: str) -> tuple[dict, str | None]:
    """Our entry's HSDS-carried fields from one (valid) service record; a reason when it is refused."""
    phones = record.get("phones") or []
    voice = next((p["number"] for p in phones if p.get("type", "voice") in ("voice", "", None)), None)
    text = next((p["number"] for p in phones if p.get("type") == "text"), None)
    address = next((a for sal in record.get("service_at_locations") or []
                    for a in (sal.get("location") or {}).get("addresses") or [] if a.get("address_type") != "postal"),
                   None) or {}
    schedules = record.get("schedules") or []
    hours = next((s["description"] for s in schedules if s.get("description")), None)
    source = next((m["replacement_value"] for m in record.get("metadata") or []
                   if m.get("field_name") == "source" and m.get("replacement_value")), None)
    entry = {
        "name": record["name"], "short_name": record.get("alternate_name"), "phone": voice, "text": text,
        "address": address.get("address_1") or None, "zip": address.get("postal_code") or None,
        "city": address.get("city") or None, "languages": [lang["code"] for lang in record.get("languages") or []
                                                          if lang.get("code")],
        "hours": hours, "notes": record.get("description") or None,
        "min_age": _whole(record.get("minimum_age")), "max_age": _whole(record.get("maximum_age")),
        "eligibility": record.get("eligibility_description") or None,
        # The dataset is the source of what it says, unless the record names its own.
        "source": source or f"Open Referral HSDS dataset {dataset}, service {record['id']}",
        "verified_on": date.fromisoformat(record["assured_date"]) if record.get("assured_date") else None,
    }
    if not (voice or text or entry["address"]):
        return entry, "no phone number and no street address: nothing a texter could use"
    if schedules and hours is None:
        return entry, "its schedule has no description (hours as words): write the hours by hand"
    return entry, None


def _whole(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and float(value).is_integer() else None


def current_fields(r: Resource) -> dict:
    """The HSDS-carried fields of one of our entries, as to_entry gives them."""
    return {"name": r.name, "short_name": r.short_name, "phone": r.phone, "text": r.text, "address": r.address,
            "zip": r.zip, "city": r.city, "languages": list(r.languages), "hours": r.hours, "notes": r.notes,
            "min_age": r.min_age, "max_age": r.max_age, "eligibility": r.eligibility_for("en"), "source": r.source,
            "verified_on": r.verified_on}


@dataclass
class ImportReport:
    """What an import would change: new entries, changed fields per entry, entries it no longer has."""

    added: dict[str, dict] = field(default_factory=dict)  # new id -> fields
    changed: dict[str, list[tuple[str, object, object]]] = field(default_factory=dict)  # id -> [(field, old, new)]
    removed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "label: why"

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def lines(self) -> list[str]:
        out = [f"refused: {why}" for why in self.refused]
        out += [f"added: {rid} ({fields['name']})" for rid, fields in self.added.items()]
        for rid, diffs in self.changed.items():
            out += [f"changed: {rid}: {name}: {old!r} -> {new!r}" for name, old, new in diffs]
        out += [f"not in the import: {rid} (kept; delete it from the YAML by hand if the service is gone)"
                for rid in self.removed]
        out.append(f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} not in the import, "
                   f"{len(self.refused)} refused")
        return out


def compare(directory: ResourceDirectory, records: list[tuple[str, dict]], dataset: str) -> ImportReport:
    """What importing ``records`` would do to ``directory``."""
    report = ImportReport()
    ours = {hsds_id("service", r.id): r for r in directory.usable()}
    taken = {r.id for r in directory}
    seen = set()
    ids = {record["id"] for _, record in records}
    for label, record in records:
        entry, refused = to_entry(record, dataset)
        if refused is None:
            refused = _our_rules(entry)
        if refused is not None:
            report.refused.append(f"{label}: {refused}")
            continue
        # Our own export's ids, else the name: an entry imported before keeps the provider's name, not its id.
        mine = ours.get(record["id"]) or next((r for r in directory.usable() if r.name == entry["name"]
                                               and r.id not in seen and hsds_id("service", r.id) not in ids), None)
        if mine is None:
            rid = _new_id(entry["name"], taken)
            taken.add(rid)
            report.added[rid] = entry
            continue
        seen.add(mine.id)
        now = current_fields(mine)
        diffs = [(name, now[name], entry[name]) for name in FIELDS if now[name] != entry[name]]
        if diffs:
            report.changed[mine.id] = diffs
    report.removed = [r.id for r in directory.usable() if r.id not in seen]
    return report


def _our_rules(entry: dict) -> str | None:
    """The directory's own checks (a phone as printed, a real ZIP...) on an imported entry; the first error."""
    _, problems = _build({"id": "imported", "scope": "local", "categories": [], **_as_yaml(entry)})
    errors = [message for kind, message in problems if kind == "error"]
    return errors[0] if errors else None


def _new_id(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "imported"
    rid, n = base, 2
    while rid in taken:
        rid, n = f"{base}-{n}", n + 1
    return rid


def write(directory: ResourceDirectory, report: ImportReport, dataset: str) -> None:
    """Apply an import to the directory's file: changed fields set in place, new entries added at the end.

    Entries not in the import are never deleted here: an operator does that, knowing the service is gone.
    """
    by_id = {r.id: r for r in directory}
    edits = {}
    for rid, diffs in report.changed.items():
        r = by_id[rid]
        edits[r.line] = _as_yaml({name: new for name, _, new in diffs})
    resources_file.set_fields(directory.path, edits)
    if report.added:
        resources_file.append_entries(directory.path, [
            {"id": rid, **{k: v for k, v in _as_yaml(fields).items() if v not in (None, [])}, "categories": [],
             "scope": "local"} for rid, fields in report.added.items()],
            f"imported from Open Referral HSDS {dataset} on {date.today().isoformat()}: set categories (and "
            f"scope: national for a line with no place) before they are offered")


def _as_yaml(fields: dict) -> dict:
    """Fields as the YAML holds them: HSDS's eligibility is English words, {en: ...} here (never mixed)."""
    if fields.get("eligibility") is not None:
        return {**fields, "eligibility": {"en": fields["eligibility"]}}
    return fields
