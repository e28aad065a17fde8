"""The Twilio channel: signed inbound webhooks (SMS, MMS, WhatsApp) and delivery status callbacks.

A texter's webhook is served twice over, by one answer: `FastLane` takes a signed, well-formed
POST /sms straight from WSGI, and anything it is not sure of (no or a wrong signature, a field
missing, a body it would have to guess at) goes on to Flask's view below, untouched. Flask's request
machinery (contexts, routing, hooks, a Response object) cost a webhook more than the signature,
the load and the save together (issue 17); what a texter's answer needs of it is written here once.
"""
from __future__ import annotations

import hmac
import io
import logging
import time
from functools import lru_cache, wraps
from urllib.parse import parse_qsl, urlparse
from xml.sax.saxutils import escape

import redis
from flask import Blueprint, Flask, Response, abort, current_app, g, request
from twilio.request_validator import RequestValidator, add_port, remove_port
from werkzeug.exceptions import SecurityError
from werkzeug.wsgi import get_current_url, get_host

from . import logs
from .delivery import record_status
from .engine import Inbound
from .errors import ConversationBusy, StoreUnavailable, Throttled, origin
from .ratelimit import SenderLimit
from .extensions import flow_engine, get_redis

bp = Blueprint("sms", __name__)
log = logging.getLogger(__name__)
SMS_LIMIT = 1600  # Twilio's limit for one message body
TWIML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
TWIML_TYPE = "text/xml; charset=utf-8"
ENDPOINT = "sms.inbound"  # the name /metrics times the webhook by, whichever lane answered


def signed_url(environ: dict, public: str | None, trusted_hosts=None) -> str:
    """The URL Twilio called: PUBLIC_URL's scheme and host behind a proxy, else what we were asked."""
    if public:
        query = environ.get("QUERY_STRING")
        return public.rstrip("/") + environ.get("PATH_INFO", "") + ("?" + query if query else "")
    return get_current_url(environ, trusted_hosts=trusted_hosts)


def signature_valid(token: str | None, signature: str, url: str, form: dict[str, list[str]]) -> bool:
    """Does X-Twilio-Signature match this request's URL and every form parameter?"""
    if not (token and signature):
        return False
    validator = _validator(token)
    params = _Params(form)
    expected = signature.encode()
    # Twilio signs the URL with or without the default port; RequestValidator.validate always
    # computes both, here the second only when the first does not match.
    return any(hmac.compare_digest(validator.compute_signature(uri, params).encode(), expected)
               for uri in _signed_forms(url))


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


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
        cfg = current_app.config
        try:
            url = signed_url(request.environ, cfg.get("PUBLIC_URL"), cfg.get("TRUSTED_HOSTS"))
        except (SecurityError, ValueError):  # ValueError: a host with an "xn--" label that does not decode
            abort(400)
        if not signature_valid(cfg.get("TWILIO_AUTH_TOKEN"), request.headers.get("X-Twilio-Signature", ""),
                               url, dict(request.form.lists())):
            log.warning("rejected a request with a missing or wrong Twilio signature", extra={"path": request.path})
            abort(403)
        return view(*args, **kwargs)

    return checked


@bp.post("/sms")
@twilio_signed
def inbound():
    if not answerable(request.form.get):
        abort(400, "From and MessageSid are required")
    return Response(answer(current_app._get_current_object(), request.form.get), mimetype="text/xml")


def answerable(field) -> bool:
    """Does the form carry what an answer needs: a sender and the message's id (MessageSid, or the
    older SmsSid)? `field(name, default)` reads it, as for answer()."""
    return bool(field("From") and (field("MessageSid") or field("SmsSid")))


def answer(app: Flask, field) -> str:
    """The TwiML for a texter's message, whatever happens to it: `field(name, default)` reads the
    form. Never raises: a store that cannot be reached, a conversation held too long elsewhere, or
    a bug of ours or a library's still gets the texter the static safety reply."""
    sender, sid = field("From", ""), field("MessageSid") or field("SmsSid")
    try:
        media = max(0, int(field("NumMedia", "0") or 0))
    except ValueError:
        media = 0
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    message = Inbound(channel, sender, field("Body", ""), message_id=sid, media=media)
    cfg = app.config
    try:
        # Keyed on a hash of the sender, never on IP: every request comes from Twilio's addresses.
        limit = SenderLimit(app.extensions["vault"].digest(sender), cfg["SMS_RATE_LIMIT"],
                            cfg["SMS_RATE_WINDOW"], cfg["SMS_EMERGENCY_LIMIT"])
        replies = app.extensions["helpline"].handle(message, limit).replies
    except Throttled:
        # Empty TwiML: nothing lands on a phone someone may be watching, and a flood costs nothing.
        log.warning("a sender passed the /sms rate limit; message not processed")
        replies = []
    except (StoreUnavailable, ConversationBusy) as exc:
        # Never silence: a frightened texter still gets 911, 988 and the national line.
        log.error("answered with the static safety reply: %s", type(exc).__name__)
        replies = static_safety_reply(app, message.text)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: B036 — a library's panic (a BaseException) must not end the process
        # Anything else, our bug or a library's: the safety reply, and the process lives on. Only the
        # type is logged: an exception's own message may quote what the texter wrote.
        log.error("answered with the static safety reply after an unexpected %s at %s", type(exc).__name__, origin(exc))
        replies = static_safety_reply(app, message.text)
    return twiml(replies)


