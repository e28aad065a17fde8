"""The web chat channel: a page, a JSON API on the same engine as SMS, live counsellor replies, quick exit.

A chat is a conversation with channel "web" whose address is a random token. The page keeps
the token in a JavaScript variable only, so closing the tab (or the quick exit) leaves nothing
on the device; the token is checked against the stored conversation on every call.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import time
from functools import wraps

import redis
from flask import Blueprint, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from flows.catalog import LANGUAGES
from flows.conversation import Conversation
from flows.engine import MAX_TEXT, FlowEngine

from . import ratelimit
from .engine import Inbound
from .errors import ConversationBusy, ConversationGone, HelplineError, StoreUnavailable, origin
from .chat_streams import Claim, takeover_channel
from .events import BUSY, conversation_channel, listen, live_response, subscribe
from .security import client_address
from .extensions import get_helpline, get_redis, get_store
from .store import conv_key, entry, transcript_key

bp = Blueprint("chat", __name__, url_prefix="/chat")
log = logging.getLogger(__name__)

TOKEN_BYTES = 32
MAX_CLIENT_ID = 64
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")
_CLIENT_ID = re.compile(r"[!-~]{1,%d}" % MAX_CLIENT_ID)  # printable ASCII: the page sends hex
# A chat opened and never answered is forgotten after a day; the first message gives it the full retention.
UNTOUCHED_TTL = 24 * 3600
# Transcript entries the page learns about over the stream; the bot's answers come with the POST.
LIVE_SENDERS = ("counsellor", "system")
# A page without a live stream asks for counsellor replies every few seconds; this is well above that.
REPLY_POLLS_PER_MINUTE = 30
# Told to a page whose chat is over; the page then offers a new chat.
ENDED = "event: ended\ndata: {}\n\n"
MAX_INDEX = 10**6  # far past any transcript (bot.store.TRANSCRIPT_MAX); Redis refuses an index past 2^63
# The page's own words; each is chat_<name> in the catalogs.
PAGE_WORDS = (
    "title", "intro", "danger", "log_label", "input_label", "placeholder", "send", "exit", "exit_hint",
    "choices_label", "you", "counsellor", "connecting", "error_network", "error_ended", "slow_down",
    "too_long", "new", "other_language", "noscript",
)


class ChatError(HelplineError):
    """A chat request that gets a JSON error answer instead of a reply."""

    def __init__(self, status: int, error: str, **extra):
        super().__init__(error)
        self.status, self.error, self.extra = status, error, extra


@bp.errorhandler(ChatError)
def _chat_error(exc: ChatError):
    response = jsonify(error=exc.error, **exc.extra)
    response.status_code = exc.status
    if "retry_after" in exc.extra:
        response.headers["Retry-After"] = str(exc.extra["retry_after"])
    return response


def _store_errors(view):
    """Redis trouble, or anything unexpected, answers 503 with the safety numbers, never a 500."""

    @wraps(view)
    def guarded(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except (ChatError, HTTPException, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # Redis trouble, our bug or a library's panic: never a 500, never a dead process
            expected = isinstance(exc, (StoreUnavailable, ConversationBusy, redis.RedisError))
            # Only the type is logged: an exception's own message may quote what the visitor wrote.
            log.error("chat answered 503: %s%s at %s", "" if expected else "unexpected ", type(exc).__name__,
                      origin(exc))
            # Without the store the chat's language is unknown: the safety numbers in every language.
            replies = [_engine().catalog.render(lang, "unavailable") for lang in LANGUAGES]
            raise ChatError(503, "unavailable", replies=replies) from None

    return guarded


# -- the page ------------------------------------------------------------------


@bp.get("")
def page():
    lang = request.args.get("lang", "en")
    if lang not in LANGUAGES:
        lang = "en"
    engine = _engine()
    words = {name: engine.catalog.render(lang, f"chat_{name}", name=engine.helpline_name) for name in PAGE_WORDS}
    other = next(code for code in LANGUAGES if code != lang)
    # bot.security adds the headers: no-store (Back cannot show it from cache), no referrer for the
    # exit page, and frame-ancestors limited to CHAT_EMBED_ORIGINS.
    return render_template("chat.html", lang=lang, other=other, words=words, name=engine.helpline_name,
                           exit_url=current_app.config["CHAT_EXIT_URL"])


# -- the JSON API ----------------------------------------------------------------


@bp.post("/api/session")
@_store_errors
def open_session():
    """Start a chat: a fresh token, and the flow's welcome in the chosen language."""
    body = _body(required=False)
    lang = body.get("lang", "en")
    if lang not in LANGUAGES:
        raise ChatError(400, "bad_request", detail=f"lang must be one of {', '.join(LANGUAGES)}")
    cfg = current_app.config
    _limit("chat-open", "addr:" + client_address(), cfg["CHAT_SESSIONS_PER_HOUR"], 3600)
    _limit("chat-open", "all", cfg["CHAT_SESSIONS_PER_MINUTE_ALL"], 60)

    helpline, store, now = get_helpline(), get_store(), time.time()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    conv = Conversation(id=helpline.conversation_id("web", token), channel="web", address=token, lang=lang)
    # Opening the page is the chat's first message: the flow answers it as it answers a first SMS.
    step = helpline.flows.step(conv, "", now)
    with store.locked(conv.id) as session:
        session.conv = conv
        session.entries += [entry("bot", reply, now) for reply in step.replies]
    pipe = store.redis.pipeline(transaction=False)
    for key in (conv_key(conv.id), transcript_key(conv.id)):
        pipe.expire(key, UNTOUCHED_TTL)
    pipe.execute()
    return jsonify(token=token, lang=conv.lang, replies=step.replies, choices=choices(conv)), 201


