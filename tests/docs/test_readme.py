"""The README is a front page an operator can trust: short, navigable, and every command, make target,
setting and link in it (and in docs/*.md) is one that exists.

Markdown is read the way GitHub renders it: headings and links outside fenced code, anchors by GitHub's
slug rules, commands and make targets inside code (inline spans and fenced blocks).
"""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from bot.cli import main
from bot.settings import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_BYTES = 15_000

_FENCE = re.compile(r"^[ \t]*```[^\n]*\n.*?^[ \t]*```[ \t]*$", re.M | re.S)
_SPAN = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
# `helpline` as a command: at the start, after a space or after a path (.venv/bin/helpline), and ending
# there (not flows/helpline.yaml nor helpline_redis_memory_ratio).
_COMMAND = re.compile(r"(?:^|(?<=[\s/]))helpline(?=\s|$)(.*)", re.S)
_COMMAND_ENDS = {"#", "|", "&&", "||", ";", ">", "2>"}
_MAKE = re.compile(r"(?:^|(?<=\s))make\s+([a-z][\w-]*)")
_SETTING = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def text_of(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def prose(text: str) -> str:
    """The page without its fenced code blocks (where # is a comment and [x](y) is not a link)."""
    return _FENCE.sub("", text)


def code_pieces(text: str) -> list[str]:
    """Each line of every fenced block, and each inline code span (which may wrap a line)."""
    pieces = []
    for block in _FENCE.findall(text):
        pieces += block.splitlines()[1:-1]
    pieces += _SPAN.findall(prose(text))
    return pieces


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lower case, punctuation dropped
    (letters, digits, '_', '-' and spaces kept), spaces as '-'."""
    heading = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    heading = re.sub(r"<[^>]+>", "", heading)
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page's headings make, duplicates numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    for _, heading in _HEADING.findall(prose(text_of(page))):
        base = slug(heading)
        n = seen.get(base, 0)
        found.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return found


def links(page: Path) -> list[str]:
    return [target for target in _LINK.findall(_SPAN.sub("", prose(text_of(page))))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading makes #{anchor} in {dest.relative_to(ROOT)}")
    return broken


def section(text: str, title: str) -> str:
    """The body of the `## title` section, up to the next heading of the same level."""
    match = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", prose(text), re.M | re.S)
    assert match, f"no '## {title}' section"
    return match.group(1)


def table_rows(body: str) -> list[list[str]]:
    """The cells of every table row in body (separator rows left out; \\| inside a cell kept)."""
    rows = []
    for line in body.splitlines():
        if line.startswith("|") and not re.fullmatch(r"[|\s:-]+", line):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows


# -- commands -----------------------------------------------------------------------------------------

def commands_shown(text: str) -> list[list[str]]:
    """Every `helpline ...` invocation in the page's code, as the words after `helpline`."""
    shown = []
    for piece in code_pieces(text):
        for match in _COMMAND.finditer(piece):
            words = []
            for word in match.group(1).split():
                if word in _COMMAND_ENDS or word.startswith("#"):
                    break
                words.append(word.replace("\\|", "|").strip("[]"))
            shown.append([w for w in words if w])
    return shown


def command_problem(words: list[str]) -> str | None:
    """Why `helpline <words>` is not a command of bot.cli.main, or None when it is one."""
    command: click.Command = main
    path = ["helpline"]
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        if name not in command.commands:
            return f"{' '.join(path)} has no command {name!r} (it has {', '.join(sorted(command.commands))})"
        command = command.commands[name]
        path.append(name)
    options = {opt: param for param in command.params if isinstance(param, click.Option)
               for opt in (*param.opts, *param.secondary_opts)}
    while rest:
        word = rest.pop(0)
        if not word.startswith("-"):
            continue  # an argument, or a placeholder such as NAME or TEXT
        name, _, value = word.partition("=")
        if name == "--help":
            continue
        if name not in options:
            return f"{' '.join(path)} has no option {name} (it has {', '.join(sorted(options)) or 'none'})"
        option = options[name]
        if option.is_flag or option.count:
            continue
        if not value and rest:
            value = rest.pop(0)
        if isinstance(option.type, click.Choice) and value:
            wrong = [v for v in value.split("|") if v not in option.type.choices]
            if wrong:
                return f"{' '.join(path)} {name} takes {', '.join(option.type.choices)}, not {', '.join(wrong)}"
    return None


# -- make targets -------------------------------------------------------------------------------------

def make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        rule = re.match(r"^([A-Za-z0-9_.\- ]+):(?![=:])", line)
        if rule and not line.startswith("."):
            targets.update(rule.group(1).split())
    return targets


# -- the tests ----------------------------------------------------------------------------------------

def test_the_readme_is_a_front_page_not_the_manual():
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size:,} bytes; move detail to docs/ (limit {MAX_README_BYTES:,})"


def test_the_readme_has_a_table_of_contents_that_leads_to_every_section():
    text = text_of(README)
    listed = re.findall(r"^\s*[-*]\s+\[[^\]]+\]\(#([^)]+)\)", section(text, "Contents"), re.M)
    assert listed, "the Contents section lists no [section](#anchor) links"
    here = anchors(README)
    assert [a for a in listed if a not in here] == [], "Contents links to headings the README does not have"
    sections = [slug(h) for level, h in _HEADING.findall(prose(text)) if level == "##" and h != "Contents"]
    assert [s for s in sections if s not in listed] == [], "a ## section of the README is missing from Contents"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_helpline_command_shown_exists(page):
    shown = commands_shown(text_of(page))
    problems = [f"helpline {' '.join(words)}: {problem}" for words in shown if (problem := command_problem(words))]
    assert problems == []


def test_the_readme_shows_the_commands_an_operator_starts_with():
    """A guard on the finder itself: if it stopped seeing commands, the test above would pass on nothing."""
    shown = {" ".join(words[:2]) for words in commands_shown(text_of(README))}
    assert {"run", "chat", "counsellor add", "keys rotate"} <= shown


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_make_target_shown_exists(page):
    targets = make_targets()
    shown = {t for piece in code_pieces(text_of(page)) for t in _MAKE.findall(piece)}
    assert shown - targets == set(), f"not targets of the Makefile (it has {', '.join(sorted(targets))})"
    if page == README:
        assert {"run", "test", "clean", "fuzz", "bench", "mutate"} <= shown


def test_the_settings_table_is_every_setting_once():
    names = [name for row in table_rows(section(text_of(README), "Settings"))
             for name in _SETTING.findall(row[0])]
    doubled = sorted({n for n in names if names.count(n) > 1})
    assert doubled == [], "a setting listed twice in the README's settings table"
    assert sorted(set(names) - DEFAULTS.keys()) == [], "in the settings table but not a setting (bot/settings.py DEFAULTS)"
    assert sorted(DEFAULTS.keys() - set(names)) == [], "settings (bot/settings.py DEFAULTS) missing from the README's table"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_second_settings_table(page):
    """One table of settings: no other table (in the README or docs/) is keyed by setting names."""
    text = prose(text_of(page))
    if page == README:
        text = text.replace(section(text_of(README), "Settings"), "")
    keyed = [name for row in table_rows(text) for name in _SETTING.findall(row[0]) if name in DEFAULTS]
    assert keyed == [], "describe these in the README's settings table and link to it"
