"""Real network faults between the app and a real Redis: a TCP proxy that can cut a connection
at the worst moments of a transaction, and can speak TLS to the client (rediss://)."""
from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import threading
import time
from pathlib import Path

EXEC = b"EXEC"
# Sent after a cut command: Redis answers commands in order, so its PONG means the command has run.
PING, PONG = b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"


class CuttingProxy:
    """127.0.0.1:<port> → Redis on target_port. arm("before"|"after", times, command) cuts the next
    `times` sendings of `command` (EXEC, the end of a transaction, unless given): before it reaches
    Redis, or after Redis ran it but before its answer returns. subscribe_delay holds each SUBSCRIBE
    that long before Redis sees it (a slow network)."""

    def __init__(self, target_port: int, tls: ssl.SSLContext | None = None):
        self.target = ("127.0.0.1", target_port)
        self.tls = tls
        self.mode, self.left, self.cuts, self.command = None, 0, 0, _sent(EXEC)
        self.subscribe_delay = 0.0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode: str | None, times: int = 1, command: bytes = EXEC) -> None:
        with self._lock:
            self.mode, self.left, self.command = mode, times, _sent(command)

    def close(self) -> None:
        self._closing = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.tls is not None:
                try:
                    client = self.tls.wrap_socket(client, server_side=True)
                except (ssl.SSLError, OSError):
                    client.close()
                    continue
            upstream = socket.create_connection(self.target)
            link = {"cut": False, "ran": threading.Event()}
            threading.Thread(target=self._to_server, args=(client, upstream, link), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client, link), daemon=True).start()

    def _take(self) -> str | None:
        with self._lock:
            if self.left <= 0:
                return None
            self.left -= 1
            self.cuts += 1
            return self.mode

    def _to_server(self, client, upstream, link) -> None:
        try:
            while data := client.recv(65536):
                if self.subscribe_delay and b"SUBSCRIBE" in data:
                    time.sleep(self.subscribe_delay)
                mode = self._take() if self.command.search(data) else None
                if mode == "before":
                    break
                if mode == "after":
                    link["cut"] = True  # Redis's answer to this command never reaches the app
                    upstream.sendall(data + PING)
                    link["ran"].wait(5)  # until Redis has run it (its PONG came back), then the cut
                    break
                upstream.sendall(data)
        except OSError:
            pass
        _close(client, upstream)

    def _to_client(self, upstream, client, link) -> None:
        swallowed = b""
        try:
            while data := upstream.recv(65536):
                if link["cut"]:
                    swallowed += data
                    if swallowed.endswith(PONG):
                        link["ran"].set()
                        break
                    continue
                client.sendall(data)
        except OSError:
            pass
        _close(client, upstream)


def _sent(command: bytes) -> re.Pattern:
    """A command as a client sends it: an array whose first element is the command's name."""
    return re.compile(rb"\*\d+\r\n\$%d\r\n%s\r\n" % (len(command), re.escape(command)))


def _close(*socks) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the CA file a client trusts it with."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "redis.crt", folder / "redis.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