def _reader(form: dict[str, list[str]]):
    """`field(name, default)` over a parsed form: a name's first value, as werkzeug's MultiDict.get."""
    return lambda name, default=None: form[name][0] if name in form else default


@lru_cache(maxsize=64)
def _host_accepted(scheme: str, host: str | None, server_name: str | None, server_port: str | None,
                   trusted_hosts: tuple[str, ...] | None) -> bool:
    """Would Flask route a request with this Host? It refuses (400) one outside TRUSTED_HOSTS and one
    its URL map cannot encode as IDNA (an empty or over-long label): Flask.create_url_adapter and
    werkzeug's Map.bind_to_environ, asked once per host (Twilio calls with the same one)."""
    environ = {"wsgi.url_scheme": scheme, "SERVER_NAME": server_name or "", "SERVER_PORT": server_port or ""}
    if host is not None:
        environ["HTTP_HOST"] = host
    try:
        get_host(environ, trusted_hosts).lower().encode("idna")
    except (SecurityError, UnicodeError):
        return False
    return True


class FastLane:
    """WSGI in front of Flask: a signed, well-formed POST /sms answered here, the rest passed on.

    What Flask's hooks give every request is given here too, from the same owners: the request id
    (bot.logs), the webhook's latency (bot.metrics), the security headers (bot.security), a log
    line when the answer needs a look. tests/bot/test_sms_lanes.py holds the two lanes to the same
    status, headers and body."""

    def __init__(self, app: Flask):
        self.app, self.flask = app, app.wsgi_app
        cfg = app.config
        self.public, self.token = cfg.get("PUBLIC_URL"), cfg.get("TWILIO_AUTH_TOKEN")
        trusted = cfg.get("TRUSTED_HOSTS")
        self.trusted_hosts = tuple(trusted) if trusted is not None else None
        self.max_length = cfg.get("MAX_CONTENT_LENGTH")
        self.stats = app.extensions["stats"]
        self.headers = app.extensions["security_headers"].of(bp.name)

    def __call__(self, environ, start_response):
        if (environ.get("PATH_INFO") != "/sms" or environ.get("REQUEST_METHOD") != "POST"
                or not self.token or "HTTP_X_TWILIO_SIGNATURE" not in environ):
            return self.flask(environ, start_response)
        started = time.perf_counter()
        form = self._signed_form(environ)
        if form is None:
            return self.flask(environ, start_response)
        with self.app.app_context():
            g.request_id = request_id = logs.request_id(environ.get("HTTP_X_REQUEST_ID", ""))
            body = answer(self.app, _reader(form)).encode()
            took = time.perf_counter() - started
            self.stats.observe_latency(ENDPOINT, took)
            logs.log_answer("POST", "/sms", 200, took)
        start_response("200 OK", [("Content-Type", TWIML_TYPE), ("Content-Length", str(len(body))),
                                  *self.headers, ("X-Request-Id", request_id)])
        return [body]

    def _signed_form(self, environ) -> dict[str, list[str]] | None:
        """The form, if this is a webhook Twilio signed with everything the answer needs; else None,
        with the body put back for Flask to read as if nothing had come before it."""
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            return None
        declared = environ.get("CONTENT_LENGTH", "")
        # Plain ASCII digits only, and no chunked body: werkzeug reads "+5", "5_0" or other digits its own way.
        if not (declared.isascii() and declared.isdigit()) or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", ""):
            return None
        length = int(declared)
        if self.max_length is not None and length > self.max_length:
            return None
        if not _host_accepted(environ.get("wsgi.url_scheme", "http"), environ.get("HTTP_HOST"),
                              environ.get("SERVER_NAME"), environ.get("SERVER_PORT"), self.trusted_hosts):
            return None
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        if len(raw) != length:
            return None
        try:
            # As werkzeug reads a form (formparser._parse_urlencoded), so the signature sees the same values.
            pairs = parse_qsl(raw.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
            url = signed_url(environ, self.public, self.trusted_hosts)
        except (ValueError, SecurityError):  # a body that is not UTF-8, a Host that does not decode
            return None
        form: dict[str, list[str]] = {}
        for name, value in pairs:
            form.setdefault(name, []).append(value)
        if not answerable(_reader(form)):
            return None
        if not signature_valid(self.token, environ["HTTP_X_TWILIO_SIGNATURE"], url, form):
            return None
        return form


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


def twiml(replies: list[str]) -> str:
    """One SMS for all replies where it fits: separate messages can arrive out of order.

    Written here rather than with twilio's MessagingResponse, which builds an ElementTree for a
    document this small and cost every webhook more than the rest of the reply did; the output is
    the same, byte for byte (tests/bot/test_sms.py compares the two).
    """
    parts = split_message("\n\n".join(replies))
    body = "".join(f"<Message>{escape(part)}</Message>" for part in parts)
    return f"{TWIML_DECLARATION}<Response>{body}</Response>" if parts else f"{TWIML_DECLARATION}<Response />"


def static_safety_reply(app: Flask, text: str) -> list[str]:
    """The reply that needs no store: in Spanish when the message looks Spanish, else both."""
    engine = flow_engine(app.config["HELPLINE_NAME"])
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
