"""Signing in and out: passwords, rate limits, CSRF, cookies, idle expiry, supervisor-only pages."""
from __future__ import annotations

import threading

import time

import pytest

from bot import audit
from bot.console import accounts
from tests.conftest import app_config

from .conftest import PASSWORD, Console


def test_right_password_signs_in_and_goes_online(console, staff):
    alice = console("alice")
    page = alice.get("/console/")
    assert page.status_code == 200
    assert "alice" in page.get_data(as_text=True)
    client = staff.extensions["redis"]
    assert accounts.online(client) == ["alice"]
    assert [e["action"] for e in audit.entries(client) if e["actor"] == "alice"] == ["sign_in"]


@pytest.mark.parametrize("name, password", [("alice", "wrong password, long enough"), ("nobody", PASSWORD)])
def test_wrong_name_or_password_is_refused_the_same_way(staff, name, password):
    browser = Console(staff, name)
    answer = browser.sign_in(password=password)
    assert answer.status_code == 401
    assert "do not match" in answer.get_data(as_text=True)
    assert browser.get("/console/").status_code == 302  # still signed out
    assert accounts.online(staff.extensions["redis"]) == []


def test_pages_need_a_session(staff):
    answer = staff.test_client().get("/console/")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/signin")


def test_too_many_attempts_for_one_name_get_429_even_with_the_right_password(staff):
    browser = Console(staff, "alice")
    for _ in range(5):
        assert browser.sign_in(password="guess guess guess").status_code == 401
    answer = browser.sign_in(password=PASSWORD)
    assert answer.status_code == 429
    assert "Too many sign-in attempts" in answer.get_data(as_text=True)
    assert Console(staff, "bob").sign_in().status_code == 302  # another name is not locked out


def test_too_many_attempts_from_one_address_get_429(staff):
    browser = Console(staff)
    codes = [browser.sign_in(f"someone{n}", password="guess guess guess").status_code for n in range(31)]
    assert codes[:30] == [401] * 30
    assert codes[30] == 429
    assert browser.sign_in("alice").status_code == 429


def test_rate_limit_keys_hold_no_name(staff):
    Console(staff, "alice").sign_in(password="guess guess guess")
    keys = [k.decode() for k in staff.extensions["redis"].keys("rl:*")]
    assert keys and not any("alice" in k or "127.0.0.1" in k for k in keys)


@pytest.mark.parametrize("token", [None, "", "0" * 64])
def test_a_form_without_the_right_token_gets_400_and_changes_nothing(console, queued, staff, token):
    alice = console("alice")
    conv = queued()
    data = {} if token is None else {"csrf_token": token}
    answer = alice.client.post(f"/console/claim/{conv.id}", data=data)
    assert answer.status_code == 400
    assert "security token" in answer.get_data(as_text=True)
    assert staff.extensions["waiting"].position(conv.id) == 0


def test_another_sessions_token_is_refused(console, queued):
    alice, bob = console("alice"), console("bob")
    conv = queued()
    answer = alice.client.post(f"/console/claim/{conv.id}", data={"csrf_token": bob.token})
    assert answer.status_code == 400


def test_token_in_a_header_works_for_fetches(console, staff):
    alice = console("alice")
    answer = alice.client.post("/console/status", data={"status": "away"}, headers={"X-CSRF-Token": alice.token})
    assert answer.status_code == 302
    assert accounts.online(staff.extensions["redis"]) == []


def test_sign_in_form_needs_its_token_too(staff):
    answer = staff.test_client().post("/console/signin", data={"name": "alice", "password": PASSWORD})
    assert answer.status_code == 400


def test_cookie_is_httponly_lax_and_scoped_to_the_console(staff):
    answer = Console(staff, "alice").sign_in()
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie


def test_cookie_is_secure_behind_https(redis_url, tmp_path, redis_client):
    from bot import create_app

    app = create_app(app_config(redis_url, tmp_path / "i", PUBLIC_URL="https://help.example.org",
                                CONSOLE_PASSWORD_HASH="CHEAPEST"))
    with app.app_context():
        accounts.add(app.extensions["redis"], "alice", PASSWORD)
    answer = Console(app, "alice").sign_in()
    assert "Secure" in answer.headers["Set-Cookie"]
    app.extensions["redis"].close()


