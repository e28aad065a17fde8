"""Console sign-in: server-side sessions in Redis, CSRF tokens, idle expiry and the view decorators.

The browser holds only a random session id in an HttpOnly cookie scoped to /console; the
session itself (who, when last active) lives in Redis, so sign-out and idle expiry end it
for certain and removing an account ends its sessions.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from functools import wraps

from flask import (abort, current_app, g, make_response, redirect, render_template, request,
                   url_for)

from .. import audit, ratelimit
from ..extensions import get_redis
from ..security import client_address
from . import accounts, bp
from .accounts import Counsellor
from .present import HELPERS

COOKIE = "helpline_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# A poll from an open page is not the counsellor doing something unless the page says so.
POLL_HEADER = "X-Console-Poll"
ACTIVE_HEADER = "X-Console-Active"
SIGNIN_PER_ADDRESS = (30, 300)  # failed attempts per window (seconds) for one client address
# A name may fail this often (in an hour) before each further attempt must wait: 2 s, 4 s, 8 s, …
# up to BACKOFF_MAX. Never a lock: the wait ends, and a device the counsellor has signed in from
# before (DEVICE_COOKIE) is not held back at all, so no one can keep a counsellor out by guessing.
SIGNIN_FREE_FAILURES = 5
SIGNIN_PER_DEVICE = 5  # failures per 5 minutes from a browser that signed in as the name before
BACKOFF_MAX = 900
FAILURES_KEPT = 3600
DEVICE_COOKIE = "helpline_device"
DEVICE_DAYS = 90


def session_key(sid: str) -> str:
    return f"console:s:{current_app.extensions['vault'].digest('console-session:' + sid)}"


def idle_seconds() -> int:
    return int(current_app.config["CONSOLE_IDLE_MINUTES"]) * 60


def _cookie_sid() -> str:
    return request.cookies.get(COOKIE, "")


def csrf_token() -> str:
    """The token forms and fetches send back: a keyed hash of this browser's session id."""
    sid = getattr(g, "console_sid", None) or _cookie_sid()
    if not sid:
        return ""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"console-csrf:{sid}".encode(), hashlib.sha256).hexdigest()


def current_counsellor() -> Counsellor | None:
    """The signed-in counsellor for this request, or None (no session, expired, or account removed)."""
    if "counsellor" not in g:
        g.counsellor = _load_session()
    return g.counsellor


def _load_session() -> Counsellor | None:
    sid = _cookie_sid()
    if not sid:
        return None
    client = get_redis()
    key = session_key(sid)
    name, last, began_under = client.hmget(key, "name", "seen", "version")
    if name is None:
        return None
    name = name.decode()
    now = time.time()
    if now - float(last or 0) > idle_seconds():
        _end_session(sid, name, "idle")
        g.session_expired = True
        return None
    counsellor, version = accounts.get_versioned(client, name)
    if counsellor is None or (began_under or b"").decode() != version:
        # Removed, or its password, role or sessions changed since this session began.
        client.delete(key)
        return None
    # A page's own polls and its live stream are not the counsellor doing something.
    passive = request.headers.get(POLL_HEADER) == "1" or request.endpoint == "console.live_events"
    if not passive or request.headers.get(ACTIVE_HEADER) == "1":
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, "seen", f"{now:.3f}")
        pipe.expire(key, idle_seconds())
        pipe.execute()
        if not counsellor.agency:  # a partner takes no conversations: never counted as a counsellor about
            accounts.seen(client, name)
    return counsellor


def tell(said: str) -> None:
    """What the counsellor just did, in one sentence the next page shows once (never a message or a number)."""
    get_redis().set(f"{session_key(_cookie_sid())}:told", said, ex=idle_seconds())


def _told() -> str:
    sid = _cookie_sid()
    if not sid:
        return ""
    pipe = get_redis().pipeline(transaction=True)
    pipe.get(f"{session_key(sid)}:told")
    pipe.delete(f"{session_key(sid)}:told")
    said = pipe.execute()[0]
    return said.decode() if said else ""


def first_in_session(what: str) -> bool:
    """True the first time this session does `what` (opening a conversation is audited once, not per reload)."""
    key = f"{session_key(_cookie_sid())}:{what}"
    return bool(get_redis().set(key, 1, nx=True, ex=idle_seconds()))


def _end_session(sid: str, name: str, why: str) -> None:
    client = get_redis()
    client.delete(session_key(sid))
    accounts.set_online(client, name, False)
    audit.record(client, name, "sign_out", detail=why)


def login_required(view):
    """Send anyone without a live session to the sign-in page (polls get the same redirect)."""

    @wraps(view)
    def checked(*args, **kwargs):
        if current_counsellor() is None:
            return redirect(url_for("console.signin", next=request.path,
                                    expired=1 if g.get("session_expired") else None))
        return view(*args, **kwargs)

    return checked


