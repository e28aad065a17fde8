"""`helpline chat`: a texter's view of the help line in a terminal, counsellors' replies included.

As SMS (the default), the conversation is on the "cli" channel, which the engine treats as a
carrier like SMS (STOP and START work; the console shows it as "Terminal"), and messages go to
the engine as the SMS webhook's do. As web, it is a web chat, opened and written through the
web chat's own JSON API in this process, so the page's welcome, language and buttons are the same.

Either way a counsellor's replies and the closing message show up as they are written, while
the texter types: a thread listens on the conversation's event channel and reads them from the
transcript, as the chat page's live stream does.
"""
from __future__ import annotations

import math
import re
import secrets
import sys
import threading
from dataclasses import dataclass, field

import click
import redis

from . import events
from .chat import live_entries
from .engine import Inbound
from .store import transcript_key

_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

PROMPT = "you> "
# The chat API's errors, as the page words them (chat_<word> in the catalogs); the rest are network trouble.
WEB_ERRORS = {"not_found": "error_ended", "ended": "error_ended", "too_many_requests": "slow_down",
              "too_long": "too_long"}


@dataclass
class Answer:
    """What the help line answered to one message (or to opening the chat)."""

    replies: list[str]
    choices: list[dict] = field(default_factory=list)  # the web chat's buttons
    over: bool = False  # the chat cannot go on: the terminal leaves


class SmsTexter:
    """Someone texting from a phone, on the terminal channel: the engine answers as it answers /sms."""

    channel = "cli"

    def __init__(self, app, name: str | None):
        self.helpline = app.extensions["helpline"]
        self.address = name or f"terminal-{secrets.token_hex(4)}"
        self.conv_id = self.helpline.conversation_id(self.channel, self.address)

    def open(self) -> Answer:
        return Answer([])  # a text conversation starts with the texter's first message

    def send(self, text: str) -> Answer:
        outcome = self.helpline.handle(Inbound(self.channel, self.address, text, message_id=secrets.token_hex(8)))
        return Answer(outcome.replies)

    def label(self, sender: str) -> str:
        return self.helpline.flows.helpline_name  # a phone shows every message as from the help line's number


class WebTexter:
    """Someone in the web chat, without a browser: the page's own requests, made in this process."""

    channel = "web"

    def __init__(self, app, lang: str):
        self.helpline = app.extensions["helpline"]
        self.http = app.test_client()
        self.lang = lang
        self.token = self.conv_id = None

    def open(self) -> Answer:
        answer = self.http.post("/chat/api/session", json={"lang": self.lang})
        body = answer.get_json()
        if answer.status_code != 201:
            return self._trouble(body)
        self.token = body["token"]
        self.conv_id = self.helpline.conversation_id(self.channel, self.token)
        return Answer(body["replies"], body["choices"])

    def send(self, text: str) -> Answer:
        answer = self.http.post("/chat/api/messages",
                                json={"token": self.token, "text": text, "client_id": secrets.token_hex(8)})
        body = answer.get_json()
        if answer.status_code != 200:
            return self._trouble(body)
        if body.get("open") is False:  # erased, or ended by a counsellor: the page closes the chat here too
            return Answer([*body["replies"], self._words("error_ended")], over=True)
        return Answer(body["replies"], body["choices"])

    def label(self, sender: str) -> str:
        if sender == "counsellor":
            return self._words("counsellor")
        return self.helpline.flows.helpline_name

    def _trouble(self, body: dict) -> Answer:
        error = (body or {}).get("error", "")
        over = error in ("not_found", "ended", "chat_full") or self.token is None  # a chat that never opened
        if body and body.get("replies"):  # the store is down (the safety numbers), or the chat is full
            return Answer(body["replies"], over=over)
        return Answer([self._words(WEB_ERRORS.get(error, "error_network"))], over=over)

    def _words(self, name: str) -> str:
        """The chat page's own words (chat_<name> in the catalogs), in the chat's language."""
        return self.helpline.flows.catalog.render(self.lang, f"chat_{name}")


