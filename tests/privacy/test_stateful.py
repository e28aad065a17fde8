"""Random message sequences to /sms from a few texters: never a 500, never an unknown state,
every stored conversation opens, and a repeated MessageSid gets the identical answer."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from bot import create_app
from tests.conftest import Texter

WORDS = [
    "hi", "hola", "1", "2", "3", "4", "5", "6", "0", "menu", "help", "ayuda", "español", "english",
    "counsellor", "persona", "yes", "no", "si", "done", "listo", "report", "questions", "runaway",
    "find help", "shelter", "93301", "16", "signs", "STOP", "START", "stop", "DELETE", "BORRAR", "delete",
    "he has a gun and will kill me", "no me dejan salir", "i want to die", "", "   ", "1️⃣", "\x00",
]
TEXT = st.one_of(st.sampled_from(WORDS), st.text(max_size=300))
_numbers = itertools.count(1000)


def test_random_conversations_never_break(config):
    # The rate limit has tests of its own; here every message must reach the flow.
    config["SMS_RATE_LIMIT"] = 10**6
    app = create_app(config)
    client = app.test_client()
    store, helpline = app.extensions["store"], app.extensions["helpline"]
    states = set(helpline.flows.flow.states)

    class Texters(RuleBasedStateMachine):
        sent = Bundle("sent")

        def __init__(self):
            super().__init__()
            # Fresh numbers for each example: no example inherits another's conversation or rate limit.
            self.texters = [Texter(client, f"+1661556{next(_numbers):04d}") for _ in range(3)]
            self.erasures: dict[str, int] = {}

        def post(self, texter, form):
            answer = texter.post(form)
            assert answer.status_code == 200, answer.data
            assert answer.mimetype == "text/xml"
            if store.load(helpline.conversation_id("sms", texter.number)) is None:
                self.erasures[texter.number] = self.erasures.get(texter.number, 0) + 1
            return answer.data

        @rule(target=sent, who=st.integers(0, 2), text=TEXT)
        def send(self, who, text):
            texter = self.texters[who]
            form = texter.form(text)
            erased_before = self.erasures.get(texter.number, 0)
            return texter, form, self.post(texter, form), erased_before

        @rule(who=st.integers(0, 2), confirm=st.sampled_from(["yes", "si", "1", "ok", "no", "hello"]))
        def delete(self, who, confirm):
            texter = self.texters[who]
            cid = helpline.conversation_id("sms", texter.number)
            before = store.load(cid)
            # After STOP the help line says nothing, not even the question that confirms a deletion.
            silent = before is not None and before.opted_out
            self.post(texter, texter.form("DELETE"))
            if not silent and before is not None and before.slots.get("_confirm_delete"):
                assert store.load(cid) is None  # a second DELETE is the confirmation
                return
            self.post(texter, texter.form(confirm))
            if confirm in ("yes", "si") and not silent:
                assert store.load(cid) is None
            elif not silent and before is not None:  # only the words the prompt names erase
                assert store.load(cid) is not None

        @rule(earlier=sent)
        def repeat(self, earlier):
            texter, form, first, erased_before = earlier
            again = self.post(texter, form)
            # A DELETE erases the stored answers too: a repeat from before it is a new message.
            if self.erasures.get(texter.number, 0) == erased_before and store.load(
                    helpline.conversation_id("sms", texter.number)) is not None:
                assert again == first

        @invariant()
        def every_conversation_opens_in_a_known_state(self):
            for texter in self.texters:
                conv = store.load(helpline.conversation_id("sms", texter.number))  # decrypts, or raises
                if conv is not None:
                    assert conv.state in states
                    assert conv.address == texter.number

    run_state_machine_as_test(Texters, settings=settings(
        max_examples=40, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
