"""Texter-facing words, one catalog per language, referred to by key."""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).parent
LANGUAGES = ("en", "es")


class CatalogError(ValueError):
    """A message catalog is missing, malformed or refers to an unknown placeholder."""


class _Blank(dict):
    def __missing__(self, key):
        return ""


@dataclass
class Catalog:
    """All languages' messages: texts[lang][key]."""

    texts: dict[str, dict[str, str]]
    lines: dict[str, dict[str, int]]
    paths: dict[str, Path]
    # (lang, key) -> its placeholders, worked out the first time: every message renders a few (issue 17).
    _wanted: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict, init=False, repr=False,
                                                           compare=False)

    @classmethod
    def load(cls, folder: Path | str = HERE / "catalogs", languages=LANGUAGES) -> "Catalog":
        texts, lines, paths = {}, {}, {}
        for lang in languages:
            path = Path(folder) / f"{lang}.yaml"
            try:
                node = yaml.compose(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise CatalogError(f"{path}: {exc}") from exc
            if node is None or not isinstance(node, yaml.MappingNode):
                raise CatalogError(f"{path}:1: a catalog is a mapping of key: text")
            texts[lang], lines[lang] = {}, {}
            for key_node, value_node in node.value:
                if not isinstance(value_node, yaml.ScalarNode):
                    raise CatalogError(f"{path}:{key_node.start_mark.line + 1}: {key_node.value}: text expected")
                texts[lang][key_node.value] = value_node.value.strip()
                lines[lang][key_node.value] = key_node.start_mark.line + 1
            paths[lang] = path
        return cls(texts, lines, paths)

    def has(self, lang: str, key: str) -> bool:
        return key in self.texts.get(lang, {})

    def render(self, lang: str, key: str, **values) -> str:
        """The text for key in lang (English when the language lacks it), placeholders filled."""
        table = self.texts.get(lang) or self.texts["en"]
        text = table.get(key, self.texts["en"].get(key))
        if text is None:
            raise CatalogError(f"no message {key!r}")
        return text.format_map(_Blank(values)) if "{" in text else text

    def placeholders(self, lang: str, key: str) -> frozenset[str]:
        wanted = self._wanted.get((lang, key))
        if wanted is None:
            wanted = self._wanted[lang, key] = frozenset(
                name for _, name, _, _ in string.Formatter().parse(self.texts[lang][key]) if name)
        return wanted
