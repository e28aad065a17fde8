"""The console says what happened: a banner after each change, why a reply did not reach the texter and a
Retry that sends it once, failed sign-ins in the audit trail."""
from __future__ import annotations

import re
import threading

import pytest

from bot import audit
from tests.conftest import sign

from .conftest import PASSWORD, Console, ask_for_counsellor, reply_lost_by_the_carrier, wrapped_up

BANNER = re.compile(r'<div class="banner" role="status"><span>([^<]*)</span>')


def banner(page) -> str | None:
    found = BANNER.search(page.get_data(as_text=True))
    return found.group(1) if found else None


def sends(app) -> int:
    return sum(job.func_name == "workers.sender.send_outbound" for job in app.extensions["replies"].jobs)


@pytest.fixture
def config(config):
    config["SEND_RETRY_SECONDS"] = "0,0,0"  # retries at once: a test sees a reply give up after its 4 attempts
    return config


@pytest.fixture
def held(console, texter, staff):
    """alice holds the SMS conversation of a texter who asked for a person and agreed to be texted."""
    alice = console("alice")
    ask_for_counsellor(texter)
    (conv_id,) = alice.queue_order()
    assert alice.post(f"/console/claim/{conv_id}", follow_redirects=True).status_code == 200  # as a browser does
    return alice, conv_id


def to_texter(twilio_api, texter) -> list[str]:
    return [m["Body"] for m in twilio_api.sent if m["To"] == texter.number]


# -- the banner ------------------------------------------------------------------------


def test_claiming_says_you_hold_it_once(console, texter, staff):
    alice = console("alice")
    ask_for_counsellor(texter)
    (conv_id,) = alice.queue_order()
    answer = alice.post(f"/console/claim/{conv_id}")
    assert answer.status_code == 302
    page = alice.get(answer.headers["Location"])
    assert banner(page) == "You hold this conversation now."
    assert banner(alice.get(answer.headers["Location"])) is None  # said once, not on every reload


def test_ending_says_so_with_the_outcome_and_never_the_texters_words_or_number(held, texter, twilio_api, run_jobs):
    alice, conv_id = held
    texter.send("my boss Rick took my passport")
    answer = alice.post(f"/console/c/{conv_id}/end", wrapped_up("referred"))
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/console/")
    page = alice.get("/console/")
    said = banner(page)
    assert said == "Conversation ended (outcome: referred). The closing message is on its way."
    html = page.get_data(as_text=True)
    assert "Rick" not in html and texter.number not in html and texter.number[-4:] not in said
    run_jobs()
    assert "This conversation has ended" in to_texter(twilio_api, texter)[-1]


def test_ending_after_stop_says_no_closing_message_went(held, texter, twilio_api, run_jobs):
    alice, conv_id = held
    texter.send("STOP")
    alice.post(f"/console/c/{conv_id}/end", wrapped_up("no_response"))
    said = banner(alice.get("/console/"))
    assert said.startswith("Conversation ended (outcome: no response). No closing message was sent.")
    assert "STOP" in said
    run_jobs()
    assert to_texter(twilio_api, texter) == []


def test_release_transfer_and_note_each_say_what_happened(held, console):
    alice, conv_id = held
    alice.post(f"/console/c/{conv_id}/note", {"text": "Mentions a boss named Rick"})
    assert banner(alice.get(f"/console/c/{conv_id}")) == "Note saved. Only counselors see it."
    alice.post(f"/console/c/{conv_id}/transfer", {"to": "bob"})
    assert banner(alice.get("/console/")) == "Conversation transferred to bob."
    bob = console("bob")
    bob.post(f"/console/c/{conv_id}/release")
    assert banner(bob.get("/console/")) == "Conversation put back in the queue."


def test_a_refused_change_says_why_and_no_banner(held, console):
    alice, conv_id = held
    answer = alice.post(f"/console/c/{conv_id}/transfer", {"to": "nobody"})
    assert answer.status_code == 400
    assert "Not done: there is no counselor with that name." in answer.get_data(as_text=True)
    assert banner(answer) is None and banner(alice.get("/console/")) is None


def test_one_counsellors_banner_is_not_shown_to_another(held, console):
    alice, conv_id = held
    bob = console("bob")
    alice.post(f"/console/c/{conv_id}/release")
    assert banner(bob.get("/console/")) is None
    assert banner(alice.get("/console/")) == "Conversation put back in the queue."


# -- a reply that did not reach the texter ------------------------------------------------------


def failed_reply(alice, conv_id, twilio_api, run_jobs, text="Are you still there?", **failure) -> str:
    twilio_api.fail_next(**failure)
    assert alice.post(f"/console/c/{conv_id}/reply", {"text": text}).status_code == 302
    run_jobs()
    return alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)


