""""Help the next texter", capacity, breaks and the pause after an emergency, as counsellors and
supervisors see them: in a real browser where a race or the page matters, through the test client elsewhere."""
from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from playwright.sync_api import expect
from rq.registry import ScheduledJobRegistry

from bot import audit
from bot.cli import main
from bot.console import capacity
from tests.ops.test_chaos import wait_for
from tests.workers.test_alerts import DANGER, receiver  # noqa: F401 (receiver: the webhook fixture)
from workers import unattended

from .conftest import PASSWORD, wrapped_up

_IN_CONVERSATION = re.compile(r"/console/c/([a-z2-7]{32})$")


def signed_in(browser, server, name: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}/console/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#next-texter")).to_be_visible()
    return page


def click_together(pages, redis_url: str) -> None:
    """Click "Help the next texter" on every page at the same instant: Redis holds every write
    (CLIENT PAUSE WRITE) until each page's request waits on one, then lets them all go."""
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
    try:
        for page in pages:
            expect(page.locator("#next-texter")).to_be_enabled()
            page.locator("#next-texter").click(no_wait_after=True)
        assert wait_for(lambda: admin.info("clients")["blocked_clients"] >= len(pages), timeout=10)
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()


def taken(page) -> str:
    expect(page).to_have_url(_IN_CONVERSATION)
    return _IN_CONVERSATION.search(page.url).group(1)


def test_two_counsellors_clicking_at_once_get_different_texters_most_urgent_and_longest_waiting_first(
        live_server, browser, staff, queued, redis_url):
    staff.config["COUNSELLOR_CAPACITY"] = 2
    now = time.time()
    normal_newer = queued("normal", now - 900)
    normal_older = queued("normal", now - 1200)
    high = queued("high", now - 300)
    emergency_newer = queued("emergency", now - 30)
    emergency_older = queued("emergency", now - 200)
    alice, bob = signed_in(browser, live_server, "alice"), signed_in(browser, live_server, "bob")

    click_together([alice, bob], redis_url)

    assert {taken(alice), taken(bob)} == {emergency_older.id, emergency_newer.id}
    expect(alice.locator(".status-line")).to_contain_text("You hold this conversation")
    # One at a time now: high before the older normal, the older normal before the newer one.
    alice.goto(f"{live_server.url}/console/")
    expect(alice.locator("#my-load")).to_have_text("1 of 2")
    alice.locator("#next-texter").click()
    assert taken(alice) == high.id
    bob.goto(f"{live_server.url}/console/")
    bob.locator("#next-texter").click()
    assert taken(bob) == normal_older.id

    # At her limit alice's button says why, and a plain claim is refused all the same.
    alice.goto(f"{live_server.url}/console/")
    expect(alice.locator("#my-load")).to_have_text("2 of 2")
    expect(alice.locator("#next-texter")).to_be_disabled()
    expect(alice.locator("#next-why")).to_have_text("You hold 2 conversations, your limit.")
    alice.locator(f'#queue tr[data-conv="{normal_newer.id}"]').get_by_role("button", name="Claim").click()
    expect(alice.locator(".alert")).to_have_text(
        "You cannot take a conversation now: you hold 2 conversations, your limit of 2.")
    assert staff.extensions["waiting"].position(normal_newer.id) == 0  # still waiting for someone else
    for page in (alice, bob):
        page.close()


def test_of_two_counsellors_clicking_at_once_for_one_texter_one_gets_them_the_other_is_told_nobody_waits(
        live_server, browser, staff, queued, redis_url):
    only = queued("high")
    alice, bob = signed_in(browser, live_server, "alice"), signed_in(browser, live_server, "bob")

    click_together([alice, bob], redis_url)

    for page in (alice, bob):
        expect(page.locator(".status-line, .alert").first).to_be_visible()
    winner, loser = (alice, bob) if _IN_CONVERSATION.search(alice.url) else (bob, alice)
    expect(loser.locator(".alert")).to_have_text("Nobody is waiting right now.")
    assert taken(winner) == only.id
    for page in (alice, bob):
        page.close()


