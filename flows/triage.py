"""Emergency triage of texter messages: normal, high or emergency.

The lexicon (flows/triage.yaml) is data; this module only knows how to
normalise a message and run the lexicon's token patterns over it.

Pattern language (one pattern = words separated by spaces, matched against
the normalised tokens of the message):

    word        that token (accents, case and doubled letters don't matter)
    stem*       any token starting with ``stem``
    a|b*|@CLS   any of the alternatives; ``@CLS`` is a class from ``classes:``
                (class members may be several words: "going to")
    (a b|c)     alternatives that are phrases of several words
    /regex/     one token matching the regex, e.g. ``/[0-9]+/`` (no spaces
                or parentheses inside)
    ~N          up to N (0-9) arbitrary tokens, but never a negator or a
                clause break, so "he is not hitting me" can't bridge a gap
    X?          element X is optional
    !X          the next token is not X (consumes nothing)
    $           end of a clause

A match is dropped when one of the entry's ``unless`` patterns overlaps it,
or when a negator sits in the few tokens before it in the same clause
("i'm not in danger", "no estoy en peligro"). Patterns that begin with a
negator ("no me dejan salir") are about the negation itself and skip that
check, and so do matches that begin with a clause word ("i can't leave
until the debt is paid": the "until" clause is not negated).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

LEVELS = ("normal", "high", "emergency")
MAX_INPUT = 1600  # one long SMS thread chunk; anything longer is cut, never rejected
DEFAULT_PATH = Path(__file__).with_name("triage.yaml")

_BREAK = "|"  # token standing for punctuation that ends a clause
_NEG_WINDOW = 3  # tokens before a match in which a negator cancels it
_FUZZY_MIN = 6  # only words this long get a one-edit typo allowance
_FUZZY_CACHE_MAX = 50_000

# Apostrophes are dropped before anything else so "don't"/"don’t"/"don´t"
# all become "dont" (´ would otherwise decompose into a space + accent).
_APOSTROPHES = re.compile("['\u2019\u2018`\u00b4\u02bc]")
_COMBINING = re.compile("[\u0300-\u036f]")
# Invisible format characters (zero-width space and joiners, soft hyphen, bidi marks, BOM): inside a word
# they would split "k\u200bill" into two tokens that match nothing. The intent model already reads past them.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_REPEATS = re.compile(r"([a-z])\1+")
_TOKENS = re.compile(r"[a-z]+|[0-9]+|[.,;:!?\u00a1\u00bf\n]+")
_WORD = re.compile(r"[a-z0-9]+")
_ELEMENTS = re.compile(r"!?\([^()]*\)\??|[^\s()]+")


class TriageLexiconError(ValueError):
    """The triage lexicon file is malformed (the message names the file and line)."""


class Hit(NamedTuple):
    id: str
    level: str
    pattern: str
    span: str  # the message words that matched (lowercased, accents stripped)


@dataclass(frozen=True)
class Assessment:
    level: str
    matched: tuple[str, ...] = ()
    self_harm: bool = False
    hits: tuple[Hit, ...] = field(default=(), repr=False)
    # Danger words the lexicon found and set aside as negated or everyday speech ("i don't want to
    # die", "me mata de risa"): another reader (the intent model) must not take them for danger.
    denied: bool = False

    def to_dict(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "matched": list(self.matched)}
        if explain:
            out["explain"] = [h._asdict() for h in self.hits]
        return out


# --------------------------------------------------------------------------
# Text normalisation


def _fold(text: str, collapse: bool = True) -> str:
    """Lowercase, strip accents and apostrophes, collapse doubled letters."""
    text = _APOSTROPHES.sub("", text)
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", _INVISIBLE.sub("", text)))
    text = text.lower()
    # Collapsing every run ("pleeease", "killl", "passport", "cuchillo") the
    # same way in lexicon and message makes doubled-letter typos free.
    return _REPEATS.sub(r"\1", text) if collapse else text


class _Normaliser:
    def __init__(self, textisms: dict[str, list[str]], negators: frozenset[str],
                 breaks: frozenset[str], subjects: frozenset[str],
                 no_phrases: frozenset[str], raisers: frozenset[str],
                 protected: frozenset[str]) -> None:
        self.textisms = textisms
        self.negators = negators
        # A new subject or clause word ends a negation's reach:
        # "i'm not ok he has a gun" is not a negated gun.
        self.scope_end = breaks | subjects | {_BREAK}
        self.breaks = breaks
        self.subjects = subjects
        self.raisers = raisers
        self.no_exempt = subjects | no_phrases
        self.protected = protected
        self.fuzzy_index: dict[str, set[str]] = {}
        self.vocabulary: frozenset[str] = frozenset()
        self.stems: tuple[str, ...] = ()
        self.cache: dict[str, str] = {}

    def set_vocabulary(self, words: set[str], stems: set[str]) -> None:
        # A word a lexicon stem already matches ("burned" for burn*) must
        # not be "corrected" into another lexicon word ("turned").
        self.stems = tuple(sorted(st for st in stems if len(st) >= 3))
        # SymSpell-style index: a word and each one-deletion of it point back
        # to the word, so a token within one edit shares a key with it.
        self.protected = self.protected | words
        self.vocabulary = frozenset(words)
        index: dict[str, set[str]] = {}
        for w in words:
            if len(w) >= _FUZZY_MIN and w.isalpha():
                for key in {w, *_deletions(w)}:
                    index.setdefault(key, set()).add(w)
        self.fuzzy_index = index

    def _correct(self, tok: str) -> str:
        if tok in self.protected or not tok.isalpha():
            return tok
        if "k" in tok:
            # Spanish texting writes qu as k: "kitaron", "kieren", "aki".
            qu = tok.replace("k", "qu")
            if qu in self.vocabulary:
                return qu
        if tok.endswith("in") and tok + "g" in self.vocabulary:
            # Texting drops the g of -ing: "hes hittin me", "chokin".
            return tok + "g"
        if len(tok) < _FUZZY_MIN:
            return tok
        hit = self.cache.get(tok)
        if hit is None:
            found: set[str] = set()
            if not tok.startswith(self.stems):
                for key in (tok, *_deletions(tok)):
                    found |= self.fuzzy_index.get(key, set())
            # Ambiguous typos are left alone rather than guessed.
            hit = next(iter(found)) if len(found) == 1 else tok
            if len(self.cache) >= _FUZZY_CACHE_MAX:
                self.cache.clear()
            self.cache[tok] = hit
        return hit

    def tokens(self, text: str) -> tuple[list[str], list[str]]:
        """Normalised tokens, and the message word each came from (for explain)."""
        out: list[str] = []
        shown: list[str] = []
        folded = _fold(text[:MAX_INPUT], collapse=False)
        # Collapsing letter runs never changes token boundaries, so the two
        # token lists line up one to one.
        pairs = zip(_TOKENS.findall(folded), _TOKENS.findall(_REPEATS.sub(r"\1", folded)))
        for word, raw in pairs:
            if not word[0].isalnum():
                if out and out[-1] != _BREAK:
                    out.append(_BREAK)
                    shown.append(word)
                continue
            exp = self.textisms.get(raw)
            if exp is not None:
                out.extend(exp)
                shown.extend([word] + [""] * (len(exp) - 1))
            else:
                out.append(self._correct(raw))
                shown.append(word)
        # "no he has a gun" / "no sé": a "no" in front of a subject is an
        # answer or part of a fixed phrase, not a negation of what follows.
        for i, tok in enumerate(out):
            if tok == "no" and i + 1 < len(out) and out[i + 1] in self.no_exempt:
                out[i] = "nah"
        return out, shown

    def negated_before(self, tokens: list[str], idx: int) -> bool:
        if tokens[idx] in self.breaks:
            # A match that opens its own clause ("... can't leave | until the
            # debt is paid") is out of reach of a negation before it.
            return False
        budget = _NEG_WINDOW
        j = idx - 1
        while j >= 0 and budget > 0:
            tok = tokens[j]
            if tok in self.negators:
                return True
            if tok in self.subjects and j > 0 and tokens[j - 1] in self.raisers:
                # "i don't think he has a gun", "no creo que me pegue": the
                # negation of think/feel/believe carries into the clause.
                budget = _NEG_WINDOW
            elif tok in self.scope_end:
                return False
            else:
                budget -= 1
            j -= 1
        return False


def _deletions(word: str) -> list[str]:
    return [word[:i] + word[i + 1:] for i in range(len(word))]


# --------------------------------------------------------------------------
# Lexicon loading


class _LineStr(str):
    line = 0


class _LineDict(dict):
    line = 0


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every string and mapping."""


