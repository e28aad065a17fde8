"""The chat page in a real browser (Debian's Chromium) against the app on a real port."""
from __future__ import annotations

import http.server
import os
import shutil
import threading
import time

import pytest
from playwright.sync_api import expect

from bot.console import accounts
from tests.chat.test_streams import counsellor_writes
from tests.console.conftest import wrap_up

PASSWORD = "correct horse battery staple"
PHONE = {"width": 360, "height": 640}
# A phone has a touch screen and no keyboard; a desktop a mouse and a keyboard.
SCREENS = {"phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True},
           "desktop": {"viewport": {"width": 1280, "height": 800}}}


@pytest.fixture
def site(app, live_server):
    """The live server, with quick exit pointed at a neutral page on it (there is no internet here)."""
    app.config["CHAT_EXIT_URL"] = live_server.url + "/healthz"
    return live_server.url


@pytest.fixture
def visitor(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 760})
    yield context.new_page()
    context.close()


def open_chat(page, url: str):
    page.goto(url)
    expect(page.locator("#log .msg-bot").first).to_be_visible()
    expect(page.get_by_role("textbox")).to_be_enabled()


def signed_in_counsellor(app, browser, site: str):
    """A counsellor "ana" signed in to the console in a browser context of her own."""
    with app.app_context():
        accounts.add(app.extensions["redis"], "ana", PASSWORD)
    context = browser.new_context()
    desk = context.new_page()
    desk.goto(site + "/console/signin")
    desk.get_by_label("Name").fill("ana")
    desk.get_by_label("Password").fill(PASSWORD)
    desk.get_by_role("button", name="Sign in").click()
    return context, desk


def stored_conversations(redis_client) -> list[bytes]:
    return redis_client.keys("c:*") + redis_client.keys("t:*")


