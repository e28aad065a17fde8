"""Edits to flows/resources.yaml in place: a few fields of an entry set, new entries added at the end.

The file is written by people (its comments say where each fact came from), so it is never re-dumped: only the
lines of the fields being set change, and everything else stays as the operator wrote it.
"""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

_FIELD = re.compile(r"^(\s+)([a-z_]+):")


class ResourceFileError(ValueError):
    """An entry whose fields cannot be found where an edit needs them."""


def set_fields(path: Path, edits: dict[int, dict[str, object]]) -> None:
    """Set fields of entries, {entry's first line (1-based, Resource.line): {field: value}}; None writes null."""
    lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    starts = sorted(edits)
    every = _entry_starts(lines)
    for start in reversed(starts):  # from the bottom: the line numbers above stay true
        end = next((s for s in every if s > start), len(lines) + 1) - 1
        _set(lines, start - 1, end, edits[start])
    Path(path).write_text("".join(lines), encoding="utf-8")


def append_entries(path: Path, entries: list[dict[str, object]], heading: str) -> None:
    """Add entries (field: value, in order) at the end of the file, under a comment line."""
    text = Path(path).read_text(encoding="utf-8").rstrip("\n") + f"\n\n# {heading}\n"
    for entry in entries:
        fields = list(entry.items())
        text += "\n" + "\n".join(("- " if i == 0 else "  ") + f"{k}: {scalar(v)}" for i, (k, v) in enumerate(fields))
        text += "\n"
    Path(path).write_text(text, encoding="utf-8")


def scalar(value: object) -> str:
    """A value as one line of YAML: null, a date, a number, a flow list or mapping, or a double-quoted string (JSON is
    YAML)."""
    if value is None:
        return "null"
    if isinstance(value, date):
        return value.isoformat()  # unquoted: YAML reads it back as a date
    if isinstance(value, bool) or isinstance(value, int):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def _entry_starts(lines: list[str]) -> list[int]:
    return [i + 1 for i, line in enumerate(lines) if line.startswith("- ")]


def _set(lines: list[str], start: int, end: int, values: dict[str, object]) -> None:
    indent = "  "
    for field, value in values.items():
        found = [(i, m.group(1)) for i in range(start, end) if (m := _FIELD.match(lines[i])) and m.group(2) == field]
        first_field = re.match(rf"^- {re.escape(field)}:", lines[start])
        if first_field:
            raise ResourceFileError(f"line {start + 1}: {field} is the entry's first line; change it by hand")
        if found:
            at, indent = found[0]
            stop = at + 1
            while stop < end and lines[stop].strip() and len(lines[stop]) - len(lines[stop].lstrip()) > len(indent):
                stop += 1  # a value folded over more lines
            lines[at:stop] = [f"{indent}{field}: {scalar(value)}\n"]
            end -= stop - at - 1
        else:
            last = max((i for i in range(start, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")),
                       default=start)
            lines.insert(last + 1, f"{indent}{field}: {scalar(value)}\n")
            end += 1
