"""In line over SMS: the menu keeps the place in the queue; "cancel" then YES leaves it."""
from __future__ import annotations


def queue_of(app) -> list[str]:
    return [w[0] for w in app.extensions["waiting"].waiting()]


def test_a_texter_uses_the_menu_in_line_then_leaves_the_line(app, texter):
    cid = app.extensions["helpline"].conversation_id("sms", texter.number)
    for body in ("hi", "1", "1", "1"):
        texter.send(body)
    assert queue_of(app) == [cid]

    assert "still in line" in texter.send("0")
    texter.send("5")  # find help near me
    assert queue_of(app) == [cid]  # browsing the menu kept the place

    texter.send("2")  # whatever they picked, they can still write "cancel"
    texter.send("0")
    texter.send("1")
    texter.send("1")  # asked for a counselor again: still one place in line
    assert queue_of(app) == [cid]
    assert "Leave the line" in texter.send("cancel")
    assert "left the line" in texter.send("yes")
    assert queue_of(app) == []
    conv = app.extensions["store"].load(cid)
    assert conv.handoff is None and not conv.opted_out
