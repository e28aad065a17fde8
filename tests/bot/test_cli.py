"""The operator's commands: a terminal chat through the real engine, triage, the flow diagram, resources."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from click.testing import CliRunner

from bot import events
from bot.cli import main
from bot.console import handoff
from bot.console.accounts import Counsellor
from tests.bot.output import Output
from tests.console.conftest import wrapped_up
from tests.ops.processes import BIN, ROOT


def test_terminal_chat_talks_through_the_same_engine_and_store(redis_url, redis_client, tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HELPLINE_INSTANCE_PATH", str(tmp_path / "instance"))
    result = CliRunner().invoke(main, ["chat", "--name", "tester"], input="hola\n1\n5\n1\n93215\n")
    assert result.exit_code == 0, result.output
    assert "llama al 911" in result.output  # answered in Spanish from the first message
    assert "Open Door Network" in result.output  # the Delano shelter for a Delano ZIP
    assert redis_client.keys("c:*")  # stored like any other conversation
    # Piped in, each message shows on a line of its own, as a transcript: no prompt waiting for a keyboard.
    lines = result.output.splitlines()
    assert [line for line in lines if line.startswith("you>")] == ["you> hola", "you> 1", "you> 5", "you> 1",
                                                                     "you> 93215"]
    assert lines[0] == "you> hola"


def test_terminal_web_chat_opens_in_the_language_asked_for(redis_url, redis_client, tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HELPLINE_INSTANCE_PATH", str(tmp_path / "instance"))
    spanish = CliRunner().invoke(main, ["chat", "--as", "web", "--lang", "es"], input="1\n")
    assert spanish.exit_code == 0, spanish.output
    # The web chat's welcome, before anything is typed, then the menu, in Spanish, with its buttons.
    assert "llama al 911" in spanish.output.split("you> 1")[0] and "call 911" not in spanish.output
    assert "¿En qué te ayudamos?" in spanish.output and "[0]" not in spanish.output.split("you> 1")[0]
    english = CliRunner().invoke(main, ["chat", "--as", "web"], input="")
    assert "call 911" in english.output and "[1] Yes, it is safe" in english.output


def test_terminal_web_chat_ends_as_the_page_does_when_the_chat_is_erased(redis_url, redis_client, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("HELPLINE_INSTANCE_PATH", str(tmp_path / "instance"))
    result = CliRunner().invoke(main, ["chat", "--as", "web"], input="delete\nyes\nhello\n")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("This chat has ended. You can start a new one whenever you like.")
    assert "you> hello" not in result.output  # the chat is over: nothing more is read
    assert not redis_client.keys("c:*")


def test_terminal_chat_options_that_do_not_fit_the_channel_are_refused():
    refused = CliRunner().invoke(main, ["chat", "--lang", "es"])
    assert refused.exit_code == 2 and "a text is answered in the language it is written in" in refused.output
    assert CliRunner().invoke(main, ["chat", "--as", "web", "--name", "x"]).exit_code == 2
    assert CliRunner().invoke(main, ["chat", "--as", "web", "--lang", "fr"]).exit_code == 2


# The texter's messages up to a counsellor, after the opening: it is safe, a counsellor, yes you may reply.
TO_A_COUNSELLOR = {"sms": ["hi", "1", "1", "1"], "web": ["1", "1", "1"]}


@pytest.mark.parametrize("channel", ["sms", "web"])
def test_a_counsellors_reply_and_the_closing_message_appear_in_the_terminal_as_they_are_sent(app, config, channel):
    env = dict(os.environ, REDIS_URL=config["REDIS_URL"], HELPLINE_INSTANCE_PATH=config["INSTANCE_PATH"],
               SECRET_KEY=config["SECRET_KEY"], HELPLINE_DATA_KEY=config["HELPLINE_DATA_KEY"],
               HELPLINE_HASH_KEY=config["HELPLINE_HASH_KEY"], TWILIO_AUTH_TOKEN=config["TWILIO_AUTH_TOKEN"])
    console = app.extensions["redis"].pubsub(ignore_subscribe_messages=True)
    console.subscribe(events.CONSOLE)  # as the console's queue page hears a texter join the line
    chat = subprocess.Popen([str(BIN / "helpline"), "chat", "--as", channel], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = Output(chat.stdout)
    try:
        chat.stdin.write("".join(f"{text}\n" for text in TO_A_COUNSELLOR[channel]))
        chat.stdin.flush()
        queued = next(event for event in events.listen(console, seconds=60)
                      if event and event["kind"] == "queued")
        cid = queued["conv"]
        dana = Counsellor("dana", False)
        with app.app_context():
            handoff.claim(dana, cid)
            handoff.reply(dana, cid, "Hi, I am Dana, a counselor.\a\x1b[2J\nI am here with you.")
        line = output.wait_for("Hi, I am Dana, a counselor.")
        assert "\a" not in line and "\x1b" not in line  # a reply rings no bell and clears no screen
        # Labelled as a phone shows it (the help line's number) or as the chat page does (Counselor).
        assert line.startswith("Kern Support Line> " if channel == "sms" else "Counselor> ")
        assert output.wait_for("I am here with you.").strip() == "I am here with you."
        with app.app_context():
            assert handoff.end(dana, cid, wrapped_up("resolved"))
            closing = app.extensions["store"].transcript(cid)[-1]["text"]
        output.wait_for(closing.splitlines()[0])
        chat.stdin.write("thanks\n")
        chat.stdin.flush()
        if channel == "web":  # the chat is over, as on the page: the terminal says so and leaves by itself
            output.wait_for("This chat has ended.")
        else:  # a text after the end is a new start on the same thread
            chat.stdin.close()
        assert chat.wait(timeout=60) == 0, chat.stderr.read()
    finally:
        console.close()
        if chat.poll() is None:
            chat.kill()
            chat.wait()
    text = output.rest()
    assert "you> you>" not in text
    assert [line for line in text.splitlines() if line.startswith("you>")] == [
        f"you> {message}" for message in [*TO_A_COUNSELLOR[channel], "thanks"]]


def test_triage_prints_the_verdict_for_people_and_json_for_scripts():
    text = "he has a gun and says he will shoot"
    pretty = CliRunner().invoke(main, ["triage", "--explain", text])
    assert pretty.exit_code == 0, pretty.output
    lines = pretty.output.splitlines()
    assert lines[0] == "emergency: weapon"
    assert lines[1] == '  weapon (emergency) matched "has a gun"'
    assert lines[2].startswith("    pattern: ") and "@WEAPON_EN" in lines[2]
    assert lines[3].startswith("  intent model: danger_now ") and "an emergency on its own" in lines[3]
    assert CliRunner().invoke(main, ["triage", "what are your hours"]).output == "normal: no pattern matched\n"
    verdict = json.loads(CliRunner().invoke(main, ["triage", "--json", "--explain", text]).output)
    assert verdict["level"] == "emergency" and verdict["matched"] == ["weapon"]
    assert verdict["explain"][0]["span"] == "has a gun"
    calm = json.loads(CliRunner().invoke(main, ["triage", "--json", "what are your hours"]).output)
    assert calm["level"] == calm["help_line"] == "normal" and calm["matched"] == [] and calm["intent_danger"] < 0.1
    # For a script, what the help line does: the lexicon's level, or emergency when the model hears danger.
    model_only = json.loads(CliRunner().invoke(main, ["triage", "--json", "please help me i'm scared he is coming"]).output)
    assert model_only["level"] == "normal" and model_only["help_line"] == "emergency"


def test_triage_explains_danger_words_set_aside_and_what_only_the_model_hears():
    negated = CliRunner().invoke(main, ["triage", "--explain", "i don't want to die lol"]).output
    assert "set aside, as negated or everyday speech" in negated and "not an emergency on its own" in negated
    model_only = CliRunner().invoke(main, ["triage", "--explain", "please help me i'm scared he is coming"]).output
    assert model_only.startswith("normal: no pattern matched\n")
    assert "so the help line answers it as an emergency" in model_only


def test_flows_diagram_prints_mermaid_and_says_where_to_see_it():
    result = CliRunner().invoke(main, ["flows", "diagram"])
    assert result.exit_code == 0
    assert "stateDiagram-v2" in result.stdout and "mermaid.live" not in result.stdout
    assert "mermaid.live" in result.stderr and "--html" in result.stderr


def test_flows_diagram_html_is_a_page_that_shows_the_diagram_even_offline(tmp_path, browser):
    page_file = tmp_path / "diagram.html"
    result = CliRunner().invoke(main, ["flows", "diagram", "--html", str(page_file)])
    assert result.exit_code == 0, result.output
    assert str(page_file) in result.output
    source = CliRunner().invoke(main, ["flows", "diagram"]).stdout
    page = browser.new_page()
    requested = []

    def offline(route):  # no network here, as on a laptop offline: only the file itself loads
        if route.request.url == page_file.as_uri():
            return route.continue_()
        requested.append(route.request.url)
        return route.abort()

    try:
        page.route("**/*", offline)
        page.goto(page_file.as_uri(), wait_until="networkidle")
        # The drawing is Mermaid's, from its CDN...
        assert any(url.startswith("https://cdn.jsdelivr.net/npm/mermaid@") for url in requested)
        # ...and without it the Mermaid source is the page's text, readable, whole.
        assert page.locator("pre.mermaid").inner_text().strip() == source.strip()
        assert page.locator("pre.mermaid").is_visible()
    finally:
        page.close()


def test_keys_check_counts_redis_entries_and_names_the_data_key(cli_env, app, redis_client):
    from tests.conftest import Texter

    Texter(app.test_client()).send("hi")
    result = CliRunner().invoke(main, ["keys", "check"], env=cli_env)
    assert result.exit_code == 0, result.output
    entries = redis_client.dbsize()
    assert result.output.startswith(f"{entries} Redis entries checked, ")
    assert ": all readable with the newest data key alone (older data keys may go); " in result.output
    assert " keys," not in result.output  # "keys" means data keys to an operator


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


def test_flows_diagram_html_to_a_folder_that_does_not_exist_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["flows", "diagram", "--html", str(tmp_path / "no" / "such" / "x.html")])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: cannot write ") and "Traceback" not in result.output
