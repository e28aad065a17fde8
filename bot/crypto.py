"""Encryption at rest and the keyed hash that names conversations without their address."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import ConfigurationError

# Without a real Twilio token in development, a generated one lets `helpline sms` sign test messages.
_KEY_NAMES = ("SECRET_KEY", "HELPLINE_DATA_KEY", "HELPLINE_HASH_KEY", "TWILIO_AUTH_TOKEN")


class Vault:
    """Encrypts what a texter wrote or is (numbers, texts) and hashes addresses into ids."""

    def __init__(self, data_keys: str, hash_key: str):
        keys = [k.strip() for k in data_keys.split(",") if k.strip()]
        if not keys:
            raise ConfigurationError("HELPLINE_DATA_KEY holds no key")
        try:
            fernets = [Fernet(k.encode()) for k in keys]
            self._fernet = MultiFernet(fernets)
        except ValueError as exc:
            raise ConfigurationError("HELPLINE_DATA_KEY is not a list of Fernet keys") from exc
        self._newest = fernets[0]
        self._hash_key = hash_key.encode()

    def seal(self, value: object) -> bytes:
        """JSON-encode and encrypt a value."""
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def open(self, token: bytes | str) -> object:
        """Decrypt and JSON-decode a value written by seal(); raises InvalidToken on a bad key."""
        if isinstance(token, str):
            token = token.encode()
        return json.loads(self._fernet.decrypt(token))

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt a token under the newest key (it keeps its original timestamp)."""
        return self._fernet.rotate(token)

    def is_current(self, token: bytes) -> bool:
        """Does the newest key alone open this token? (What must hold before an old key is removed.)"""
        try:
            self._newest.decrypt(token)
        except InvalidToken:
            return False
        return True

    def conversation_id(self, channel: str, address: str) -> str:
        """A stable id for (channel, address) that reveals neither."""
        digest = hmac.new(self._hash_key, f"{channel}:{address}".encode(), hashlib.sha256)
        return base64.b32encode(digest.digest()[:20]).decode().lower()

    def digest(self, value: str) -> str:
        """A keyed hash for rate-limit and dedupe keys."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()[:32]


def ensure_keys(config: dict, instance_path: str) -> None:
    """Fill missing keys: generated once into the instance folder in development, refused in production."""
    missing = [name for name in _KEY_NAMES if not config.get(name)]
    if not missing:
        return
    if config.get("HELPLINE_ENV") == "production":
        raise ConfigurationError(f"production needs these settings: {', '.join(missing)}")
    path = Path(instance_path) / "dev-keys.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    changed = False
    for name in missing:
        if name not in stored:
            stored[name] = Fernet.generate_key().decode() if name == "HELPLINE_DATA_KEY" else secrets.token_urlsafe(32)
            changed = True
        config[name] = stored[name]
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written owner-only: these keys open every stored conversation.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=1)


__all__ = ["Vault", "ensure_keys", "InvalidToken"]
