"""`helpline counsellor add|list|remove`, driven as an operator would, against the test Redis."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.console import accounts


@pytest.fixture
def run(app, cli_env):
    def invoke(*args, input=None):
        return CliRunner().invoke(main, ["counsellor", *args], input=input, env=cli_env)

    return invoke


def test_add_reads_the_password_from_stdin_and_it_signs_in(run, app):
    result = run("add", "Dana", "--supervisor", input="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert "supervisor dana saved" in result.output
    with app.app_context():
        found = accounts.verify(app.extensions["redis"], "dana", "a long enough password")
    assert found == accounts.Counsellor("dana", True)
    assert "a long enough password" not in result.output


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "password1234", "qwertyuiop12", "dana2026dana2026"])
def test_a_long_but_guessable_password_is_refused(run, app, password):
    result = run("add", "dana", input=password + "\n")
    assert result.exit_code != 0
    assert "harder password" in result.output
    assert accounts.names(app.extensions["redis"]) == []


def test_short_password_is_refused(run, app):
    result = run("add", "dana", input="short\n")
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output
    assert accounts.names(app.extensions["redis"]) == []


def test_bad_name_is_refused(run, app):
    result = run("add", "dana smith!", input="a long enough password\n")
    assert result.exit_code == 2
    assert "lower-case letters" in result.output


def test_list_and_remove(run, app):
    run("add", "dana", input="a long enough password\n")
    run("add", "eli", "--supervisor", input="another long password\n")
    listed = run("list")
    assert listed.output.splitlines() == ["dana\tcounsellor\taway", "eli\tsupervisor\taway"]
    assert run("remove", "dana").exit_code == 0
    assert run("list").output.splitlines() == ["eli\tsupervisor\taway"]
    missing = run("remove", "dana")
    assert missing.exit_code == 1 and "no counsellor named" in missing.output


def test_sessions_end_ends_every_session_of_a_counsellor(run, app):
    run("add", "dana", input="a long enough password\n")
    result = run("sessions", "dana", "--end")
    assert result.exit_code == 0 and "sessions ended" in result.output
    assert run("sessions", "nobody", "--end").exit_code != 0