def supervisor_required(view):
    """Like login_required, and 403 for counsellors who are not supervisors."""

    @wraps(view)
    @login_required
    def checked(*args, **kwargs):
        if not current_counsellor().supervisor:
            abort(403, "Only supervisors can see this page.")
        return view(*args, **kwargs)

    return checked


def partner_required(view):
    """Like login_required, and 403 for anyone who is not a partner agency's account. Only views so marked
    are open to partners: every other console view is closed to them (keep_partners_out)."""

    @wraps(view)
    @login_required
    def checked(*args, **kwargs):
        if not current_counsellor().agency:
            abort(403, "Only partner agencies' accounts can see this page.")
        return view(*args, **kwargs)

    checked.for_partners = True
    return checked


_OPEN_TO_ALL = ("console.signin", "console.signin_post", "console.signout")


def _home(who: Counsellor) -> str:
    return url_for("console.partner_home") if who.agency else url_for("console.index")


@bp.before_request
def check_csrf_and_drop_idle():
    """Every state-changing request carries this browser's token; idle counsellors go offline."""
    accounts.drop_idle(get_redis(), idle_seconds())
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    expected = csrf_token()
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "The form's security token is missing or out of date. Go back, reload the page and try again.")


@bp.before_request
def keep_partners_out():
    """A partner's account sees its agency's referrals, never a conversation, queue, audit or report:
    closed unless the view says otherwise, so a new console page is closed to partners from the start."""
    who = current_counsellor()
    if who is None or not who.agency or request.endpoint in _OPEN_TO_ALL:
        return
    if not getattr(current_app.view_functions.get(request.endpoint), "for_partners", False):
        abort(403, "A partner agency's account can see only its agency's referrals.")


@bp.context_processor
def console_globals():
    me = current_counsellor()
    # told: called by base.html alone, so a live fragment's render never takes the banner meant for the page.
    return {"csrf_token": csrf_token, "me": me, "online": bool(me) and accounts.is_online(get_redis(), me.name),
            "told": _told, **HELPERS}


def _set_cookie(response, sid: str, max_age: int | None = None):
    secure = (current_app.config.get("PUBLIC_URL") or "").startswith("https://")
    response.set_cookie(COOKIE, sid, max_age=max_age, path=url_for("console.index").rstrip("/") or "/",
                        httponly=True, samesite="Lax", secure=secure)
    return response


def _safe_next(target: str | None, who: Counsellor) -> str:
    # Only a path inside the console: never an open redirect to another site. A partner always goes to its page.
    if target and target.startswith("/console") and not target.startswith("//") and not who.agency:
        return target
    return _home(who)


@bp.get("/signin")
def signin():
    if current_counsellor() is not None:
        return redirect(_safe_next(request.args.get("next"), current_counsellor()))
    notice = "Your session ended after a while without activity. Please sign in again." \
        if request.args.get("expired") else None
    return _signin_page(notice=notice)


def _signin_page(error: str | None = None, notice: str | None = None, status: int = 200):
    sid = _cookie_sid()
    if not sid:
        # A pre-sign-in id, so the form has a token to send back; replaced at sign-in.
        sid = g.console_sid = secrets.token_urlsafe(32)
    response = make_response(render_template("console/signin.html", error=error, notice=notice,
                                             next=request.values.get("next", "")), status)
    return _set_cookie(response, sid)


@bp.post("/signin")
def signin_post():
    client = get_redis()
    vault = current_app.extensions["vault"]
    name = (request.form.get("name") or "").strip().lower()
    password = request.form.get("password") or ""
    if not name or not password:
        return _signin_page(error="Enter your name and password.", status=400)
    attempt = _Attempt(client, vault.digest("name:" + name), _known_device(name))
    refusal = attempt.refusal(vault.digest("addr:" + client_address()))
    if refusal:
        _audit_failure(name, refusal[0])
        return _signin_page(error=refusal[1], status=429)
    counsellor = accounts.verify(client, name, password)
    if counsellor is None:
        attempt.failed()
        _audit_failure(name, "wrong password" if accounts.get(client, name) else "unknown name")
        return _signin_page(error="That name and password do not match.", status=401)
    attempt.succeeded()
    # A fresh session id at sign-in: whatever id the browser had before is worth nothing now.
    old = _cookie_sid()
    sid = secrets.token_urlsafe(32)
    pipe = client.pipeline(transaction=True)
    if old:
        pipe.delete(session_key(old))
    _, version = accounts.get_versioned(client, counsellor.name)
    pipe.hset(session_key(sid), mapping={"name": counsellor.name, "started": f"{time.time():.3f}",
                                         "seen": f"{time.time():.3f}", "version": version})
    pipe.expire(session_key(sid), idle_seconds())
    pipe.execute()
    if not counsellor.agency:  # partners take no conversations
        accounts.set_online(client, counsellor.name, True)
    audit.record(client, counsellor.name, "sign_in")
    response = _set_cookie(redirect(_safe_next(request.form.get("next"), counsellor)), sid)
    return _remember_device(response, counsellor.name, attempt.device)


