"""Telling people a conversation needs them: the console's counsellors, an on-call supervisor."""
from __future__ import annotations


def notify_counsellors(conv_id: str) -> None:
    """Tell online counsellors that a conversation is waiting (the console already updates live)."""


def emergency_alert(conv_id: str) -> None:
    """Alert the on-call supervisor that a texter may be in danger."""
