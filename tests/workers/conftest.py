"""Fixtures for the workers: the fake Twilio API with quick retries, and texters who asked for a person."""
from __future__ import annotations

import pytest

PUBLIC_URL = "http://localhost"  # where the test client (and so the texter's signature) points


@pytest.fixture
def sending(twilio_api, config):
    """The fake Twilio API, immediate retries and a one-second HTTP timeout (request it before `app`)."""
    config.update(SEND_RETRY_SECONDS="0,0,0", TWILIO_HTTP_TIMEOUT=1.0, PUBLIC_URL=PUBLIC_URL)
    return twilio_api


@pytest.fixture
def queued_texter(make_texter, app):
    """make(consent=True): a new texter in line for a counsellor; returns (texter, conversation id)."""
    vault = app.extensions["vault"]

    def make(consent: bool = True, first: str = "hi"):
        texter = make_texter()
        for message in (first, "1", "1", "1" if consent else "2"):
            texter.send(message)
        return texter, vault.conversation_id("sms", texter.number)

    return make
