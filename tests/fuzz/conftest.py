"""Fuzzing settings: a short run in every `make test`, a long one with `make fuzz`.

HYPOTHESIS_PROFILE=fuzz selects the long run: the tests marked `fuzz` run, each for its share of
FUZZ_SECONDS (default 600), with fresh random searches (derandomize off, no deadline); without it they
are skipped and the short tests run a fixed number of examples, derandomized, so that `make test`
gives the same result every time. Profiles are only read by the tests here (settings.get_profile),
never loaded globally, so no other test's settings change.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "")
LONG = PROFILE == "fuzz"
FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "600"))

_quiet = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
          HealthCheck.large_base_example]
settings.register_profile("fuzz-quick", deadline=None, derandomize=True, database=None, print_blob=False,
                          suppress_health_check=_quiet)
# A long run repeats searches of this many examples, each with a fresh seed, until its time is up (a
# search cannot be stopped halfway, so a run ends at most one search late). database=None: a saved
# failure would otherwise be replayed first and end every search at once; the run reports what it finds.
settings.register_profile("fuzz", deadline=None, derandomize=False, database=None, max_examples=500,
                          suppress_health_check=_quiet, print_blob=True)


def fuzz_settings(**overrides) -> settings:
    return settings(settings.get_profile("fuzz" if LONG else "fuzz-quick"), **overrides)


def pytest_collection_modifyitems(config, items):
    if LONG:
        return
    skip = pytest.mark.skip(reason="a long fuzzing run: `make fuzz` (HYPOTHESIS_PROFILE=fuzz)")
    for item in items:
        if item.get_closest_marker("fuzz") is not None:
            item.add_marker(skip)


@pytest.fixture
def config(config):
    # Every example must reach the flow: the rate limits have tests of their own.
    config.update(SMS_RATE_LIMIT=10**9, CHAT_SESSIONS_PER_HOUR=10**9, CHAT_SESSIONS_PER_MINUTE_ALL=10**9,
                  CHAT_MESSAGES_PER_MINUTE=10**8, CHAT_MAX_MESSAGES=10**9,
                  CONSOLE_PASSWORD_HASH="CHEAPEST", CONSOLE_IDLE_MINUTES=24 * 60)
    return config