class Screen:
    """One terminal written by two threads: a reply arriving while the texter types goes above the
    prompt, which is drawn again with what was typed so far."""

    def __init__(self, interactive: bool):
        self.interactive = interactive
        self.lock = threading.Lock()
        self.prompting = False
        self.closed = False
        self.readline = None
        if interactive:
            import readline  # input() edits lines with it; a reply redraws its buffer

            self.readline = readline

    def read(self) -> str | None:
        """The texter's next message; None when they leave (Ctrl-D, Ctrl-C, the end of piped input)."""
        if not self.interactive:
            line = sys.stdin.readline()
            if not line:
                return None
            text = line.rstrip("\r\n")
            self.show(PROMPT, text)  # piped: no prompt, but the message in its place, as a transcript reads
            return text
        with self.lock:
            self.prompting = True
        try:
            return input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            click.echo()
            return None
        finally:
            with self.lock:
                self.prompting = False

    def show(self, label: str, text: str) -> None:
        text = _UNPRINTABLE.sub("", text)  # a bell or an escape sequence in a reply must not drive the terminal
        block = label + ("\n" + " " * len(label)).join(text.split("\n"))
        with self.lock:
            if self.closed:
                return
            if self.prompting:
                # Clear the half-typed line, print above it, then draw the prompt and the typing again.
                sys.stdout.write("\r\x1b[2K" + block + "\n" + PROMPT + self.readline.get_line_buffer())
                sys.stdout.flush()
            else:
                click.echo(block)

    def close(self) -> None:
        with self.lock:
            self.closed = True


class Listener(threading.Thread):
    """Shows what a counsellor (or the system) writes to the conversation, as it is written."""

    def __init__(self, app, texter, screen: Screen):
        super().__init__(name="chat-replies", daemon=True)
        self.store, self.redis = app.extensions["store"], app.extensions["redis"]
        self.texter, self.screen = texter, screen
        self.stopped = threading.Event()
        # What is in the transcript already was shown, or was written before this chat (an SMS texter
        # coming back with --name); read now, so that a reply written from here on is not missed.
        self.seen = self.redis.llen(transcript_key(texter.conv_id)) - 1
        self.pubsub = events.subscribe(self.redis, events.conversation_channel(texter.conv_id))

    def run(self) -> None:
        try:
            self._show_new()
            # A heartbeat each second: a stopped listener ends within one.
            for event in events.listen(self.pubsub, seconds=math.inf, heartbeat=1.0):
                if self.stopped.is_set():
                    return
                if event is None:
                    continue
                if event.get("kind") == "reply":
                    self._show_new()
                elif event.get("kind") == "erased":
                    self.seen = -1  # the next message starts a new conversation, with a new transcript
        except redis.RedisError:
            pass  # the Redis this command started has stopped with it: there is nothing more to hear
        finally:
            self.pubsub.close()

    def _show_new(self) -> None:
        for reply, self.seen in live_entries(self.store, self.texter.conv_id, self.seen):
            self.screen.show(self.texter.label(reply["from"]) + "> ", reply["text"])

    def stop(self) -> None:
        self.stopped.set()


def talk(app, texter, interactive: bool) -> None:
    """Read the texter's messages until they leave, showing every answer and every live reply."""
    screen = Screen(interactive)
    opening = texter.open()
    _show_answer(screen, texter, opening)
    if opening.over:
        return
    listener = Listener(app, texter, screen)
    listener.start()
    try:
        while True:
            text = screen.read()
            if text is None:
                break
            if not text.strip():
                continue
            answer = texter.send(text)
            _show_answer(screen, texter, answer)
            if answer.over:
                break
    finally:
        screen.close()
        listener.stop()


def _show_answer(screen: Screen, texter, answer: Answer) -> None:
    for reply in answer.replies:
        screen.show(texter.label("bot") + "> ", reply)
    if answer.choices:  # the web chat's buttons, as the numbers to type
        screen.show("   ", "  ".join(f"[{c['send']}] {c['label']}" for c in answer.choices))
