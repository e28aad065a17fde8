"""The Twilio channel: signed inbound webhooks (SMS, MMS, WhatsApp) and delivery status callbacks."""
from __future__ import annotations

import hmac
import logging
from functools import lru_cache, wraps
from urllib.parse import urlparse
from xml.sax.saxutils import escape

import redis
from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator, add_port, remove_port


from .delivery import record_status
from .engine import Inbound
from .errors import ConversationBusy, StoreUnavailable, Throttled, origin
from .ratelimit import SenderLimit
from .extensions import flow_engine, get_helpline, get_redis

bp = Blueprint("sms", __name__)
log = logging.getLogger(__name__)
SMS_LIMIT = 1600  # Twilio's limit for one message body
TWIML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def signed_url() -> str:
    """The URL Twilio called: PUBLIC_URL's scheme and host behind a proxy, else what we were asked."""
    public = current_app.config.get("PUBLIC_URL")
    path = request.full_path if request.query_string else request.path
    if public:
        return public.rstrip("/") + path
    return request.url


def signature_valid() -> bool:
    """Does X-Twilio-Signature match this request's URL and every form parameter?"""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "").encode()
    if not (token and signature):
        return False
    validator = RequestValidator(token)
    params = _Params(request.form.lists())
    # Twilio signs the URL with or without the default port; RequestValidator.validate always
    # computes both, here the second only when the first does not match.
    return any(hmac.compare_digest(validator.compute_signature(uri, params).encode(), signature)
               for uri in _signed_forms(signed_url()))


class _Params(dict):
    """A form as twilio's validator reads it, every value of a name from `getall`. Given werkzeug's
    MultiDict, which has no getall, the validator raises and catches AttributeError for every
    parameter: half the signature's cost (issue 17: 61 → 27 µs for a 20-field Twilio webhook)."""

    getall = dict.__getitem__


@lru_cache(maxsize=64)
def _signed_forms(url: str) -> tuple[str, str]:
    """The URL without and with its default port (the same few URLs come again and again)."""
    parsed = urlparse(url)
    return remove_port(parsed), add_port(parsed)


def twilio_signed(view):
    """403 unless X-Twilio-Signature matches the URL and every form parameter."""

    @wraps(view)
    def checked(*args, **kwargs):
        if not signature_valid():
            log.warning("rejected a request with a missing or wrong Twilio signature", extra={"path": request.path})
            abort(403)
        return view(*args, **kwargs)

    return checked


@bp.post("/sms")
@twilio_signed
def inbound():
    form = request.form
    sender, sid = form.get("From", ""), form.get("MessageSid") or form.get("SmsSid")
    if not sender or not sid:
        abort(400, "From and MessageSid are required")
    try:
        media = max(0, int(form.get("NumMedia", "0") or 0))
    except ValueError:
        media = 0
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    message = Inbound(channel, sender, form.get("Body", ""), message_id=sid, media=media)
    cfg = current_app.config
    # Keyed on a hash of the sender, never on IP: every request comes from Twilio's addresses.
    limit = SenderLimit(current_app.extensions["vault"].digest(sender), cfg["SMS_RATE_LIMIT"],
                        cfg["SMS_RATE_WINDOW"], cfg["SMS_EMERGENCY_LIMIT"])
    try:
        outcome = get_helpline().handle(message, limit)
        replies = outcome.replies
    except Throttled:
        # Empty TwiML: nothing lands on a phone someone may be watching, and a flood costs nothing.
        log.warning("a sender passed the /sms rate limit; message not processed")
        replies = []
    except (StoreUnavailable, ConversationBusy) as exc:
        # Never silence: a frightened texter still gets 911, 988 and the national line.
        log.error("answered with the static safety reply: %s", type(exc).__name__)
        replies = static_safety_reply(message.text)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: B036 — a library's panic (a BaseException) must not end the process
        # Anything else, our bug or a library's: the safety reply, and the process lives on. Only the
        # type is logged: an exception's own message may quote what the texter wrote.
        log.error("answered with the static safety reply after an unexpected %s at %s", type(exc).__name__, origin(exc))
        replies = static_safety_reply(message.text)
    return twiml(replies)


@bp.post("/sms/status")
@twilio_signed
def status():
    sid, state = request.form.get("MessageSid"), request.form.get("MessageStatus")
    if not sid or not state:
        abort(400, "MessageSid and MessageStatus are required")
    try:
        record_status(get_redis(), sid, state, request.form.get("ErrorCode", ""))
    except redis.RedisError:
        log.error("could not record a delivery status")
        abort(503)
    return Response(status=204)


def twiml(replies: list[str]) -> Response:
    """One SMS for all replies where it fits: separate messages can arrive out of order.

    Written here rather than with twilio's MessagingResponse, which builds an ElementTree for a
    document this small and cost every webhook more than the rest of the reply did; the output is
    the same, byte for byte (tests/bot/test_sms.py compares the two).
    """
    parts = split_message("\n\n".join(replies))
    body = "".join(f"<Message>{escape(part)}</Message>" for part in parts)
    return Response(f"{TWIML_DECLARATION}<Response>{body}</Response>" if parts else f"{TWIML_DECLARATION}<Response />",
                    mimetype="text/xml")


def static_safety_reply(text: str) -> list[str]:
    """The reply that needs no store: in Spanish when the message looks Spanish, else both."""
    engine = flow_engine(current_app.config["HELPLINE_NAME"])
    langs = ["es"] if engine.language_of(text or "") == "es" else ["en", "es"]
    return [engine.catalog.render(lang, "unavailable") for lang in langs]


def split_message(text: str, limit: int = SMS_LIMIT) -> list[str]:
    """Split at paragraph, line or word boundaries into parts of at most `limit` characters."""
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts
