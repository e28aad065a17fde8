"""Sending fuzz messages to a conversation in a given state, on each layer, and checking what comes back.

Each (target, language, channel) is reached once by playing its path through the layer under test
(so the path is proven on that layer too); the conversation it leaves is the template. Every example
then gets a copy of it under a fresh number or chat token, written through the store as the console
writes conversations, and sends it one to three messages: not a whole path per example.
"""
from __future__ import annotations

import itertools
import json
import secrets
import time
import traceback
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode
from xml.etree import ElementTree

from bot.chat import over
from bot.console import accounts, handoff
from bot.engine import Inbound, valid_text
from flows.catalog import LANGUAGES
from flows.conversation import Conversation
from flows.engine import (ACKNOWLEDGEMENTS, CARRIER_CHANNELS, LEAVE_LINE_WORDS, MAX_TEXT, REASSURE_EVERY, asks,
                          clean)
from flows.spec import normalize
from tests.conftest import Texter, sign
from tests.console.conftest import PASSWORD, Console, wrapped_up

from .reach import CLAIM, END, ENGINE, FLOW, NAME, Target, target as target_in, web_path

SUPERVISOR = "fuzzsup"
# Templates are reached again after this long: their times (the last "still waiting", above all) must
# stay as recent as a texter's, or a long run would stop meeting the reassurance window.
TEMPLATE_AGE = 300.0
MAX_KEYS = 200_000  # a long run empties Redis past this many keys (templates are kept in memory)
UNAVAILABLE = tuple(ENGINE.catalog.render(lang, "unavailable", name=NAME) for lang in LANGUAGES)
_numbers = itertools.count(secrets.randbelow(10**6) * 1000)


def fresh_number() -> str:
    # +1 555 and seven digits counted up from a random start: never two examples on one number.
    return f"+1555{next(_numbers) % 10**7:07d}"


def tidy(fuzz) -> None:
    """Keep a long run's Redis small: every example leaves a conversation, its dedupe records and jobs."""
    fuzz.examples = getattr(fuzz, "examples", 0) + 1
    if fuzz.examples % 1000 == 0 and fuzz.app.extensions["redis"].dbsize() > MAX_KEYS:
        fuzz.app.extensions["redis"].flushall()
        fuzz.signin()


# -- the oracle -------------------------------------------------------------------------------------


def may_stay_silent(channel: str, before: Conversation | None, level: str | None, now: float, text: str) -> bool:
    """May the help line answer this message (`text`, as the app received it) with nothing at all?

    Read from flows/engine.py (FlowEngine.step, _in_handoff) and docs/conversation.md ("The conversation",
    "Understanding people"); everywhere else a message gets an answer:
    - after STOP, on SMS and WhatsApp: nothing is sent until START (the carrier would block it; danger
      still alerts the counsellors, silently). The web chat has no carrier: STOP is an ordinary word;
    - "quiet" (they said "he is next to me"): "ok" / 👍 / thanks / nothing with a letter or digit gets no
      reply, so that nothing lights up a phone someone may be watching (anything more ends the quiet);
    - a counsellor holds the chat: the counsellor answers; the bot is silent;
    - in line (in the waiting state itself, not browsing the menu meanwhile): at most one "still
      waiting" every REASSURE_EVERY (10 minutes) since the last one; a question is always answered.
    Never silent: a first message; danger (except after STOP); someone in line after an emergency; and
    HELP or a language switch (the globals without a `to`), which are answered in line and with a
    counsellor too.
    """
    if before is None:
        return False
    if before.opted_out and channel in CARRIER_CHANNELS:
        return True
    if level == "emergency":
        return False
    text = clean(valid_text(text))
    word = normalize(text)
    if any(word in g.words for g in FLOW.globals if not g.to):
        return False
    if before.slots.get("quiet") and (word in ACKNOWLEDGEMENTS or not any(ch.isalnum() for ch in word)
                                      or ENGINE.decide(ENGINE.read(text)) == "thanks_bye"):
        return True
    if before.handoff == "active":
        return True
    if asks(text, word) or (before.handoff == "waiting" and word in LEAVE_LINE_WORDS):
        return False
    return (before.handoff == "waiting" and FLOW.states[before.state].handoff and before.risk != "emergency"
            and now - before.reassured_at < REASSURE_EVERY)


