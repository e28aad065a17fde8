"""A local HTTP server that answers like Twilio's Messages API, for the real `twilio` client.

Use the `twilio_api` fixture (request it before `app`): it puts TWILIO_ACCOUNT_SID,
TWILIO_API_BASE and TWILIO_FROM_NUMBER into the `config` dict. What it accepted is in
`twilio_api.sent`; every request it saw is in `twilio_api.requests`. Script the next
answers with `fail_next(...)` and `hang_next(...)`.

It refuses what Twilio refuses (each check cites Twilio's error page, twilio.com/docs/api/errors/<code>):
a `To` that is not E.164, a `From` the account does not own, a WhatsApp address paired with an SMS
one, an unknown Messaging Service, no body, a body over 1600 characters, another account's URL.
The account owns `numbers` (SMS), `whatsapp_senders` and the Messaging Service
`messaging_service_sid` (whose senders are in `services`).

Accepted messages then move on a timer (`callback_delay` between steps), as Twilio's do: sent, then
delivered, or whatever `deliver(to, ...)` says that number's carrier answers (undelivered or failed
with an error code). Each step after the first is posted to the message's StatusCallback, signed
with the auth token; what was posted, and the answer, is in `twilio_api.callbacks`, and
`wait_settled(sid)` waits for a message's last step.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
SMS_LIMIT = 1600
WHATSAPP = "whatsapp:"
E164 = re.compile(r"^\+[1-9]\d{7,14}$")  # "+", then 8 to 15 digits, the first not 0
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
CALLBACK_DELAY = 0.005  # seconds between a message's status changes: a few ms, so tests run fast
CALLBACK_TIMEOUT = 5.0  # how long the fake waits for a status callback's answer
# How a carrier ends a message: "failed" never left Twilio (no "sent" first); the others did.
OUTCOMES = ("delivered", "undelivered", "failed")
_LIST = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages\.json$")
_ONE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages/(?P<sid>SM\w+)\.json$")


@dataclass
class _Script:
    """One scripted answer for the next matching request."""

    method: str
    status: int = 0  # an error status, or 0 for "answer normally"
    code: int | None = None
    message: str | None = None
    hang: float = 0.0
    accept: bool = True  # with hang: is the message created before the late answer?


class FakeTwilioAPI:
    """Twilio's Messages endpoints, kept in memory; thread-safe, one server thread per request."""

    def __init__(self, account_sid: str, auth_token: str, from_number: str, callback_delay: float = CALLBACK_DELAY):
        self.account_sid, self.auth_token, self.from_number = account_sid, auth_token, from_number
        self.numbers = {from_number}  # the SMS numbers the account owns
        self.whatsapp_senders = {WHATSAPP + from_number}  # its approved WhatsApp senders
        self.messaging_service_sid = "MG" + secrets.token_hex(16)
        self.services = {self.messaging_service_sid: {from_number, WHATSAPP + from_number}}  # service -> senders
        self.callback_delay = callback_delay
        self.sent: list[dict] = []  # messages created, oldest first (the form fields plus "sid")
        self.requests: list[dict] = []  # every request: method, path, query, form, status
        self.callbacks: list[dict] = []  # every status callback posted: sid, url, form, status (HTTP, or the error)
        self.hanging = threading.Event()  # set while a request is being held by hang_next
        self._messages: dict[str, dict] = {}  # sid -> resource, as GET returns it
        self._outcomes: dict[str, tuple[str, int | None]] = {}  # To -> how its carrier ends a message
        self._scripts: deque[_Script] = deque()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._done: set[str] = set()  # sids whose last status change (and its callback) is behind them
        self._walks: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- the script -------------------------------------------------------------

    def fail_next(self, status: int = 500, code: int | None = None, message: str | None = None,
                  method: str = "POST", times: int = 1) -> None:
        """Answer the next `times` requests of `method` with an error, in Twilio's JSON error shape."""
        with self._lock:
            self._scripts.extend(_Script(method, status, code, message) for _ in range(times))

    def hang_next(self, seconds: float, accept: bool = True, method: str = "POST") -> None:
        """Hold the next request for `seconds` before answering.

        accept=True: the message is created at once and the 201 comes late (the answer lost in a
        timeout or a crash is the case that tempts a sender to send twice). accept=False: nothing is
        created and the connection is closed without an answer.
        """
        with self._lock:
            self._scripts.append(_Script(method, hang=seconds, accept=accept))

    def wait_until_hanging(self, timeout: float = 10.0) -> bool:
        return self.hanging.wait(timeout)

    def deliver(self, to: str, status: str = "delivered", code: int | None = None) -> None:
        """How the carrier ends messages to `to` from now on: delivered, or undelivered / failed with
        Twilio's error code (30003 unreachable handset, 30006 landline, 30005 unknown number...)."""
        if status not in OUTCOMES or (status == "delivered") != (code is None):
            raise ValueError("delivered without a code, or undelivered/failed with one")
        with self._lock:
            self._outcomes[to] = (status, code)

    def wait_settled(self, sid: str, timeout: float = 10.0) -> bool:
        """Wait until message `sid` reached its last status and that status's callback was answered."""
        with self._settled:
            return self._settled.wait_for(lambda: sid in self._done, timeout)

    def callbacks_for(self, sid: str) -> list[dict]:
        with self._lock:
            return [c for c in self.callbacks if c["sid"] == sid]

    # -- the server -------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeTwilioAPI":
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True  # a request held by hang_next must not block shutdown
        # A short poll: shutdown() waits for the loop's next one (0.5 s by default, in every test).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # walks still under way stop at their next step
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for walk in list(self._walks):
            walk.join(timeout=CALLBACK_TIMEOUT)

    # -- what the handler asks ----------------------------------------------------

    def _next_script(self, method: str) -> _Script | None:
        with self._lock:
            for script in self._scripts:
                if script.method == method:
                    self._scripts.remove(script)
                    return script
        return None

    def _hold(self, seconds: float) -> None:
        self.hanging.set()
        try:
            self._stopping.wait(seconds)
        finally:
            self.hanging.clear()

    def _refusal(self, form: dict) -> tuple[int, dict] | None:
        """Twilio's answer to a message it will not create, or None."""
        to, sender, service = form.get("To", ""), form.get("From", ""), form.get("MessagingServiceSid", "")
        body = form.get("Body", "")
        if not to:  # 21604: 'To' phone number is required to send a Message
            return _error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to.removeprefix(WHATSAPP)):  # 21211: Invalid 'To' Phone Number
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not service:  # 21603: A 'From' or 'MessagingServiceSid' parameter is required
            return _error(400, 21603, "A 'From' phone number is required.")
        if service and not SERVICE_SID.match(service):  # 21705: the SID does not match MGxxx
            return _error(400, 21705, "The Messaging Service is invalid.")
        if service and service not in self.services:  # 21701: not a service of this account
            return _error(400, 21701, f"The Messaging Service {service} does not exist.")
        if sender:
            # 21910: Invalid 'From' and 'To' pair. 'From' and 'To' should be of the same channel
            if sender.startswith(WHATSAPP) != to.startswith(WHATSAPP):
                return _error(400, 21910, "Invalid 'From' and 'To' pair. 'From' and 'To' should be of the "
                                          "same channel")
            if not E164.match(sender.removeprefix(WHATSAPP)):  # 21212: Invalid 'From' Phone Number
                return _error(400, 21212, f"The 'From' number {sender} is not a valid phone number, "
                                          "shortcode, or alphanumeric sender ID.")
            if sender.startswith(WHATSAPP) and sender not in self.whatsapp_senders:
                # 63007: Twilio could not find a Channel with the specified 'From' address
                return _error(400, 63007, "Twilio could not find a Channel with the specified From address")
            if not sender.startswith(WHATSAPP) and sender not in self.numbers:
                # 21606: the 'From' number is not a valid message-capable Twilio number for this account
                return _error(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable "
                                          "inbound phone number or short code for your account.")
        if not body and not form.get("MediaUrl"):  # 21602: Message body is required
            return _error(400, 21602, "Message body is required.")
        if len(body) > SMS_LIMIT:  # 21617: the concatenated message body exceeds the 1600 character limit
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        return None

    def _create(self, form: dict) -> tuple[int, dict]:
        refused = self._refusal(form)
        if refused is not None:
            return refused
        to, body = form["To"], form.get("Body", "")
        sender, service = form.get("From"), form.get("MessagingServiceSid")
        with self._lock:
            outcome = self._outcomes.get(to, ("delivered", None))
        if not sender:
            # The service picks a sender of the To's channel; with none, Twilio accepts the message and it
            # fails later (the 60727 "channel not found" warning; the fake reports 63007, no such channel).
            channel = to.startswith(WHATSAPP)
            sender = next((s for s in sorted(self.services[service]) if s.startswith(WHATSAPP) == channel), None)
            outcome = outcome if sender else ("failed", 63007)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        sid = "SM" + secrets.token_hex(16)
        resource = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": format_datetime(now),
            "date_sent": None,
            "date_updated": format_datetime(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # Twilio: "accepted" with a Messaging Service (it picks the sender next), else "queued".
            "status": "accepted" if service and not form.get("From") else "queued",
            "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        walk = threading.Thread(target=self._walk, args=(sid, _steps(resource["status"], *outcome),
                                                          form.get("StatusCallback")), daemon=True)
        with self._lock:
            self._messages[sid] = resource
            self.sent.append({**form, "sid": sid})
            self._walks.append(walk)
        answer = dict(resource)
        walk.start()
        return 201, answer

    def _walk(self, sid: str, steps: list[tuple[str, int | None]], callback_url: str | None) -> None:
        """Move message `sid` through `steps` on the timer, posting each to its StatusCallback.

        Twilio sends no callback for a message's first status, only for each change after it
        (twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks).
        """
        try:
            for status, code in steps:
                if self._stopping.wait(self.callback_delay):
                    return
                now = format_datetime(datetime.now(timezone.utc).replace(microsecond=0))
                with self._lock:
                    resource = self._messages[sid]
                    resource.update(status=status, date_updated=now, error_code=code)
                    if status == "sent":
                        resource["date_sent"] = now
                    seen = dict(resource)
                if callback_url:
                    self._post_status(callback_url, seen)
        finally:
            with self._settled:
                self._done.add(sid)
                self._settled.notify_all()

    def _post_status(self, url: str, message: dict) -> None:
        """One status callback, with the fields and the signature Twilio's have."""
        form = {"MessageSid": message["sid"], "SmsSid": message["sid"], "AccountSid": self.account_sid,
                "From": message["from"], "To": message["to"], "MessageStatus": message["status"],
                "SmsStatus": message["status"], "ApiVersion": API_VERSION}
        if message["messaging_service_sid"]:
            form["MessagingServiceSid"] = message["messaging_service_sid"]
        if message["error_code"] is not None:
            form["ErrorCode"] = str(message["error_code"])
        signature = RequestValidator(self.auth_token).compute_signature(url, form)
        try:
            answer = requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=CALLBACK_TIMEOUT)
            status: int | str = answer.status_code
        except requests.RequestException as exc:
            status = type(exc).__name__  # Twilio logs an 11200 (HTTP retrieval failure) and moves on
        with self._lock:
            self.callbacks.append({"sid": message["sid"], "url": url, "form": form, "status": status})

    def _list(self, query: dict, path: str) -> tuple[int, dict]:
        try:
            page_size = max(1, min(1000, int(query.get("PageSize", 50))))
            page = max(0, int(query.get("Page", 0)))
            wanted = [(op, _parse_when(query[key])) for key, op in
                      (("DateSent", "="), ("DateSent>", ">="), ("DateSent<", "<=")) if query.get(key)]
        except ValueError:
            return _error(400, 20001, "Invalid parameter")
        with self._lock:
            rows = [dict(m) for m in self._messages.values()]
        rows = [m for m in rows
                if (not query.get("To") or m["to"] == query["To"])
                and (not query.get("From") or m["from"] == query["From"])
                and all(_date_matches(m["date_sent"], op, when) for op, when in wanted)]
        rows.reverse()  # newest first, as Twilio lists them
        chunk = rows[page * page_size:(page + 1) * page_size]
        base = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}

        def uri(n: int) -> str:
            return f"{path}?{urlencode({**base, 'PageSize': page_size, 'Page': n})}"

        more = (page + 1) * page_size < len(rows)
        return 200, {
            "messages": chunk,
            "end": page * page_size + max(len(chunk) - 1, 0),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) + f"&PageToken=PASM{page + 1}" if more else None,
            "previous_page_uri": uri(page - 1) if page else None,
            "page": page,
            "page_size": page_size,
            "start": page * page_size,
            "uri": uri(page),
        }

    def _fetch(self, sid: str) -> tuple[int, dict]:
        with self._lock:
            found = self._messages.get(sid)
        if found is None:
            return _error(404, 20404, f"The requested resource /{API_VERSION}/Accounts/{self.account_sid}"
                                      f"/Messages/{sid}.json was not found")
        return 200, dict(found)