def test_a_break_stops_new_claims_shows_to_supervisors_and_ends_with_one_click(live_server, browser, staff,
                                                                               queued, tmp_path):
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    conv = queued("emergency")
    alice, sam = signed_in(browser, live_server, "alice"), signed_in(browser, live_server, "sam")
    alice.screenshot(path=str(shots / "console-next-texter.png"))

    alice.get_by_role("button", name="Take a break").click()
    expect(alice.locator("#next-texter")).to_be_disabled()
    expect(alice.locator("#next-why")).to_contain_text("You are on a break")
    alice.locator(f'#queue tr[data-conv="{conv.id}"]').get_by_role("button", name="Claim").click()
    expect(alice.locator(".alert")).to_contain_text("You cannot take a conversation now: you are on a break")
    sam.goto(f"{live_server.url}/console/all")
    expect(sam.locator('#rota tr[data-name="alice"]')).to_contain_text("on a break since")
    sam.locator("#rota").screenshot(path=str(shots / "console-rota.png"))

    alice.get_by_role("button", name="I'm back").click()
    expect(alice.locator("#next-texter")).to_be_enabled()
    sam.reload()
    expect(sam.locator('#rota tr[data-name="alice"]')).to_contain_text("free")
    alice.locator("#next-texter").click()
    assert taken(alice) == conv.id
    for page in (alice, sam):
        page.close()


# -- through the test client ---------------------------------------------------------------


def test_after_ending_an_emergency_a_pause_is_offered_and_supervisors_see_who_took_one(console, queued):
    alice, sam = console("alice"), console("sam")
    emergency, normal = queued("emergency"), queued("normal")
    for conv in (normal, emergency):
        alice.post(f"/console/claim/{conv.id}")
    alice.post(f"/console/c/{normal.id}/end", wrapped_up("resolved"))
    assert "Take a few minutes" not in alice.get("/console/").get_data(as_text=True)

    alice.post(f"/console/c/{emergency.id}/end", wrapped_up("emergency_services"))
    page = alice.get("/console/").get_data(as_text=True)
    assert "That conversation was an emergency" in page and "Take a few minutes" in page

    alice.post("/console/break", {"break": "pause"})
    page = alice.get("/console/").get_data(as_text=True)
    assert "You are taking a pause after an emergency" in page and "Take a few minutes" not in page
    overview = sam.get("/console/all").get_data(as_text=True)
    assert re.search(r'data-name="alice">.*?taking a pause after an emergency since', overview, re.S)


def test_declining_the_pause_takes_the_offer_away(console, queued):
    alice = console("alice")
    emergency = queued("emergency")
    alice.post(f"/console/claim/{emergency.id}")
    alice.post(f"/console/c/{emergency.id}/end", wrapped_up("resolved"))
    alice.post("/console/break", {"break": "decline"})
    assert "Take a few minutes" not in alice.get("/console/").get_data(as_text=True)


def test_the_overview_counts_what_each_counsellor_took_since_signing_in(console, queued):
    alice, sam = console("alice"), console("sam")
    for priority in ("emergency", "normal", "high"):
        alice.post(f"/console/claim/{queued(priority).id}")
    bob = console("bob")
    bob.post("/console/next")

    rows = dict(re.findall(r'<tr data-name="(\w+)">(.*?)</tr>', sam.get("/console/all").get_data(as_text=True),
                           re.S))
    cells = {name: re.findall(r"<td>(.*?)</td>", row, re.S) for name, row in rows.items()}
    assert cells["alice"][1] == "3 of 3" and cells["alice"][3:] == ["3", "1"]
    assert cells["bob"][1] == "0 of 3" and cells["bob"][3:] == ["0", "0"]  # nobody was left for bob
    assert cells["sam"][3:] == ["0", "0"]


def test_a_sign_in_starts_a_new_shift(console, queued):
    alice = console("alice")
    alice.post(f"/console/claim/{queued('emergency').id}")
    alice.post("/console/signout")
    alice = console("alice")

    row = re.search(r'<tr data-name="alice">(.*?)</tr>', console("sam").get("/console/all").get_data(as_text=True),
                    re.S).group(1)
    assert re.findall(r"<td>(.*?)</td>", row)[3:] == ["0", "0"]


def test_supervisors_may_go_past_their_capacity(console, queued, staff):
    staff.config["COUNSELLOR_CAPACITY"] = 1
    sam = console("sam")
    first, second = queued("normal"), queued("emergency")
    sam.post(f"/console/claim/{first.id}")
    answer = sam.post("/console/next")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/console/c/{second.id}")
    assert "2 of 1</span> (supervisors may take more)" in sam.get("/console/").get_data(as_text=True)


