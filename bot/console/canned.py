"""Canned replies and resource snippets for the reply box, per language, from flows/canned.yaml."""
from __future__ import annotations

import functools
from pathlib import Path

import yaml

import flows

PATH = Path(flows.__file__).parent / "canned.yaml"


@functools.lru_cache(maxsize=1)
def _load() -> dict:
    with PATH.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def snippets(lang: str) -> dict[str, list[tuple[str, str]]]:
    """{"replies": [(label, text)], "resources": [(label, text)]} in `lang`, English where a text is missing."""
    found = {}
    for group in ("replies", "resources"):
        found[group] = [(item["label"], item.get(lang) or item["en"]) for item in _load().get(group, [])]
    return found