class _Attempt:
    """One sign-in attempt against the limits (see SIGNIN_* above and the sign-in policy in docs/console.md).

    Every attempt is counted before the password is checked, so that guesses sent in parallel cannot
    outrun the limits, and given back when it succeeds: only failures stay counted. A browser that
    signed in as this name before (`device`) answers to a small limit of its own instead of the
    address's and the name's, so that no one else's guessing holds it back.
    """

    def __init__(self, client, named: str, device: str | None):
        self.redis, self.named, self.device = client, named, device
        self.counted: list[str] = []
        self.failures = 0
        self.backoff = f"rl:console-signin-wait:{named}"

    def refusal(self, address: str) -> tuple[str, str] | None:
        """None to go on to the password; else (why, in the audit trail's words; what the page says)."""
        busy = ("rate limited", "Too many sign-in attempts. Wait a few minutes and try again.")
        if self.device:
            return busy if self._count(f"rl:console-signin-device:{self.device}", 300) > SIGNIN_PER_DEVICE else None
        wait = self.redis.ttl(self.backoff)
        if wait > 0:
            return "backing off", f"Too many sign-in attempts for this name. Try again in {wait} seconds."
        if self._count(f"rl:console-signin-addr:{address}", SIGNIN_PER_ADDRESS[1]) > SIGNIN_PER_ADDRESS[0]:
            return busy
        self.failures = self._count(f"rl:console-signin-fails:{self.named}", FAILURES_KEPT)
        # Past the free failures one attempt at a time: the first to set the next wait is checked.
        if self.failures > SIGNIN_FREE_FAILURES and not self.redis.set(self.backoff, "1", nx=True, ex=self._wait()):
            wait = max(1, self.redis.ttl(self.backoff))
            return "backing off", f"Too many sign-in attempts for this name. Try again in {wait} seconds."
        return None

    def failed(self) -> None:
        if self.failures >= SIGNIN_FREE_FAILURES:
            self.redis.set(self.backoff, "1", ex=self._wait())  # the next attempt waits twice as long

    def succeeded(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in self.counted:
            pipe.decr(key)
        if self.failures > SIGNIN_FREE_FAILURES:
            pipe.delete(self.backoff)  # the wait this attempt set: the name's owner is in
        pipe.execute()

    def _wait(self) -> int:
        return min(BACKOFF_MAX, 2 ** (self.failures - SIGNIN_FREE_FAILURES + 1))

    def _count(self, key: str, ttl: int) -> int:
        self.counted.append(key)
        return ratelimit.count(self.redis, key, ttl)


def hashed_name(name: str) -> str:
    """How the audit trail names whoever failed to sign in: a keyed hash of the name typed, which may be
    someone's password typed in the wrong box."""
    return "#" + current_app.extensions["vault"].digest("console-audit-name:" + name)[:12]


def _audit_failure(name: str, why: str) -> None:
    client = get_redis()
    # Refusals under the limits once a minute per name and reason: guessing must not flood the trail.
    if why in ("rate limited", "backing off") and not client.set(
            f"audit:quiet:{hashed_name(name)}:{why.replace(' ', '-')}", 1, nx=True, ex=60):
        return
    audit.record(client, hashed_name(name), "sign_in_failed", detail=why)


def _device_mark(name: str, device: str) -> str:
    return current_app.extensions["vault"].digest(f"console-device:{name}:{device}")


def _known_device(name: str) -> str | None:
    """This browser's device id when it has signed in as `name` before (a cookie only our key could
    have made), else None."""
    device, _, mark = request.cookies.get(DEVICE_COOKIE, "").partition(".")
    if device and hmac.compare_digest(mark.encode(), _device_mark(name, device).encode()):
        return current_app.extensions["vault"].digest("console-device:" + device)
    return None


def _remember_device(response, name: str, known: str | None):
    if not known:
        device = secrets.token_urlsafe(16)
        secure = (current_app.config.get("PUBLIC_URL") or "").startswith("https://")
        response.set_cookie(DEVICE_COOKIE, f"{device}.{_device_mark(name, device)}", max_age=DEVICE_DAYS * 86400,
                            path=url_for("console.signin"), httponly=True, samesite="Strict", secure=secure)
    return response


@bp.post("/signout")
def signout():
    counsellor = current_counsellor()
    if counsellor is not None:
        _end_session(_cookie_sid(), counsellor.name, "")
    response = redirect(url_for("console.signin"))
    response.delete_cookie(COOKIE, path=url_for("console.index").rstrip("/") or "/")
    return response
