"""Warm referrals to partner agencies: consent, what is shared, the texter told, the partner's answers,
erasure, retention, audit, the CLI, and the whole of it in a browser.

Set CONSOLE_SCREENSHOTS=docs to refresh docs/console-referral.png and docs/partner-referral.png."""
from __future__ import annotations

import os
import re
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from bot import audit, referrals
from bot.cli import main
from bot.console import accounts
from workers import retention

from .conftest import PASSWORD, Console, ask_for_counsellor

OPEN_DOOR = "open-door-network"
OPEN_DOOR_PHONE = "(661) 327-1091"  # flows/resources.yaml, open-door-network-delano


@pytest.fixture
def partners(staff):
    """olga of Open Door Network, dora of the Dream Center's agency (Kern County Network for Children)."""
    client = staff.extensions["redis"]
    with staff.app_context():
        accounts.add(client, "olga", PASSWORD, agency=OPEN_DOOR)
        accounts.add(client, "dora", PASSWORD, agency="kern-county-network-for-children")
    return staff


@pytest.fixture
def held(partners, queued, console):
    """A function: a conversation alice holds, and alice's browser."""

    def hold(**kwargs):
        conv = queued(**kwargs)
        alice = console("alice")
        assert alice.post(f"/console/claim/{conv.id}").status_code == 302
        return conv, alice

    return hold


def refer(browser, conv_id: str, **form):
    fields = {"agency": OPEN_DOOR, "need": "domestic_violence", "consent": "yes", **form}
    return browser.post(f"/console/c/{conv_id}/refer", {k: v for k, v in fields.items() if v is not None})


def only(app, conv_id: str) -> referrals.Referral:
    found = referrals.for_conversation(app.extensions["store"], conv_id)
    assert len(found) == 1
    return found[0]


def texts_to(twilio_api, address: str) -> list[str]:
    return [m["Body"] for m in twilio_api.sent if m.get("To") == address]


def digits(number: str) -> str:
    return re.sub(r"\D", "", number)[-10:]


# -- the counsellor refers ------------------------------------------------------------------------------


def test_a_referral_shares_what_was_chosen_and_tells_the_texter_how_to_reach_the_agency(held, twilio_api, run_jobs):
    conv, alice = held()
    answer = refer(alice, conv.id, alias="Mia", note="Needs a bed tonight; prefers evenings.")
    assert answer.status_code == 302
    assert "Referral sent to Open Door Network. The texter was told" in alice.get(answer.headers["Location"]).get_data(as_text=True)
    referral = only(alice.client.application, conv.id)
    assert (referral.agency, referral.status, referral.by) == (OPEN_DOOR, "new", "alice")
    assert referral.shared == referrals.Shared(lang="en", need="domestic_violence", how="texter_calls", alias="Mia",
                                               callback="", note="Needs a bed tonight; prefers evenings.")
    run_jobs()
    assert texts_to(twilio_api, conv.address) == [
        f"With your OK, we passed your request to Open Door Network. They expect to hear from you: call "
        f"{OPEN_DOOR_PHONE}. If you are in danger, call 911."]
    # The conversation page shows where the referral stands.
    page = alice.get(f"/console/c/{conv.id}").get_data(as_text=True)
    assert re.search(r"Open Door Network: <strong class=\"referral-status\">New</strong>", page)


def test_a_spanish_texter_is_told_in_spanish(held, twilio_api, run_jobs):
    conv, alice = held(lang="es")
    assert refer(alice, conv.id, callback="yes").status_code == 302
    run_jobs()
    assert texts_to(twilio_api, conv.address) == [
        "Con tu permiso, pasamos tu pedido a Open Door Network. Te van a llamar o escribir pronto al teléfono que "
        "aceptaste. Si corres peligro, llama al 911."]
    assert only(alice.client.application, conv.id).shared.lang == "es"


def test_no_referral_without_the_texters_agreement(held, twilio_api, run_jobs, redis_client):
    conv, alice = held()
    answer = refer(alice, conv.id, consent=None, alias="Mia")
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "the texter must agree to the referral" in page
    assert 'value="Mia"' in page  # what was typed is kept for the second try
    run_jobs()
    assert redis_client.keys("rf:*") == [] and texts_to(twilio_api, conv.address) == []