def test_a_transfer_to_a_counsellor_at_their_limit_or_on_a_break_is_refused(console, queued, staff):
    staff.config["COUNSELLOR_CAPACITY"] = 1
    alice, bob = console("alice"), console("bob")
    mine, bobs = queued("high"), queued("normal")
    alice.post(f"/console/claim/{mine.id}")
    bob.post(f"/console/claim/{bobs.id}")

    answer = alice.post(f"/console/c/{mine.id}/transfer", {"to": "bob"})
    assert answer.status_code == 400 and "bob holds 1 conversations, their limit" in answer.get_data(as_text=True)

    bob.post(f"/console/c/{bobs.id}/end", wrapped_up("resolved"))
    bob.post("/console/break", {"break": "break"})
    answer = alice.post(f"/console/c/{mine.id}/transfer", {"to": "bob"})
    assert answer.status_code == 400 and "bob is on a break" in answer.get_data(as_text=True)

    bob.post("/console/break", {"break": "back"})
    assert alice.post(f"/console/c/{mine.id}/transfer", {"to": "bob"}).status_code == 302


def test_going_away_ends_a_break(console):
    alice = console("alice")
    alice.post("/console/break", {"break": "break"})
    alice.post("/console/status", {"status": "away"})
    alice.post("/console/status", {"status": "online"})
    assert "You are on a break" not in alice.get("/console/").get_data(as_text=True)


def test_a_break_and_the_return_are_in_the_audit_trail(console, staff):
    alice = console("alice")
    alice.post("/console/break", {"break": "pause"})
    alice.post("/console/break", {"break": "back"})
    trail = [(e["actor"], e["action"], e["detail"]) for e in audit.entries(staff.extensions["redis"], 10)]
    assert trail[:2] == [("alice", "break_end", ""), ("alice", "break_start", "pause")]


def test_an_unknown_break_answer_is_a_clear_400(console):
    answer = console("alice").post("/console/break", {"break": "nap"})
    assert answer.status_code == 400 and "Choose a break" in answer.get_data(as_text=True)


def test_one_account_has_its_own_capacity_from_the_command_line(console, queued, staff, cli_env):
    def run(*args):
        return CliRunner().invoke(main, ["counsellor", *args], env=cli_env)

    assert run("capacity", "alice").output == "alice may hold 3 conversations at once\n"
    assert run("capacity", "alice", "1").output == "alice may hold 1 conversation at once\n"
    alice = console("alice")
    alice.post(f"/console/claim/{queued('normal').id}")
    assert "1 of 1" in alice.get("/console/").get_data(as_text=True)
    assert alice.post(f"/console/claim/{queued('emergency').id}").status_code == 409

    assert run("capacity", "alice", "default").output == "alice may hold 3 conversations at once\n"
    refused = run("capacity", "alice", "21")
    assert refused.exit_code == 2 and "a number from 1 to 20, or default" in refused.output
    assert run("capacity", "nobody", "2").exit_code == 1
    added = CliRunner().invoke(main, ["counsellor", "add", "dana", "--capacity", "5"],
                               input="a long enough password\n", env=cli_env)
    assert added.exit_code == 0, added.output
    with staff.app_context():
        assert capacity.capacity(staff.extensions["redis"], "dana") == 5


@pytest.mark.parametrize("setting, value", [("COUNSELLOR_CAPACITY", 0), ("COUNSELLOR_CAPACITY", 21),
                                            ("EMERGENCY_UNATTENDED_SECONDS", 0)])
def test_a_setting_out_of_range_stops_the_app_with_its_name(config, setting, value):
    from bot import create_app
    from bot.errors import ConfigurationError

    config[setting] = value
    with pytest.raises(ConfigurationError, match=setting):
        create_app(config)


# -- emergencies nobody is free for (workers.unattended) -------------------------------------


@pytest.fixture
def checking(receiver, run_jobs):
    """Run the scheduled check as the worker does; returns the alerts of this kind the webhook took."""
    def check() -> list[dict]:
        unattended.check()
        return [alert for alert in map(json.loads, receiver.bodies) if alert["kind"] == "emergency_unattended"]

    return check


def test_an_emergency_nobody_is_free_for_alerts_once_with_ids_and_counts_only(checking, staff, queued, console):
    late = queued("emergency", time.time() - 200, matched=["threat_violence"])
    queued("emergency", time.time() - 60)  # not yet past EMERGENCY_UNATTENDED_SECONDS (120)
    queued("high", time.time() - 900)  # not an emergency, however long it waits

    [alert] = checking()
    assert (alert["conversation"], alert["priority"], alert["counsellors_online"], alert["counsellors_free"]) == (
        late.id, "emergency", 0, 0)
    assert 200 <= alert["waited_seconds"] < 260 and alert["console"] == f"http://localhost/console/c/{late.id}"
    assert len(checking()) == 1  # the next check does not say it again

    page = console("sam").get("/console/all").get_data(as_text=True)
    assert f'data-unattended="{late.id}"' in page and "no counselor is free to take it" in page
    assert "no counselor is free" not in console("alice").get("/console/").get_data(as_text=True)


