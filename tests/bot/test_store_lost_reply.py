"""A message's first round trip whose reply is lost after Redis ran it: the lock it took is its own.

ConversationStore.begin tries a call again once when the connection fails. If the script had already
run (the connection closed on the way back), the lock it took is held under the same token, and the
retry must recognise it at once rather than wait for it to expire as if another process held it."""
from __future__ import annotations

import socket
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from cryptography.fernet import Fernet

from bot.crypto import Vault
from bot.store import ConversationStore, lock_key


def upstream(url: str) -> socket.socket:
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(parsed.path)
    else:
        sock = socket.create_connection((parsed.hostname or "localhost", parsed.port or 6379))
    return sock


class LosesOneReply:
    """A unix-socket proxy to Redis that, once, passes on an EVALSHA and then hangs up instead of
    passing back Redis's reply: the script ran, and the client never hears it did."""

    def __init__(self, url: str):
        self.url, self.armed = url, threading.Event()
        self.path = str(Path(tempfile.mkdtemp()) / "proxy.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = upstream(self.url)
            lose = threading.Event()
            threading.Thread(target=self._up, args=(client, server, lose), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, lose), daemon=True).start()

    def _up(self, client, server, lose):
        while data := _recv(client):
            if b"EVALSHA" in data and self.armed.is_set():
                self.armed.clear()
                lose.set()
            server.sendall(data)
        server.close()

    def _down(self, server, client, lose):
        while data := _recv(server):
            if lose.is_set():  # the script's reply: dropped, and the client's connection with it
                client.shutdown(socket.SHUT_RDWR)  # (a close alone would wait for the other thread's recv)
                client.close()
                break
            client.sendall(data)
        server.close()


def _recv(sock) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


@pytest.mark.parametrize("message_id", ["SM1", None], ids=["a texter's message", "the console or a worker"])
def test_a_retry_after_a_lost_reply_holds_the_lock_its_first_try_took(redis_url, redis_client, message_id):
    proxy = LosesOneReply(redis_url)
    client = redis.Redis(unix_socket_path=proxy.path, socket_timeout=2)
    # Waiting less than the lock lives: a retry that did not know its own lock would give up.
    store = ConversationStore(client, Vault(Fernet.generate_key().decode(), "hash-key"), lock_wait=0.5)
    store.begin("warm-up", "SMwarm")  # the connection made and the scripts loaded before the fault
    redis_client.delete(lock_key("warm-up"))

    proxy.armed.set()
    session = store.begin("lost-reply", message_id)

    assert not proxy.armed.is_set()  # the fault happened: the first try's reply never came back
    assert redis_client.get(lock_key("lost-reply")).decode() == session.token
    store.release(session)
    assert redis_client.get(lock_key("lost-reply")) is None
