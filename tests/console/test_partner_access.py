"""A partner agency's account sees its agency's referrals and nothing else of the console."""
from __future__ import annotations

import pytest

from bot import referrals
from bot.console import accounts
from bot.referrals import Shared

from .conftest import PASSWORD, Console

OPEN_TO_PARTNERS = {"console.signin", "console.signin_post", "console.signout", "console.partner_home",
                    "console.partner_referral", "console.partner_accept", "console.partner_decline",
                    "console.partner_contact"}


@pytest.fixture
def partners(staff):
    """olga of Open Door Network, dora of the Dream Center's agency."""
    client = staff.extensions["redis"]
    with staff.app_context():
        accounts.add(client, "olga", PASSWORD, agency="open-door-network")
        accounts.add(client, "dora", PASSWORD, agency="kern-county-network-for-children")
    return staff


def signed_in(app, name: str) -> Console:
    browser = Console(app, name)
    assert browser.sign_in().status_code == 302
    return browser


def referral_to(app, conv_id: str, agency: str, **shared) -> str:
    with app.app_context():
        return referrals.create(app.extensions["store"], conv_id, agency,
                                Shared(**{"lang": "en", "need": "basic_needs", "how": "texter_calls", **shared}),
                                "alice").id


def console_routes(app):
    """Every (method, rule) of the console blueprint, as the app serves it now."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule


def test_every_console_route_but_the_partner_pages_is_forbidden_to_a_partner(partners, queued):
    app = partners
    conv = queued()
    app.extensions["store"].append(conv.id, {"from": "texter", "text": "he keeps my passport", "at": 1.0})
    olga = signed_in(app, "olga")
    values = {"conv_id": conv.id, "referral_id": referral_to(app, conv.id, "open-door-network")}
    swept = []
    for method, rule in console_routes(app):
        if rule.endpoint in OPEN_TO_PARTNERS:
            continue
        url = rule.build({a: values.get(a, "a" * 24) for a in rule.arguments}, append_unknown=False)[1]
        answer = olga.get(url) if method == "GET" else olga.post(url, {"text": "hello", "to": "bob"})
        assert answer.status_code == 403, (method, url, answer.status_code)
        assert "he keeps my passport" not in answer.get_data(as_text=True)
        swept.append(rule.endpoint)
    # The sweep reached the pages that matter most (and so every route of the blueprint in between).
    assert {"console.index", "console.conversation", "console.conversation_live", "console.audit_trail",
            "console.reports", "console.overview", "console.live_events", "console.referral_status",
            "console.refer"} <= set(swept)


def test_the_partner_pages_are_forbidden_to_counsellors_and_supervisors(partners, console):
    app = partners
    rid = referral_to(app, "c" * 32, "open-door-network")
    for name in ("alice", "sam"):
        person = console(name)
        assert person.get("/console/partner/").status_code == 403
        assert person.get(f"/console/partner/r/{rid}").status_code == 403
        assert person.post(f"/console/partner/r/{rid}/accept").status_code == 403
    assert referrals.load(app.extensions["store"], rid).status == "new"


def test_a_partner_signs_in_to_its_referrals_and_is_never_a_counsellor_online(partners):
    app = partners
    olga = Console(app, "olga")
    answer = olga.sign_in()
    assert answer.headers["Location"].endswith("/console/partner/")
    # A console address asked for before signing in is not where a partner goes.
    olga = Console(app, "olga")
    olga.refresh_token("/console/signin?next=/console/audit")
    answer = olga.client.post("/console/signin", data={"name": "olga", "password": PASSWORD, "next": "/console/audit",
                                                        "csrf_token": olga.token})
    assert answer.headers["Location"].endswith("/console/partner/")
    assert olga.get("/console/signin").headers["Location"].endswith("/console/partner/")
    client = app.extensions["redis"]
    assert accounts.online(client) == [] and not client.zscore("counsellors:seen", "olga")
    assert "olga" not in accounts.names(client)  # never offered as a transfer, never counted


def test_a_partner_sees_only_its_own_agencys_referrals(partners, queued):
    app = partners
    ours = referral_to(app, queued().id, "open-door-network", alias="Mia")
    theirs = referral_to(app, queued().id, "kern-county-network-for-children", alias="Zoe")
    olga = signed_in(app, "olga")
    page = olga.get("/console/partner/").get_data(as_text=True)
    assert ours in page and theirs not in page
    assert "Mia" in olga.get(f"/console/partner/r/{ours}").get_data(as_text=True)
    other = olga.get(f"/console/partner/r/{theirs}")
    assert other.status_code == 404 and "Zoe" not in other.get_data(as_text=True)
    for action, form in (("accept", {}), ("decline", {"reason": "capacity"}), ("contact", {"day": "2020-01-01"})):
        assert olga.post(f"/console/partner/r/{theirs}/{action}", form).status_code == 404
    assert referrals.load(app.extensions["store"], theirs).status == "new"
    assert "Zoe" in signed_in(app, "dora").get(f"/console/partner/r/{theirs}").get_data(as_text=True)


def test_a_removed_partner_is_signed_out_at_the_next_request(partners):
    app = partners
    olga = signed_in(app, "olga")
    assert olga.get("/console/partner/").status_code == 200
    accounts.remove(app.extensions["redis"], "olga")
    assert olga.get("/console/partner/").status_code == 302