def test_sign_in_starts_a_new_session_and_the_old_one_dies(staff):
    first = Console(staff, "alice")
    first.sign_in()
    old = first.client.get_cookie("helpline_console", path="/console").value
    first.sign_in()
    new = first.client.get_cookie("helpline_console", path="/console").value
    assert new != old
    replay = staff.test_client()
    replay.set_cookie("helpline_console", old, path="/console")
    assert replay.get("/console/").status_code == 302
    assert first.get("/console/").status_code == 200


def test_idle_session_expires_and_takes_the_counsellor_offline(console, staff):
    alice = console("alice")
    client = staff.extensions["redis"]
    idle = staff.config["CONSOLE_IDLE_MINUTES"] * 60
    # As if alice had walked away: her session's last activity is older than the idle limit.
    (key,) = client.keys("console:s:*")
    client.hset(key, "seen", f"{time.time() - idle - 5:.3f}")
    answer = alice.get("/console/")
    assert answer.status_code == 302
    assert "expired=1" in answer.headers["Location"]
    assert "without activity" in alice.get(answer.headers["Location"]).get_data(as_text=True)
    assert accounts.online(client) == []
    assert client.keys("console:s:*") == []
    assert audit.entries(client, 1)[0]["action"] == "sign_out"


def test_a_poll_without_activity_does_not_keep_the_session_alive(console, staff):
    alice = console("alice")
    client = staff.extensions["redis"]
    (key,) = client.keys("console:s:*")
    before = time.time() - 60
    client.hset(key, "seen", f"{before:.3f}")
    alice.get("/console/queue/live", headers={"X-Console-Poll": "1"})
    assert float(client.hget(key, "seen")) == pytest.approx(before)
    alice.get("/console/queue/live", headers={"X-Console-Poll": "1", "X-Console-Active": "1"})
    assert float(client.hget(key, "seen")) > before


def test_idle_counsellors_drop_out_of_the_online_set_even_without_their_own_request(console, staff):
    console("alice")
    bob = console("bob")
    client = staff.extensions["redis"]
    client.zadd(accounts.SEEN, {"alice": time.time() - staff.config["CONSOLE_IDLE_MINUTES"] * 60 - 5})
    bob.get("/console/")
    assert accounts.online(client) == ["bob"]


def test_sign_out_ends_the_session_and_goes_offline(console, staff):
    alice = console("alice")
    assert alice.post("/console/signout").status_code == 302
    assert alice.get("/console/").status_code == 302
    client = staff.extensions["redis"]
    assert accounts.online(client) == []
    assert audit.entries(client, 1)[0]["action"] == "sign_out"


def test_away_and_back(console, staff):
    alice = console("alice")
    client = staff.extensions["redis"]
    alice.post("/console/status", {"status": "away"})
    assert "Go online" in alice.get("/console/").get_data(as_text=True)
    assert accounts.online(client) == []
    alice.post("/console/status", {"status": "online"})
    assert accounts.online(client) == ["alice"]
    assert alice.post("/console/status", {"status": "asleep"}).status_code == 400


def test_removed_account_loses_its_session(console, staff):
    alice = console("alice")
    accounts.remove(staff.extensions["redis"], "alice")
    assert alice.get("/console/").status_code == 302


def test_sign_in_never_redirects_off_site(staff):
    browser = Console(staff, "alice")
    browser.refresh_token()
    answer = browser.client.post("/console/signin", data={"name": "alice", "password": PASSWORD,
                                                          "csrf_token": browser.token, "next": "https://evil.example"})
    assert answer.headers["Location"] == "/console/"


@pytest.mark.parametrize("path", ["/console/all", "/console/audit"])
def test_supervisor_pages_are_403_for_counsellors(console, path):
    assert console("alice").get(path).status_code == 403
    assert console("sam").get(path).status_code == 200