def test_the_callback_number_is_shared_only_when_the_texter_agreed_to_it(held, partners, redis_client, run_jobs,
                                                                         twilio_api):
    conv, alice = held()
    # A number typed without that consent is refused, not silently sent.
    answer = refer(alice, conv.id, callback_number="661 555 0123")
    assert answer.status_code == 400 and "shared only when the texter agreed" in answer.get_data(as_text=True)
    assert redis_client.keys("rf:*") == []
    # Without it the agency gets no number at all.
    assert refer(alice, conv.id).status_code == 302
    first = only(partners, conv.id)
    assert first.shared.callback == ""
    olga = Console(partners, "olga")
    olga.sign_in()
    page = olga.get(f"/console/partner/r/{first.id}").get_data(as_text=True)
    assert digits(conv.address) not in re.sub(r"\D", "", page) and "No number shared" in page


def test_with_the_callback_consent_the_number_they_text_from_is_shared_sealed(held, partners, redis_client,
                                                                              run_jobs, twilio_api):
    conv, alice = held()
    assert refer(alice, conv.id, callback="yes").status_code == 302
    referral = only(partners, conv.id)
    assert referral.shared.callback == conv.address and referral.shared.how == "callback"
    # Sealed at rest, and no key is named by it.
    stored = b"".join(v for v in redis_client.hgetall(referrals.referral_key(referral.id)).values())
    assert digits(conv.address).encode() not in stored
    assert not [k for k in redis_client.keys("*") if digits(conv.address).encode() in k]
    olga = Console(partners, "olga")
    olga.sign_in()
    assert conv.address in olga.get(f"/console/partner/r/{referral.id}").get_data(as_text=True)
    run_jobs()
    assert "They will call or text you soon" in texts_to(twilio_api, conv.address)[0]


def test_a_web_texters_callback_needs_the_number_they_gave(held, partners):
    conv, alice = held(channel="web", address="web-session-7")
    answer = refer(alice, conv.id, callback="yes")
    assert answer.status_code == 400 and "type the number the texter gave" in answer.get_data(as_text=True)
    assert refer(alice, conv.id, callback="yes", callback_number="(661) 555-0142").status_code == 302
    assert only(partners, conv.id).shared.callback == "+16615550142"


def test_only_agencies_with_partner_accounts_and_only_the_holder(held, partners, console, queued):
    conv, alice = held()
    # The Mission runs an entry but has no partner account: nobody would ever see the referral.
    answer = refer(alice, conv.id, agency="mission-at-kern-county")
    assert answer.status_code == 400 and "choose an agency" in answer.get_data(as_text=True)
    waiting = queued()
    answer = refer(console("bob"), waiting.id)
    assert answer.status_code == 400 and "only the counselor holding" in answer.get_data(as_text=True)
    # The Dream Center prints no phone: without a callback number the texter could not reach them.
    answer = refer(alice, conv.id, agency="kern-county-network-for-children")
    assert answer.status_code == 400 and "has no phone number in the directory" in answer.get_data(as_text=True)
    assert referrals.for_agency(partners.extensions["store"], "kern-county-network-for-children") == []


def test_a_texter_who_cannot_be_texted_is_not_and_the_counsellor_is_told_to_say_it(held, twilio_api, run_jobs):
    conv, alice = held(consent=False)
    answer = refer(alice, conv.id)
    assert answer.status_code == 302
    page = alice.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The texter was not told: The texter has not agreed to be texted at this number." in page
    assert "Tell them in the conversation which agency will reach out and how" in page
    run_jobs()
    assert texts_to(twilio_api, conv.address) == []
    assert only(alice.client.application, conv.id).status == "new"


# -- the partner answers ---------------------------------------------------------------------------------


