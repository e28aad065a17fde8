"""Telling people a conversation needs them: the console's counsellors, an on-call supervisor.

Alerts carry ids, levels and a console link; never a number or a word the texter wrote.
"""
from __future__ import annotations

import logging
import time

import requests
from flask import current_app

from bot import events
from bot.engine import handoff_priority
from bot.erasure import alerted_key
from bot.errors import SendFailed
from bot.extensions import get_redis, get_store, get_waiting
from bot.hours import ONLINE

from . import context

log = logging.getLogger(__name__)

ALERT_TIMEOUT = 5.0  # seconds per attempt
# Pauses between attempts: an emergency alert is worth a few seconds of a worker, not minutes.
ALERT_BACKOFF = (1.0, 4.0)
# All attempts together end within this, however slowly the webhook answers: the worker has
# counsellors' replies to send (they are served first, but a running job is not interrupted).
ALERT_DEADLINE = 12.0
# One alert per conversation in this many seconds: the first points at the console, which shows every
# later message; a flood of emergencies from one chat must not hold the workers that send replies.
ALERT_EVERY = 300


def notify_counsellors(conv_id: str) -> None:
    """Tell online counsellors that a conversation is waiting (the console already updates live)."""
    with context.app().app_context():
        conv = get_store().load(conv_id)
        if conv is None or conv.handoff != "waiting":
            return  # erased, or a counsellor took it already
        online = int(get_redis().scard(ONLINE))
        pipe = get_redis().pipeline(transaction=False)
        events.publish(pipe, "waiting", conv_id, priority=handoff_priority(conv, conv.slots.get("reason")),
                       depth=get_waiting().depth(), online=online)
        pipe.execute()
        if not online:
            log.warning("conversation %s is waiting and no counsellor is online", conv_id)


def emergency_alert(conv_id: str) -> None:
    """Alert the on-call supervisor that a texter may be in danger."""
    app = context.app()
    with app.app_context():
        conv = get_store().load(conv_id)
        if conv is None:
            return  # erased before the alert ran: nothing left to point at
        url = current_app.config.get("ALERT_WEBHOOK_URL")
        if not url:
            log.warning("emergency in conversation %s: no ALERT_WEBHOOK_URL is set, only the console shows it",
                        conv_id)
            return
        public = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
        alert = {
            "kind": "emergency",
            "helpline": current_app.config["HELPLINE_NAME"],
            "conversation": conv_id,
            "priority": handoff_priority(conv, conv.slots.get("reason")),
            "risk": conv.risk,
            "channel": conv.channel,
            "language": conv.lang,
            "matched": list(conv.matched),
            "handoff": conv.handoff,
            "console": f"{public}/console/c/{conv_id}",
            "at": time.time(),
        }
        client = get_redis()
        if not client.set(alerted_key(conv_id), "1", nx=True, ex=ALERT_EVERY):
            log.info("emergency alert for %s folded into the one sent in the last %d s", conv_id, ALERT_EVERY)
            return
    try:
        post(url, alert, conv_id)
    except SendFailed:
        client.delete(alerted_key(conv_id))  # not delivered: the next emergency (or a retry) tries again
        raise


def post(url: str, alert: dict, conv_id: str) -> None:
    """POST an alert to the webhook, asking again on a passing failure; SendFailed when it never took it."""
    deadline = time.monotonic() + ALERT_DEADLINE
    for attempt, pause in enumerate((*ALERT_BACKOFF, None), start=1):
        try:
            # requests' timeout bounds connecting and each read, not a trickling answer; fine for a
            # webhook's short reply, and the deadline caps the attempts' sum.
            answer = requests.post(url, json=alert, timeout=min(ALERT_TIMEOUT, deadline - time.monotonic()))
            if answer.status_code < 400:
                return
            problem = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break  # the receiver refuses this alert; asking again will not change its mind
        except requests.RequestException as exc:
            problem = type(exc).__name__
        log.warning("emergency alert for %s: attempt %d failed (%s)", conv_id, attempt, problem)
        if pause is None or time.monotonic() + pause + 1.0 > deadline:
            break  # no time left for a useful attempt
        time.sleep(pause)
    log.error("emergency alert for %s could not be delivered (%s)", conv_id, problem)
    raise SendFailed(f"the alert webhook did not take the alert ({problem})")
