"""Partner agencies in the console: a counsellor's warm referral, and the agency's own page of referrals.

A counsellor holding a conversation refers the texter, who has agreed, to a coalition agency with partner
accounts (flows/resources.yaml `agency`), sharing only what the form lists (bot.referrals); the texter is
told which agency will reach out and how, when they may be texted. A partner's account sees /console/partner
alone: the referrals sent to its agency, never a conversation or transcript (bot.console.auth keeps it out
of everything else). Every view and action is in the audit trail, by the partner's name and the referral id.
"""
from __future__ import annotations

from flask import abort, current_app, g, redirect, render_template, request, url_for

from .. import audit, referrals
from ..errors import SendFailed
from ..extensions import flow_engine, get_helpline, get_redis, get_store
from ..outbound import TWILIO_CHANNELS, queue_reply
from ..referrals import Conflict, NotFound, ReferralError, Shared
from . import accounts, bp, conversation, handoff, wrapup
from .auth import current_counsellor, login_required, partner_required, tell

NEEDS = wrapup.FORM.fields["category"].choices  # what the texter needs help with: the wrap-up form's categories
MESSAGES = {"callback": "referral_callback", "texter_calls": "referral_call_them"}  # catalog keys, by how


def _agencies() -> dict[str, referrals.Agency]:
    return referrals.agencies(get_helpline().flows.resources)


def offered() -> dict[str, referrals.Agency]:
    """Agencies a counsellor may refer to: named in the directory, with at least one partner account."""
    with_accounts = {p.agency for p in accounts.partners(get_redis())}
    return {key: agency for key, agency in _agencies().items() if key in with_accounts}


def agency_name(agency_id: str) -> str:
    found = _agencies().get(agency_id)
    return found.name() if found else agency_id


@bp.context_processor
def referral_helpers():
    return {"referrals_of": lambda conv_id: referrals.for_conversation(get_store(), conv_id),
            "referral_agencies": offered, "agency_name": agency_name, "referral_needs": NEEDS,
            "decline_reasons": referrals.DECLINE_REASONS, "referral_draft": g.get("referral_draft", {})}


# -- the counsellor's side ---------------------------------------------------------------------------------


@bp.post("/c/<conv_id>/refer")
@login_required
def refer(conv_id):
    conv = conversation._load(conv_id)  # 404 or 403 as the conversation page
    me = current_counsellor()
    try:
        agency, shared = _referral_asked(me, conv)
        referral = referrals.create(get_store(), conv_id, agency.id, shared, me.name)
    except ReferralError as exc:
        g.referral_draft = request.form
        return conversation._page(conv_id, f"Not referred: {exc}.", 409 if isinstance(exc, Conflict) else 400)
    audit.record(get_redis(), me.name, "refer", conv_id, detail=f"{agency.id} {referral.id}")
    why_not = _tell_texter(conv, agency, shared.how, me.name)
    said = f"Referral sent to {agency.name()}."
    tell(f"{said} The texter was told which agency will reach out and how." if not why_not else
         f"{said} The texter was not told: {why_not} Tell them in the conversation which agency will "
         f"reach out and how, as soon as you can.")
    return redirect(url_for("console.conversation", conv_id=conv_id, _anchor="referrals"))


def _referral_asked(me, conv) -> tuple[referrals.Agency, Shared]:
    """The agency and what is shared, from the form; ReferralError when something is missing or not allowed."""
    form = request.form
    if not handoff.holds(me, conv):
        raise ReferralError("only the counselor holding the conversation can refer the texter")
    agency = offered().get(form.get("agency", ""))
    if agency is None:
        raise ReferralError("choose an agency")
    if form.get("consent") != "yes":
        raise ReferralError("the texter must agree to the referral: ask them, then tick the box")
    need = form.get("need", "")
    if need not in NEEDS:
        raise ReferralError("choose what the texter needs help with")
    alias, note = form.get("alias", "").strip(), form.get("note", "").strip()
    if len(alias) > referrals.ALIAS_MAX or len(note) > referrals.NOTE_MAX:
        raise ReferralError(f"a name is at most {referrals.ALIAS_MAX} characters, a note {referrals.NOTE_MAX}")
    typed = form.get("callback_number", "").strip()
    callback = ""
    if form.get("callback") == "yes":
        if typed:
            callback = referrals.callback_number(typed)
        elif conv.channel in TWILIO_CHANNELS:
            try:
                callback = referrals.callback_number(conv.address.removeprefix("whatsapp:"))
            except ReferralError:
                raise ReferralError("the number they write from is not a US number: type one they gave") from None
        else:
            raise ReferralError("type the number the texter gave for the agency to call")
    elif typed:
        raise ReferralError("a callback number is shared only when the texter agreed to it: tick that box, "
                            "or clear the number")
    if not callback and not agency.phone:
        raise ReferralError(f"{agency.name()} has no phone number in the directory, so the texter cannot call "
                            f"them: share a callback number the texter agreed to")
    return agency, Shared(lang=conv.lang, need=need, how="callback" if callback else "texter_calls",
                          alias=alias, callback=callback, note=note)


