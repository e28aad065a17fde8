"""Structured logs: one JSON object per line, a request id, and nothing a texter sent or is."""
from __future__ import annotations

import json
import logging
import sys

from bot.logs import JsonFormatter
from tests.conftest import Texter


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_each_request_is_one_json_line_with_its_request_id_and_no_personal_data(client, capfd):
    texter = Texter(client, "+16615550177")
    texter.send("my boss took my passport")
    answer = texter.last
    lines = [line for line in json_lines(capfd.readouterr().err) if line["logger"] == "bot.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "/sms" and line["status"] == 200 and line["method"] == "POST"
    assert line["request_id"] == answer.headers["X-Request-Id"]
    text = json.dumps(line)
    assert "5550177" not in text and "passport" not in text


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
