"""Encryption at rest and the keyed hash that names conversations without their address.

A sealed value is `hv1.` + base64url(key id, nonce, AES-256-GCM ciphertext and tag): authenticated
encryption in one library call. Fernet (AES-128-CBC + HMAC-SHA256), which the help line used at
first, costs several times as much per value, and a message seals four; Fernet tokens written
before still open, and `helpline keys rotate` rewrites them in this format. HELPLINE_DATA_KEY keeps
its form (Fernet keys, newest first); each key's AES key is derived from it with HKDF, and the key
id (a hash of that, never the key) says which key opens a value without trying each.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigurationError

# Without a real Twilio token in development, a generated one lets `helpline sms` sign test messages.
_KEY_NAMES = ("SECRET_KEY", "HELPLINE_DATA_KEY", "HELPLINE_HASH_KEY", "TWILIO_AUTH_TOKEN")

_json = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per json.dumps call
SEALED = b"hv1."  # how every value sealed now begins (a format version)
FERNET = b"gAAAAA"  # how a Fernet token begins: version byte 0x80 and a timestamp's zero high bytes
_KEY_ID, _NONCE, _TAG = 4, 12, 16  # bytes


def _dumps(value: object) -> bytes:
    """JSON for seal(): orjson, a fifth of the json module's cost (a message seals four values, issue
    17); the json module for what orjson refuses (a lone surrogate, an integer past 64 bits)."""
    try:
        # Passed through (so refused, as the json module refuses them) rather than written as orjson would.
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
                            | orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError:
        return _json(value).encode()


# Every byte a digit or not: a run of 19 digits may be a whole number past 64 bits, which orjson
# reads back as a float (2 ** 64 + 1 as 18446744073709551616.0) where the json module gives the number.
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_NUMBER = b"0" * 19


def _loads(raw: bytes) -> object:
    if _LONG_NUMBER in raw.translate(_DIGITS):  # ~1 µs for a conversation; rare: a long number or a small float
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # what the json module wrote above, or before: a lone surrogate as \ud800


def is_sealed(value: bytes) -> bool:
    """Is this stored value one of ours, encrypted (in either format)?"""
    return value.startswith((SEALED, FERNET))


def _derive(fernet_key: str) -> tuple[bytes, AESGCM]:
    """(key id, cipher) for one HELPLINE_DATA_KEY entry."""
    secret = base64.urlsafe_b64decode(fernet_key)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"helpline vault v1").derive(secret)
    return hashlib.sha256(b"helpline key id:" + key).digest()[:_KEY_ID], AESGCM(key)


class Vault:
    """Encrypts what a texter wrote or is (numbers, texts) and hashes addresses into ids."""

    def __init__(self, data_keys: str, hash_key: str):
        keys = [k.strip() for k in data_keys.split(",") if k.strip()]
        if not keys:
            raise ConfigurationError("HELPLINE_DATA_KEY holds no key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])  # validates every key, too
        except ValueError as exc:
            raise ConfigurationError("HELPLINE_DATA_KEY is not a list of Fernet keys") from exc
        ciphers = [_derive(k) for k in keys]
        self._newest_id, self._newest = ciphers[0]
        self._ciphers = dict(reversed(ciphers))  # the same key listed twice: its first place wins
        self._hash_key = hash_key.encode()

    def seal(self, value: object) -> bytes:
        """JSON-encode and encrypt a value."""
        return self._seal(_dumps(value))

    def open(self, token: bytes | str) -> object:
        """Decrypt and JSON-decode a value written by seal(); raises InvalidToken when no key opens it."""
        return _loads(self._open(token.encode() if isinstance(token, str) else token))

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt a value under the newest key (and in the current format)."""
        return self._seal(self._open(token))

    def is_current(self, token: bytes) -> bool:
        """Does the newest key alone open this value? (What must hold before an old key is removed.)"""
        if not token.startswith(SEALED):
            return False
        try:
            self._open(token, {self._newest_id: self._newest})
        except InvalidToken:
            return False
        return True

    def _seal(self, plain: bytes) -> bytes:
        head = SEALED + self._newest_id  # bound to the ciphertext as associated data
        nonce = os.urandom(_NONCE)  # random 96-bit nonces: safe for billions of values per key
        return SEALED + base64.urlsafe_b64encode(self._newest_id + nonce + self._newest.encrypt(nonce, plain, head))

    def _open(self, token: bytes, ciphers: dict | None = None) -> bytes:
        if not token.startswith(SEALED):
            if ciphers is None and token.startswith(FERNET):
                return self._fernet.decrypt(token)  # written before the current format
            raise InvalidToken
        try:
            raw = base64.urlsafe_b64decode(token[len(SEALED):])
        except ValueError as exc:
            raise InvalidToken from exc
        if len(raw) < _KEY_ID + _NONCE + _TAG:
            raise InvalidToken  # cut short: not even a tag
        key_id, nonce, body = raw[:_KEY_ID], raw[_KEY_ID:_KEY_ID + _NONCE], raw[_KEY_ID + _NONCE:]
        cipher = (self._ciphers if ciphers is None else ciphers).get(key_id)
        if cipher is None:
            raise InvalidToken
        try:
            return cipher.decrypt(nonce, body, SEALED + key_id)
        except InvalidTag as exc:
            raise InvalidToken from exc

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


__all__ = ["Vault", "ensure_keys", "is_sealed", "InvalidToken", "SEALED"]
