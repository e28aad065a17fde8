"""The operator's commands: a terminal chat through the real engine, triage and resources checks."""
from __future__ import annotations

import json

from click.testing import CliRunner

from bot.cli import main


def test_terminal_chat_talks_through_the_same_engine_and_store(redis_url, redis_client, tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HELPLINE_INSTANCE_PATH", str(tmp_path / "instance"))
    result = CliRunner().invoke(main, ["chat", "--as", "tester"], input="hola\n1\n5\n1\n93215\n")
    assert result.exit_code == 0, result.output
    assert "llama al 911" in result.output  # answered in Spanish from the first message
    assert "Open Door Network" in result.output  # the Delano shelter for a Delano ZIP
    assert redis_client.keys("c:*")  # stored like any other conversation


def test_triage_command_prints_json():
    result = CliRunner().invoke(main, ["triage", "--explain", "he has a gun and says he will shoot"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert verdict["level"] == "emergency" and verdict["matched"] and verdict["explain"]
    calm = json.loads(CliRunner().invoke(main, ["triage", "what are your hours"]).output)
    assert calm == {"level": "normal", "matched": []}


def test_resources_check_fails_while_listings_are_past_review_and_warn_only_does_not():
    # Issue 12: every shipped listing is past its review date (or was never verified), so the check fails
    # until an operator re-verifies them; --warn-only lists them and exits 0; errors would still fail.
    result = CliRunner().invoke(main, ["resources", "check"])
    assert result.exit_code == 1, result.output
    assert "0 errors" in result.output and "past review: flows/resources.yaml:" in result.output
    assert "national-human-trafficking-hotline" in result.output
    warned = CliRunner().invoke(main, ["resources", "check", "--warn-only"])
    assert warned.exit_code == 0, warned.output
    assert warned.output == result.output