def test_the_partner_accepts_then_records_contact_and_every_step_is_audited(held, partners, redis_client):
    conv, alice = held()
    refer(alice, conv.id, alias="Mia")
    rid = only(partners, conv.id).id
    olga = Console(partners, "olga")
    olga.sign_in()
    assert rid in olga.get("/console/partner/").get_data(as_text=True)
    assert "Mia" in olga.get(f"/console/partner/r/{rid}").get_data(as_text=True)
    assert olga.post(f"/console/partner/r/{rid}/contact", {"day": date.today().isoformat()}).status_code == 409
    assert olga.post(f"/console/partner/r/{rid}/accept").status_code == 302
    assert olga.post(f"/console/partner/r/{rid}/accept").status_code == 409
    assert olga.post(f"/console/partner/r/{rid}/decline", {"reason": "capacity"}).status_code == 409
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    answer = olga.post(f"/console/partner/r/{rid}/contact", {"day": tomorrow})
    assert answer.status_code == 400 and "cannot be in the future" in answer.get_data(as_text=True)
    assert olga.post(f"/console/partner/r/{rid}/contact", {"day": "last week"}).status_code == 400
    answer = olga.post(f"/console/partner/r/{rid}/contact", {"day": date.today().isoformat(), "note": "Spoke; intake Friday"})
    assert answer.status_code == 302
    referral = only(partners, conv.id)
    assert (referral.status, referral.contact_on, referral.contact_note, referral.partner) == (
        "contacted", date.today().isoformat(), "Spoke; intake Friday", "olga")
    live = alice.get(f"/console/c/{conv.id}/referrals").get_data(as_text=True)
    assert "Contact made" in live and f"contact made {date.today().isoformat()}" in live
    trail = [(e["actor"], e["action"], e["conv"], e["detail"]) for e in reversed(audit.entries(redis_client))
             if e["action"].startswith("refer")]
    assert trail == [
        ("alice", "refer", conv.id, f"{OPEN_DOOR} {rid}"),
        ("olga", "referral_list", "", OPEN_DOOR),
        ("olga", "referral_view", "", rid),
        ("olga", "referral_view", "", rid),  # the refused contact shows the page again
        ("olga", "referral_accept", "", rid),
        ("olga", "referral_view", "", rid), ("olga", "referral_view", "", rid), ("olga", "referral_view", "", rid),
        ("olga", "referral_view", "", rid),
        ("olga", "referral_contact", "", rid),
    ]


def test_the_partner_declines_with_a_reason_and_the_counsellor_sees_it(held, partners):
    conv, alice = held()
    refer(alice, conv.id)
    rid = only(partners, conv.id).id
    olga = Console(partners, "olga")
    olga.sign_in()
    answer = olga.post(f"/console/partner/r/{rid}/decline", {})
    assert answer.status_code == 400 and "choose why you decline" in answer.get_data(as_text=True)
    assert olga.post(f"/console/partner/r/{rid}/decline", {"reason": "area"}).status_code == 302
    assert "Declined" in alice.get(f"/console/c/{conv.id}/referrals").get_data(as_text=True)
    assert "outside the area we serve" in alice.get(f"/console/c/{conv.id}").get_data(as_text=True)
    assert olga.post(f"/console/partner/r/{rid}/accept").status_code == 409


def test_a_partner_page_never_shows_the_conversation(held, partners):
    conv, alice = held()
    alice.post(f"/console/c/{conv.id}/reply", {"text": "Is he still holding your passport?"})
    alice.post(f"/console/c/{conv.id}/note", {"text": "mentions a motel on Union Ave"})
    refer(alice, conv.id)
    rid = only(partners, conv.id).id
    olga = Console(partners, "olga")
    olga.sign_in()
    for path in ("/console/partner/", f"/console/partner/r/{rid}"):
        page = olga.get(path).get_data(as_text=True)
        assert "passport" not in page and "Union Ave" not in page and conv.id not in page


# -- erasure and retention -------------------------------------------------------------------------------


def test_delete_by_the_texter_withdraws_the_referral(partners, texter, console, redis_client):
    app = partners
    ask_for_counsellor(texter)
    conv_id = app.extensions["vault"].conversation_id("sms", texter.number)
    alice = console("alice")
    alice.post(f"/console/claim/{conv_id}")
    assert refer(alice, conv_id, alias="Mia", callback="yes", note="evenings").status_code == 302
    rid = only(app, conv_id).id
    texter.send("DELETE")
    texter.send("YES")
    stored = redis_client.hgetall(referrals.referral_key(rid))
    assert {k.decode() for k in stored} == {"agency", "status", "created", "changed"}
    assert stored[b"status"] == b"withdrawn"
    assert redis_client.exists(referrals.conversation_key(conv_id)) == 0
    olga = Console(app, "olga")
    olga.sign_in()
    assert "Withdrawn by the texter" in olga.get("/console/partner/").get_data(as_text=True)
    page = olga.get(f"/console/partner/r/{rid}").get_data(as_text=True)
    assert "Withdrawn by the texter" in page and "Mia" not in page and digits(texter.number) not in page
    assert olga.post(f"/console/partner/r/{rid}/accept").status_code == 409


