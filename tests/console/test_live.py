"""The console's live stream: an open page hears at once that the queue or a conversation changed."""
from __future__ import annotations

from tests.console.conftest import ask_for_counsellor


def frames(answer, count: int) -> list[str]:
    """The first `count` non-comment frames of a server-sent event stream."""
    out = []
    for chunk in answer.response:
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if not text.startswith(":"):
            out.append(text)
        if len(out) == count:
            break
    return out


def test_an_emergency_handoff_is_announced_on_the_queue_stream(console, make_texter):
    alice = console("alice")
    answer = alice.get("/console/events", buffered=False)
    assert answer.status_code == 200 and answer.mimetype == "text/event-stream"
    texter = make_texter()
    texter.send("hi")
    texter.send("he has a gun")  # triage: the emergency offer
    texter.send("1")  # yes, a counsellor: queued at top priority
    retry, change = frames(answer, 2)
    answer.close()
    assert retry.startswith("retry:")
    assert change == "event: change\ndata: queued\n\n"  # what happened, never who or what they wrote
    assert texter.number not in change


def test_a_conversation_stream_hears_the_texter(console, make_texter, app):
    texter = make_texter()
    ask_for_counsellor(texter)
    alice = console("alice")
    cid = app.extensions["helpline"].conversation_id("sms", texter.number)
    assert alice.post(f"/console/claim/{cid}").status_code == 302
    answer = alice.get(f"/console/events?conv={cid}", buffered=False)
    texter.send("are you there?")
    assert frames(answer, 2)[1] == "event: change\ndata: message\n\n"
    answer.close()


def test_the_stream_needs_a_signed_in_counsellor_and_a_real_id(console, client):
    assert client.get("/console/events").status_code in (302, 401)
    assert console("alice").get("/console/events?conv=../../etc").status_code == 404
