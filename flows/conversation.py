"""The conversation record: everything the help line remembers about one texter, as plain data."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

RISK_ORDER = ("normal", "high", "emergency")


@dataclass
class Conversation:
    """One texter on one channel. Stored encrypted as a whole; never holds a Python object."""

    id: str
    channel: str
    address: str
    state: str = "new"
    lang: str = "en"
    slots: dict = field(default_factory=dict)
    risk: str = "normal"
    matched: list[str] = field(default_factory=list)
    opted_out: bool = False
    misses: int = 0
    # None, "waiting" (in the queue) or "active" (a counsellor holds it).
    handoff: str | None = None
    counsellor: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    messages: int = 0
    stored_chars: int = 0  # of the texter's own words in the transcript (bot.engine caps it)
    reassured_at: float = 0.0
    new: bool = True

    @property
    def consent(self) -> bool | None:
        """May a counsellor text this person first? None until asked."""
        return self.slots.get("consent")

    def raise_risk(self, level: str, matched: tuple[str, ...] = ()) -> bool:
        """Keep the highest triage level seen; True when it went up."""
        for name in matched:
            if name not in self.matched:
                self.matched.append(name)
        if RISK_ORDER.index(level) > RISK_ORDER.index(self.risk):
            self.risk = level
            return True
        return False

    def to_doc(self) -> dict:
        # Shallow: the document is serialized at once; asdict's deep copy cost ~5% of a message's CPU.
        return {name: getattr(self, name) for name in _STORED}

    @classmethod
    def from_doc(cls, doc: dict) -> "Conversation":
        conv = cls(**{k: v for k, v in doc.items() if k in _FIELDS})
        conv.new = False
        return conv


_FIELDS = frozenset(f.name for f in fields(Conversation))  # a stored field no longer known is dropped
_STORED = tuple(f.name for f in fields(Conversation) if f.name != "new")
