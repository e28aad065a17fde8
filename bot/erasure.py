"""What else is stored about one conversation, so that DELETE and the chat's quick exit leave nothing.

The record and the transcript belong to the store; around them other owners keep keys named by
the conversation id (or found through its transcript): each is listed here, next to the module
that names it, so a new one cannot be forgotten in one place and remembered in another.

A warm referral (bot.referrals) is withdrawn rather than deleted: what the texter shared goes, and the
agency keeps only a line saying a referral of that day was withdrawn, so it stops trying to reach them.

Kept on purpose: a supervisor's block on the sender (bot.blocking), filed under a keyed hash of the
conversation id rather than the id, and holding no number or message. DELETE must not lift it, or an
abuser would unblock himself by texting DELETE; it ends at its own end time.
"""
from __future__ import annotations

import json

from . import followups
from . import referrals
from .console.capacity import UNATTENDED
from .console.handoff import ACTIVE
from .console.monitoring import taken_key
from .console.presence import viewing_key
from .console.wrapup import contacts_key
from .delivery import status_key
from .metrics import queued_key
from .outbound import outbound_key, sid_key
from .store import dedupe_key

SCAN_BATCH = 500


def alerted_key(conv_id: str) -> str:
    """One emergency alert per conversation in a few minutes (workers.alerts)."""
    return f"al:{conv_id}"


def erase_leftovers(store, pipe, conv_id: str) -> None:
    """Queue on `pipe` (an erasing transaction) the deletion of everything else kept of this conversation.

    What to delete is read first, on the store's own connection (the caller holds the conversation's
    lock): the outbound records named in the transcript, their Twilio SIDs, the answered messages.
    """
    keys = leftovers(store.redis, conv_id, store.transcript(conv_id))
    pipe.delete(*keys)
    pipe.hdel(ACTIVE, conv_id)  # the console's note of who holds it
    pipe.hdel(UNATTENDED, conv_id)  # the supervisors' banner: an emergency nobody was free for
    referrals.withdraw(store, pipe, conv_id)
    followups.erase(store.redis, pipe, conv_id)  # its check-ins: their jobs find nothing and send nothing


def leftovers(client, conv_id: str, transcript: list[dict]) -> list[str]:
    """Keys beyond the record and the transcript that hold something of this conversation."""
    keys = [queued_key(conv_id), alerted_key(conv_id), contacts_key(conv_id), viewing_key(conv_id), taken_key(conv_id)]
    outbound = [e["outbound"] for e in transcript if e.get("outbound")]
    if outbound:
        pipe = client.pipeline(transaction=False)
        for outbound_id in outbound:
            pipe.hget(outbound_key(outbound_id), "sids")
        for outbound_id, sids in zip(outbound, pipe.execute()):
            keys.append(outbound_key(outbound_id))
            for sid in _json_list(sids):
                keys += [status_key(sid), sid_key(sid)]
    # Each message's stored answer (bot.store.dedupe_key): found by a scan, a cost paid only on erasing.
    keys += [k.decode() for k in client.scan_iter(match=dedupe_key(conv_id, "*"), count=SCAN_BATCH)]
    return keys


def _json_list(raw) -> list[str]:
    try:
        found = json.loads(raw or "[]")
    except ValueError:
        return []
    return [s for s in found if isinstance(s, str)] if isinstance(found, list) else []