def _construct_str(loader: yaml.SafeLoader, node: yaml.Node) -> _LineStr:
    s = _LineStr(loader.construct_scalar(node))
    s.line = node.start_mark.line + 1
    return s


def _construct_map(loader: yaml.SafeLoader, node: yaml.Node) -> _LineDict:
    d = _LineDict(loader.construct_mapping(node, deep=True))
    d.line = node.start_mark.line + 1
    return d


_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


@dataclass
class _Pattern:
    entry: int
    source: str
    regex: re.Pattern[str]
    check_negation: bool


@dataclass
class _Entry:
    id: str
    level: str
    self_harm: bool
    unless: list[re.Pattern[str]]


class _Compiler:
    """Turns the pattern language into regexes over " tok tok tok "."""

    def __init__(self, path: Path, classes: dict[str, list[list[str]]],
                 negators: frozenset[str], textisms: dict[str, list[str]]) -> None:
        self.path = path
        self.classes = classes
        self.negators = negators
        self.textisms = textisms
        self.vocabulary: set[str] = set()
        self.stems: set[str] = set()
        blocked = "|".join(re.escape(t) for t in sorted(negators | {_BREAK}))
        self.gap_token = rf"(?: (?!(?:{blocked}) )[^ ]+)"

    def fail(self, line: int, msg: str) -> TriageLexiconError:
        return TriageLexiconError(f"{self.path.name}, line {line}: {msg}")

    def word(self, raw: str, line: int) -> str:
        w = _fold(raw)
        if not _WORD.fullmatch(w):
            raise self.fail(line, f"{raw!r} is not a plain word (letters/digits only)")
        if w in self.textisms:
            # The message side rewrites this word, so it could never match.
            raise self.fail(line, f"{raw!r} is rewritten by textisms; use "
                                  f"{' '.join(self.textisms[w])!r}")
        self.vocabulary.add(w)
        return w

    def alternative(self, alt: str, line: int) -> tuple[str, bool]:
        """Regex for one alternative and whether it starts with a negator."""
        if alt.startswith("@"):
            phrases = self.classes.get(alt[1:])
            if phrases is None:
                raise self.fail(line, f"unknown class {alt!r}")
            body = "|".join(" ".join(re.escape(w) for w in p) for p in phrases)
            return f"(?:{body})", any(p[0] in self.negators for p in phrases)
        stem = alt.endswith("*")
        w = self.word(alt[:-1] if stem else alt, line)
        if stem:
            self.stems.add(w)
        return re.escape(w) + ("[a-z0-9]*" if stem else ""), w in self.negators

    def element(self, el: str, line: int) -> tuple[str, bool]:
        if re.fullmatch(r"~[0-9]", el):
            return f"{self.gap_token}{{0,{el[1]}}}", False
        if el == "$":
            return rf"(?= {re.escape(_BREAK)} | ?$)", False
        optional = len(el) > 1 and el.endswith("?")
        negative = el.startswith("!")
        core = el[1 if negative else 0:len(el) - 1 if optional else len(el)]
        if core.startswith("(") and core.endswith(")"):
            core = core[1:-1]
        if not core.strip():
            raise self.fail(line, f"empty element {el!r}")
        if len(core) > 2 and core[0] == core[-1] == "/":
            try:
                re.compile(core[1:-1])
            except re.error as exc:
                raise self.fail(line, f"bad regex {core!r}: {exc}") from None
            rx, neg = f"(?:{core[1:-1]})", False
        else:
            alts = []
            neg = False
            for alt in core.split("|"):
                words = alt.split()
                if not words:
                    raise self.fail(line, f"empty alternative in {el!r}")
                parts = [self.alternative(w, line) for w in words]
                alts.append(" ".join(rx for rx, _ in parts))
                neg = neg or parts[0][1]
            # A lone class is already a group; not wrapping it again lets
            # _anchor index the pattern by the class's words.
            lone_class = len(alts) == 1 and core.startswith("@") and " " not in core
            rx = alts[0] if lone_class else "(?:" + "|".join(alts) + ")"
        if negative:
            return f"(?! {rx} )", False
        rx = f" {rx}"
        return (f"(?:{rx})?" if optional else rx), neg and not optional

    def pattern(self, src: Any, line: int) -> tuple[re.Pattern[str], bool]:
        if not isinstance(src, str) or not src.strip():
            raise self.fail(line, "empty pattern")
        # Split on spaces, except inside "( ... )" phrase groups.
        elements = _ELEMENTS.findall(src)
        if "".join(elements).replace(" ", "") != src.replace(" ", ""):
            raise self.fail(line, f"unbalanced parentheses in {src!r}")
        compiled = [self.element(el, line) for el in elements]
        body = "".join(rx for rx, _ in compiled)
        try:
            # Every element eats the space before its token, so the regex
            # starts with a literal " " that re can scan for quickly.
            regex = re.compile(f"{body}(?= )")
        except re.error as exc:
            raise self.fail(line, f"pattern {src!r} does not compile: {exc}") from None
        return regex, compiled[0][1]


