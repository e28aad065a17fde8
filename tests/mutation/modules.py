"""What `make mutate` mutates, and the fast tests that must notice (issue 18).

Each module is mutated on its own, against its own small set of tests: mutmut 3 then runs each mutant
only with the tests of that set that call the mutated function. No browser test, no test that starts
gunicorn or another process: they are slow, and the tests below already drive the same code.
"""
from __future__ import annotations

from dataclasses import dataclass

# Slow tests that would run for every mutant of a function they touch; faster tests cover the same lines.
SLOW = (
    "tests/bot/test_sms.py::test_two_processes_for_one_sender_are_applied_one_after_the_other",
    "tests/bot/test_sms.py::test_after_redis_closes_an_idle_connection_the_next_text_is_still_processed",
    "tests/bot/test_hardening.py::test_a_process_killed_holding_the_lock_neither_loses_the_retry_nor_answers_an_old_message_twice",
    "tests/privacy/test_security.py::test_console_sign_in_is_rate_limited_per_name",
    "tests/privacy/test_security.py::test_a_real_browser_reports_no_csp_violation",
)

# Lines whose mutants only change the words of a log line (no texter or counsellor reads them; that
# no number or message text reaches a log is tested on the whole log, tests/privacy/test_leaks.py).
NOT_BEHAVIOUR = (r"^\s*(log|logger|LOG)\.(debug|info|warning|error|exception)\(",)


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]
    # Only these functions are mutated (mutmut's names: `x_function`, `xǁClassǁmethod`); all when empty.
    functions: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def patterns(self) -> list[str]:
        """mutmut's mutant-name globs for this module's functions."""
        return [f"{self.slug}.{f}__mutmut_*" for f in self.functions] or [f"{self.slug}.*"]


def _security(*names: str) -> tuple[str, ...]:
    return tuple(f"tests/privacy/test_security.py::{n}" for n in names)


# Smallest first, so a stopped run has finished the most modules.
MODULES = (
    Module("workers/sender.py", (
        "tests/workers/test_sender.py", "tests/workers/test_sender_refusals.py", "tests/workers/test_twilio_api.py",
        "tests/workers/test_delivery_callbacks.py", "tests/workers/test_sender_edges.py",
    )),
    Module("bot/store.py", (
        "tests/bot/test_sms.py", "tests/bot/test_store_threads.py", "tests/bot/test_hardening.py",
        "tests/privacy/test_retention.py", "tests/console/test_erasure.py",
        "tests/console/test_bad_data.py",  # readable(): malformed transcript entries
        "tests/bot/test_store_edges.py",
        "tests/bot/test_blocking.py",  # a blocked sender's record is read in begin's round trip
        "tests/bot/test_store_lost_reply.py",  # the retry that finds its own lock
    )),
    Module("bot/chat.py", (
        "tests/chat/test_api.py", "tests/chat/test_streams.py", "tests/chat/test_ended.py",
        "tests/chat/test_api_edges.py",
    )),
    # The outcome logic only: how a message is read and judged, not how the lexicon file is compiled
    # (a broken lexicon fails to load, which every test notices).
    Module("flows/triage.py", (
        "tests/flows/test_triage.py", "tests/flows/test_triage_edges.py",
    ), functions=(
        "xǁTriageǁassess", "xǁ_Normaliserǁtokens", "xǁ_Normaliserǁnegated_before", "x__overlaps",
    )),
    # Every function but the record's parsing from Redis (a broken one fails every test that loads one).
    Module("bot/outbound.py", (
        "tests/workers/test_sender.py", "tests/workers/test_sender_refusals.py", "tests/console/test_conversation.py",
        "tests/console/test_feedback.py",  # retry/requeue: a reply sent again, once
        "tests/workers/test_outbound_edges.py",
    ), functions=(
        "x_check_may_text", "x_queue_reply", "x__enqueue", "x_requeue", "x_missing_settings", "x_load",
        "x_begin_attempt", "x_not_sent", "x_add_sid", "x_owner_of", "x_finish", "x_discard", "x_failed",
    )),
    # Who may hold, answer, hand on and end a conversation; not the listings' formatting.
    Module("bot/console/handoff.py", (
        "tests/console/test_queue.py", "tests/console/test_conversation.py", "tests/console/test_live.py",
        "tests/console/test_erasure.py", "tests/console/test_feedback.py",  # retry, and what each change says
        "tests/console/test_handoff_edges.py",
    ), functions=(
        "x_claim", "x_release", "x_transfer", "x_end", "x_reply", "x_retry", "x_can_view", "x_holds",
        "x_may_text", "x__check_holder", "x_reveal", "x__changing",
    )),
    Module("bot/engine.py", (
        "tests/bot/test_sms.py", "tests/bot/test_in_line.py", "tests/chat/test_api.py",
        "tests/bot/test_engine_edges.py",
        *_security(
            "test_past_the_limit_a_message_is_answered_empty_and_not_processed",
            "test_a_message_waiting_for_the_conversation_lock_counts_once_and_keeps_its_count",
            "test_past_the_limit_an_emergency_is_handled_in_full_queued_first_and_alerted",
            "test_past_the_limit_the_emergency_allowances_still_end",
            "test_a_retry_of_an_answered_message_gets_its_answer_past_the_limit",
        ),
    )),
    # The message path and everything that decides safety; not the machine's construction, the
    # menu's wording or the resource list (tests/flows/test_resources.py covers those).
    Module("flows/engine.py", (
        "tests/flows/test_conversation.py", "tests/flows/test_in_line.py", "tests/bot/test_in_line.py",
        "tests/flows/test_engine_edges.py",
    ), functions=(
        "xǁFlowEngineǁstep", "xǁFlowEngineǁ_in_handoff", "xǁFlowEngineǁ_emergency", "xǁFlowEngineǁ_assess",
        "xǁFlowEngineǁ_danger", "xǁFlowEngineǁdecide", "xǁFlowEngineǁis_emergency", "xǁFlowEngineǁend_handoff",
        "x_model_hears_danger",
    )),
)