def wait_until(check, seconds: float = 10.0):
    """Poll for something the server finishes after the browser has moved on (the keepalive erase)."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_a_visitor_reaches_a_counsellor_in_spanish_and_sees_the_reply_live(app, site, browser, visitor,
                                                                            redis_client):
    page = visitor
    open_chat(page, site + "/chat?lang=es")
    log = page.get_by_role("log")
    expect(log).to_contain_text("gratis y privado")
    page.evaluate("window.notReloaded = true")

    page.get_by_role("button", name="Sí, es seguro").click()
    expect(log).to_contain_text("¿En qué te ayudamos?")
    expect(page.get_by_role("group", name="Respuestas rápidas").get_by_role("button")).to_have_count(6)
    page.get_by_label("Tu mensaje").fill("1")  # typing works as well as the buttons
    page.get_by_label("Tu mensaje").press("Enter")
    expect(log).to_contain_text("Una persona consejera puede")
    expect(page.get_by_label("Tu mensaje")).to_have_value("")
    page.get_by_role("button", name="Sí", exact=True).click()
    expect(log).to_contain_text("Ya tienes tu lugar en la fila")
    expect(page.get_by_role("group", name="Respuestas rápidas")).to_be_hidden()
    expect(page.get_by_label("Tu mensaje")).to_be_focused()

    counsellor, desk = signed_in_counsellor(app, browser, site)
    row = desk.locator("#queue tr[data-conv]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Web chat")
    expect(row).to_contain_text("Spanish")
    row.get_by_role("button", name="Claim").click()
    desk.locator("#reply-text").fill("Hola, soy Ana. Estoy aquí contigo. ¿Estás en un lugar seguro?")
    desk.locator("#reply-send").click()

    reply = page.locator("#log .msg-counsellor")
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text("Hola, soy Ana")
    expect(reply).to_contain_text("Consejería")  # who wrote it, never their name
    assert page.evaluate("window.notReloaded") is True

    page.get_by_label("Tu mensaje").fill("sí, estoy en casa de mi tía")
    page.get_by_role("button", name="Enviar").click()
    expect(desk.locator("#live")).to_contain_text("estoy en casa de mi tía")
    counsellor.close()


@pytest.mark.parametrize("how", ["button", "escape"])
def test_quick_exit_leaves_nothing_behind(site, visitor, redis_client, how):
    page = visitor
    page.goto(site + "/healthz?before=chat")
    open_chat(page, site + "/chat")
    page.get_by_role("button", name="Yes, it is safe").click()
    expect(page.get_by_role("log")).to_contain_text("How can we help?")
    assert stored_conversations(redis_client)

    if how == "button":
        page.get_by_role("button", name="Leave quickly").click()
    else:
        page.get_by_label("Your message").fill("half a thought")
        page.keyboard.press("Escape")

    page.wait_for_url(site + "/healthz")
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert page.context.cookies() == []
    assert wait_until(lambda: not stored_conversations(redis_client)), stored_conversations(redis_client)
    page.go_back()
    assert page.url == site + "/healthz?before=chat"  # Back skips the chat: it was replaced
    assert page.locator("#chat").count() == 0


class PartnerSite:
    """A partner's web site on its own loopback port (its own origin) with a page that embeds the chat."""

    def __init__(self):
        site = self

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = (f'<!doctype html><title>Partner</title><h1>Our partner</h1><iframe src="{site.chat}" '
                        'title="Chat" style="width: 100%; max-width: 30rem; height: 36rem; border: 0" '
                        'referrerpolicy="no-referrer"></iframe>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.chat = ""
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def partners(config):
    """Two sites; only the first is in CHAT_EMBED_ORIGINS (set before the app is built)."""
    allowed, other = PartnerSite(), PartnerSite()
    config["CHAT_EMBED_ORIGINS"] = allowed.url
    yield allowed, other
    allowed.close()
    other.close()


def test_a_partner_frames_the_chat_and_quick_exit_takes_the_whole_tab(partners, site, visitor, redis_client):
    partner, _ = partners
    partner.chat = site + "/chat"
    page = visitor
    page.goto(partner.url + "/help")
    chat = page.frame_locator("iframe")
    expect(chat.get_by_role("log")).to_contain_text("free and private")
    assert stored_conversations(redis_client)

    chat.get_by_role("button", name="Leave quickly").click()

    page.wait_for_url(site + "/healthz")
    assert wait_until(lambda: not stored_conversations(redis_client))


def test_other_sites_cannot_frame_the_chat(partners, site, visitor):
    _, other = partners
    other.chat = site + "/chat"
    page = visitor
    page.goto(other.url + "/help")  # waits for the frame's load event, allowed or refused
    expect(page.get_by_role("heading", name="Our partner")).to_be_visible()
    assert page.frame_locator("iframe").locator("#chat").count() == 0


def listed_lines(page) -> list[dict]:
    """Each line of the log that lists an answer button: its text and whether it takes room on screen."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('#log .msg p span'), line => {
        const box = line.getBoundingClientRect();
        return {text: line.textContent.trim(), seen: box.width > 1 && box.height > 1};
    })""")


@pytest.mark.parametrize("screen, lang, safe, question, first", [
    ("phone", "es", "Sí, es seguro", "¿En qué te ayudamos?", "1 Hablar con una persona consejera"),
    ("desktop", "en", "Yes, it is safe", "How can we help?", "1 Talk to a counselor"),
])
def test_the_choices_show_once_as_buttons_and_the_whole_menu_fits_the_screen(site, browser, screen, lang, safe,
                                                                             question, first):
    context = browser.new_context(**SCREENS[screen])
    page = context.new_page()
    open_chat(page, f"{site}/chat?lang={lang}")
    buttons = page.get_by_role("group").get_by_role("button")
    expect(buttons).to_have_count(2)
    for n in range(2):
        expect(buttons.nth(n)).to_be_in_viewport(ratio=1)

    page.get_by_role("button", name=safe).click()
    menu = page.locator("#log .msg-bot").last
    expect(menu).to_contain_text(question)
    expect(buttons).to_have_count(6)
    # The whole menu on screen at once, its question and every answer, without scrolling.
    expect(menu).to_be_in_viewport(ratio=1)
    for n in range(6):
        expect(buttons.nth(n)).to_be_in_viewport(ratio=1)
    for control in (page.locator("#exit"), page.get_by_role("textbox"), page.locator("#send")):
        expect(control).to_be_in_viewport(ratio=1)
    assert page.evaluate("document.documentElement.scrollWidth") <= SCREENS[screen]["viewport"]["width"]
    # The numbered list is there for a screen reader, and takes no room on screen: the buttons show it.
    assert first in page.locator("#log").aria_snapshot()
    lines = listed_lines(page)
    assert [line["text"][:1] for line in lines] == list("123456") and not any(line["seen"] for line in lines)

    # Once answered, the buttons go, and the message reads as in a text thread again.
    buttons.first.click()
    expect(page.locator("#log .msg-bot")).to_have_count(3)
    assert all(line["seen"] for line in listed_lines(page))
    context.close()