def _line(node: Any, default: int) -> int:
    return getattr(node, "line", 0) or default


def _word_set(path: Path, cfg: dict, key: str) -> frozenset[str]:
    node = cfg.get(key, [])
    if not isinstance(node, list) or not all(isinstance(x, str) and x.strip() for x in node):
        raise TriageLexiconError(f"{path.name}, line {_line(node, _line(cfg, 1))}: "
                                 f"normalise.{key} must be a list of words")
    return frozenset(_fold(x).strip() for x in node)


class Triage:
    """A compiled lexicon; ``assess`` scores one message."""

    def __init__(self, entries: list[_Entry], patterns: list[_Pattern],
                 normaliser: _Normaliser) -> None:
        self._entries = entries
        self._patterns = patterns
        self._norm = normaliser
        # Cheap pre-filter: a pattern is only run if its anchor words occur.
        self._by_word: dict[str, list[int]] = {}
        self._by_stem: dict[str, list[int]] = {}
        self._always: list[int] = []
        self._index_anchors()

    @classmethod
    def load(cls, path: str | Path | None = None) -> Triage:
        path = Path(path) if path is not None else DEFAULT_PATH
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        except OSError as exc:
            raise TriageLexiconError(f"{path.name}: cannot read lexicon: {exc}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark else ""
            raise TriageLexiconError(f"{path.name}{where}: invalid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise TriageLexiconError(f"{path.name}, line 1: expected a mapping at top level")
        return cls._build(path, raw)

    @classmethod
    def _build(cls, path: Path, raw: dict) -> Triage:
        def fail(line: int, msg: str) -> TriageLexiconError:
            return TriageLexiconError(f"{path.name}, line {line}: {msg}")

        for key, kind in (("normalise", dict), ("classes", dict), ("entries", list)):
            if not isinstance(raw.get(key) or kind(), kind):
                raise fail(_line(raw.get(key), 1), f"{key} must be a {kind.__name__}")
        norm_cfg = raw.get("normalise") or _LineDict()
        negators = _word_set(path, norm_cfg, "negators")
        textisms: dict[str, list[str]] = {}
        for key, val in (norm_cfg.get("textisms") or {}).items():
            if not isinstance(val, str) or not val.strip():
                raise fail(_line(val, norm_cfg.line), f"textism {key!r} needs a replacement")
            textisms[_fold(str(key))] = _fold(val).split()

        classes: dict[str, list[list[str]]] = {}
        comp = _Compiler(path, classes, negators, textisms)
        class_nodes = raw.get("classes") or _LineDict()
        for name, members in class_nodes.items():
            if not isinstance(members, list) or not members:
                raise fail(_line(members, class_nodes.line), f"class {name!r} is empty")
            phrases = []
            for m in members:
                words = [comp.word(w, _line(m, class_nodes.line)) for w in str(m).split()]
                if not words:
                    raise fail(_line(m, class_nodes.line), f"empty member in class {name!r}")
                phrases.append(words)
            classes[str(name)] = phrases

        entries: list[_Entry] = []
        patterns: list[_Pattern] = []
        seen: set[str] = set()
        for node in raw.get("entries") or []:
            if not isinstance(node, dict):
                raise fail(_line(node, 1), "entry must be a mapping")
            line = node.line
            eid = node.get("id")
            if not isinstance(eid, str) or not eid:
                raise fail(line, "entry without an id")
            if eid in seen:
                raise fail(line, f"duplicate id {eid!r}")
            seen.add(eid)
            level = node.get("level")
            if level not in LEVELS or level == "normal":
                raise fail(_line(level, line), f"entry {eid!r} has unknown level {level!r} "
                                               f"(use high or emergency)")
            self_harm = node.get("self_harm", False)
            if not isinstance(self_harm, bool):
                raise fail(line, f"entry {eid!r}: self_harm must be true or false")
            by_lang = node.get("patterns")
            if not isinstance(by_lang, dict) or not by_lang:
                raise fail(line, f"entry {eid!r} has no patterns")
            idx = len(entries)
            for lang, plist in by_lang.items():
                if not isinstance(plist, list) or not plist:
                    raise fail(_line(plist, by_lang.line), f"entry {eid!r}: no {lang} patterns")
                for src in plist:
                    rx, starts_neg = comp.pattern(src, _line(src, by_lang.line))
                    patterns.append(_Pattern(idx, str(src), rx, not starts_neg))
            unless = [comp.pattern(src, _line(src, line))[0] for src in node.get("unless") or []]
            entries.append(_Entry(eid, level, self_harm, unless))
        if not entries:
            raise fail(1, "no entries")

        normaliser = _Normaliser(
            textisms, negators,
            breaks=_word_set(path, norm_cfg, "clause_words"),
            subjects=_word_set(path, norm_cfg, "subjects"),
            no_phrases=_word_set(path, norm_cfg, "no_phrases"),
            raisers=_word_set(path, norm_cfg, "raisers"),
            protected=_word_set(path, norm_cfg, "protect"),
        )
        normaliser.set_vocabulary(comp.vocabulary, comp.stems)
        return cls(entries, patterns, normaliser)

    def _index_anchors(self) -> None:
        # A pattern's anchor is the literal words (or stems) of its rarest
        # required element; if none occurs in the message it can't match.
        # Derived from the compiled regex so the compiler stays simple.
        for i, p in enumerate(self._patterns):
            anchor = _anchor(p.regex.pattern)
            if anchor is None:
                self._always.append(i)
                continue
            words, stems = anchor
            for w in words:
                self._by_word.setdefault(w, []).append(i)
            for st in stems:
                self._by_stem.setdefault(st, []).append(i)
        self._stem_lens = sorted({len(st) for st in self._by_stem})

    def assess(self, text: str) -> Assessment:
        if not isinstance(text, str):
            raise TypeError(f"assess() needs a str, not {type(text).__name__}")
        tokens, shown = self._norm.tokens(text)
        if not tokens:
            return Assessment("normal")
        joined = " " + " ".join(tokens) + " "

        candidates = set(self._always)
        by_word, by_stem, stem_lens = self._by_word, self._by_stem, self._stem_lens
        for tok in set(tokens):
            hit = by_word.get(tok)
            if hit:
                candidates.update(hit)
            for n in stem_lens:
                if n > len(tok):
                    break
                hit = by_stem.get(tok[:n])
                if hit:
                    candidates.update(hit)

        hits: list[tuple[int, Hit]] = []
        fired: set[int] = set()
        denied = False
        for pi in sorted(candidates):
            p = self._patterns[pi]
            if p.entry in fired:
                continue
            for m in p.regex.finditer(joined):
                start, end = m.start(), m.end()
                idx = joined.count(" ", 0, start + 1) - 1
                entry = self._entries[p.entry]
                if ((p.check_negation and self._norm.negated_before(tokens, idx))
                        or any(_overlaps(u, joined, start, end) for u in entry.unless)):
                    denied = denied or entry.level == "emergency"
                    continue
                fired.add(p.entry)
                last = idx + joined.count(" ", start + 1, end)
                span = " ".join(w for w in shown[idx:last + 1] if w)
                hits.append((p.entry, Hit(entry.id, entry.level, p.source, span)))
                break

        if not hits:
            return Assessment("normal", denied=denied)
        ordered = tuple(h for _, h in sorted(hits))  # lexicon order, stable for callers
        level = max((h.level for h in ordered), key=LEVELS.index)
        harm = any(self._entries[i].self_harm for i in fired)
        return Assessment(level, tuple(h.id for h in ordered), harm, ordered, denied)


def _overlaps(regex: re.Pattern[str], joined: str, start: int, end: int) -> bool:
    return any(m.start() < end and start < m.end() for m in regex.finditer(joined))


# Anchor extraction works on the regex text the compiler produced: top-level
# elements are " (?:a|b c|d[a-z0-9]*)" groups; optional "(?: ...)?", gaps and
# lookaheads are skipped. Only the first word of a phrase is indexed.
_ELEMENT = re.compile(r"\(\?:((?:[a-z0-9 |]|\[a-z0-9\]\*)+)\)(?!\)\?)")
_STEM_RX = "[a-z0-9]*"
# Function words are in most messages, so anchoring on them filters nothing.
_COMMON = frozenset("""
    a an the i me my us our we you he she they it is are am was were be been being
    to of in on at for with and or not no do does did can will would have has get got
    de la el los las un una que por para con en mi mis nos se le les lo y
    """.split())


def _anchor(regex_src: str) -> tuple[set[str], set[str]] | None:
    best: tuple[int, set[str], set[str]] | None = None
    for m in _ELEMENT.finditer(regex_src):
        head = regex_src[:m.start()]
        if head.count("(") != head.count(")"):
            continue  # nested inside an optional group or lookahead
        firsts = [alt.split(" ")[0] for alt in m.group(1).split("|")]
        words = {f for f in firsts if not f.endswith(_STEM_RX)}
        stems = {f[:-len(_STEM_RX)] for f in firsts if f.endswith(_STEM_RX)}
        if "" in words or "" in stems:
            continue
        cost = sum(50 if w in _COMMON or len(w) < 3 else 1 for w in words)
        cost += sum(50 if len(st) < 4 else 2 for st in stems)
        if best is None or cost < best[0]:
            best = (cost, words, stems)
    return None if best is None else (best[1], best[2])
