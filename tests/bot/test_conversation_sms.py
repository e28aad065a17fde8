"""The help-line conversation over signed Twilio webhooks, with Redis: the transcripts of
tests/flows/transcripts.yaml again, global commands and emergencies from every state, and what
the texter's answers mean for the waiting queue, the workers and whether we may text them first."""
from __future__ import annotations

import pytest

from bot.errors import NoConsent, RecipientOptedOut
from tests.flows.test_conversation import (
    EMERGENCY, FIRST, FLOW, IN_SPANISH, NAME, TRANSCRIPTS, check_step, question, resting_states, routes, text,
)

# Which job each effect leaves on the RQ queue (opt-out, opt-in and erase leave none).
JOB_OF = {"request_handoff": "workers.alerts.notify_counsellors", "record_tip": "workers.alerts.notify_counsellors",
          "emergency_alert": "workers.alerts.emergency_alert"}
# chat_ended needs a counsellor to end a chat; tests/console covers it through the console.
SMS_STATES = [s for s in resting_states() if s != FLOW.after_handoff]


class Line:
    """A texter and what the help line now holds about them."""

    def __init__(self, app, texter):
        self.app, self.texter = app, texter
        self.cid = app.extensions["helpline"].conversation_id("sms", texter.number)

    def send(self, body: str) -> str:
        return self.texter.send(body)

    @property
    def conv(self):
        return self.app.extensions["store"].load(self.cid)

    def jobs(self) -> list[str]:
        return [job.func_name for job in self.app.extensions["queue"].jobs]

    def in_line(self) -> str | None:
        """The priority the conversation waits at, None when it is not in the waiting queue."""
        return next((p for cid, p, _ in self.app.extensions["waiting"].waiting() if cid == self.cid), None)

    def reach(self, state: str, lang: str) -> None:
        route = routes()[state]
        for body in [FIRST[lang], *route[1:]] if route else []:
            self.send(IN_SPANISH.get(body, body) if lang == "es" else body)
        assert (self.conv.state if self.conv else FLOW.initial) == state

    def queue_reply(self, body: str = "Hi, this is Dana."):
        from bot.outbound import queue_reply

        with self.app.app_context():
            return queue_reply(self.cid, body, "dana")


@pytest.fixture
def line(app, texter):
    return Line(app, texter)


@pytest.fixture
def new_line(app, make_texter):
    return lambda: Line(app, make_texter())


@pytest.mark.parametrize("case", TRANSCRIPTS, ids=[c["name"] for c in TRANSCRIPTS])
def test_transcript_over_sms(line, case):
    for spec in case["steps"]:
        jobs_before = line.jobs()
        said = line.send(spec["send"])
        conv = line.conv
        new_jobs = sorted(line.jobs()[len(jobs_before):])
        check_step(spec, [said] if said else [], conv.state, conv.slots, None)
        if "effects" in spec:
            assert new_jobs == sorted(JOB_OF[e] for e in spec["effects"] if e in JOB_OF), spec["send"]
            if {"request_handoff", "record_tip"} & set(spec["effects"]):
                assert line.in_line() is not None
        if "record_tip" in spec.get("effects", []):
            assert conv.slots["kind"] == "tip" and conv.slots["tip"]
    assert line.conv.lang == case["lang"]


# -- consent: never texted first without it --------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es"])
def test_refusing_a_counsellor_means_no_outbound_ever(line, lang):
    line.reach("ask_consent", lang)
    line.send("no")
    assert line.conv.consent is False
    assert line.in_line() is None and "workers.alerts.notify_counsellors" not in line.jobs()
    with pytest.raises(NoConsent):
        line.queue_reply()
    line.send("0")
    line.send("6")  # browsing on afterwards changes nothing
    with pytest.raises(NoConsent):
        line.queue_reply()


def test_not_safe_to_text_leaves_nothing_to_send(line):
    line.send("hi")
    line.send("2")
    conv = line.conv
    assert conv.state == "closed" and conv.consent is None and conv.handoff is None
    assert line.in_line() is None and line.jobs() == []
    with pytest.raises(NoConsent):
        line.queue_reply()


def test_consent_puts_them_in_line_and_a_counsellor_may_text(line):
    line.reach("ask_consent", "en")
    line.send("yes")
    assert line.in_line() == "normal" and line.conv.handoff == "waiting"
    assert line.queue_reply()
    line.send("STOP")
    with pytest.raises(RecipientOptedOut):
        line.queue_reply()