@pytest.mark.parametrize("screen", ["phone", "desktop"])
def test_press_esc_is_offered_only_where_there_is_a_keyboard(site, browser, screen):
    context = browser.new_context(**SCREENS[screen])
    page = context.new_page()
    open_chat(page, site + "/chat")
    leave = page.get_by_role("button", name="Leave quickly")
    expect(leave).to_be_visible()  # the way out is on every screen
    if screen == "desktop":
        expect(page.get_by_text("or press Esc")).to_be_visible()
        expect(leave).to_have_accessible_description("or press Esc")
    else:
        assert "Esc" not in page.locator("body").inner_text()  # not in the page, nor in the bot's welcome
        expect(leave).to_have_accessible_description("")
    context.close()


@pytest.mark.parametrize("screen, live", [("phone", "stream"), ("desktop", "stream"), ("desktop", "polling")])
def test_when_the_counsellor_ends_the_chat_the_page_says_so_and_offers_a_new_one(app, site, browser, screen, live):
    if live == "polling":
        app.config["CHAT_STREAMS_PER_ADDRESS"] = 0  # no stream for this page: it asks every 5 s
    wait = 12_000  # ms: two polls
    context = browser.new_context(**SCREENS[screen])
    page = context.new_page()
    tokens = []
    page.on("response", lambda r: r.url.endswith("/chat/api/session") and tokens.append(r.json()["token"]))
    open_chat(page, site + "/chat")
    log, box = page.get_by_role("log"), page.get_by_label("Your message")
    page.get_by_role("button", name="Yes, it is safe").click()
    page.get_by_role("button", name="Talk to a counselor").click()
    page.get_by_role("button", name="Yes", exact=True).click()
    expect(log).to_contain_text("You are in line")

    counsellor, desk = signed_in_counsellor(app, browser, site)
    desk.locator("#queue tr[data-conv]").get_by_role("button", name="Claim").click()
    desk.locator("#reply-text").fill("I'm glad you wrote. Take care of yourself.")
    desk.locator("#reply-send").click()
    expect(page.locator("#log .msg-counsellor")).to_contain_text("Take care of yourself", timeout=wait)
    desk.once("dialog", lambda dialog: dialog.accept())  # "End this conversation?" if the console asks
    wrap_up(desk, "resolved")
    desk.wait_for_url(lambda url: "/console/c/" not in url)  # ended: the console has left the conversation
    counsellor.close()

    expect(log).to_contain_text("This conversation has ended. Thank you for reaching out.", timeout=wait)
    expect(page.locator("#log .msg").last).to_be_in_viewport(ratio=1)  # the closing message, in sight
    expect(page.get_by_role("status")).to_have_text("This chat has ended. You can start a new one whenever you like.",
                                                    timeout=wait)
    expect(box).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    new_chat = page.get_by_role("button", name="Start a new chat")
    expect(new_chat).to_be_in_viewport(ratio=1)
    expect(new_chat).to_be_focused()
    page.evaluate("window.notReloaded = true")

    new_chat.click()
    expect(page.locator("#log .msg")).to_have_count(1)  # only the new welcome: the old chat is gone from the page
    expect(log).to_contain_text("Is it safe for you to chat right now?")
    expect(box).to_be_enabled()
    expect(new_chat).to_be_hidden()
    expect(page.get_by_role("status")).to_have_text("")
    assert page.evaluate("window.notReloaded") is True
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    # The page listens to the new chat only: what is written to the old one does not reach it.
    counsellor_writes(app, tokens[0], "Written to the chat that ended.")
    counsellor_writes(app, tokens[1], "Written to the new chat.")
    expect(page.locator("#log .msg-counsellor")).to_have_text(["CounselorWritten to the new chat."], timeout=wait)

    page.get_by_role("button", name="Yes, it is safe").click()
    expect(log).to_contain_text("How can we help?")
    store = app.extensions["store"]
    with app.app_context():
        old, new = (store.load(app.extensions["helpline"].conversation_id("web", t)) for t in tokens)
    assert new.state == "menu"  # the new chat took the answer
    assert old.slots["outcome"] == "resolved" and old.state == "chat_ended"  # the ended one is left as it was
    context.close()


