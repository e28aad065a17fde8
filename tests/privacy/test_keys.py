"""Data-key rotation: old data reads after a new key is prepended, re-encryption lets the old key go."""
from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet, InvalidToken

from bot import create_app
from bot.cli import main
from bot.crypto import Vault
from bot.store import conv_key, dedupe_key, transcript_key
from tests.conftest import AUTH_TOKEN, Texter, app_config

NUMBER = "+16615550123"


@pytest.fixture
def keys():
    return {"old": Fernet.generate_key().decode(), "new": Fernet.generate_key().decode()}


def make_app(redis_url, tmp_path, data_key):
    return create_app(app_config(redis_url, tmp_path / "instance", HELPLINE_DATA_KEY=data_key))


def cli(redis_url, tmp_path, data_key, *args):
    env = {"REDIS_URL": redis_url, "HELPLINE_DATA_KEY": data_key, "HELPLINE_HASH_KEY": "test-hash-key",
           "SECRET_KEY": "test-secret", "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "HELPLINE_INSTANCE_PATH": str(tmp_path / "instance")}
    return CliRunner().invoke(main, ["keys", *args], env=env)


def everything_reads(app, cid):
    store = app.extensions["store"]
    conv = store.load(cid)
    return conv.address, [e["text"] for e in store.transcript(cid)]


def test_rotation_old_key_can_go(redis_url, redis_client, tmp_path, keys):
    old_app = make_app(redis_url, tmp_path, keys["old"])
    texter = Texter(old_app.test_client(), NUMBER)
    texter.send("hi")
    texter.send("1")
    sid = "SM" + "c" * 32
    texter.post(texter.form("2", sid=sid))
    # A record of another shape (as the sending engineer's outbound hash), sealed under the old key.
    old_vault = old_app.extensions["vault"]
    redis_client.hset("o:test", mapping={"to": old_vault.seal(NUMBER), "status": "queued"})
    redis_client.expire("o:test", 3600)
    cid = old_app.extensions["helpline"].conversation_id("sms", NUMBER)
    before = everything_reads(old_app, cid)
    ttls = {k: redis_client.ttl(k) for k in (conv_key(cid), transcript_key(cid), dedupe_key(cid, sid), "o:test")}

    # 1. prepend the new key: old data still reads, new writes use the new key
    both = f"{keys['new']},{keys['old']}"
    assert everything_reads(make_app(redis_url, tmp_path, both), cid) == before
    checked = cli(redis_url, tmp_path, both, "check")
    assert checked.exit_code == 1 and "not under the newest data key yet" in checked.output

    # 2. rotate: everything re-encrypted under the new key, TTLs kept
    rotated = cli(redis_url, tmp_path, both, "rotate")
    assert rotated.exit_code == 0, rotated.output
    assert "every value opens with a configured data key" in rotated.output
    for key, ttl in ttls.items():
        assert 0 < redis_client.ttl(key) <= ttl
    assert cli(redis_url, tmp_path, both, "check").exit_code == 0

    # 3. remove the old key: everything still reads, the conversation carries on where it was
    new_app = make_app(redis_url, tmp_path, keys["new"])
    assert everything_reads(new_app, cid) == before
    assert new_app.extensions["vault"].open(redis_client.hget("o:test", "to")) == NUMBER
    assert new_app.extensions["vault"].open(redis_client.get(dedupe_key(cid, sid)))["replies"]
    assert "How can we help" in Texter(new_app.test_client(), NUMBER).send("0")
    assert new_app.extensions["store"].load(cid).state == "menu"
    # ...and the old key alone opens nothing any more
    with pytest.raises(InvalidToken):
        Vault(keys["old"], "test-hash-key").open(redis_client.get(conv_key(cid)))


def test_rotate_is_idempotent(redis_url, redis_client, tmp_path, keys):
    Texter(make_app(redis_url, tmp_path, keys["old"]).test_client(), NUMBER).send("hi")
    both = f"{keys['new']},{keys['old']}"
    first = cli(redis_url, tmp_path, both, "rotate")
    second = cli(redis_url, tmp_path, both, "rotate")
    assert " 0 re-encrypted" not in first.output
    assert " 0 re-encrypted" in second.output and second.exit_code == 0


def test_value_under_an_unknown_key_fails_loudly(redis_url, redis_client, tmp_path, keys):
    app = make_app(redis_url, tmp_path, keys["new"])
    stranger = Vault(Fernet.generate_key().decode(), "test-hash-key")
    redis_client.set(conv_key("strangerid"), stranger.seal({"id": "strangerid"}))
    with pytest.raises(InvalidToken):
        app.extensions["store"].load("strangerid")
    result = cli(redis_url, tmp_path, keys["new"], "rotate")
    assert result.exit_code == 1
    assert "c:strangerid" in result.output
    check = cli(redis_url, tmp_path, keys["new"], "check")
    assert check.exit_code == 1
    # Not "run rotate" (it would not help): the key these were written with is missing.
    assert "1 values in 1 entries open with no configured data key" in check.output
    assert "not under the newest data key yet" not in check.output


def test_a_bad_data_key_is_one_line_not_a_traceback(redis_url, tmp_path):
    result = cli(redis_url, tmp_path, "garbage", "check")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: HELPLINE_DATA_KEY is not a list of Fernet keys"]


def test_generate_prints_a_usable_key():
    result = CliRunner().invoke(main, ["keys", "generate"])
    assert result.exit_code == 0
    key = result.output.strip()
    assert Vault(key, "h").open(Vault(key, "h").seal("x")) == "x"


# -- the sealed format ------------------------------------------------------------------


def test_a_sealed_value_shows_nothing_and_every_change_to_it_is_refused(keys):
    vault = Vault(keys["new"], "h")
    token = vault.seal({"address": NUMBER, "text": "he took my papers"})
    assert token.startswith(b"hv1.") and b"papers" not in token and NUMBER.encode() not in token
    assert vault.seal("same") != vault.seal("same")  # a fresh nonce every time
    raw = base64.urlsafe_b64decode(token[len(b"hv1."):])
    for i in range(len(raw)):  # key id, nonce, ciphertext and tag: any changed byte is caught
        changed = raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1:]
        with pytest.raises(InvalidToken):
            vault.open(b"hv1." + base64.urlsafe_b64encode(changed))
    with pytest.raises(InvalidToken):
        vault.open(token[:-4])
    for cut in (0, 3, 10, 20, 31):  # cut short anywhere, even before the tag: refused the same way
        with pytest.raises(InvalidToken):
            vault.open(b"hv1." + base64.urlsafe_b64encode(raw[:cut]))
    with pytest.raises(InvalidToken):
        vault.open(b"plain text")