def test_the_audit_export_is_a_post_for_supervisors_only_and_runs_no_formulas(console, staff):
    from bot import audit

    assert console("alice").post("/console/audit.csv").status_code == 403
    audit.record(staff.extensions["redis"], "=HYPERLINK(\"http://x\")", "export", "+sum", "@a")
    export = console("sam").post("/console/audit.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in export and "'+sum" in export and "'@a" in export


@pytest.mark.parametrize("change", ["new password", "demoted", "removed and added again", "sessions ended"])
def test_a_password_reset_demotion_or_session_end_ends_the_old_sessions(console, staff, change):
    sam = console("sam")
    assert sam.get("/console/all").status_code == 200
    client = staff.extensions["redis"]
    with staff.app_context():
        if change == "new password":
            accounts.add(client, "sam", "a brand new passphrase here", supervisor=True)
        elif change == "demoted":
            accounts.add(client, "sam", PASSWORD, supervisor=False)
        elif change == "removed and added again":
            accounts.remove(client, "sam")
            accounts.add(client, "sam", PASSWORD, supervisor=True)
        else:
            assert accounts.end_sessions(client, "sam")
    answer = sam.get("/console/all")
    assert answer.status_code == 302 and "/console/signin" in answer.headers["Location"]
    assert sam.sign_in(password="a brand new passphrase here" if change == "new password" else PASSWORD
                       ).status_code == 302  # signing in again works at once


def test_signing_in_often_never_locks_a_counsellor_out(staff):
    for _ in range(8):  # more than the five failures a name may have
        browser = Console(staff, "alice")
        assert browser.sign_in().status_code == 302


def test_behind_a_proxy_each_client_address_has_its_own_allowance(staff):
    staff.config["CHAT_PROXY_HOPS"] = 1
    attacker = Console(staff)
    for n in range(31):
        attacker.client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
        attacker.sign_in(f"someone{n}", password="guess guess guess")
    assert attacker.sign_in("bob").status_code == 429  # the attacker's own address is held back
    counsellor = Console(staff, "alice")
    counsellor.client.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.7"
    assert counsellor.sign_in().status_code == 302  # behind the same proxy, a counsellor is not


def test_guessing_a_name_makes_new_devices_wait_longer_each_time_but_never_locks_it(staff):
    redis = staff.extensions["redis"]
    attacker = Console(staff, "alice")
    for _ in range(5):
        assert attacker.sign_in(password="guess guess guess").status_code == 401
    waits = []
    for _ in range(3):
        refused = attacker.sign_in(password="guess guess guess")
        assert refused.status_code == 429 and "Try again in" in refused.get_data(as_text=True)
        [key] = redis.keys("rl:console-signin-wait:*")
        waits.append(redis.ttl(key))
        redis.delete(key)  # as if the wait had passed
        assert attacker.sign_in(password="guess guess guess").status_code == 401  # tried, and failed again
    assert waits[0] <= 2 and waits[0] < waits[1] < waits[2] <= 16  # doubling, not a lock
    assert b"alice" not in b"".join(redis.keys("rl:*"))


def test_guesses_sent_all_at_once_cannot_outrun_the_limits(staff):
    staff.config["CONSOLE_PASSWORD_HASH"] = "RFC_9106_LOW_MEMORY"
    answers = []

    def guess():
        answers.append(Console(staff, "alice").sign_in(password="guess guess guess").status_code)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers.count(401) <= 6 and answers.count(429) >= 14  # five free failures, then one at a time


def test_a_counsellor_on_a_device_she_used_before_signs_in_while_someone_guesses_her_name(staff):
    staff.config["CHAT_PROXY_HOPS"] = 1
    alice = Console(staff, "alice")
    alice.client.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.7"
    assert alice.sign_in().status_code == 302
    alice.post("/console/signout")

    attacker = Console(staff, "alice")
    attacker.client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.9"
    for _ in range(12):
        attacker.sign_in(password="guess guess guess")
    assert attacker.sign_in().status_code == 429  # even the right password waits, on a device never seen

    assert alice.sign_in().status_code == 302  # her own browser is not held back
    forged = Console(staff, "alice")
    forged.client.set_cookie("helpline_device", "abc.def", path="/console/signin")
    assert forged.sign_in().status_code == 429  # a made-up device cookie is worth nothing


@pytest.mark.parametrize("where", ["cookie", "form", "header"])
def test_non_ascii_tokens_and_device_cookies_are_refused_not_a_500(staff, where):
    browser = Console(staff, "alice")
    browser.refresh_token()
    if where == "cookie":
        browser.client.set_cookie("helpline_device", "dévice.mårk", path="/console/signin")
        assert browser.sign_in().status_code == 302  # an unreadable cookie is no device, nothing worse
    elif where == "form":
        answer = browser.client.post("/console/signin", data={"name": "alice", "password": PASSWORD,
                                                               "csrf_token": "tökén"})
        assert answer.status_code == 400
    else:
        answer = browser.client.post("/console/signin", data={"name": "alice", "password": PASSWORD},
                                     headers={"X-CSRF-Token": "tökén"})
        assert answer.status_code == 400