def _error(status: int, code: int | None, message: str | None) -> tuple[int, dict]:
    """Twilio's JSON error body."""
    code = code if code is not None else {429: 20429, 401: 20003, 404: 20404}.get(status, 20500)
    message = message or {429: "Too Many Requests", 401: "Authenticate"}.get(status, "Internal Server Error")
    return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}


def _steps(initial: str, outcome: str, code: int | None) -> list[tuple[str, int | None]]:
    """The statuses a message goes through after its first one, each with its error code."""
    steps: list[tuple[str, int | None]] = [("queued", None)] if initial == "accepted" else []
    if outcome == "failed":
        return steps + [("failed", code)]
    return steps + [("sent", None), (outcome, code)]


def _parse_when(value: str) -> date | datetime:
    """Twilio takes YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ for DateSent filters."""
    if "T" in value:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return date.fromisoformat(value)


def _date_matches(sent: str | None, op: str, when: date | datetime) -> bool:
    if sent is None:
        return False
    moment = parsedate_to_datetime(sent)
    value = moment.date() if not isinstance(when, datetime) else moment
    return {"=": value == when, ">=": value >= when, "<=": value <= when}[op]


class _Handler(BaseHTTPRequestHandler):
    api: FakeTwilioAPI

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # quiet: pytest shows what the tests assert

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def _serve(self, method: str) -> None:
        api = self.api
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)) if length else {}
        seen = {"method": method, "path": parts.path, "query": query, "form": form}
        with api._lock:
            api.requests.append(seen)

        listing, one = _LIST.match(parts.path), _ONE.match(parts.path)
        match = listing or one
        if not self._authorized():  # 20003: Authentication Error - invalid username/password
            return self._answer(seen, *_error(401, 20003, "Authenticate"))
        # 20404: the resource was not found. Another account's URL is not found, whoever asks.
        if match is None or (one and method != "GET") or match["account"] != api.account_sid:
            return self._answer(seen, *_error(404, 20404, f"The requested resource {parts.path} was not found"))

        script = api._next_script(method)
        if script is not None and script.status:
            return self._answer(seen, *_error(script.status, script.code, script.message))
        if script is not None and not script.accept:
            api._hold(script.hang)
            self.close_connection = True
            return None  # no answer at all: the client sees a timeout or a dropped connection

        if one:
            status, payload = api._fetch(one["sid"])
        elif method == "POST":
            status, payload = api._create(form)
        else:
            status, payload = api._list(query, parts.path)
        if script is not None and script.hang:
            api._hold(script.hang)
        return self._answer(seen, status, payload)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.api.account_sid and password == self.api.auth_token

    def _answer(self, seen: dict, status: int, payload: dict) -> None:
        seen["status"] = status
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) or was killed while we held its request


@pytest.fixture
def twilio_api(config):
    """A running fake of Twilio's Messages API; request it before `app` so the app uses it."""
    api = FakeTwilioAPI("AC" + secrets.token_hex(16), config["TWILIO_AUTH_TOKEN"], "+16615550100").start()
    config.update(TWILIO_ACCOUNT_SID=api.account_sid, TWILIO_API_BASE=api.url, TWILIO_FROM_NUMBER=api.from_number)
    yield api
    api.stop()