@bp.post("/api/messages")
@_store_errors
def post_message():
    body = _body()
    token = _token(body.get("token"))
    text, client_id = body.get("text"), body.get("client_id")
    if not isinstance(text, str) or not text.strip():
        raise ChatError(400, "bad_request", detail="text must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ChatError(400, "too_long", detail=f"text is longer than {MAX_TEXT} characters", limit=MAX_TEXT)
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise ChatError(400, "bad_request", detail=f"client_id must be 1 to {MAX_CLIENT_ID} printable ASCII characters")
    per_chat = current_app.config["CHAT_MESSAGES_PER_MINUTE"]
    _limit("chat-msg", "addr:" + client_address(), per_chat * 10, 60)
    helpline = get_helpline()
    cid = _conversation_of(token)
    ended = helpline.store.load(cid)
    if over(ended) and (ended is None or not helpline.flows.is_emergency(text)):
        # The page offers a new chat instead; it keeps what was typed, for the new one. Danger typed into
        # an ended chat is answered as danger is anywhere: 911 at once, the counsellors alerted, a way back in line.
        raise ChatError(409, "ended", detail="this chat has ended; start a new one")
    _limit("chat-msg", "token:" + token, per_chat, 60)
    _total_within(helpline, token, cid)

    # The page's id for this message: a retry after a lost answer gets the first answer again.
    message_id = "web:" + helpline.store.vault.digest(f"{token}:{client_id}")
    try:
        # Only /api/session starts a chat: a message racing its own quick exit must not bring it back.
        outcome = helpline.handle(Inbound("web", token, text, message_id=message_id), create=False)
    except ConversationGone:
        raise ChatError(404, "not_found", detail="this chat has ended or never existed") from None
    conv = helpline.store.load(cid)
    return jsonify(replies=outcome.replies, choices=choices(conv), open=not over(conv))


@bp.post("/api/exit")
@_store_errors
def quick_exit():
    """Erase the chat now, as a confirmed DELETE does; the page has already left for CHAT_EXIT_URL."""
    token = _token(_body().get("token"))
    cid = _conversation_of(token)
    get_helpline().erase(cid)
    get_redis().delete(_total_key(token))
    return jsonify(erased=True)


@bp.get("/api/events")
@_store_errors
def events():
    """Server-sent events: what a counsellor (or the system) writes to this chat, as it is written."""
    token = _token(request.args.get("token"))
    cid = _conversation_of(token)
    try:
        seen = int(request.headers.get("Last-Event-ID", "-1"))
    except ValueError:
        seen = -1
    seen = seen if -1 <= seen <= MAX_INDEX else -1  # not ours: start from the beginning

    def open_stream():
        # Subscribed before the claim, so that a newer stream's takeover, published the moment after
        # it, is heard (else this stream would hold its slot as a ghost for a minute); and before
        # reading the transcript, so that nothing written in between is missed.
        pubsub = subscribe(get_redis(), conversation_channel(cid), takeover_channel(cid))
        claim = Claim(get_redis(), get_helpline().store.vault, cid, token, client_address())
        try:
            taken = claim.take(current_app.config["CHAT_STREAMS_PER_ADDRESS"])
        except BaseException:
            pubsub.close()
            raise
        if not taken:
            pubsub.close()
            return iter([BUSY])  # the page polls /api/replies meanwhile
        return _stream(get_store(), pubsub, claim, seen)

    return live_response(open_stream)


@bp.get("/api/replies")
@_store_errors
def replies():
    """What the stream would have sent after index `after`, for a page that has no stream: polling."""
    token = _token(request.args.get("token"))
    cid = _conversation_of(token)  # first: a made-up token creates no counter
    _limit("chat-poll", "token:" + token, REPLY_POLLS_PER_MINUTE, 60)
    try:
        seen = int(request.args.get("after", "-1"))
    except ValueError:
        seen = None
    if seen is None or not -1 <= seen <= MAX_INDEX:
        raise ChatError(400, "bad_request", detail="after must be a transcript index") from None
    store = get_store()
    found = [{"id": index, **reply} for reply, index in live_entries(store, cid, seen)]
    # Read after the replies: a page told "not open" has every reply written before the end.
    return jsonify(replies=found, open=not over(store.load(cid)))


def _stream(store, pubsub, claim: Claim, seen: int):
    try:
        yield "retry: 2000\nevent: live\ndata: {}\n\n"
        for reply, seen in live_entries(store, claim.conv_id, seen):
            yield _frame(reply, seen)
        if over(store.load(claim.conv_id)):
            yield ENDED  # a page reconnecting to a chat that ended meanwhile
        for event in listen(pubsub):
            if event is None:
                yield ": still here\n\n"
            elif event.get("kind") in ("reply", "ended"):
                for reply, seen in live_entries(store, claim.conv_id, seen):
                    yield _frame(reply, seen)
                if event["kind"] == "ended" and over(store.load(claim.conv_id)):
                    # The closing message is written just after this: the stream goes on to carry it,
                    # and the page closes the stream when it hears "ended" a second time.
                    yield ENDED
            elif event.get("kind") == "erased":
                yield ENDED
                return
            elif claim.superseded_by(event):
                return  # the same page opened a newer stream: this one is a ghost
    except redis.RedisError:
        # Redis went away, or the app is shutting down under the stream: the page's EventSource reconnects.
        log.warning("a chat stream lost Redis; the page reconnects")
    finally:
        pubsub.close()
        try:
            claim.release()
        except redis.RedisError:
            pass  # the claim expires by itself (chat_streams.SLACK_SECONDS)


def over(conv: Conversation | None) -> bool:
    """Is this chat over: erased, or ended by a counsellor? Unlike an SMS thread, where a text after
    the end starts again, a web chat is not taken up again: the page offers a new one."""
    # bot.console.handoff.end records the outcome, and nothing takes it away.
    return conv is None or "outcome" in conv.slots


def _frame(reply: dict, index: int) -> str:
    return f"id: {index}\nevent: reply\ndata: {json.dumps(reply)}\n\n"


def live_entries(store, cid: str, seen: int):
    """({from, text}, transcript index) for each counsellor or system entry after index `seen`."""
    start = seen + 1
    for index, item in enumerate(store.transcript(cid, start), start=start):
        if item.get("from") in LIVE_SENDERS:
            # The system's closing message is stored as a counsellor entry by "system"; no names go out.
            sender = "system" if item.get("by") == "system" else item["from"]
            yield {"from": sender, "text": item.get("text", "")}, index


# -- helpers -------------------------------------------------------------------


def choices(conv: Conversation | None) -> list[dict]:
    """Buttons for the state the chat is in: its numbered answers, then the menu where the flow allows it.

    Labels are catalog texts `chat_choice_<option label>`; nothing here names a state or an answer.
    """
    engine = _engine()
    if conv is None or conv.handoff == "active" or conv.slots.get("_confirm_delete"):
        return []  # a counsellor is talking; or "erase all?" asks for a typed YES, not a button
    state = engine.flow.states.get(conv.state)
    if conv.handoff and (state is None or state.handoff):
        return []  # in line: nothing to choose until they ask for the menu
    lang = conv.lang

    def label(name: str) -> str:
        return engine.catalog.render(lang, f"chat_choice_{name}")

    meanings = conv.slots.get("_clarify")
    if meanings:  # "Did you mean: 1 …, 2 …? Or 3 a person": the same three as buttons
        texts = [engine.meaning(lang, m) for m in meanings] + [label("counsellor")]
        return [{"send": str(n), "label": text[:1].upper() + text[1:]} for n, text in enumerate(texts, start=1)]
    if state is None or not state.options:
        return []

    out = [{"send": str(n), "label": label(opt.label)} for n, opt in enumerate(state.options, start=1)]
    menu = next((g for g in engine.flow.globals if "0" in g.words and g.to), None)
    # The menu is offered everywhere past the opening question (which must be answered first).
    opening = {b.to for b in engine.flow.states[engine.flow.initial].branches}
    if menu is not None and state.name != menu.to and state.name not in opening:
        out.append({"send": "0", "label": label(menu.id)})
    return out


def _engine() -> FlowEngine:
    return get_helpline().flows


def _body(required: bool = True) -> dict:
    if not request.get_data():
        if required:
            raise ChatError(400, "bad_request", detail="a JSON body is required")
        return {}
    if not request.is_json:
        raise ChatError(400, "bad_request", detail="send Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes: not a body any page sends
        body = None
    if not isinstance(body, dict):
        raise ChatError(400, "bad_request", detail="the body must be a JSON object")
    return body


def _token(value) -> str:
    # token_urlsafe(32) is 43 characters of the URL-safe alphabet; anything else cannot be ours.
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ChatError(400, "bad_request", detail="token is missing or malformed")
    return value


def _conversation_of(token: str) -> str:
    """The conversation id of a live chat token, or 404."""
    helpline = get_helpline()
    cid = helpline.conversation_id("web", token)
    if not helpline.store.redis.exists(conv_key(cid)):
        raise ChatError(404, "not_found", detail="this chat has ended or never existed")
    return cid


def _total_within(helpline, token: str, cid: str) -> None:
    """A chat takes CHAT_MAX_MESSAGES in all; then the visitor is asked to start a new one."""
    if ratelimit.count(get_redis(), _total_key(token), helpline.store.ttl) > current_app.config["CHAT_MAX_MESSAGES"]:
        conv = helpline.store.load(cid)
        raise ChatError(409, "chat_full", replies=[helpline.flows.say(conv, "chat_full")] if conv else [])


def _total_key(token: str) -> str:
    return f"cm:{get_helpline().store.vault.digest('chat-total:' + token)}"


def _limit(bucket: str, who: str, limit: int, window: int) -> None:
    vault = get_helpline().store.vault
    if not ratelimit.allow(get_redis(), bucket, vault.digest(who), limit, window):
        retry = max(1, int(window - time.time() % window))
        raise ChatError(429, "too_many_requests", retry_after=retry)

