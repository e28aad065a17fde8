"""Sending queued replies exactly once: through Twilio to phones, straight to the page for web chat.

Every part's Twilio SID is kept on the outbound record, so a job that runs again skips what
was sent. A job that died between asking Twilio and hearing back (worker killed, timeout,
5xx) left the record "sending" with the time the attempt began; the next run asks Twilio's
list API what went to that number since then and adopts a match instead of sending again.
"""
from __future__ import annotations

import logging
import time

import requests
from flask import current_app
from twilio.base.exceptions import TwilioException, TwilioRestException

from bot import events, outbound
from bot.errors import NoConsent, RecipientOptedOut, SendFailed
from bot.extensions import get_redis, get_store, get_twilio
from bot.sms import split_message
from flows.conversation import Conversation

from . import context

log = logging.getLogger(__name__)

UNSUBSCRIBED = 21610  # Twilio: the recipient replied STOP to our number; never retry
DONE = ("sent", "delivered", "failed")
# Twilio's date_created has whole seconds and its clock is not ours: a lost send may look this much older.
CLOCK_SKEW = 30
LOOKUP_LIMIT = 20  # the newest messages to the number are enough: the lost one is seconds old


def send_outbound(outbound_id: str) -> None:
    """Send one queued reply; running it again never sends any part twice."""
    with context.app().app_context():
        record = outbound.load(outbound_id)
        if record is None or record.status in DONE:
            return  # expired, or a retry of a job that already finished
        conv = get_store().load(record.conv)
        if conv is None:
            outbound.discard(record)  # the texter erased the conversation
            return
        try:
            outbound.check_may_text(conv)  # STOP may have come after the reply was queued
        except (RecipientOptedOut, NoConsent) as refused:
            why = ("opted out" if isinstance(refused, RecipientOptedOut)
                   else "not safe to talk now" if conv.slots.get("quiet") else "no consent")
            outbound.finish(record, "failed", why)
            return
        if conv.channel not in outbound.TWILIO_CHANNELS:
            outbound.finish(record, "delivered")  # the chat page shows it from the transcript
            return
        _send_by_twilio(record, conv)


def send_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback: once no retry is left, the reply is visibly failed."""
    if job.retries_left:
        return  # RQ runs it again
    with context.app().app_context():
        record = outbound.load(job.args[0])
        if record is not None and record.status not in DONE:
            outbound.finish(record, "failed", f"gave up after {record.attempts} attempts: "
                                              f"{str(exc_value) or exc_type.__name__}"[:200])


def _send_by_twilio(record: outbound.Outbound, conv: Conversation) -> None:
    cfg = current_app.config
    twilio = get_twilio()
    if twilio is None or outbound.missing_settings(conv.channel):
        outbound.finish(record, "failed", "Twilio is not configured")
        return
    parts = split_message(record.text or "")
    for body in parts[len(record.sids):]:
        if record.status == "sending" and record.started:
            found = _lost_send(twilio, record, conv, body)
            if found is not None and outbound.add_sid(record, found):
                log.info("outbound %s: adopted message %s from an interrupted attempt", record.id, found)
                record.started = None
                continue
        record.status, record.started = "sending", time.time()
        outbound.begin_attempt(record.id, record.started)
        try:
            message = twilio.messages.create(body=body, **_addressing(conv, cfg))
        except TwilioRestException as exc:
            _refused(record, conv, exc)
            return
        except requests.RequestException as exc:
            # It may have been sent: the record stays "sending", the retry looks it up first.
            raise SendFailed(f"no answer from Twilio ({type(exc).__name__})") from exc
        outbound.add_sid(record, message.sid)
        record.started = None
    outbound.finish(record, "sent")


def _addressing(conv: Conversation, cfg) -> dict:
    """to, and from_ or messaging_service_sid, and the status callback."""
    kwargs: dict = {"to": conv.address}
    if cfg.get("TWILIO_MESSAGING_SERVICE_SID"):
        kwargs["messaging_service_sid"] = cfg["TWILIO_MESSAGING_SERVICE_SID"]
    else:
        kwargs["from_"] = _our_number(conv, cfg)
    if cfg.get("PUBLIC_URL"):
        kwargs["status_callback"] = cfg["PUBLIC_URL"].rstrip("/") + "/sms/status"
    return kwargs


def _our_number(conv: Conversation, cfg) -> str:
    number = cfg["TWILIO_FROM_NUMBER"]
    return f"whatsapp:{number}" if conv.channel == "whatsapp" and not number.startswith("whatsapp:") else number


def _lost_send(twilio, record: outbound.Outbound, conv: Conversation, body: str) -> str | None:
    """The SID of a message an interrupted attempt got through to Twilio, or None."""
    cfg = current_app.config
    service = cfg.get("TWILIO_MESSAGING_SERVICE_SID")
    query: dict = {"to": conv.address, "limit": LOOKUP_LIMIT, "page_size": LOOKUP_LIMIT}
    if not service:
        query["from_"] = _our_number(conv, cfg)
    try:
        # No DateSent filter: a message Twilio still holds as queued has no date_sent yet.
        recent = twilio.messages.list(**query)
    except (TwilioException, requests.RequestException) as exc:
        # Never send without having looked: try the whole job again later. (A failed page of the list
        # raises the base TwilioException, "Unable to fetch page", not TwilioRestException.)
        raise SendFailed(f"could not look up an interrupted send ({type(exc).__name__})") from exc
    since = record.started - CLOCK_SKEW
    for message in recent:
        if (message.body or "").strip() != body.strip():
            continue
        if service and message.messaging_service_sid != service:
            continue
        if message.date_created is None or message.date_created.timestamp() < since:
            continue
        owner = outbound.owner_of(message.sid)
        if message.sid not in record.sids and owner in (None, record.id):
            return message.sid
    return None


def _refused(record: outbound.Outbound, conv: Conversation, exc: TwilioRestException) -> None:
    """Twilio answered with an error: stop for good, or raise so RQ retries."""
    if exc.code == UNSUBSCRIBED:
        _mark_opted_out(conv.id)
        outbound.finish(record, "failed", f"the number has opted out (Twilio {UNSUBSCRIBED})")
        log.warning("outbound %s: recipient unsubscribed; conversation %s marked opted out", record.id, conv.id)
        return
    if exc.status == 429:
        outbound.not_sent(record.id, "Twilio 429")  # throttled: nothing was created
        raise SendFailed("Twilio answered 429 (too many requests)") from exc
    if exc.status >= 500:
        raise SendFailed(f"Twilio answered {exc.status}") from exc
    outbound.finish(record, "failed", f"Twilio refused it: {exc.status} error {exc.code}")
    log.warning("outbound %s: Twilio refused it with error %s", record.id, exc.code)


def _mark_opted_out(conv_id: str) -> None:
    with get_store().locked(conv_id) as session:
        if session.conv is not None:
            session.conv.opted_out = True
    pipe = get_redis().pipeline(transaction=False)
    events.publish(pipe, "opt_out", conv_id)
    pipe.execute()
