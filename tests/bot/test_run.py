"""`helpline run` as an operator starts it: the port it is given, the banner, Ctrl-C, a process that dies."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.bot.output import Output
from tests.ops.processes import BIN, ROOT, free_port


def environment(tmp_path, **extra) -> dict:
    # No REDIS_URL: the command starts (and must stop) its own embedded Redis, as on a fresh clone.
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PORT")}
    return {**env, "HELPLINE_INSTANCE_PATH": str(tmp_path / "instance"), **extra}


@pytest.fixture
def taken_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def refused(tmp_path, port: int, args: list[str], **env) -> None:
    result = subprocess.run([str(BIN / "helpline"), "run", *args], env=environment(tmp_path, **env), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stdout == ""  # no banner
    assert result.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: the port is taken (choose another with --port or PORT)"]
    assert not (tmp_path / "instance").exists()  # refused before anything started: no keys, no Redis


def test_a_taken_port_is_one_line_on_stderr_and_nothing_starts(tmp_path, taken_port):
    refused(tmp_path, taken_port, ["--port", str(taken_port)])


def test_the_port_comes_from_PORT(tmp_path, taken_port):
    refused(tmp_path, taken_port, [], PORT=str(taken_port))


def test_a_bad_setting_is_one_line_before_any_banner(tmp_path):
    port = free_port()
    result = subprocess.run([str(BIN / "helpline"), "run", "--port", str(port)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=environment(tmp_path, FRONT_DOOR="bogus"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == ["Error: the settings are not fit to run: FRONT_DOOR: 'bogus' is not "
                                          "empty, 'off' or an address like https://example.org"]
    assert not (tmp_path / "instance").exists()


def children_of(pid: int) -> dict[int, str]:
    """The direct children of a process, with their command lines."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def started(tmp_path):
    """`helpline run` on a free port given as PORT, up to its banner: (process, port, output, children)."""
    port = free_port()
    process = subprocess.Popen([str(BIN / "helpline"), "run", "--workers", "1"], cwd=ROOT, text=True,
                               env=environment(tmp_path, PORT=str(port)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    output, errors = Output(process.stdout), Output(process.stderr)
    try:
        output.wait_for("Press Ctrl-C to stop.")
        yield process, port, output, errors, children_of(process.pid)
    finally:
        if process.poll() is None:  # the test failed with it still running
            process.terminate()
            process.wait(timeout=60)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_web_server_the_worker_and_redis_and_says_so(started, stop):
    process, port, output, _, children = started
    lines = output.text.splitlines()
    assert any(line.endswith(f"http://127.0.0.1:{port}/") for line in lines)  # the front door, on PORT's port
    assert f"http://127.0.0.1:{port}/console" in output.text and "counsellor add NAME" in output.text
    kinds = sorted(next(k for k in ("gunicorn", "redis-server", "helpline worker") if k in cmd)
                   for cmd in children.values())
    assert kinds == ["gunicorn", "helpline worker", "redis-server"]
    process.send_signal(stop)
    assert process.wait(timeout=60) == 0
    assert output.rest().splitlines()[-1] == "Stopped the help line."
    assert all(gone(pid) for pid in children)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_process_that_dies_is_named_and_the_rest_stop(started):
    process, port, output, errors, children = started
    worker = next(pid for pid, cmd in children.items() if "helpline worker" in cmd)
    os.kill(worker, signal.SIGKILL)
    assert process.wait(timeout=60) == 1
    assert "Error: the worker (rq) was killed by signal 9; stopped the rest of the help line" in errors.rest()
    assert "Stopped the help line." not in output.rest()
    assert all(gone(pid) for pid in children)


def test_a_terminal_chat_that_started_the_embedded_redis_leaves_it_to_a_help_line_still_using_it(tmp_path):
    """`helpline chat` first (it starts the instance's Redis), then `helpline run` on the same folder:
    leaving the chat stopped the Redis under the running help line, which went on without a word."""
    import redis

    from bot.redis_server import EmbeddedRedis

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["HELPLINE_INSTANCE_PATH"] = str(tmp_path / "instance")
    server = EmbeddedRedis(tmp_path / "instance" / "redis")
    chat = subprocess.Popen([str(BIN / "helpline"), "chat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, cwd=ROOT, text=True)
    try:
        chat.stdin.write("hi\n")
        chat.stdin.flush()
        first = Output(chat.stdout)
        first.wait_for("Kern Support Line")  # answered: the chat's Redis runs
        other = redis.Redis(unix_socket_path=str(server.socket))  # another process of the help line
        assert other.ping()
        chat.stdin.close()
        assert chat.wait(timeout=30) == 0
        assert "Left the embedded Redis running: another helpline process is using it." in first.rest()
        assert other.ping()  # still there for the one using it
        other.close()
    finally:
        if chat.poll() is None:
            chat.kill()
        if server.ping():
            redis.Redis(unix_socket_path=str(server.socket)).shutdown(nosave=True)