def test_a_referral_expires_with_the_retention_after_its_last_change(held, partners, redis_client):
    conv, alice = held()
    refer(alice, conv.id)
    rid = only(partners, conv.id).id
    days = partners.config["HELPLINE_RETENTION_DAYS"]
    for key in (referrals.referral_key(rid), referrals.agency_key(OPEN_DOOR), referrals.conversation_key(conv.id)):
        assert 0 < redis_client.ttl(key) <= days * 86400
    queues = partners.extensions["queues"]
    assert retention.sweep(redis_client, queues, days, 365)["referrals"] == 0
    redis_client.delete(referrals.referral_key(rid))  # as its TTL would
    assert retention.sweep(redis_client, queues, days, 365)["referrals"] == 1
    assert referrals.for_agency(partners.extensions["store"], OPEN_DOOR) == []
    # The agency's list keeps no id unchanged for longer than the retention, whatever a key's TTL says.
    refer(alice, conv.id)
    later = time.time() + days * 86400 + 60
    assert retention.sweep(redis_client, queues, days, 365, now=later)["referrals"] == 1
    assert redis_client.zcard(referrals.agency_key(OPEN_DOOR)) == 0


# -- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def run(app, cli_env):
    return lambda *args, input=None: CliRunner().invoke(main, list(args), input=input, env=cli_env)


