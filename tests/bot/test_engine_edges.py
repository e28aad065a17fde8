"""The engine's edges that the mutation run (issue 18) showed no test of bot/engine.py noticed: what the
transcript keeps of a message (cleaned, capped, with its level, reading, attachments and time), what a
texter who joins the line is told and where they stand, tips, leaving and rejoining the line, an
emergency from someone in line or talking with a counsellor, what the console hears, the jobs and the
dashboard's counts a message leaves, what DELETE leaves behind, and the rate limit's emergency
allowances being each texter's own."""
from __future__ import annotations

import json
import time

import pytest
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from bot import create_app, events
from bot.console import accounts
from bot.console.present import reason
from bot.engine import Inbound
from bot.errors import ConversationGone
from flows.conversation import Conversation
from tests.conftest import Texter
from tests.console.conftest import PASSWORD, Console
from tests.privacy.test_faults import work
from tests.workers.test_alerts import Receiver

DANGER = "he has a gun and will kill me"
NOBODY_ONLINE = "No counselor is free right now"


@pytest.fixture
def config(config):
    config["CONSOLE_PASSWORD_HASH"] = "CHEAPEST"  # the same code path, without seconds of hashing per sign-in
    return config


@pytest.fixture
def alice(app):
    """A counsellor, signed in to the console."""
    with app.app_context():
        accounts.add(app.extensions["redis"], "alice", PASSWORD, False)
    browser = Console(app, "alice")
    assert browser.sign_in().status_code == 302
    return browser


def cid_of(app, texter, channel="sms") -> str:
    return app.extensions["helpline"].conversation_id(channel, texter.number)


def transcript(app, texter) -> list[dict]:
    return app.extensions["store"].transcript(cid_of(app, texter))


def said_by_texter(app, texter) -> list[dict]:
    return [e for e in transcript(app, texter) if e["from"] == "texter"]


def in_line(app) -> list[str]:
    return [w[0] for w in app.extensions["waiting"].waiting()]


def join_the_line(texter) -> str:
    """hello, it is safe, a counsellor, yes you may text me: the reply to the last."""
    for body in ("hi", "1", "1"):
        texter.send(body)
    return texter.send("1")


def heard(pubsub, enough, seconds: float = 5.0) -> list[dict]:
    """The events published so far, read until `enough(events)` holds (or `seconds` pass)."""
    got, deadline = [], time.monotonic() + seconds
    while not enough(got) and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "message":
            got.append({"channel": message["channel"].decode(), **json.loads(message["data"])})
    return got


# -- what the transcript keeps ------------------------------------------------------------


def test_the_transcript_keeps_a_message_without_control_characters_and_in_one_spelling(app, texter):
    texter.send("hi")
    texter.send("hola\x00mun\x07do")
    texter.send("cafe\u0301")  # e + a combining accent, as some keyboards send "café"

    assert [e["text"] for e in said_by_texter(app, texter)][-2:] == ["holamundo", "caf\u00e9"]


