"""Check-ins in the console: scheduled from a conversation's page, changed and cancelled, listed for the counsellor
who scheduled them (everyone's for supervisors), and the texter who answers one taken first by that counsellor."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from bot import audit, followups
from bot.console import accounts

from .conftest import PASSWORD, wrapped_up
from .test_next_texter import signed_in

CHECK_IN = "Hi, just checking in"


def tomorrow(app) -> str:
    return (datetime.now(ZoneInfo(app.config["HELPLINE_TIMEZONE"])) + timedelta(days=1)).strftime("%Y-%m-%d")


def window(app, start="16:00", end="18:00", kind="check_in", **more) -> dict:
    return {"day": tomorrow(app), "from": start, "to": end, "kind": kind, **more}


def held(console, queued, name="alice", **kwargs):
    conv = queued(**kwargs)
    me = console(name)
    assert me.post(f"/console/claim/{conv.id}").status_code == 302
    return me, conv


def test_a_counsellor_schedules_a_check_in_and_only_they_and_supervisors_see_it(console, queued, app):
    alice, conv = held(console, queued)
    answer = alice.post(f"/console/c/{conv.id}/checkins", window(app))
    assert answer.status_code == 302

    page = alice.get(f"/console/c/{conv.id}").get_data(as_text=True)
    assert "16:00-18:00" in page and "Checking in (neutral)" in page
    mine = alice.get("/console/followups").get_data(as_text=True)
    assert "16:00-18:00" in mine and "by alice" in mine
    # No number, no text on the list.
    assert conv.address not in mine and conv.address[-4:] not in mine and CHECK_IN not in mine
    assert "No check-in is coming up" in console("bob").get("/console/followups").get_data(as_text=True)
    assert "by alice" in console("sam").get("/console/followups").get_data(as_text=True)
    entries = [(e["actor"], e["action"], e["detail"]) for e in audit.entries(app.extensions["redis"], conv_id=conv.id)]
    assert ("alice", "followup_scheduled", "check_in") in entries


def test_without_consent_the_form_is_disabled_and_says_why(console, queued, app):
    alice, conv = held(console, queued, consent=False)
    page = alice.get(f"/console/c/{conv.id}").get_data(as_text=True)
    assert "has not agreed to be texted first" in page
    assert re.search(r"<fieldset\s+disabled>", page)
    refused = alice.post(f"/console/c/{conv.id}/checkins", window(app))
    assert refused.status_code == 400 and "not agreed" in refused.get_data(as_text=True)
    assert app.extensions["redis"].zcard(followups.UPCOMING) == 0


def test_bad_input_gets_a_clear_answer(console, queued, app):
    alice, conv = held(console, queued)
    for form, said in ((window(app, day="tomorrow"), "give a day"),
                       (window(app, "18:00", "16:00"), "ends before it starts"),
                       (window(app, "22:00", "23:00"), "9 p.m. and 8 a.m."),
                       (window(app, kind="anything"), "what kind")):
        answer = alice.post(f"/console/c/{conv.id}/checkins", form)
        assert answer.status_code == 400 and said in answer.get_data(as_text=True), form
    assert alice.post(f"/console/c/{conv.id}/checkins", window(app, "22:00", "23:00", night="yes")).status_code == 302


def test_only_the_scheduler_or_a_supervisor_changes_or_cancels_it(console, queued, app):
    alice, conv = held(console, queued)
    alice.post(f"/console/c/{conv.id}/checkins", window(app))
    [found] = followups_of(app, conv.id)
    bob = console("bob")
    assert bob.post(f"/console/checkins/{found.id}/cancel").status_code == 403
    assert bob.post(f"/console/checkins/{found.id}/change", window(app, "10:00", "11:00")).status_code == 403

    assert alice.post(f"/console/checkins/{found.id}/change", window(app, "10:00", "11:00")).status_code == 302
    [changed] = followups_of(app, conv.id)
    assert "10:00-11:00" in alice.get("/console/followups").get_data(as_text=True)
    scheduled = app.extensions["queue"].scheduled_job_registry.get_job_ids()
    assert changed.job_id in scheduled and found.job_id not in scheduled  # the old time's job is gone

    assert console("sam").post(f"/console/checkins/{found.id}/cancel").status_code == 302
    assert followups_of(app, conv.id) == []
    assert changed.job_id not in app.extensions["queue"].scheduled_job_registry.get_job_ids()
    actions = [e["action"] for e in audit.entries(app.extensions["redis"], conv_id=conv.id)
               if e["action"].startswith("followup")]
    assert actions == ["followup_cancelled", "followup_changed", "followup_scheduled"]


def followups_of(app, conv_id):
    with app.app_context():
        return [f for f in followups.of_conversation(conv_id) if f.status == "scheduled"]


def test_the_counsellor_asked_for_takes_that_texter_first_among_equals(console, queued, app):
    older = queued("normal")
    asked = queued("normal", asked_for="alice")
    pipe = app.extensions["redis"].pipeline()
    followups.prefer(pipe, asked.id, "alice")
    pipe.execute()
    alice, bob = console("alice"), console("bob")
    assert "asked for alice" in alice.get("/console/queue/live").get_data(as_text=True)

    answer = alice.post("/console/next")
    assert answer.headers["Location"].endswith(f"/console/c/{asked.id}")
    assert bob.post("/console/next").headers["Location"].endswith(f"/console/c/{older.id}")

    # Ending it forgets who was asked for.
    alice.post(f"/console/c/{asked.id}/end", wrapped_up())
    assert app.extensions["redis"].hget(followups.PREFERRED, asked.id) is None


def test_an_emergency_still_comes_before_the_texter_who_asked_for_you(console, queued, app):
    asked = queued("normal", asked_for="alice")
    pipe = app.extensions["redis"].pipeline()
    followups.prefer(pipe, asked.id, "alice")
    pipe.execute()
    emergency = queued("emergency")
    alice = console("alice")
    assert alice.post("/console/next").headers["Location"].endswith(f"/console/c/{emergency.id}")
    assert console("bob").post("/console/next").headers["Location"].endswith(f"/console/c/{asked.id}")


def test_in_a_browser_schedule_change_and_cancel_a_check_in(live_server, browser, staff, queued, app):
    conv = queued("normal")
    page = signed_in(browser, live_server, "alice")
    page.goto(f"{live_server.url}/console/c/{conv.id}")
    page.get_by_role("button", name="Claim").click()

    # The wrap-up form's "Follow-up wanted: Yes" points to the check-in form.
    offer = page.locator("#end .checkin-offer")
    expect(offer).to_be_hidden()
    page.locator("#end input[name=follow_up][value=yes]").check()
    expect(offer).to_be_visible()

    form = page.locator("#checkin-form")
    form.locator("input[name=day]").fill(tomorrow(app))
    form.locator("input[name=from]").fill("16:00")
    form.locator("input[name=to]").fill("18:00")
    form.locator("select[name=kind]").select_option("counsellor")
    form.get_by_role("button", name="Schedule a check-in").click()
    expect(page.locator(".banner")).to_contain_text("Check-in scheduled")
    row = page.locator("#checkins .checkin")
    expect(row).to_contain_text("16:00-18:00")
    expect(row).to_contain_text("A counselor will text you")

    row.locator("summary", has_text="Change").click()
    row.locator("input[name=from]").fill("09:30")
    row.locator("input[name=to]").fill("10:30")
    row.get_by_role("button", name="Save the change").click()
    expect(page.locator(".banner")).to_contain_text("Check-in moved")
    expect(page.locator("#checkins .checkin")).to_contain_text("09:30-10:30")

    page.get_by_role("link", name="Check-ins").click()
    expect(page.locator("#upcoming .checkin")).to_contain_text("09:30-10:30")
    page.locator("#upcoming .checkin").get_by_role("button", name="Cancel").click()
    expect(page.locator(".banner")).to_contain_text("Check-in cancelled")
    expect(page.get_by_text("No check-in is coming up")).to_be_visible()
    page.close()


def test_a_counsellor_whose_name_is_texter_gets_no_hold_on_the_check_ins_texters_asked_for(console, queued, app):
    with app.app_context():
        accounts.add(app.extensions["redis"], "texter", PASSWORD)
        asked = followups.schedule(queued().id, time.time() + 3600, time.time() + 7200, "check_in", followups.TEXTER)
    namesake = console("texter")
    assert "No check-in is coming up" in namesake.get("/console/followups").get_data(as_text=True)
    assert namesake.post(f"/console/checkins/{asked.id}/cancel").status_code == 403
    assert namesake.post(f"/console/checkins/{asked.id}/change", window(app)).status_code == 403
    assert followups_of(app, asked.conv) == [asked]
    # A supervisor sees it, as the texter's own.
    assert "by the texter" in console("sam").get("/console/followups").get_data(as_text=True)
