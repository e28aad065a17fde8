"""Web safeguards: security headers, cookie flags and a log redactor.

(The per-texter limit on /sms is counted where the conversation is loaded, in the same round
trip: see bot.ratelimit.SenderLimit and bot.sms.)
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import re
from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask.sessions import SessionInterface

from .errors import ConfigurationError

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors {ancestors}")
HSTS = "max-age=31536000"
# Blueprints whose pages a partner site may frame (CHAT_EMBED_ORIGINS); everything else: never.
EMBEDDABLE = frozenset({"chat"})

# Phone numbers as they appear written: +16615550123, whatsapp:+1…, (661) 555-0123, 661-555-0123.
# Written like a phone number: +…, (661) 555-0199, 661-555-0199, and North American numbers without a
# plus: 6615550199, 16615550199, 1 661 555 0199 (area code and exchange start 2-9, so epoch seconds do not).
_NUMBER = re.compile(r"\+\d[\d\s().-]{6,}\d|\(\d{3}\)\s*\d{3}[-.\s]\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4}\b"
                     r"|\b1?[2-9]\d{2}[2-9]\d{6}\b|\b(?:1[\s.-])?[2-9]\d{2}[\s.-][2-9]\d{2}[\s.-]\d{4}\b")


def init_app(app: Flask) -> None:
    cfg = app.config
    https = (cfg.get("PUBLIC_URL") or "").startswith("https://")
    cfg["SESSION_COOKIE_SECURE"] = https
    cfg["SESSION_COOKIE_HTTPONLY"] = True
    cfg["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Applied by bot.every_request's one after-hook.
    app.extensions["security_headers"] = SecurityHeaders(embed_origins(cfg.get("CHAT_EMBED_ORIGINS") or ""), https)
    app.session_interface = NoCookieSession()
    install_log_redaction()


class NoCookieSession(SessionInterface):
    """Flask's signed-cookie session is never used (the console keeps its sessions in Redis), so no
    request pays for opening one, and no cookie can ever carry a conversation."""

    def open_session(self, app, request):
        return None  # Flask then uses a null session, which refuses to be written to

    def save_session(self, app, session, response):
        return None


def embed_origins(value: str) -> tuple[str, ...]:
    """CHAT_EMBED_ORIGINS as a tuple of origins; anything but scheme://host[:port] is refused."""
    origins = []
    for origin in value.split():
        parts = urlsplit(origin)
        if parts.scheme not in ("https", "http") or not parts.netloc or origin != f"{parts.scheme}://{parts.netloc}":
            raise ConfigurationError(f"CHAT_EMBED_ORIGINS: {origin!r} is not an origin like https://example.org")
        origins.append(origin)
    return tuple(origins)


NO_STORE = ("Cache-Control", "no-store")  # a shared or watched computer must not keep a conversation in its cache


class SecurityHeaders:
    """Every response: a strict CSP, no sniffing, no referrer; HSTS behind https; no caching of pages.

    The headers are worked out once per app and added in one call: set one by one they cost a
    texter's webhook about 10 µs (issue 17)."""

    def __init__(self, origins: tuple[str, ...], https: bool):
        def fixed(ancestors: str) -> list[tuple[str, str]]:
            headers = [("Content-Security-Policy", CSP.format(ancestors=ancestors))]
            if ancestors == "'none'":
                headers.append(("X-Frame-Options", "DENY"))  # for browsers that predate frame-ancestors
            headers += [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()")]
            if https:
                headers.append(("Strict-Transport-Security", HSTS))
            return headers

        self.plain = fixed("'none'")
        self.framable = fixed(" ".join(origins)) if origins else self.plain
        self._names = frozenset(name.lower() for name, _ in self.plain + self.framable)

    def apply(self, response, blueprint: str | None):
        headers = response.headers
        ours = self._ours(blueprint)
        present = {name.lower() for name in headers.keys()}
        if present.isdisjoint(self._names):
            headers.extend(ours)
        else:
            for name, value in ours:  # a view's own value is replaced, never doubled
                headers[name] = value
        if "cache-control" not in present:
            headers.add(*NO_STORE)
        return response

    def of(self, blueprint: str | None) -> list[tuple[str, str]]:
        """Every header apply() adds to an answer of `blueprint`'s that brings none of its own
        (for bot.sms.FastLane, which answers without a Flask response)."""
        return [*self._ours(blueprint), NO_STORE]

    def _ours(self, blueprint: str | None) -> list[tuple[str, str]]:
        return self.framable if blueprint in EMBEDDABLE else self.plain


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


def client_address() -> str:
    """The client, for limits per address: its address as the last trusted proxy (CHAT_PROXY_HOPS)
    saw it (behind a proxy every request comes from the proxy, and a limit per address would put
    everyone in one bucket), and for IPv6 its /64, which one host or home is given whole."""
    hops = current_app.config.get("CHAT_PROXY_HOPS", 0)
    route = request.access_route
    if hops and request.headers.get("X-Forwarded-For") and len(route) >= hops:
        address = route[-hops]
    else:
        if request.headers.get("X-Forwarded-For"):
            _warn_proxies_unset()
        address = request.remote_addr or "unknown"
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if parsed.version == 6:
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


@functools.cache  # once a process
def _warn_proxies_unset() -> None:
    log.warning("requests carry X-Forwarded-For but CHAT_PROXY_HOPS is 0: every client may share "
                "the proxy's address and its limits; set CHAT_PROXY_HOPS to the proxies in front")
