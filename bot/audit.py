"""The audit trail: who opened, claimed, transferred, ended or revealed what, and when; never content."""
from __future__ import annotations

import time

import redis

STREAM = "audit"
ACTIONS = ("open", "claim", "release", "transfer", "end", "reveal", "note", "reply", "retry", "sign_in",
           "sign_in_failed", "sign_out", "export", "monitor", "whisper", "take_over", "block", "unblock",
           "review_resource", "refer", "referral_list", "referral_view", "referral_accept", "referral_decline",
           "referral_contact",
           "followup_scheduled", "followup_changed", "followup_cancelled", "followup_sent", "followup_skipped",
           "break_start", "break_end")


def record(client_or_pipe, actor: str, action: str, conv_id: str = "", detail: str = "") -> None:
    """Append one entry. `detail` is a short non-personal word (an outcome, a counsellor name, why a
    sign-in failed); a failed sign-in's actor is a keyed hash of the name typed, which may be a password."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    client_or_pipe.xadd(STREAM, {"at": f"{time.time():.3f}", "actor": actor, "action": action,
                                 "conv": conv_id, "detail": detail})


def entries(client: redis.Redis, count: int = 500, conv_id: str | None = None,
            actors: set[str] | None = None) -> list[dict]:
    """The newest entries first, optionally for one conversation or by some actors."""
    out = []
    whole = conv_id is None and actors is None
    for entry_id, fields in client.xrevrange(STREAM, count=count if whole else None):
        row = {k.decode(): v.decode() for k, v in fields.items()}
        row["id"] = entry_id.decode()
        if (conv_id is None or row["conv"] == conv_id) and (actors is None or row["actor"] in actors):
            out.append(row)
        if len(out) >= count:
            break
    return out
