"""Bad data already stored (an older version's, a bug's) never makes a conversation unreadable."""
from __future__ import annotations

from bot.store import entry
from tests.chat.test_api import conv_id, open_chat, say
from tests.console.conftest import Console


def test_every_page_that_shows_a_conversation_survives_malformed_entries(staff):
    app = staff
    client = app.test_client()
    token = open_chat(client)["token"]
    for text in ("1", "1", "1"):  # in line for a counsellor
        say(client, token, text)
    cid = conv_id(app, token)
    store = app.extensions["store"]
    store.append(cid, entry("texter", "help \ud800 me \x00 \u202e", 1.0))  # a lone surrogate, NUL, RTL override
    store.append(cid, entry("counsellor", "still here \udfff", 2.0, by="ali\ud800ce"))
    store.append(cid, {"at": "not a time", "from": None, "text": None})
    store.append(cid, ["not", "an", "entry"])
    for at in (float("nan"), "1e400", 1e20, -5):
        store.append(cid, {"at": at, "from": "texter", "text": "odd time"})
    store.append(cid, {"at": 3.0, "from": "texter", "text": "odd media", "media": "3"})
    store.append(cid, {"at": 3.0, "from": "texter", "text": "odder media", "media": [1]})
    store.append(cid, {"at": 3.0, "from": "counsellor", "text": "odd outbound", "outbound": ["x"], "by": {"a": 1}})

    sam = Console(app, "sam")
    sam.sign_in()
    for path in (f"/console/c/{cid}", f"/console/c/{cid}/live", "/console/", "/console/queue/live"):
        answer = sam.get(path)
        assert answer.status_code == 200, path
    page = sam.get(f"/console/c/{cid}").get_data(as_text=True)
    assert "help  me" in page and "still here" in page  # what can be shown is shown
    assert client.get(f"/chat/api/replies?token={token}").status_code == 200  # and the visitor's page too

