"""The message path made cheaper (issue 17) still does exactly what it did: what a reviewer tried
to break in each change, kept as tests.

Sealed values (orjson), every response's headers and request id (one after-hook), the triage cache.
"""
from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from bot.crypto import Vault

KEY = Fernet.generate_key().decode()


def old_open(vault: Vault, token: bytes) -> object:
    """How the code before orjson (commit 8dcb463, what a rollback runs) opened a sealed value."""
    return json.loads(vault._open(token))


def old_seal(vault: Vault, value: object) -> bytes:
    """How the code before orjson sealed a value (json.JSONEncoder, compact, ASCII escapes)."""
    return vault._seal(json.JSONEncoder(separators=(",", ":")).encode(value).encode())


# Whole numbers orjson cannot write (past 64 bits) or would read back as a float (past its range):
# the json module writes them, and they must come back as the same whole number. 2 ** 70 would not
# show it: as a float it is exact, and equal.
BIG_NUMBERS = [2 ** 64 + 1, -(2 ** 63) - 1, 12345678901234567890123, -98765432109876543210987654321]


@pytest.mark.parametrize("number", BIG_NUMBERS)
def test_a_number_past_64_bits_in_a_sealed_record_opens_as_the_same_whole_number(number):
    vault = Vault(KEY, "h")
    record = {"count": number, "counts": [number, 1]}
    opened = vault.open(vault.seal(record))
    assert opened == record and type(opened["count"]) is int and opened["count"] == number


@pytest.mark.parametrize("number", BIG_NUMBERS)
def test_a_number_past_64_bits_sealed_before_orjson_opens_as_the_same_whole_number(number):
    vault = Vault(KEY, "h")
    opened = vault.open(old_seal(vault, {"count": number}))
    assert type(opened["count"]) is int and opened["count"] == number


ROUND_TRIPS = {
    "a texter's words": {"text": "quiero hablar con alguien 🙏 — ¿sí?", "at": 1796152550.345, "lang": "es"},
    "a lone surrogate from a web page": {"text": "half an emoji \ud83d"},
    "numbers as keys": {1: "one", 2.5: "two and a half", None: "none", True: "yes"},
    "nested lists and tuples": {"a": (1, [2, (3, "x")]), "b": []},
    "numbers at the edges of 64 bits": {"max": 2 ** 64 - 1, "min": -(2 ** 63), "big": 2 ** 64 + 7},
    "small and large floats": {"tiny": 5e-324, "small": 0.000123456789012345678, "big": 1e300, "neg": -0.0},
    "empty values": {"s": "", "l": [], "d": {}, "n": None, "f": False},
    "a str subclass and a dict subclass": type("D", (dict,), {})(k=type("S", (str,), {})("v")),
}


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=list(ROUND_TRIPS))
def test_what_is_sealed_now_opens_the_same_now_before_orjson_and_after_a_rollback(value):
    vault = Vault(KEY, "h")
    expected = json.loads(json.dumps(value))  # what the json module always gave back
    sealed = vault.seal(value)
    assert vault.open(sealed) == expected
    assert old_open(vault, sealed) == expected  # a rollback to the code before orjson reads it
    assert vault.open(old_seal(vault, value)) == expected  # a value written before orjson