def test_a_visitor_sending_too_fast_is_asked_kindly_to_wait(app, site, visitor):
    app.config["CHAT_MESSAGES_PER_MINUTE"] = 1
    page = visitor
    open_chat(page, site + "/chat")
    box, status = page.get_by_label("Your message"), page.get_by_role("status")

    def send(text):
        box.fill(text)
        box.press("Enter")  # the page marks the log busy at once, and not busy when answered
        expect(page.locator("#log")).to_have_attribute("aria-busy", "false")

    # One message passes per minute: of three, at least one is held back whatever the clock says.
    for text in ("one", "two", "three"):
        send(text)
        if status.inner_text():
            break
    expect(status).to_have_text("You are sending messages quickly. Please wait a moment, then try again.")
    assert box.input_value() in ("two", "three")  # the held-back message is kept, ready to send again
    expect(page.get_by_role("button", name="Send")).to_be_disabled()


def test_screenshots(site, browser, tmp_path):
    """docs/chat.png and docs/chat-mobile.png: set CHAT_SCREENSHOTS=docs to refresh them."""
    shots = []
    for name, screen, lang in (("chat.png", {"viewport": {"width": 1000, "height": 720}}, "en"),
                               ("chat-mobile.png", SCREENS["phone"], "es")):
        context = browser.new_context(**screen, device_scale_factor=1)  # a phone as a phone: touch, no Esc hint
        page = context.new_page()
        open_chat(page, f"{site}/chat?lang={lang}")
        page.get_by_role("group").get_by_role("button").first.click()
        expect(page.get_by_role("group").get_by_role("button")).to_have_count(6)
        path = tmp_path / name
        page.screenshot(path=str(path))
        shots.append(path)
        context.close()
    assert all(p.stat().st_size > 10_000 for p in shots)
    target = os.environ.get("CHAT_SCREENSHOTS")
    if target:
        for p in shots:
            shutil.copy(p, os.path.join(target, p.name))


def test_stop_end_quit_cancel_are_ordinary_words_in_the_web_chat(app, site, browser, visitor):
    """A web page has no carrier: "stop" does not opt the visitor out, and danger afterwards is heard."""
    page = visitor
    open_chat(page, site + "/chat")
    log = page.get_by_role("log")
    box = page.get_by_label("Your message")
    for word in ("stop", "end", "quit", "cancel"):
        before = page.locator("#log .msg-bot").count()
        box.fill(word)
        box.press("Enter")
        expect(page.locator("#log .msg-bot")).to_have_count(before + 1)  # answered, never silence
        expect(log).not_to_contain_text("any more messages")
    box.fill("he has a gun and says he will kill me")
    box.press("Enter")
    expect(log).to_contain_text("call 911")
    # The counsellor button waits until the whole answer is in and the page is ready again.
    page.get_by_role("group", name="Quick answers").get_by_role("button", name="Talk to a counselor").click()
    expect(log).to_contain_text("in line")

    counsellor, desk = signed_in_counsellor(app, browser, site)
    row = desk.locator("#queue tr[data-conv]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("emergency")
    counsellor.close()


def test_a_page_refused_a_live_stream_still_shows_the_counsellors_reply_by_polling(app, site, visitor):
    app.config["CHAT_STREAMS_PER_ADDRESS"] = 0  # as when this address already holds its share
    page = visitor
    token = {}
    page.on("response", lambda r: r.url.endswith("/chat/api/session") and token.update(r.json()))
    open_chat(page, site + "/chat")
    counsellor_writes(app, token["token"], "Hi, I'm Ana. Are you somewhere safe right now?")

    reply = page.locator("#log .msg-counsellor")
    expect(reply).to_contain_text("Are you somewhere safe", timeout=12_000)  # polled every 5 s
    expect(reply).to_have_count(1)  # shown once, however many polls see it