def test_the_alert_never_carries_the_number_or_the_texters_words(receiver, staff, texter, run_jobs):
    assert "911" in texter.send(DANGER)
    assert "in line" in texter.send("1")
    run_jobs()  # the emergency's own alert
    with staff.app_context():
        assert unattended.sweep(120, now=time.time() + 200)["alerted"] == 1
    [body] = [body for body in receiver.bodies if b"emergency_unattended" in body]
    assert texter.number[2:].encode() not in body and b"gun" not in body and b"kill" not in body


def test_no_alert_while_an_online_counsellor_has_a_free_place(checking, staff, queued, console):
    queued("emergency", time.time() - 200)
    alice = console("alice")
    assert checking() == []

    alice.post("/console/break", {"break": "break"})
    assert len(checking()) == 1  # on a break, alice has no free place


def test_everyone_at_their_limit_is_nobody_free(checking, staff, queued, console):
    staff.config["COUNSELLOR_CAPACITY"] = 1
    alice = console("alice")
    alice.post(f"/console/claim/{queued('normal').id}")
    queued("emergency", time.time() - 200)
    assert len(checking()) == 1


def test_the_banner_goes_once_the_emergency_is_taken(checking, staff, queued, console):
    late = queued("emergency", time.time() - 200)
    checking()
    sam = console("sam")
    assert f'data-unattended="{late.id}"' in sam.get("/console/all").get_data(as_text=True)
    sam.post("/console/next")
    assert "data-unattended" not in sam.get("/console/all").get_data(as_text=True)
    checking()
    assert staff.extensions["redis"].hlen(capacity.UNATTENDED) == 0


def test_the_check_schedules_its_next_run_once_however_many_workers_ask(staff):
    queue = staff.extensions["queue"]
    first = unattended.schedule(queue)
    assert unattended.schedule(queue) is None
    assert [j for j in ScheduledJobRegistry(queue=queue).get_job_ids() if j.startswith("unattended-")] == [first.id]


def test_delete_leaves_no_unattended_flag(receiver, staff, texter):
    assert "911" in texter.send(DANGER)
    assert "in line" in texter.send("1")
    with staff.app_context():
        unattended.sweep(120, now=time.time() + 200)
    assert staff.extensions["redis"].hlen(capacity.UNATTENDED) == 1
    texter.send("DELETE")
    texter.send("yes")
    assert staff.extensions["redis"].hlen(capacity.UNATTENDED) == 0


def test_an_alert_the_webhook_refused_is_posted_again_at_a_later_check_and_then_never(receiver, staff, queued):
    late = queued("emergency", time.time() - 200)
    receiver.statuses = [400]  # refused (a 4xx is not asked again within the one attempt)
    now = time.time()
    with staff.app_context():
        assert unattended.sweep(120, now=now)["alerted"] == 0
        assert unattended.sweep(120, now=now + unattended.EVERY_SECONDS)["alerted"] == 0  # its lease still runs
        assert unattended.sweep(120, now=now + capacity.ALERT_LEASE_SECONDS + 1)["alerted"] == 1
        assert unattended.sweep(120, now=now + 3 * capacity.ALERT_LEASE_SECONDS)["alerted"] == 0
    assert [json.loads(body)["conversation"] for body in receiver.bodies] == [late.id, late.id]


def test_a_worker_killed_while_posting_the_alert_leaves_it_to_a_later_check_which_posts_it_once(
        receiver, staff, queued, config, tmp_path):
    from tests.workers.test_recovery import start_worker, worker_env

    late = queued("emergency", time.time() - 200)
    receiver.hang.set()  # the webhook takes the post and never answers: the worker is killed waiting
    env = {**worker_env({"SEND_RETRY_SECONDS": "5,30,120,600", **config}), "ALERT_WEBHOOK_URL": receiver.url}
    staff.extensions["queue"].enqueue(unattended.JOB)
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        assert wait_for(lambda: len(receiver.bodies) == 1, timeout=60), (tmp_path / "worker.log").read_text()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    receiver.hang.clear()

    now = time.time()
    with staff.app_context():
        assert unattended.sweep(120, now=now)["alerted"] == 0  # the dead worker's lease still runs
        assert unattended.sweep(120, now=now + capacity.ALERT_LEASE_SECONDS + 1)["alerted"] == 1
        assert unattended.sweep(120, now=now + 3 * capacity.ALERT_LEASE_SECONDS)["alerted"] == 0
    assert [json.loads(body)["conversation"] for body in receiver.bodies] == [late.id, late.id]