def test_an_anonymous_tip_is_queued_for_the_team_but_never_texted(line):
    for body in ("hi", "1", "4", "There is a locked trailer behind the packing shed", "done", "no"):
        line.send(body)
    conv = line.conv
    assert conv.slots["tip"] == ["There is a locked trailer behind the packing shed"] and conv.slots["kind"] == "tip"
    assert line.in_line() is not None
    with pytest.raises(NoConsent):
        line.queue_reply()


def test_a_strong_screening_answer_waits_at_high_priority(line):
    line.reach("screen_not_free", "es")
    for answer in ("sí", "no", "no", "no", "no", "no", "no"):
        said = line.send(answer)
    assert "trata de personas" in said
    line.send("1")
    line.send("sí")
    assert line.in_line() == "high"


# -- global commands and emergencies from every state ----------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", SMS_STATES)
def test_commands_from_every_state(new_line, state, lang):
    other = "es" if lang == "en" else "en"

    line = new_line()
    line.reach(state, lang)
    said = line.send("HELP" if lang == "en" else "AYUDA")
    assert "911" in said
    if state not in (FLOW.initial, FLOW.emergency):
        assert said.startswith(text(lang, "help")) and NAME in said and "STOP" in said

    line = new_line()
    line.reach(state, lang)
    said = line.send("ESPAÑOL" if other == "es" else "ENGLISH")
    conv = line.conv
    assert conv.lang == other
    if state != FLOW.initial and question(conv):
        assert said.endswith(question(conv))

    line = new_line()
    line.reach(state, lang)
    said = line.send("menú" if lang == "es" else "MENU")
    if state not in (FLOW.initial, "waiting"):
        assert line.conv.state == "menu" and said.endswith(text(lang, "menu"))

    line = new_line()
    line.reach(state, lang)
    assert line.send("DELETE" if lang == "en" else "BORRAR") == text(lang, "confirm_delete")
    assert line.send("SÍ" if lang == "es" else "YES") == text(lang, "erased")
    assert line.conv is None and line.in_line() is None

    line = new_line()
    line.reach(state, lang)
    said_in = "en" if state == FLOW.initial else lang  # STOP as a first message says nothing of a language
    assert line.send("STOP") == text(said_in, "stopped")
    assert line.send("hola" if lang == "es" else "hi") == ""
    assert line.send(EMERGENCY[lang]) == ""  # a sentence in their language: START is answered in it
    assert line.send("START") == text(lang, "restarted")
    assert "911" in line.send("hola" if lang == "es" else "hi")


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", SMS_STATES)
def test_emergency_from_every_state(line, state, lang):
    line.reach(state, lang)
    was_in_line = line.in_line() is not None
    said = line.send(EMERGENCY[lang])
    assert said.startswith(text(lang, "emergency"))
    assert ("988" in said) is (lang == "es")
    assert "workers.alerts.emergency_alert" in line.jobs()
    job = next(j for j in line.app.extensions["queue"].jobs if j.func_name == "workers.alerts.emergency_alert")
    assert job.args == [line.cid] or job.args == (line.cid,)  # ids only, never the number or the words
    if FLOW.states[state].input == "text" and not was_in_line:
        # A report of someone else in danger: 911 and the alert, and the report goes on being taken.
        assert line.conv.state == state and line.in_line() is None
        return
    if not was_in_line and state != FLOW.emergency:
        assert line.conv.state == FLOW.emergency
        line.send("1")
    assert line.in_line() == "emergency"  # told 911 already and writing of danger again: in line at once
    assert line.conv.risk == "emergency"


def test_emergency_with_a_counsellor_talking_still_says_911_and_raises_priority(app, line):
    line.reach("waiting", "en")
    with app.extensions["store"].locked(line.cid) as session:
        session.conv.handoff, session.conv.counsellor = "active", "dana"
    assert line.send("ok thanks") == ""  # the counsellor answers, not the bot
    said = line.send("I want to kill myself")
    assert "911" in said and "988" in said
    assert "workers.alerts.emergency_alert" in line.jobs()
    assert line.conv.handoff == "active" and line.conv.risk == "emergency"


@pytest.mark.parametrize("lang, words, first", [("en", "i want to kill myself tonight", "hi"),
                                                ("es", "me quiero matar hoy", "hola")])
def test_someone_suicidal_who_joins_the_line_is_given_988_again_with_the_wait(line, lang, words, first):
    """The wait's 24/7 fallback is the trafficking line; for them, 988 comes with it (an outside test)."""
    line.send(first)
    told = line.send(words)
    assert "988" in told and "911" in told
    queued = line.send("1")  # "Reply 1 and a counselor will text you"
    assert line.in_line() == "emergency"
    assert "988" in queued and text(lang, "emergency_self_harm") in queued
