"""A local HTTP server that answers like Twilio's Messages API, for the real `twilio` client.

Use the `twilio_api` fixture (request it before `app`): it puts TWILIO_ACCOUNT_SID,
TWILIO_API_BASE and TWILIO_FROM_NUMBER into the `config` dict. What it accepted is in
`twilio_api.sent`; every request it saw is in `twilio_api.requests`. Script the next
answers with `fail_next(...)` and `hang_next(...)`.
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

API_VERSION = "2010-04-01"
SMS_LIMIT = 1600
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

    def __init__(self, account_sid: str, auth_token: str, from_number: str):
        self.account_sid, self.auth_token, self.from_number = account_sid, auth_token, from_number
        self.sent: list[dict] = []  # messages created, oldest first (the form fields plus "sid")
        self.requests: list[dict] = []  # every request: method, path, query, form, status
        self.hanging = threading.Event()  # set while a request is being held by hang_next
        self._messages: dict[str, dict] = {}  # sid -> resource, as GET returns it
        self._scripts: deque[_Script] = deque()
        self._lock = threading.Lock()
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
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

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

    def _create(self, form: dict) -> tuple[int, dict]:
        to, body = form.get("To", ""), form.get("Body", "")
        sender, service = form.get("From"), form.get("MessagingServiceSid")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not body and not form.get("MediaUrl"):
            return _error(400, 21602, "Message body is required.")
        if not sender and not service:
            return _error(400, 21603, "A 'From' phone number is required.")
        if len(body) > SMS_LIMIT:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
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
            "from": sender or self.from_number,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not sender else "queued",
            "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        answer = dict(resource)
        # From here on the fake has "sent" it: later reads see it as Twilio would a moment later.
        resource.update(status="sent", date_sent=resource["date_created"])
        with self._lock:
            self._messages[sid] = resource
            self.sent.append({**form, "sid": sid})
        return 201, answer

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
        if not self._authorized(match):
            return self._answer(seen, *_error(401, 20003, "Authenticate"))
        if match is None or (one and method != "GET"):
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

    def _authorized(self, match) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        account_ok = match is None or match["account"] == self.api.account_sid
        return user == self.api.account_sid and password == self.api.auth_token and account_ok

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