def test_partner_add_list_and_remove(run, app):
    client = app.extensions["redis"]
    result = run("partner", "add", "Olga", "--agency", OPEN_DOOR, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "partner olga of Open Door Network saved" in result.output
    with app.app_context():
        assert accounts.verify(client, "olga", PASSWORD) == accounts.Counsellor("olga", False, OPEN_DOOR)
    assert run("partner", "list").output.splitlines() == [f"olga\t{OPEN_DOOR}"]
    assert run("counsellor", "list").output == ""  # a partner is no counsellor
    assert run("partner", "remove", "olga").exit_code == 0
    assert run("partner", "list").output == "" and accounts.get(client, "olga") is None


def test_partner_add_refuses_an_unknown_agency_a_weak_password_and_a_counsellors_name(run, app):
    result = run("partner", "add", "olga", "--agency", "open-door", input=PASSWORD + "\n")
    assert result.exit_code == 2 and "no agency 'open-door'" in result.output and OPEN_DOOR in result.output
    result = run("partner", "add", "olga", "--agency", OPEN_DOOR, input="password1234\n")
    assert result.exit_code == 1 and "harder password" in result.output
    assert run("counsellor", "add", "alice", input=PASSWORD + "\n").exit_code == 0
    result = run("partner", "add", "alice", "--agency", OPEN_DOOR, input=PASSWORD + "\n")
    assert result.exit_code == 1 and "alice is a counsellor's account" in result.output
    assert accounts.get(app.extensions["redis"], "alice").agency == ""
    assert run("partner", "remove", "alice").exit_code == 1  # partner remove never takes a counsellor
    assert accounts.get(app.extensions["redis"], "alice") is not None


# -- in a browser ----------------------------------------------------------------------------------------


def test_a_warm_referral_from_the_counsellors_page_to_the_partners_and_back(partners, live_server, browser, texter,
                                                                            twilio_api, run_jobs, tmp_path):
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    conv_id = partners.extensions["vault"].conversation_id("sms", texter.number)
    ask_for_counsellor(texter)
    counsellor = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    counsellor.goto(f"{live_server.url}/console/")
    counsellor.fill("input[name=name]", "alice")
    counsellor.fill("input[name=password]", PASSWORD)
    counsellor.get_by_role("button", name="Sign in").click()
    counsellor.locator(f'#queue tr[data-conv="{conv_id}"]').get_by_role("button", name="Claim").click()
    expect(counsellor.locator(".status-line")).to_contain_text("You hold this conversation")

    counsellor.get_by_text("Refer to a partner agency…").click()
    form = counsellor.locator("#refer")
    form.locator("select[name=agency]").select_option(label="Open Door Network")
    form.get_by_label("First name or alias").fill("Mia")
    form.get_by_label("Needs help with").select_option(label="Labor trafficking")
    form.get_by_label("The texter agreed that the agency may call or text them").check()
    form.get_by_label("Note for the agency").fill("Can talk after 6 p.m.")
    form.get_by_label("The texter agreed to this referral").check()
    form.screenshot(path=str(shots / "console-referral.png"))
    form.get_by_role("button", name="Send referral").click()
    expect(counsellor.locator(".banner")).to_contain_text("Referral sent to Open Door Network")
    status = counsellor.locator("#referral-list .referral-status")
    expect(status).to_have_text("New")
    run_jobs()
    assert "Open Door Network. They will call or text you soon" in texts_to(twilio_api, texter.number)[-1]

    partner = browser.new_context(viewport={"width": 1100, "height": 700}).new_page()
    partner.goto(f"{live_server.url}/console/signin")
    partner.fill("input[name=name]", "olga")
    partner.fill("input[name=password]", PASSWORD)
    partner.get_by_role("button", name="Sign in").click()
    expect(partner.locator("h2")).to_contain_text("Referrals to Open Door Network")
    expect(partner.locator("nav")).not_to_contain_text("Queue")
    partner.get_by_role("link", name="Open").click()
    expect(partner.locator("#reach")).to_contain_text(texter.number)
    expect(partner.locator(".shared")).to_contain_text("Labor trafficking")
    partner.screenshot(path=str(shots / "partner-referral.png"), full_page=True)
    partner.get_by_role("button", name="Accept").click()
    expect(partner.locator("#referral-status")).to_have_text("Accepted")
    expect(status).to_have_text("Accepted")  # on the counsellor's page, without a reload
    partner.locator("#contact input[name=day]").fill(date.today().isoformat())
    partner.locator("#contact textarea[name=note]").fill("Spoke with her; intake on Friday")
    partner.get_by_role("button", name="Record contact").click()
    expect(partner.locator("#referral-status")).to_have_text("Contact made")
    expect(status).to_have_text("Contact made")
    counsellor.reload()
    expect(counsellor.locator("#referral-list")).to_contain_text(f"contact made {date.today().isoformat()}")
    # A partner who tries a console page is turned away.
    partner.goto(f"{live_server.url}/console/c/{conv_id}")
    expect(partner.locator("h1")).to_have_text("Forbidden")


@pytest.mark.parametrize("typed", [
    "٦٦١٥٥٥٠١٠٠",  # Arabic-Indic digits: \d matched them, and the agency got "+1٦٦١…" to dial
    "６６１５５５０１００",  # full-width
    "+5212345678",  # another country's code (Mexico), read as a US number
    "+44 7911 1234",
    "(061) 555-0100",  # no US area code starts with 0 or 1
    "6" * 1000,
    "call me maybe",
])
def test_a_callback_number_the_agency_could_not_dial_is_refused(held, partners, redis_client, typed):
    conv, alice = held()
    answer = refer(alice, conv.id, callback="yes", callback_number=typed)
    assert answer.status_code == 400 and "must be a US phone number" in answer.get_data(as_text=True)
    assert redis_client.keys("rf:*") == []


@pytest.mark.parametrize("typed", ["(661) 555-0142", "661.555.0142", "+1 661 555 0142", "1-661-555-0142",
                                   "6615550142"])
def test_a_us_number_is_read_however_it_is_punctuated(typed):
    assert referrals.callback_number(typed) == "+16615550142"


def test_a_referral_sent_twice_is_made_once_and_the_texter_told_once(held, partners, twilio_api, run_jobs):
    conv, alice = held()
    assert refer(alice, conv.id).status_code == 302
    again = refer(alice, conv.id)  # a double click, or the form sent again from a second tab
    assert again.status_code == 409
    assert "referred to this agency already" in again.get_data(as_text=True)
    run_jobs()
    assert len(referrals.for_conversation(partners.extensions["store"], conv.id)) == 1
    assert len(texts_to(twilio_api, conv.address)) == 1
    # Once the agency has declined it, a new referral to it can be made.
    olga = Console(partners, "olga")
    olga.sign_in()
    assert olga.post(f"/console/partner/r/{only(partners, conv.id).id}/decline", {"reason": "capacity"}).status_code == 302
    assert refer(alice, conv.id).status_code == 302
    assert len(referrals.for_conversation(partners.extensions["store"], conv.id)) == 2