@pytest.mark.parametrize("code, words, refusal", [
    (21211, "not a valid phone number", "sending it again cannot help"),
    (21610, "the texter has opted out (STOP)", "The texter sent STOP"),  # and the conversation is opted out
    (21614, "not a mobile number", "sending it again cannot help"),
])
def test_a_refused_reply_says_why_in_plain_words_and_offers_no_useless_retry(held, twilio_api, run_jobs, staff, code,
                                                                            words, refusal):
    alice, conv_id = held
    live = failed_reply(alice, conv_id, twilio_api, run_jobs, status=400, code=code, message="refused")
    assert f"Not received: {words}" in live
    assert ">Retry</button>" not in live
    (outbound_id,) = re.findall(r'data-outbound="([0-9a-f]{24})"', live)
    answer = alice.post(f"/console/c/{conv_id}/retry/{outbound_id}")
    assert answer.status_code == 409 and refusal in answer.get_data(as_text=True)
    assert sends(staff) == 0


def test_a_reply_twilio_never_took_shows_why_and_retry_sends_it_once(held, texter, twilio_api, run_jobs, staff):
    alice, conv_id = held
    live = failed_reply(alice, conv_id, twilio_api, run_jobs, status=500, times=4)
    assert "Not received: Twilio had a problem on its side; gave up after 4 attempts." in live
    assert 'delivery-failed">failed<' in live
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", live)
    assert to_texter(twilio_api, texter) == []

    assert alice.post(f"/console/c/{conv_id}/retry/{outbound_id}").status_code == 302
    assert banner(alice.get(f"/console/c/{conv_id}")) == "Sending the reply again. Its status shows beside it."
    again = alice.post(f"/console/c/{conv_id}/retry/{outbound_id}")  # a double click
    assert again.status_code == 409
    assert "Not sent again: this reply is already on its way again." in again.get_data(as_text=True)
    assert sends(staff) == 1
    run_jobs()
    assert to_texter(twilio_api, texter) == ["Are you still there?"]
    live = alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    assert "Not received" not in live and 'delivery-sent">sent<' in live
    [entry] = [e for e in audit.entries(staff.extensions["redis"], 20) if e["action"] == "retry"]
    assert (entry["actor"], entry["conv"], entry["detail"]) == ("alice", conv_id, "")


def test_retry_from_many_tabs_at_once_sends_once(held, texter, twilio_api, run_jobs, staff):
    alice, conv_id = held
    live = failed_reply(alice, conv_id, twilio_api, run_jobs, status=500, times=4)
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", live)
    tabs = [Console(staff, "alice") for _ in range(6)]
    for tab in tabs:
        assert tab.sign_in().status_code == 302
    start, codes = threading.Barrier(len(tabs)), []

    def click(tab):
        start.wait()
        codes.append(tab.post(f"/console/c/{conv_id}/retry/{outbound_id}").status_code)

    threads = [threading.Thread(target=click, args=(tab,)) for tab in tabs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [302] + [409] * 5
    run_jobs()
    assert to_texter(twilio_api, texter) == ["Are you still there?"]
    assert [e["action"] for e in audit.entries(staff.extensions["redis"], 50)].count("retry") == 1


def test_a_reply_the_carrier_lost_shows_why_and_retry_sends_it_again(held, texter, twilio_api, run_jobs, client):
    alice, conv_id = held
    reply_lost_by_the_carrier(alice, conv_id, texter.number, twilio_api, run_jobs, client)
    live = alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    assert "Not received: the phone is unreachable (switched off or out of coverage)." in live
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", live)
    assert alice.post(f"/console/c/{conv_id}/retry/{outbound_id}").status_code == 302
    run_jobs()
    assert to_texter(twilio_api, texter) == ["Are you safe?", "Are you safe?"]
    assert 'delivery-sent">sent<' in alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)


def test_a_delivered_callback_shows_delivered(held, texter, twilio_api, run_jobs, client):
    alice, conv_id = held
    alice.post(f"/console/c/{conv_id}/reply", {"text": "Are you safe?"})
    run_jobs()
    [sid] = [m["sid"] for m in twilio_api.sent if m["To"] == texter.number]
    form = {"MessageSid": sid, "MessageStatus": "delivered"}
    client.post("/sms/status", data=form, headers={"X-Twilio-Signature": sign("http://localhost/sms/status", form)})
    assert 'delivery-delivered">delivered<' in alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)


def test_no_retry_after_stop(held, texter, twilio_api, run_jobs, staff):
    alice, conv_id = held
    live = failed_reply(alice, conv_id, twilio_api, run_jobs, status=500, times=4)
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", live)
    texter.send("STOP")
    assert ">Retry</button>" not in alice.get(f"/console/c/{conv_id}/live").get_data(as_text=True)
    answer = alice.post(f"/console/c/{conv_id}/retry/{outbound_id}")
    assert answer.status_code == 409
    assert ('role="alert">Not sent again: The texter sent STOP. Nothing can be sent until they text START.</p>'
            in answer.get_data(as_text=True))
    assert sends(staff) == 0


def test_no_retry_once_the_conversation_ended(held, console, texter, twilio_api, run_jobs, staff):
    alice, conv_id = held
    live = failed_reply(alice, conv_id, twilio_api, run_jobs, status=500, times=4)
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", live)
    alice.post(f"/console/c/{conv_id}/end", wrapped_up("resolved"))
    run_jobs()  # the closing message
    assert alice.post(f"/console/c/{conv_id}/retry/{outbound_id}").status_code == 403  # no longer hers to see
    answer = console("sam").post(f"/console/c/{conv_id}/retry/{outbound_id}")  # a supervisor sees it, ended
    assert answer.status_code == 409
    assert "Not sent again: no counselor holds this conversation now." in answer.get_data(as_text=True)
    run_jobs()
    assert "Are you still there?" not in to_texter(twilio_api, texter)


