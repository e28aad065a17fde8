"""Counsellor replies on their way out: one encrypted record per reply, sent once by workers.sender.

A record lives under `o:<outbound id>` (a Redis hash, with the retention TTL):
conv, channel, author, body (encrypted), status, attempts, sids (Twilio SIDs, one per
part, as JSON), started (when the attempt at the next part began), created, error.

status: queued -> sending -> sent (handed to Twilio) | delivered (web chat) | failed.
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field

import redis
from flask import current_app
from rq import Callback, Retry

from flows.conversation import Conversation

from . import events
from .errors import NoConsent, RecipientOptedOut, SendFailed
from .extensions import get_redis, get_replies_queue, get_store
from .store import entry

FAILED = "o:failed"  # outbound ids that failed, scored by when: what supervisors review
FAILED_KEPT = 1000
TWILIO_CHANNELS = ("sms", "whatsapp")
# A send is a few HTTP calls of TWILIO_HTTP_TIMEOUT each. The job must end (RQ's timeout kills it)
# before RQ's heartbeat for it expires (60 s after the last beat), so that a job RQ declares
# abandoned and retries can never still be running somewhere.
SEND_JOB_TIMEOUT = 55


def outbound_key(outbound_id: str) -> str:
    return f"o:{outbound_id}"


def sid_key(message_sid: str) -> str:
    """Which outbound record owns a Twilio message: one SID is never adopted by two replies."""
    return f"o:sid:{message_sid}"


@dataclass
class Outbound:
    """One reply on its way to a texter."""

    id: str
    conv: str
    channel: str
    author: str
    text: str | None  # None once sent: the transcript keeps it
    status: str
    attempts: int = 0
    sids: list[str] = field(default_factory=list)
    started: float | None = None
    created: float = 0.0
    error: str = ""


def check_may_text(conv: Conversation) -> None:
    """Raise unless a counsellor may text this person now (never after STOP; phones only with consent)."""
    if conv.opted_out:
        raise RecipientOptedOut("the texter sent STOP")
    if conv.channel in TWILIO_CHANNELS and conv.consent is not True:
        raise NoConsent("the texter has not agreed to be texted at this number")
    if conv.slots.get("quiet"):
        raise NoConsent("the texter said it is not safe to talk now; wait until they write again")


def queue_reply(conv_id: str, text: str, author: str, pipe=None) -> str:
    """Record a counsellor's (or the system's) message in the transcript and queue it for sending. With
    `pipe` (a transaction in MULTI) the writes join the caller's, who executes it."""
    text = (text or "").strip()
    if not text:
        raise SendFailed("a reply needs some text")
    store = get_store()
    conv = store.load(conv_id)
    if conv is None:
        raise SendFailed("the conversation no longer exists")
    check_may_text(conv)
    outbound_id = secrets.token_hex(12)
    now = time.time()
    own = pipe is None
    if own:
        pipe = get_redis().pipeline(transaction=True)
        pipe.multi()  # explicit, so that RQ's enqueue(pipeline=pipe) joins this transaction
    key = outbound_key(outbound_id)
    pipe.hset(key, mapping={
        "conv": conv_id, "channel": conv.channel, "author": author, "body": store.vault.seal(text),
        "status": "queued", "attempts": 0, "sids": "[]", "created": now, "started": "", "error": "",
    })
    pipe.expire(key, store.ttl)
    store.append(conv_id, entry("counsellor", text, now, by=author, outbound=outbound_id), pipe=pipe)
    _enqueue(pipe, conv_id, outbound_id)
    if own:
        pipe.execute()
    return outbound_id


def _enqueue(pipe, conv_id: str, outbound_id: str) -> None:
    """The send job and the console's event, in the caller's transaction."""
    retry_after = retry_seconds()
    # Retry covers exceptions and abandoned jobs alike: RQ retries a job whose worker died mid-send.
    get_replies_queue().enqueue_call("workers.sender.send_outbound", args=(outbound_id,), pipeline=pipe,
                             timeout=SEND_JOB_TIMEOUT, retry=Retry(max=len(retry_after), interval=retry_after),
                             on_failure=Callback("workers.sender.send_failed"), result_ttl=0,
                             failure_ttl=7 * 86400)
    events.publish(pipe, "reply", conv_id, outbound=outbound_id)


def retry_seconds() -> list[int]:
    """SEND_RETRY_SECONDS: how long a send job waits before each retry (bot.followups' jobs too)."""
    return [int(s) for s in str(current_app.config["SEND_RETRY_SECONDS"]).split(",") if s.strip()] or [0]


