"""How the console shows a conversation at a glance: never a full number, plain words for codes."""
from __future__ import annotations

import time
from datetime import datetime

from flows.conversation import Conversation
from flows.engine import screening_summary

CHANNELS = {"sms": "SMS", "whatsapp": "WhatsApp", "web": "Web chat", "cli": "Terminal"}
LANGUAGES = {"en": "English", "es": "Spanish"}
REASONS = {"counsellor": "asked for a counselor", "triage": "triage raised the risk",
           "emergency": "emergency", "tip": "report (tip)"}
# The screening questions (flows/helpline.yaml, screen_*), as a counsellor reads them.
SCREENING = {
    "not_free": "not free to leave", "id_held": "ID or papers held", "debt": "growing debt",
    "job_changed": "job not as promised", "sex_trade": "made to trade sex", "minor": "minor exploited",
    "threats": "threats", "under_18": "under 18",
}


def masked(conv: Conversation) -> str:
    """At most the last two digits of a phone number; nothing of a web session."""
    if conv.channel in ("sms", "whatsapp"):
        digits = [ch for ch in conv.address if ch.isdigit()]
        return "…" + "".join(digits[-2:]) if len(digits) >= 2 else "…"
    return ""


def waited(seconds: float) -> str:
    minutes = int(max(0, seconds) // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def clock(at: float) -> str:
    stamp = datetime.fromtimestamp(float(at))
    if time.time() - float(at) > 20 * 3600:
        return stamp.strftime("%b %d %H:%M")
    return stamp.strftime("%H:%M")


def reason(conv: Conversation) -> str:
    parts = []
    if conv.slots.get("kind") == "tip":
        parts.append(REASONS["tip"])
    why = conv.slots.get("reason")
    if why and why in REASONS and REASONS[why] not in parts:
        parts.append(REASONS[why])
    if conv.slots.get("category"):
        parts.append(f"looking for {conv.slots['category']}")
    return "; ".join(parts) or "—"


def screening(summary: dict) -> list[tuple[str, bool]]:
    """(question in plain words, answer) for each screening answer given."""
    return [(SCREENING.get(k, k.replace("_", " ")), bool(v)) for k, v in summary.items()]


def signs(conv: Conversation) -> str:
    return ", ".join(name.replace("_", " ") for name in conv.matched)


HELPERS = {
    "masked": masked, "waited": waited, "clock": clock, "reason": reason, "screening": screening,
    "signs": signs, "summarise": screening_summary, "channels": CHANNELS, "languages": LANGUAGES,
}
