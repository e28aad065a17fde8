"""Web safeguards: security headers, cookie flags, a per-texter limit on /sms, and a log redactor.

The rate limit on /sms counts per sender (a keyed hash of `From`), never per IP: every
request comes from Twilio's addresses. Past the limit a message is not processed and gets an
empty TwiML answer (no reply lands on a phone someone else may be watching, no carrier cost),
except a message that triage reads as an emergency: that one is still handled in full (stored,
queued at emergency priority, the supervisor alerted) within a small allowance of its own.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import redis
from flask import Flask, current_app, request

from .errors import ConfigurationError
from .extensions import flow_engine, get_redis
from .ratelimit import allow
from .sms import signature_valid, twiml
from .store import dedupe_key

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors {ancestors}")
HSTS = "max-age=31536000"
# Blueprints whose pages a partner site may frame (CHAT_EMBED_ORIGINS); everything else: never.
EMBEDDABLE = frozenset({"chat"})

# Phone numbers as they appear written: +16615550123, whatsapp:+1…, (661) 555-0123, 661-555-0123.
_NUMBER = re.compile(r"\+\d[\d\s().-]{6,}\d|\(\d{3}\)\s*\d{3}[-.\s]\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4}\b")


def init_app(app: Flask) -> None:
    cfg = app.config
    https = (cfg.get("PUBLIC_URL") or "").startswith("https://")
    cfg["SESSION_COOKIE_SECURE"] = https
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.extensions["embed_origins"] = embed_origins(cfg.get("CHAT_EMBED_ORIGINS") or "")
    app.extensions["hsts"] = https
    app.before_request(limit_sms)
    app.after_request(add_headers)
    install_log_redaction()


def embed_origins(value: str) -> tuple[str, ...]:
    """CHAT_EMBED_ORIGINS as a tuple of origins; anything but scheme://host[:port] is refused."""
    origins = []
    for origin in value.split():
        parts = urlsplit(origin)
        if parts.scheme not in ("https", "http") or not parts.netloc or origin != f"{parts.scheme}://{parts.netloc}":
            raise ConfigurationError(f"CHAT_EMBED_ORIGINS: {origin!r} is not an origin like https://example.org")
        origins.append(origin)
    return tuple(origins)


def add_headers(response):
    """Every response: a strict CSP, no sniffing, no referrer; HSTS behind https; no caching of pages."""
    origins = current_app.extensions["embed_origins"]
    framable = bool(origins) and request.blueprint in EMBEDDABLE
    headers = response.headers
    headers["Content-Security-Policy"] = CSP.format(ancestors=" ".join(origins) if framable else "'none'")
    if not framable:
        headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if current_app.extensions["hsts"]:
        headers["Strict-Transport-Security"] = HSTS
    if "Cache-Control" not in headers:
        # A shared or watched computer must not keep a conversation in its cache.
        headers["Cache-Control"] = "no-store"
    return response


def limit_sms():
    """Before /sms: past the sender's limit, answer without processing (emergencies excepted)."""
    if request.endpoint != "sms.inbound":
        return None
    sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    if not (sid and request.form.get("From") and signature_valid()):
        return None  # the view refuses it; unsigned requests never count against a texter
    cfg = current_app.config
    sender = current_app.extensions["vault"].digest(request.form["From"])
    text = request.form.get("Body", "")
    client = get_redis()
    try:
        if allow(client, "sms", sender, cfg["SMS_RATE_LIMIT"], cfg["SMS_RATE_WINDOW"]):
            return None
        if client.exists(dedupe_key(sid)):
            return None  # a retry of a message already answered gets that same answer
        emergency = flow_engine(cfg["HELPLINE_NAME"]).triage.assess(text).level == "emergency"
        if emergency and allow(client, "sms-emergency", sender, cfg["SMS_EMERGENCY_LIMIT"], cfg["SMS_RATE_WINDOW"]):
            return None
    except redis.RedisError:
        return None  # the view answers with the static safety reply
    log.warning("a sender passed the /sms rate limit; message not processed")
    return twiml([])


def redact(text: str) -> str:
    """Replace anything written like a phone number."""
    return _NUMBER.sub("[number]", text)


def install_log_redaction() -> None:
    """A last safeguard: every log record (message and traceback) is stripped of phone numbers.

    The real rule is not to log them; this catches an exception message or a library that does.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record  # a broken format string is reported by logging itself
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    factory.redacts = True
    logging.setLogRecordFactory(factory)