def requeue(record: Outbound, was: str, text: str, also=None) -> bool:
    """Send a reply again that failed, or that the carrier could not deliver (`was` "sent"): once, however
    many requests ask at the same moment. False when its status is no longer `was` (another request
    re-queued it first). Parts Twilio accepted are not sent again, unless the carrier lost them."""
    key = outbound_key(record.id)
    with get_redis().pipeline(transaction=True) as pipe:
        try:
            pipe.watch(key)
            if pipe.hget(key, "status") != was.encode():
                return False
            pipe.multi()
            pipe.hset(key, mapping={"status": "queued", "error": "", "started": "", "attempts": 0,
                                    "body": get_store().vault.seal(text), **({"sids": "[]"} if was == "sent" else {})})
            pipe.zrem(FAILED, record.id)
            _enqueue(pipe, record.conv, record.id)
            if also is not None:
                also(pipe)
            pipe.execute()
        except redis.WatchError:
            return False
    return True


def missing_settings(channel: str) -> list[str]:
    """The settings a reply on `channel` still needs before it can go out; empty when it can
    (web chat and the terminal need none)."""
    if channel not in TWILIO_CHANNELS:
        return []
    cfg = current_app.config
    missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not cfg.get(name)]
    if not (cfg.get("TWILIO_FROM_NUMBER") or cfg.get("TWILIO_MESSAGING_SERVICE_SID")):
        missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
    return missing


def load(outbound_id: str) -> Outbound | None:
    raw = get_redis().hgetall(outbound_key(outbound_id))
    return _record(outbound_id, raw) if raw else None


def _record(outbound_id: str, raw: dict) -> Outbound:
    doc = {k.decode(): v.decode() for k, v in raw.items()}
    body = doc.get("body")
    return Outbound(
        id=outbound_id, conv=doc["conv"], channel=doc["channel"], author=doc.get("author", ""),
        text=get_store().vault.open(body) if body else None, status=doc["status"],
        attempts=int(doc.get("attempts") or 0), sids=json.loads(doc.get("sids") or "[]"),
        started=float(doc["started"]) if doc.get("started") else None,
        created=float(doc.get("created") or 0), error=doc.get("error", ""),
    )


def begin_attempt(outbound_id: str, now: float) -> None:
    """About to ask Twilio to send the next part: a crash from here on may have sent it."""
    pipe = get_redis().pipeline(transaction=True)
    pipe.hset(outbound_key(outbound_id), mapping={"status": "sending", "started": now})
    pipe.hincrby(outbound_key(outbound_id), "attempts", 1)
    pipe.execute()


def not_sent(outbound_id: str, error: str) -> None:
    """Twilio said no to this attempt, so nothing went out: the next attempt need not look it up."""
    get_redis().hset(outbound_key(outbound_id), mapping={"status": "queued", "started": "", "error": error})


def add_sid(record: Outbound, message_sid: str) -> bool:
    """Keep the SID of a part Twilio accepted; False when another reply already owns that message."""
    client = get_redis()
    claimed = client.set(sid_key(message_sid), record.id, nx=True, ex=get_store().ttl)
    if not claimed and client.get(sid_key(message_sid)) != record.id.encode():
        return False
    if message_sid not in record.sids:
        record.sids.append(message_sid)
    client.hset(outbound_key(record.id), mapping={"sids": json.dumps(record.sids), "started": ""})
    return True


def owner_of(message_sid: str) -> str | None:
    raw = get_redis().get(sid_key(message_sid))
    return raw.decode() if raw else None


def finish(record: Outbound, status: str, error: str = "") -> None:
    """Record the end of a send (sent, delivered or failed) and tell the console."""
    pipe = get_redis().pipeline(transaction=True)
    key = outbound_key(record.id)
    pipe.hset(key, mapping={"status": status, "error": error, "started": ""})
    if status == "failed":
        # Kept for supervisors to review and resend; trimmed to the newest FAILED_KEPT.
        pipe.zadd(FAILED, {record.id: time.time()})
        pipe.zremrangebyrank(FAILED, 0, -FAILED_KEPT - 1)
        pipe.expire(FAILED, get_store().ttl)
    else:
        pipe.hdel(key, "body")  # the transcript holds the text; the record need not
    events.publish(pipe, "outbound", record.conv, outbound=record.id, status=status)
    if record.status not in ("sent", "delivered", "failed"):  # a send's first end counts, a later "delivered" not
        current_app.extensions["stats"].count(pipe, "send_failed" if status == "failed" else "out", record.channel)
    pipe.execute()
    record.status, record.error = status, error


def discard(record: Outbound) -> None:
    """The conversation was erased: forget the reply too."""
    get_redis().delete(outbound_key(record.id))


def failed(limit: int = 50) -> list[Outbound]:
    """Replies that could not be sent, newest first (for supervisors); expired ones are skipped."""
    client = get_redis()
    ids = [i.decode() for i in client.zrevrange(FAILED, 0, limit - 1)]
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for outbound_id in ids:
        pipe.hgetall(outbound_key(outbound_id))
    return [_record(i, raw) for i, raw in zip(ids, pipe.execute()) if raw]