def test_a_photo_without_words_shows_as_an_attachment_with_no_invented_text(app, texter):
    texter.send("hi")
    texter.send("", NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg", MediaContentType0="image/jpeg")

    last = said_by_texter(app, texter)[-1]
    assert (last["text"], last["media"]) == ("", 1)


def test_the_counsellor_sees_how_each_message_was_read_and_its_level(app, texter):
    for body in ("hi", "1", "my boss took my passport and I owe him money", DANGER):
        texter.send(body)

    seen = [(e["text"], e["level"], e.get("intent") or None) for e in said_by_texter(app, texter)]
    assert seen == [
        ("hi", "normal", "greeting"),
        ("1", "normal", None),
        ("my boss took my passport and I owe him money", "high", "disclosure"),
        (DANGER, "emergency", seen[3][2]),  # read as danger by the lexicon; the model's reading may vary
    ]


def test_the_bots_replies_are_in_the_transcript_as_the_bots_at_the_time_of_the_message(app, texter):
    before = time.time()
    reply = texter.send("hi")
    after = time.time()

    entries = transcript(app, texter)
    assert [e["from"] for e in entries] == ["texter"] + ["bot"] * (len(entries) - 1)
    assert "\n\n".join(e["text"] for e in entries[1:]) == reply
    assert all(before <= e["at"] <= after for e in entries)


def test_past_the_transcript_cap_each_long_message_keeps_its_start_and_short_ones_stay_whole(config):
    app = create_app({**config, "TRANSCRIPT_MAX_CHARS": 300})
    texter = Texter(app.test_client())
    texter.send("a" * 250)  # long, but under the cap: whole
    texter.send("b" * 50)  # the conversation is now exactly at its cap
    texter.send("c" * 200)  # past the cap: its first 160 characters
    texter.send("d" * 160)  # past the cap but short: whole

    assert [e["text"] for e in said_by_texter(app, texter)] == [
        "a" * 250, "b" * 50, "c" * 160 + " […]", "d" * 160]
    app.extensions["redis"].close()


# -- joining the line -----------------------------------------------------------------------


def test_a_texter_who_joins_the_line_is_told_the_wait_once_and_is_shown_to_counsellors(app, alice):
    texter = Texter(app.test_client(), "+16615550147")
    assert "A counselor should reply in about" in join_the_line(texter)  # alice is signed in
    cid = cid_of(app, texter)
    assert app.extensions["waiting"].waiting()[0][:2] == (cid, "normal")

    live = alice.get("/console/queue/live").get_data(as_text=True)
    assert "asked for a counselor" in live and "SMS" in live and "…47" in live

    texter.send("0")  # the menu, still in line
    texter.send("1")
    again = texter.send("1")  # asked for a counselor again
    assert "should reply in about" not in again  # the wait is told when they join, not each time they ask
    assert in_line(app) == [cid]


def test_a_texter_whose_answers_to_the_screening_questions_are_strong_signs_waits_at_high_priority(app, texter):
    # Not free to leave: yes; every other question: no. Nothing in the words themselves raised the risk.
    for body in ("hi", "1", "2", "yes", "no", "no", "no", "no", "no", "no", "1", "1"):
        reply = texter.send(body)

    assert "in line" in reply
    assert app.extensions["store"].load(cid_of(app, texter)).risk == "normal"
    assert app.extensions["waiting"].waiting()[0][:2] == (cid_of(app, texter), "high")
    totals = app.extensions["stats"].totals()
    assert totals.get("handoffs|high") == 1  # and the dashboard counts it at that priority


def test_a_texter_who_spoke_of_self_harm_hears_988_again_when_they_join_the_line(app, texter):
    texter.send("hi")
    texter.send("1")
    assert "988" in texter.send("I want to kill myself")

    joined = texter.send("1")
    assert "in line" in joined and NOBODY_ONLINE in joined
    assert joined.index(NOBODY_ONLINE) < joined.index("988")  # 988 after the 24/7 trafficking line


def test_an_emergency_handoff_shows_emergency_as_the_reason(app, texter):
    for body in ("hi", "1", DANGER, "1"):
        texter.send(body)

    conv = app.extensions["store"].load(cid_of(app, texter))
    assert conv.handoff == "waiting" and reason(conv) == "emergency"


def test_a_tip_reaches_the_line_as_a_tip_and_the_counsellors_are_told(app, texter):
    for body in ("hi", "1", "4", "I saw a van outside the motel every night", "done", "yes"):
        reply = texter.send(body)

    cid = cid_of(app, texter)
    assert "report is with our team" in reply
    assert in_line(app) == [cid]
    assert "report (tip)" in reason(app.extensions["store"].load(cid))
    notify = [j for j in app.extensions["queue"].jobs if j.func_name == "workers.alerts.notify_counsellors"]
    assert [j.args for j in notify] == [[cid]]
    stats = app.extensions["stats"]
    today = stats.day(time.time())
    assert stats.days(today, today)[today].get("handoff|tip") == 1


def test_a_texter_who_left_the_line_and_asks_again_waits_behind_those_who_came_meanwhile(app, make_texter):
    first, second = make_texter(), make_texter()
    join_the_line(first)
    assert "Leave the line" in first.send("cancel")
    assert "left the line" in first.send("yes")
    join_the_line(second)
    for body in ("1", "1"):  # from the menu: a counselor, yes
        first.send(body)

    assert in_line(app) == [cid_of(app, second), cid_of(app, first)]


def test_texters_in_line_who_both_write_an_emergency_keep_their_order_of_arrival(app, make_texter):
    first, second = make_texter(), make_texter()
    join_the_line(first)
    join_the_line(second)
    assert "911" in second.send(DANGER)
    assert "911" in first.send(DANGER)

    assert app.extensions["waiting"].waiting()[0][:2] == (cid_of(app, first), "emergency")
    assert in_line(app) == [cid_of(app, first), cid_of(app, second)]
    assert app.extensions["store"].load(cid_of(app, first)).handoff == "waiting"


def test_an_emergency_from_a_texter_already_talking_with_a_counsellor_does_not_put_them_back_in_line(
        app, texter):
    store = app.extensions["store"]
    cid = cid_of(app, texter)
    session = store.begin(cid)
    store.commit(session, Conversation(id=cid, channel="sms", address=texter.number, handoff="active",
                                       state="waiting", counsellor="alice", slots={"consent": True}))

    assert "911" in texter.send(DANGER)

    assert in_line(app) == []
    assert store.load(cid).handoff == "active"
    assert any(j.func_name == "workers.alerts.emergency_alert" for j in app.extensions["queue"].jobs)


# -- what the console and the workers are told ---------------------------------------------


def test_the_console_hears_each_message_a_texter_joining_and_leaving_the_line_stopping_and_starting(
        app, texter, redis_client):
    cid = cid_of(app, texter)
    pubsub = events.subscribe(redis_client, events.CONSOLE, events.conversation_channel(cid))
    try:
        join_the_line(texter)
        texter.send("cancel")
        texter.send("yes")
        texter.send("STOP")
        texter.send("START")
        got = heard(pubsub, lambda got: sum(e["kind"] == "message" for e in got) == 8)  # one per message
    finally:
        pubsub.close()

    console = [(e["kind"], e["conv"], e.get("priority")) for e in got if e["channel"] == events.CONSOLE]
    assert console == [("queued", cid, "normal"), ("left", cid, None), ("opt_out", cid, None), ("opt_in", cid, None)]
    watching = [(e["kind"], e["conv"]) for e in got if e["channel"] == events.conversation_channel(cid)]
    assert watching.count(("message", cid)) == 8  # each of the texter's messages, for the open page
    assert any(e["kind"] == "opt_in" for e in got)


def test_an_emergency_alert_names_the_conversation_and_a_done_job_leaves_nothing_behind(
        config, redis_client):
    receiver = Receiver()
    try:
        app = create_app({**config, "ALERT_WEBHOOK_URL": receiver.url, "PUBLIC_URL": "http://localhost"})
        texter = Texter(app.test_client())
        texter.send("hi")
        assert "911" in texter.send(DANGER)
        queue = app.extensions["queue"]
        [job] = [j for j in queue.jobs if j.func_name == "workers.alerts.emergency_alert"]
        work(app)

        [body] = receiver.bodies
        assert json.loads(body)["conversation"] == cid_of(app, texter)
        assert not Job.exists(job.id, connection=redis_client)  # no record of who was alerted about what
    finally:
        receiver.done.set()
        receiver.server.shutdown()
        receiver.server.server_close()


def test_an_emergency_alert_the_webhook_refused_stays_a_week_for_the_supervisor_to_retry(config, redis_client):
    receiver = Receiver()
    receiver.statuses = [400]  # the receiver refuses it: no point asking again
    try:
        app = create_app({**config, "ALERT_WEBHOOK_URL": receiver.url, "PUBLIC_URL": "http://localhost"})
        texter = Texter(app.test_client())
        texter.send("hi")
        texter.send(DANGER)
        work(app)

        registry = FailedJobRegistry(queue=app.extensions["queue"])
        [failed] = [Job.fetch(i, connection=redis_client, serializer=JSONSerializer) for i in registry.get_job_ids()]
        assert failed.func_name == "workers.alerts.emergency_alert"
        assert 6.9 * 86400 < redis_client.ttl(failed.key) <= 7 * 86400
    finally:
        receiver.done.set()
        receiver.server.shutdown()
        receiver.server.server_close()


def test_the_dashboard_counts_messages_the_new_conversation_and_one_handoff_however_often_asked(app, texter):
    stats = app.extensions["stats"]
    join_the_line(texter)
    for body in ("0", "1", "1"):  # asked for a counselor again, already in line
        texter.send(body)

    today = stats.day(time.time())
    day = stats.days(today, today)[today]
    assert {k: day.get(k) for k in ("messages", "conversations", "channel|sms", "handoff|counsellor",
                                    "priority|normal")} == {
        "messages": 7, "conversations": 1, "channel|sms": 1, "handoff|counsellor": 1, "priority|normal": 1}
    totals = stats.totals()
    assert (totals.get("in|sms"), totals.get("handoffs|normal")) == (7, 1)


def test_the_dashboard_counts_an_emergency_handoff_at_its_priority(app, texter):
    for body in ("hi", "1", DANGER, "1"):
        texter.send(body)

    totals = app.extensions["stats"].totals()
    assert (totals.get("handoffs|emergency"), totals.get("handoffs|None")) == (1, None)


def test_the_dashboard_shows_how_long_a_texter_waited_once_a_counsellor_took_them(app, alice, texter):
    stats = app.extensions["stats"]
    join_the_line(texter)
    assert alice.post(f"/console/claim/{cid_of(app, texter)}").status_code in (200, 302, 303)

    stats.fold_console_actions()
    today = stats.day(time.time())
    assert len(stats.waits(today, today)) == 1


# -- DELETE, the web chat's end, the rate limit -----------------------------------------------


def test_delete_in_line_leaves_no_key_naming_the_conversation(app, texter, redis_client):
    join_the_line(texter)
    texter.send("DELETE")
    texter.send("yes")

    cid = cid_of(app, texter)
    assert [k for k in redis_client.scan_iter() if cid.encode() in k] == []
    assert in_line(app) == []


def test_a_message_for_an_erased_chat_is_refused_each_time_at_once(app, client):
    token = client.post("/chat/api/session", json={"lang": "en"}).json["token"]
    assert client.post("/chat/api/exit", json={"token": token}).status_code == 200
    helpline = app.extensions["helpline"]

    for _ in range(2):  # the second is not kept waiting for a lock the first left behind
        with pytest.raises(ConversationGone):
            helpline.handle(Inbound("web", token, "hello?"), create=False)
    assert app.extensions["store"].load(helpline.conversation_id("web", token)) is None


def test_past_the_limit_each_texters_emergency_allowances_are_their_own(limited):
    first, second = Texter(limited.test_client()), Texter(limited.test_client())
    for texter in (first, second):
        for body in ("hi", "1", "2"):  # the whole ordinary allowance
            texter.send(body)

    assert "911" in first.send(DANGER)
    assert all(first.send("please") for _ in range(3))  # the first texter's follow-up allowance, used up
    assert "911" in second.send(DANGER)  # the second's own emergency allowance
    assert "in line" in second.send("1")  # and their own follow-up allowance


def test_a_texter_who_sent_a_tip_then_asks_for_a_counsellor_has_waited_since_the_tip(app, alice, texter):
    stats, store = app.extensions["stats"], app.extensions["store"]
    for body in ("hi", "1", "4", "I saw a van outside the motel every night", "done", "yes"):
        texter.send(body)
    cid = cid_of(app, texter)
    session = store.begin(cid)  # ten minutes pass in line
    session.conv.slots["queued_at"] -= 600
    store.commit(session, session.conv)
    reply = texter.send("1")  # "Reply 1 to talk with a counselor"
    if "in line" not in reply:
        reply = texter.send("1")  # yes, you may text me
    assert "in line" in reply
    assert alice.post(f"/console/claim/{cid}").status_code in (200, 302, 303)

    stats.fold_console_actions()
    today = stats.day(time.time())
    [waited] = stats.waits(today, today)
    assert waited >= 600


@pytest.mark.parametrize("asked, hour, length, night", [("tomorrow after 6", 18, 3 * 3600, False),
                                                        ("tomorrow at 11 pm", 23, None, True)])
def test_a_check_in_the_texter_asks_for_is_kept_for_the_worker_at_their_time(app, texter, asked, hour, length,
                                                                             night):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot import followups

    for body in ("hi", "1", "5", "1", "93305"):  # find help near me, food, a ZIP code: then the offer
        texter.send(body)
    assert texter.send(asked).startswith("OK, we will text you once, tomorrow, ")

    with app.app_context():
        [found] = followups.of_conversation(cid_of(app, texter))
    start = datetime.fromtimestamp(found.start, ZoneInfo(app.config["HELPLINE_TIMEZONE"]))
    assert (found.kind, found.by, found.status, found.chosen_quiet) == ("check_in", followups.TEXTER, "scheduled", night)
    assert start.hour == hour and found.start > time.time() and found.end > found.start
    if length:
        assert found.end - found.start == length


# -- a blocked sender, the answer to a counsellor's check-in ------------------------------------


def test_a_blocked_sender_gets_the_national_lines_once_then_nothing_and_never_reaches_the_line(app, texter):
    from bot import blocking

    texter.send("hi")
    cid = cid_of(app, texter)
    blocking.block(app.extensions["store"], app.extensions["waiting"], cid, "sam", "24h", "threatened the counsellors",
                   time.time())

    first = texter.send("i want to talk to a counselor")
    assert first.startswith("We cannot answer your messages for now") and "911" in first
    assert [texter.send(body) for body in ("1", "counselor")] == ["", ""]  # told once, not on every message
    assert in_line(app) == [] and app.extensions["store"].load(cid).handoff is None
    assert [(e["from"], e["text"]) for e in transcript(app, texter)][-4:] == [
        ("texter", "i want to talk to a counselor"), ("bot", first), ("texter", "1"), ("texter", "counselor")]
    # Danger is still heard: 911 at once and the on-call alert, though they stay out of the line.
    assert texter.send(DANGER).startswith("If you are in danger now, call 911.")
    assert any(j.func_name == "workers.alerts.emergency_alert" for j in app.extensions["queue"].jobs)
    assert in_line(app) == []


def test_a_block_ends_when_its_time_is_up(app, texter):
    from bot import blocking

    texter.send("hi")
    blocking.block(app.extensions["store"], app.extensions["waiting"], cid_of(app, texter), "sam", "24h",
                   "threatened the counsellors", time.time())
    assert texter.send("hello?").startswith("We cannot answer your messages for now")
    app.extensions["helpline"].clock = lambda: time.time() + 24 * 3600 + 1  # a day later

    assert "How can we help" in texter.send("0")


def test_answering_a_counsellors_check_in_puts_the_texter_back_in_line_for_that_counsellor(app, texter, redis_client):
    from bot import followups

    texter.send("hi")
    store, cid = app.extensions["store"], cid_of(app, texter)
    session = store.begin(cid)  # alice's check-in went out, as workers.followups leaves the conversation
    session.conv.slots.update({followups.SENT_SLOT: {"by": "alice", "at": time.time()}, "consent": True})
    store.commit(session, session.conv)

    assert "in line" in texter.send("ok now is good")

    assert in_line(app) == [cid] and store.load(cid).handoff == "waiting"  # the console lists it as waiting
    assert redis_client.hget(followups.PREFERRED, cid) == b"alice"  # the next-texter button gives it to alice first


def test_a_supervisor_looking_at_a_texter_who_left_the_line_sees_no_reason_to_be_in_it(app, texter):
    with app.app_context():
        accounts.add(app.extensions["redis"], "sam", PASSWORD, True)
    sam = Console(app, "sam")
    assert sam.sign_in().status_code == 302
    join_the_line(texter)
    cid = cid_of(app, texter)
    assert "<dt>Reason</dt><dd>asked for a counselor</dd>" in sam.get(f"/console/c/{cid}").get_data(as_text=True)

    texter.send("cancel")
    assert "left the line" in texter.send("yes")

    assert "<dt>Reason</dt><dd>—</dd>" in sam.get(f"/console/c/{cid}").get_data(as_text=True)


def test_a_tipster_a_counsellor_put_back_in_line_can_still_leave_the_line(app, alice, texter):
    for body in ("hi", "1", "4", "I saw a van outside the motel every night", "done", "yes"):
        texter.send(body)
    cid = cid_of(app, texter)
    assert alice.post(f"/console/claim/{cid}").status_code == 302
    assert alice.post(f"/console/c/{cid}/release").status_code == 302  # back in line, as a tip: no reason of its own

    assert "Leave the line" in texter.send("cancel")
    assert "left the line" in texter.send("yes")
    assert in_line(app) == [] and app.extensions["store"].load(cid).handoff is None
