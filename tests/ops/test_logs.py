"""Structured logs: one JSON object per line, a request id, and nothing a texter sent or is."""
from __future__ import annotations

import json
import logging
import sys

from bot.logs import JsonFormatter
from tests.conftest import Texter


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def request_lines(capfd) -> list[dict]:
    return [line for line in json_lines(capfd.readouterr().err) if line["logger"] == "bot.request"]


def test_a_refused_request_is_one_json_line_with_its_request_id_and_no_personal_data(client, capfd):
    texter = Texter(client, "+16615550177")
    answer = texter.post(texter.form("my boss took my passport"), signature="forged")
    assert answer.status_code == 403
    lines = request_lines(capfd)
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "/sms" and line["status"] == 403 and line["method"] == "POST" and line["level"] == "info"
    assert line["request_id"] == answer.headers["X-Request-Id"]
    text = json.dumps(line)
    assert "5550177" not in text and "passport" not in text


def test_an_answered_text_leaves_no_line_at_info_and_one_at_debug(client, capfd):
    texter = Texter(client, "+16615550177")
    texter.send("hi")
    assert request_lines(capfd) == []  # no timestamped trace of each time someone wrote
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        texter.send("my boss took my passport")
    finally:
        logging.getLogger().setLevel(logging.INFO)
    lines = request_lines(capfd)
    assert [(line["route"], line["status"], line["level"]) for line in lines] == [("/sms", 200, "debug")]
    assert lines[0]["request_id"] == texter.last.headers["X-Request-Id"]
    assert "5550177" not in json.dumps(lines) and "passport" not in json.dumps(lines)


def test_a_proxy_request_id_is_kept_and_a_strange_one_replaced(client, capfd):
    assert client.get("/healthz", headers={"X-Request-Id": "abc123-def456"}).headers["X-Request-Id"] == "abc123-def456"
    replaced = client.get("/healthz", headers={"X-Request-Id": "<script>+16615550177"}).headers["X-Request-Id"]
    assert replaced != "<script>+16615550177" and len(replaced) == 16
    assert "5550177" not in capfd.readouterr().err


def test_an_error_is_logged_by_kind_and_place_never_by_its_message():
    try:
        int("+16615550177 said help")
    except ValueError:
        record = logging.LogRecord("bot.test", logging.ERROR, __file__, 1, "could not parse", None,
                                   exc_info=sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["error"] == "ValueError" and line["where"][-1].startswith("test_logs.py:")
    assert "5550177" not in json.dumps(line)