def _tell_texter(conv, agency: referrals.Agency, how: str, author: str) -> str:
    """Text the texter which agency will reach out and how; '' when queued, else why not (console words)."""
    can, why_not = handoff.may_text(conv)
    if not can:
        return why_not
    engine = flow_engine(current_app.config["HELPLINE_NAME"])
    text = engine.say(conv, MESSAGES[how], agency=agency.name(conv.lang), number=agency.phone or "")
    try:
        queue_reply(conv.id, text, author)
    except SendFailed as exc:  # STOP, or "not safe now", arrived after the check above
        return f"{exc}."
    return ""


@bp.get("/c/<conv_id>/referrals")
@login_required
def referral_status(conv_id):
    """The referrals' status alone; the conversation page polls it, so a partner's answer shows without a reload."""
    conversation._load(conv_id)
    return render_template("console/_referral_live.html", conv_id=conv_id)


# -- the partner's side ------------------------------------------------------------------------------------


@bp.get("/partner/")
@partner_required
def partner_home():
    me = current_counsellor()
    rows = referrals.for_agency(get_store(), me.agency)
    audit.record(get_redis(), me.name, "referral_list", detail=me.agency)
    return render_template("partner/home.html", rows=rows, agency=agency_name(me.agency))


@bp.get("/partner/r/<referral_id>")
@partner_required
def partner_referral(referral_id):
    return _referral_page(referral_id)


def _referral_page(referral_id: str, error: str | None = None, status: int = 200):
    me = current_counsellor()
    try:
        referral = referrals.of_agency(get_store(), referral_id, me.agency)
    except NotFound as exc:
        abort(404, str(exc).capitalize() + ".")
    audit.record(get_redis(), me.name, "referral_view", detail=referral.id)
    return render_template("partner/referral.html", referral=referral, agency=agency_name(me.agency),
                           needs=NEEDS, error=error), status


@bp.post("/partner/r/<referral_id>/accept")
@partner_required
def partner_accept(referral_id):
    return _act(referral_id, "referral_accept", lambda me: referrals.accept(get_store(), referral_id, me.agency, me.name),
                "Referral accepted.")


@bp.post("/partner/r/<referral_id>/decline")
@partner_required
def partner_decline(referral_id):
    reason = request.form.get("reason", "")
    return _act(referral_id, "referral_decline",
                lambda me: referrals.decline(get_store(), referral_id, me.agency, me.name, reason), "Referral declined.",
                detail=reason)


@bp.post("/partner/r/<referral_id>/contact")
@partner_required
def partner_contact(referral_id):
    form = request.form
    return _act(referral_id, "referral_contact",
                lambda me: referrals.contact_made(get_store(), referral_id, me.agency, me.name, form.get("day", ""),
                                                  form.get("note", "")), "Contact recorded.")


def _act(referral_id: str, action: str, change, said: str, detail: str = ""):
    me = current_counsellor()
    try:
        change(me)
    except NotFound:
        return _referral_page(referral_id)  # the page's 404
    except Conflict as exc:
        return _referral_page(referral_id, f"Not done: {exc}.", 409)
    except ReferralError as exc:
        return _referral_page(referral_id, f"Not done: {exc}.", 400)
    audit.record(get_redis(), me.name, action, detail=f"{referral_id} {detail}".strip())
    tell(said)
    return redirect(url_for("console.partner_referral", referral_id=referral_id))