def _readable(value, where: str) -> None:
    """Everything stored must come back as valid Unicode that every page can encode as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AssertionError(f"{where} is not valid Unicode (a lone surrogate?): it cannot be shown") from exc


def check_stored(store, cid: str, before: Conversation | None, target: Target, sent: str | None) -> Conversation | None:
    """The stored conversation opens, is in a known state, and holds only valid, bounded text."""
    after = store.load(cid)  # decrypts, or raises
    transcript = store.transcript(cid)
    if after is None:
        # Only a confirmed DELETE (or BORRAR) erases a conversation.
        assert before is not None and before.slots.get("_confirm_delete"), f"{target}: the conversation vanished"
        assert transcript == [], f"{target}: an erased conversation left its transcript"
        return None
    assert after.state in FLOW.states, f"{target}: left in an unknown state"
    _readable(after.to_doc(), f"{target}: the stored conversation")
    _readable(transcript, f"{target}: the stored transcript")
    if sent is not None:
        texter = [e for e in transcript if e.get("from") == "texter"]
        assert texter, f"{target}: the message is not in the transcript"
        kept = texter[-1]["text"]
        assert len(kept) <= MAX_TEXT, f"{target}: more than {MAX_TEXT} characters stored"
        assert unicodedata.is_normalized("NFC", kept), f"{target}: stored text is not NFC"
    return after


def check_replies(replies, target: Target, channel: str, before, level, now: float, text: str) -> None:
    assert isinstance(replies, list) and all(isinstance(r, str) and r.strip() for r in replies), \
        f"{target} ({channel}): a reply that is not a non-empty string"
    _readable(replies, f"{target} ({channel}): a reply")
    assert not any(u in r for u in UNAVAILABLE for r in replies), \
        f"{target} ({channel}): the static safety reply, i.e. the message crashed the engine"
    if not replies:
        assert may_stay_silent(channel, before, level, now, text), f"{target} ({channel}): no reply where one is due"


def last_level(store, cid: str) -> str | None:
    entries = store.transcript(cid, -5)
    texter = [e for e in entries if e.get("from") == "texter"]
    return texter[-1].get("level") if texter else None


# -- copies of a template conversation ----------------------------------------------------------------


def clone(app, template: Conversation, channel: str, address: str) -> str:
    """Write a copy of `template` as the conversation of `address`, with its place in line or holder."""
    store, waiting = app.extensions["store"], app.extensions["waiting"]
    cid = store.vault.conversation_id(channel, address)
    conv = Conversation.from_doc(json.loads(json.dumps(template.to_doc())))
    conv.id, conv.address, conv.channel = cid, address, channel

    def place(pipe) -> None:
        if conv.handoff == "waiting" or conv.slots.get("kind") == "tip":
            waiting.add(pipe, cid, conv.risk, float(conv.slots.get("queued_at") or conv.created_at))
        elif conv.handoff == "active":
            pipe.hset(handoff.ACTIVE, cid, conv.counsellor or SUPERVISOR)

    session = store.begin(cid)
    store.commit(session, conv, also=place)
    return cid


# -- the engine every channel calls (bot.engine.Helpline) ----------------------------------------------


class EngineFuzz:
    """Messages through Helpline.handle with a real store; the counsellor's claim and end through
    bot.console.handoff, as the console does them."""

    channel = "sms"

    def __init__(self, app):
        self.app = app
        self.helpline, self.store = app.extensions["helpline"], app.extensions["store"]
        self.templates: dict = {}
        self.sent = Counter()
        self.signin()

    def signin(self) -> None:
        with self.app.app_context():
            self.counsellor = accounts.add(self.app.extensions["redis"], SUPERVISOR, PASSWORD, supervisor=True)

    def handle(self, address: str, text: str):
        with self.app.app_context():  # as the webhook does: a check-in the texter asks for is scheduled with the app's
            return self.helpline.handle(Inbound(self.channel, address, text, message_id="SM" + secrets.token_hex(16)))

    def play(self, address: str, move) -> None:
        cid = self.helpline.conversation_id(self.channel, address)
        if move == CLAIM:
            with self.app.app_context():
                handoff.claim(self.counsellor, cid)
        elif move == END:
            with self.app.app_context():
                handoff.end(self.counsellor, cid, wrapped_up("resolved"))
        else:
            self.handle(address, move)

    def template(self, target: Target, lang: str) -> Conversation | None:
        key = (target.name, lang)
        if time.time() - self.templates.get(key, (None, 0.0))[1] > TEMPLATE_AGE:
            target = target_in(lang, target.name)  # its path in that language
            address = fresh_number()
            for move in target.path:
                self.play(address, move)
            conv = self.store.load(self.helpline.conversation_id(self.channel, address))
            assert target.holds(conv), f"the path to {target} ({lang}) does not lead there through Helpline.handle"
            assert conv is None or conv.lang == lang, f"the path to {target} ({lang}) ends in {conv.lang}"
            self.templates[key] = (conv, time.time())
        return self.templates[key][0]

    def fuzz(self, target: Target, lang: str, *texts: str) -> None:
        """Bring a conversation to `target`, then send `texts` one after the other, checking each."""
        tidy(self)
        template = self.template(target, lang)
        address = fresh_number()
        cid = clone(self.app, template, self.channel, address) if template is not None else \
            self.helpline.conversation_id(self.channel, address)
        for text in texts:
            before = self.store.load(cid)
            outcome = self.handle(address, text)
            after = check_stored(self.store, cid, before, target, text)
            now = after.updated_at if after is not None else time.time()
            check_replies(outcome.replies, target, self.channel, before, outcome.level, now, text)
            if after is None:
                break  # erased (a confirmed DELETE): nothing left to talk to
        self.sent[target.name] += 1


# -- the HTTP edges: signed /sms, the chat's JSON API, and the console ----------------------------------


SMS_URL = "http://localhost/sms"


class HttpFuzz:
    """Signed POST /sms and POST /chat/api/messages on the app, then the conversation in the console."""

    def __init__(self, app, channel: str):
        assert channel in ("sms", "web")
        self.app, self.channel = app, channel
        self.client = app.test_client()
        self.store, self.helpline = app.extensions["store"], app.extensions["helpline"]
        self.limit = app.config["MAX_CONTENT_LENGTH"]
        self.templates: dict = {}
        self.sent = Counter()
        self.signin()

    def signin(self) -> None:
        with self.app.app_context():
            accounts.add(self.app.extensions["redis"], SUPERVISOR, PASSWORD, supervisor=True)
        self.console = Console(self.app, SUPERVISOR)
        assert self.console.sign_in().status_code == 302

    # sending ------------------------------------------------------------------------------------

    def post_sms(self, number: str, text: str):
        """A signed webhook whose Body may hold anything, lone surrogates too: a broken gateway sends
        their bytes (ED A0 80), which the app reads as the literal %ED%A0%80 (werkzeug keeps undecodable
        escapes as they are). It is signed as Twilio signs: over the values the app will read."""
        form = Texter(self.client, number).form(text)
        raw = urlencode(form, encoding="utf-8", errors="surrogatepass")
        seen = dict(parse_qsl(raw, keep_blank_values=True, errors="werkzeug.url_quote"))
        answer = self.client.post(SMS_URL, data=raw, content_type="application/x-www-form-urlencoded",
                                  headers={"X-Twilio-Signature": sign(SMS_URL, seen)})
        return answer, len(raw.encode("ascii")), seen["Body"]

    def post_chat(self, token: str, text: str):
        body = json.dumps({"token": token, "text": text, "client_id": secrets.token_hex(8)})  # \ud800 escapes
        answer = self.client.post("/chat/api/messages", data=body, content_type="application/json")
        return answer, len(body.encode("ascii")), text

    def address(self) -> str:
        return fresh_number() if self.channel == "sms" else secrets.token_urlsafe(32)

    def cid(self, address: str) -> str:
        return self.helpline.conversation_id(self.channel, address)

    def play(self, address: str, move) -> None:
        cid = self.cid(address)
        if move == CLAIM:
            answer = self.console.post(f"/console/claim/{cid}")
        elif move == END:
            answer = self.console.post(f"/console/c/{cid}/end", wrapped_up("resolved"))
        elif self.channel == "sms":
            answer, _, _ = self.post_sms(address, move)
            assert answer.status_code == 200, answer.data
            return
        else:
            answer, _, _ = self.post_chat(address, move)
            assert answer.status_code == 200, answer.data
            return
        assert answer.status_code == 302, answer.get_data(as_text=True)

    def template(self, target: Target, lang: str) -> Conversation | None:
        key = (target.name, lang)
        if time.time() - self.templates.get(key, (None, 0.0))[1] > TEMPLATE_AGE:
            target = target_in(lang, target.name)  # its path in that language
            if self.channel == "sms":
                address, path = fresh_number(), target.path
            else:
                opened = self.client.post("/chat/api/session", json={"lang": lang})
                assert opened.status_code == 201, opened.data
                address, path = opened.json["token"], web_path(target.path)
            for move in path:
                self.play(address, move)
            conv = self.store.load(self.cid(address))
            assert target.holds(conv), f"the path to {target} ({lang}) does not lead there over {self.channel}"
            assert conv is None or conv.lang == lang, f"the path to {target} ({lang}) ends in {conv.lang}"
            self.templates[key] = (conv, time.time())
        return self.templates[key][0]

    # one example --------------------------------------------------------------------------------

    def fuzz(self, target: Target, lang: str, *texts: str) -> None:
        """Bring a conversation to `target`, then send `texts` one after the other, checking each."""
        tidy(self)
        template = self.template(target, lang)
        address = self.address()
        cid = clone(self.app, template, self.channel, address) if template is not None else self.cid(address)
        for text in texts:
            if not self.send(target, address, cid, text):
                break  # erased (a confirmed DELETE): nothing left to talk to
        self.sent[target.name] += 1

    def send(self, target: Target, address: str, cid: str, text: str) -> bool:
        """One message and every check of its answer; False once the conversation is erased."""
        before = self.store.load(cid)
        where = f"{target} ({self.channel})"
        post = self.post_sms if self.channel == "sms" else self.post_chat
        answer, size, text = post(address, text)  # text: as the app read it
        assert answer.status_code < 500, f"{where}: HTTP {answer.status_code}, i.e. the message crashed: {answer.data[:300]!r}"
        if size > self.limit:
            assert answer.status_code == 413, f"{where}: a body over MAX_CONTENT_LENGTH got {answer.status_code}"
        elif self.channel == "sms":
            self.check_twiml(answer, cid, before, target, text)
        else:
            self.check_chat(answer, cid, before, target, text)
        return self.check_console(cid, target)

    def check_twiml(self, answer, cid, before, target, text: str) -> None:
        where = f"{target} (sms)"
        assert answer.status_code == 200, f"{where}: HTTP {answer.status_code}"
        assert answer.mimetype == "text/xml", f"{where}: {answer.mimetype}, not TwiML"
        try:
            doc = ElementTree.fromstring(answer.data)
        except ElementTree.ParseError as exc:
            raise AssertionError(f"{where}: the TwiML is not well-formed XML") from exc
        assert doc.tag == "Response", f"{where}: TwiML without <Response>"
        messages = [m.text or "" for m in doc.iter("Message")]
        assert not any(u in m for u in UNAVAILABLE for m in messages), \
            f"{where}: the static safety reply, i.e. the message crashed the engine"
        assert all(len(m) <= MAX_TEXT for m in messages), f"{where}: a <Message> over {MAX_TEXT} characters"
        after = check_stored(self.store, cid, before, target, "")
        level = last_level(self.store, cid) if after is not None else None
        now = after.updated_at if after is not None else time.time()
        check_replies([m for m in messages if m.strip()], target, "sms", before, level, now, text)
        assert len(messages) == len([m for m in messages if m.strip()]), f"{where}: an empty <Message>"

    def check_chat(self, answer, cid, before, target, text: str) -> None:
        where = f"{target} (web)"
        assert answer.mimetype == "application/json", f"{where}: {answer.mimetype}, not JSON"
        body = answer.json
        if not text.strip():
            assert (answer.status_code, body.get("error")) == (400, "bad_request"), f"{where}: a blank text got {body}"
            return
        if len(text) > MAX_TEXT:
            assert (answer.status_code, body.get("error")) == (400, "too_long"), f"{where}: a long text got {body}"
            return
        if before is not None and over(before):  # a counsellor ended this chat: the page offers a new one
            assert (answer.status_code, body.get("error")) == (409, "ended"), f"{where}: an ended chat got {body}"
            assert check_stored(self.store, cid, before, target, None) is not None
            return
        assert answer.status_code == 200, f"{where}: HTTP {answer.status_code} {body}"
        assert set(body) == {"replies", "choices", "open"}, f"{where}: the answer's keys are {sorted(body)}"
        assert isinstance(body["open"], bool) and isinstance(body["choices"], list), f"{where}: malformed {body}"
        assert all(isinstance(c, dict) and set(c) == {"send", "label"} and all(isinstance(v, str) and v for v in c.values())
                   for c in body["choices"]), f"{where}: malformed choices"
        after = check_stored(self.store, cid, before, target, text)
        assert body["open"] is (after is not None), f"{where}: 'open' says {body['open']}"
        level = last_level(self.store, cid) if after is not None else None
        now = after.updated_at if after is not None else time.time()
        check_replies(body["replies"], target, "web", before, level, now, text)

    def check_console(self, cid: str, target: Target) -> bool:
        """The conversation still opens in the console (a supervisor sees every one); False: erased."""
        where = f"{target} ({self.channel})"
        conv = self.store.load(cid)
        page = self.console.get(f"/console/c/{cid}")
        if conv is None:
            assert page.status_code == 404, f"{where}: an erased conversation answers {page.status_code}"
            return False
        assert page.status_code == 200, f"{where}: the console answers {page.status_code} for the conversation"
        page.get_data().decode("utf-8")  # the transcript is in the page (the same template as its live part)
        if conv.handoff == "waiting":
            queue = self.console.get("/console/queue/live")
            assert queue.status_code == 200, f"{where}: the console's queue answers {queue.status_code}"
        return True


# -- long runs: keep searching after the first failure ---------------------------------------------------


def signature(exc: BaseException) -> str:
    """One line that tells one failure from another: the assertion, or the exception and where."""
    if isinstance(exc, AssertionError) and str(exc):
        return "AssertionError: " + str(exc).splitlines()[0][:160]
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/tests/" not in f.filename]
    frame = (frames or traceback.extract_tb(exc.__traceback__) or [None])[-1]
    where = f" at {'/'.join(frame.filename.split('/')[-2:])}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}{where}"


@dataclass
class Findings:
    """Failures a long run has already reported. Later examples that hit one again are counted, not
    raised, so that the search goes on for others instead of finding the same one every time."""

    first: dict = field(default_factory=dict)  # signature -> the report of its first (shrunk) example
    hits: Counter = field(default_factory=Counter)
    examples: int = 0

    def check(self, call, *args) -> None:
        """One example of a search: counted, and a failure already reported is not raised again."""
        self.examples += 1
        try:
            call(*args)
        except Exception as exc:
            if not self.known(exc):
                raise

    def known(self, exc: BaseException) -> bool:
        sig = signature(exc)
        if sig in self.first:
            self.hits[sig] += 1
            return True
        return False

    def add(self, exc: BaseException) -> None:
        # Hypothesis may group several distinct failures of one search.
        group = getattr(exc, "exceptions", None) or [exc]
        for inner in group:
            sig = signature(inner)
            notes = "\n".join(getattr(inner, "__notes__", []) or getattr(exc, "__notes__", []))
            self.first.setdefault(sig, f"{sig}\n{notes}".strip())
            self.hits[sig] += 1

    def report(self) -> str:
        return "\n\n".join(f"[{self.hits[s]} hits] {text}" for s, text in self.first.items())


def run_for(seconds: float, search, findings: Findings) -> int:
    """Run fresh Hypothesis searches until `seconds` have passed; returns how many searches ran."""
    deadline = time.monotonic() + seconds
    searches = 0
    while time.monotonic() < deadline:
        searches += 1
        try:
            search()
        except Exception as exc:  # a new failure, shrunk by Hypothesis: keep it and search on
            findings.add(exc)
    return searches
