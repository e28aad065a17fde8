"""How the console shows a conversation at a glance: never a full number, plain words for codes."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

from flows.conversation import Conversation
from flows.engine import screening_summary

CHANNELS = {"sms": "SMS", "whatsapp": "WhatsApp", "web": "Web chat", "cli": "Terminal"}
LANGUAGES = {"en": "English", "es": "Spanish"}
REASONS = {"counsellor": "asked for a counselor", "triage": "triage raised the risk",
           "emergency": "emergency", "tip": "report (tip)", "follow_up": "answered a check-in"}
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


# Twilio's error codes (twilio.com/docs/api/errors) a send can end with, as a counsellor reads them, and
# whether they are final: True when sending the same message again cannot help.
TWILIO_ERRORS = {
    "21211": ("not a valid phone number", True),
    "21408": ("texting this country is not enabled on the help line's Twilio account", True),
    "21610": ("the texter has opted out (STOP)", True),
    "21612": ("this number cannot receive texts from us", True),
    "21614": ("not a mobile number: it cannot receive texts", True),
    "30003": ("the phone is unreachable (switched off or out of coverage)", False),
    "30004": ("the texter's phone or carrier blocked it", True),
    "30005": ("unknown number: it may no longer exist", True),
    "30006": ("a landline, or a carrier that cannot take texts", True),
    "30007": ("the carrier filtered it as spam", False),
    "30008": ("the carrier could not deliver it, for no stated reason", False),
}
# What workers.sender writes when it stops without a Twilio error code of its own.
SEND_FAILURES = (
    ("Twilio is not configured", "outbound texting is not set up on this help line", False),
    ("opted out", "the texter has opted out (STOP)", True),
    ("no consent", "the texter has not agreed to be texted", False),
    ("not safe to talk now", "the texter said it is not safe to talk now: send it again once they write", False),
    ("no answer from Twilio", "Twilio did not answer", False),
    ("could not look up an interrupted send", "Twilio did not answer", False),
    ("Twilio answered 429", "Twilio was too busy", False),
    ("Twilio answered 5", "Twilio had a problem on its side", False),
)
_CODE = re.compile(r"\b(?:error|Twilio) (\d{5})\b")
_GAVE_UP = re.compile(r"^gave up after (\d+) attempts: ")


@dataclass(frozen=True)
class Failure:
    """Why a reply did not reach the texter, in a counsellor's words."""

    why: str
    final: bool  # sending it again cannot help


def failure(error: str) -> Failure:
    """The plain words for an outbound record's error (or a delivery callback's bare error code)."""
    error = (error or "").strip()
    gave_up = _GAVE_UP.match(error)
    cause = error[gave_up.end():] if gave_up else error
    code = error if error.isdigit() else (_CODE.search(cause).group(1) if _CODE.search(cause) else "")
    if code in TWILIO_ERRORS:
        why, final = TWILIO_ERRORS[code]
    elif code:
        why, final = f"Twilio error {code}", False
    else:
        why, final = next(((words, final) for start, words, final in SEND_FAILURES if cause.startswith(start)),
                          (cause or "no reason recorded", False))
    if gave_up:
        why += f"; gave up after {gave_up.group(1)} attempts"
    return Failure(why, final)


def screening(summary: dict) -> list[tuple[str, bool]]:
    """(question in plain words, answer) for each screening answer given."""
    return [(SCREENING.get(k, k.replace("_", " ")), bool(v)) for k, v in summary.items()]


def signs(conv: Conversation) -> str:
    return ", ".join(name.replace("_", " ") for name in conv.matched)


HELPERS = {
    "masked": masked, "waited": waited, "clock": clock, "reason": reason, "screening": screening,
    "signs": signs, "failure": failure, "summarise": screening_summary, "channels": CHANNELS, "languages": LANGUAGES,
}