def test_no_retry_after_the_texter_erased_the_conversation(held, texter, twilio_api, run_jobs, staff):
    alice, conv_id = held
    live = failed_reply(alice, conv_id, twilio_api, run_jobs, status=500, times=4)
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", live)
    texter.send("DELETE")
    texter.send("YES")
    assert staff.extensions["store"].load(conv_id) is None
    assert alice.post(f"/console/c/{conv_id}/retry/{outbound_id}").status_code == 404
    assert sends(staff) == 0


def test_only_the_holder_may_retry_and_only_a_reply_of_this_conversation(held, console, texter, twilio_api, run_jobs,
                                                                         staff, queued):
    alice, conv_id = held
    live = failed_reply(alice, conv_id, twilio_api, run_jobs, status=500, times=4)
    (outbound_id,) = re.findall(r"/retry/([0-9a-f]{24})", live)
    assert console("bob").post(f"/console/c/{conv_id}/retry/{outbound_id}").status_code == 403
    other = queued()
    alice.post(f"/console/claim/{other.id}")
    elsewhere = alice.post(f"/console/c/{other.id}/retry/{outbound_id}")
    assert elsewhere.status_code == 400
    assert "Not sent again: there is no such reply in this conversation." in elsewhere.get_data(as_text=True)
    assert alice.post(f"/console/c/{conv_id}/retry/not-an-id").status_code == 404
    assert sends(staff) == 0


def test_supervisors_overview_gives_the_same_words(held, console, twilio_api, run_jobs):
    alice, conv_id = held
    failed_reply(alice, conv_id, twilio_api, run_jobs, status=400, code=21211, message="Invalid 'To' Phone Number")
    page = console("sam").get("/console/all").get_data(as_text=True)
    assert "<td>not a valid phone number</td>" in page


# -- failed sign-ins in the audit trail -----------------------------------------------------------


def failed_signins(app) -> list[dict]:
    return [e for e in audit.entries(app.extensions["redis"], 500) if e["action"] == "sign_in_failed"]


def test_a_wrong_password_and_an_unknown_name_are_audited_without_the_name_or_password(staff):
    browser = Console(staff, "alice")
    assert browser.sign_in(password="Tr0ub4dor&3 wrong").status_code == 401
    stranger = Console(staff, "correct horse battery")  # a password typed in the name box
    assert stranger.sign_in(password="whatever it is").status_code == 401
    wrong, unknown = reversed(failed_signins(staff))
    assert wrong["detail"] == "wrong password" and unknown["detail"] == "unknown name"
    assert re.fullmatch(r"#[0-9a-f]{12}", wrong["actor"]) and re.fullmatch(r"#[0-9a-f]{12}", unknown["actor"])
    assert wrong["actor"] != unknown["actor"]
    stream = str(staff.extensions["redis"].xrange(audit.STREAM))
    for secret in ("alice", "Tr0ub4dor", "correct horse", "whatever it is"):
        assert secret not in stream


def test_backing_off_and_rate_limits_are_audited_by_kind(staff):
    browser = Console(staff, "bob")
    codes = [browser.sign_in(password=f"wrong guess {n}").status_code for n in range(6)]
    assert codes == [401] * 5 + [429]  # five free failures, then a wait
    kinds = [e["detail"] for e in reversed(failed_signins(staff))]
    assert kinds == ["wrong password"] * 5 + ["backing off"]


def test_refusals_are_audited_once_a_minute_so_guessing_cannot_flood_the_trail(staff):
    browser = Console(staff, "bob")
    for n in range(12):
        browser.sign_in(password=f"wrong guess {n}")
    kinds = [e["detail"] for e in failed_signins(staff)]
    assert kinds.count("backing off") == 1 and len(kinds) == 6


def test_a_signed_in_device_past_its_limit_is_audited_as_rate_limited(staff):
    browser = Console(staff, "alice")
    assert browser.sign_in().status_code == 302
    browser.client.post("/console/signout", data={"csrf_token": browser.token})
    for n in range(7):
        browser.sign_in(password=f"wrong guess {n}")
    assert "rate limited" in [e["detail"] for e in failed_signins(staff)]


def test_the_audit_page_shows_failed_sign_ins_and_finds_them_by_name(staff, console):
    Console(staff, "alice").sign_in(password="not her password")
    Console(staff, "bob").sign_in(password="not his password either")
    sam = console("sam")
    page = sam.get("/console/audit").get_data(as_text=True)
    assert page.count("sign in failed") == 2 and "wrong password" in page
    mine = sam.get("/console/audit?name=alice").get_data(as_text=True)
    assert mine.count("sign in failed") == 1
    assert sam.get("/console/audit?name=carol").get_data(as_text=True).count("sign in failed") == 0
    assert PASSWORD not in page and "not her password" not in page