def test_each_key_opens_its_own_values_and_only_the_newest_is_current(keys):
    both = Vault(f"{keys['new']},{keys['old']}", "h")
    old, new = Vault(keys["old"], "h"), Vault(keys["new"], "h")
    assert both.open(old.seal("from before")) == "from before"
    assert both.open(new.seal("from now")) == "from now"
    assert new.open(both.seal("x")) == "x"  # the newest key writes
    with pytest.raises(InvalidToken):
        old.open(both.seal("x"))
    assert both.is_current(new.seal("x")) and not both.is_current(old.seal("x"))
    assert both.is_current(both.rotate(old.seal("x")))


def test_values_written_with_fernet_still_open_and_rotate_to_the_current_format(
        redis_url, redis_client, tmp_path, keys):
    legacy = Fernet(keys["new"].encode()).encrypt(b'{"text":"written before"}')
    redis_client.set("o:legacy", legacy, ex=3600)
    vault = Vault(keys["new"], "h")
    assert vault.open(legacy) == {"text": "written before"} and not vault.is_current(legacy)
    assert cli(redis_url, tmp_path, keys["new"], "check").exit_code == 1
    result = cli(redis_url, tmp_path, keys["new"], "rotate")
    assert result.exit_code == 0 and "1 re-encrypted" in result.output
    rotated = redis_client.get("o:legacy")
    assert rotated.startswith(b"hv1.") and vault.open(rotated) == {"text": "written before"}
    assert 0 < redis_client.ttl("o:legacy") <= 3600


@pytest.mark.parametrize("value", [
    {"text": "quiero hablar con alguien 🙏", "at": 1796152550.345, "lang": "es"},
    {"text": "half an emoji \ud83d"},  # a lone surrogate a web page can send: orjson refuses it, json does not
    {"count": 2 ** 64 + 1},  # past 64 bits: orjson refuses to write it, and reads it back as a float
    {1: "a number as a key comes back as a string, as with the json module"},
])
def test_whatever_a_texter_sends_seals_and_opens_to_the_same_value(keys, value):
    vault = Vault(keys["new"], "h")
    expected = {str(k): v for k, v in value.items()}
    assert vault.open(vault.seal(value)) == expected
    # A value sealed before orjson (the json module's ASCII escapes) opens the same.
    import json

    assert vault.open(vault._seal(json.dumps(value).encode())) == expected
