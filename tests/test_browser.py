"""A real browser on the page `chatmem serve` serves (thin_client/chatmem/gateway/static).

Headless Chromium (Debian's package) driven by Playwright against the gateway
on a free port: a guest's first words are kept, conversations survive a
reload and a sign-up, the list is titled, paged, renamed and pruned, and a
signed-in person can download their data and delete their account.

Screenshots go to tests/artifacts/; with CHATMEM_UPDATE_SCREENSHOTS=1 the ones
README.md shows are written to docs/screenshots/ too.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from gateway_server import running_gateway
from helpers import settings_changed

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
DOCS_SCREENSHOTS = Path(__file__).parent.parent / "docs" / "screenshots"
# The artifacts README.md shows, and their names under docs/screenshots/.
IN_README = {"2-signed-up-phone.png": "signed-up-phone.png",
             "3-second-profile-desktop.png": "second-profile-desktop.png",
             "4-conversations-desktop.png": "conversations-desktop.png"}
# Chromium keeps calling home without these; this network refuses it.
FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def base_url(admin_url: str, fast_bcrypt: None) -> Iterator[str]:
    with running_gateway(admin_url) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run 'make install-system' (Debian's chromium package)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, chromium_sandbox=False)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    yield ctx
    ctx.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    if name in IN_README and os.environ.get("CHATMEM_UPDATE_SCREENSHOTS"):
        shutil.copyfile(ARTIFACTS / name, DOCS_SCREENSHOTS / IN_README[name])


def write(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")
    expect(page.locator("#messages li").last).to_have_text(text)
    expect(page.locator("#message")).to_have_value("")


def conversation_buttons(page: Page) -> Any:
    return page.locator("#conversations li button.open")


def item(page: Page, session_id: str) -> Any:
    return page.locator(f'#conversations li[data-session-id="{session_id}"]')


def title_box(page: Page) -> Any:
    return page.get_by_role("textbox", name="Title", exact=True)


def current_session(page: Page) -> str:
    return str(page.locator('#conversations button.open[aria-current="true"]').get_attribute("data-session-id"))


def open_conversation(page: Page, i: int) -> str:
    """Click the i-th conversation and return its one message, once it is shown."""
    button = conversation_buttons(page).nth(i)
    session_id = button.get_attribute("data-session-id")
    button.click()
    # The page marks the button current only after the messages are in.
    expect(page.locator(f'#conversations button[data-session-id="{session_id}"]')).to_have_attribute(
        "aria-current", "true")
    expect(page.locator("#messages li")).to_have_count(1)
    return str(page.locator("#messages li").first.inner_text())


def sign_up(page: Page, address: str, name: str = "Browser Guest") -> None:
    page.fill("#register input[name=name]", name)
    page.fill("#register input[name=email]", address)
    page.fill("#register input[name=password]", PASSWORD)
    page.click("#register button[type=submit]")
    expect(page.locator("#who")).to_contain_text(address)


def new_address() -> str:
    return f"browser-{uuid.uuid4().hex[:8]}@example.com"


def test_the_first_words_a_guest_types_are_kept(
        context: BrowserContext, base_url: str, admin: psycopg.Connection[Any]) -> None:
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url))
    page.goto(base_url)
    # Straight away, before any "New conversation": the box is there and works.
    expect(page.locator("#composer")).to_be_visible()
    # The visitor just types: the box has the focus.
    expect(page.locator("#message")).to_be_focused()
    page.keyboard.type("Hello, is anyone there?")
    # An impatient double Enter: one conversation, one message.
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    expect(page.locator("#messages li")).to_have_text(["Hello, is anyone there?"])
    expect(conversation_buttons(page)).to_have_count(1)
    expect(conversation_buttons(page).first).to_have_attribute("aria-current", "true")
    expect(page.locator("#notice")).to_have_text("")
    assert not [u for u in sent if "/null" in u or "/undefined" in u], sent

    guest_id = page.evaluate("localStorage.getItem('anonymousUserId')")
    rows = admin.execute("""
        SELECT m.role, m.content FROM conversation_sessions s JOIN conversation_messages m USING (session_id)
         WHERE s.metadata->>'anonymousUserId' = %s""", [guest_id]).fetchall()
    assert rows == [("user", "Hello, is anyone there?")]

    # A second message goes to the same conversation, not a new one.
    write(page, "Hello again")
    expect(conversation_buttons(page)).to_have_count(1)
    expect(conversation_buttons(page).first.locator(".preview")).to_have_text("Hello again")


def test_guest_chat_survives_a_reload_and_sign_up_and_shows_on_another_profile(
        browser: Browser, base_url: str, admin: psycopg.Connection[Any]) -> None:
    address = new_address()

    guest_ctx = browser.new_context(viewport=PHONE)
    page = guest_ctx.new_page()
    page.goto(base_url)
    expect(page.locator("#who")).to_contain_text("Guest")
    expect(page.locator("#claim-preview")).to_be_hidden()
    guest_id = page.evaluate("localStorage.getItem('anonymousUserId')")
    assert uuid.UUID(guest_id).version == 4
    assert page.evaluate("localStorage.getItem('anonymousCreatedAt')")

    page.click("#new-conversation")
    write(page, "How do refunds work?")
    page.click("#new-conversation")
    expect(page.locator("#messages li")).to_have_count(0)
    write(page, "Can I change my plan?")
    write(page, "From monthly to yearly")
    expect(conversation_buttons(page)).to_have_count(2)
    expect(page.locator("#claim-preview")).to_have_text("Sign up to keep these 2 conversations.")
    open_now = current_session(page)

    # Mid-conversation, a reload: the same conversation is open with its messages.
    page.reload()
    expect(conversation_buttons(page)).to_have_count(2)
    expect(page.locator("#messages li")).to_have_text(["Can I change my plan?", "From monthly to yearly"])
    assert current_session(page) == open_now
    assert open_conversation(page, 1) == "How do refunds work?"
    assert page.evaluate("localStorage.getItem('anonymousUserId')") == guest_id
    expect(page.locator("#claim-preview")).to_have_text("Sign up to keep these 2 conversations.")
    screenshot(page, "1-guest-phone.png")

    sign_up(page, address)
    expect(page.locator("#notice")).to_have_text("Welcome! 2 conversations were saved to your account.")
    expect(conversation_buttons(page)).to_have_count(2)
    expect(page.locator("#claim-preview")).to_be_hidden()
    # The conversation that was open stays open, as the account's now.
    expect(page.locator("#messages li")).to_have_text(["How do refunds work?"])
    screenshot(page, "2-signed-up-phone.png")

    rows = admin.execute("""
        SELECT s.user_id IS NOT NULL, s.metadata ? 'anonymousUserId', u.email
          FROM conversation_sessions s LEFT JOIN users u ON u.id = s.user_id
         WHERE s.session_id IN (SELECT session_id FROM session_claims WHERE anonymous_user_id = %s)
    """, [guest_id]).fetchall()
    assert rows == [(True, False, address)] * 2

    # Another browser profile: nothing shared but the account.
    other_ctx = browser.new_context(viewport=DESKTOP)
    other = other_ctx.new_page()
    other.goto(base_url)
    assert other.evaluate("localStorage.getItem('anonymousUserId')") != guest_id
    other.fill("#login input[name=email]", address)
    other.fill("#login input[name=password]", PASSWORD)
    other.click("#login button[type=submit]")
    expect(other.locator("#notice")).to_contain_text("Welcome back")
    expect(conversation_buttons(other)).to_have_count(2)
    assert open_conversation(other, 1) == "How do refunds work?"
    other.locator("#conversations button.open").nth(0).click()
    expect(other.locator("#messages li")).to_have_text(["Can I change my plan?", "From monthly to yearly"])
    other.get_by_text("Account", exact=True).click()
    expect(other.locator("#delete-account")).to_be_visible()
    screenshot(other, "3-second-profile-desktop.png")

    guest_ctx.close()
    other_ctx.close()


def test_conversations_are_titled_renamed_deleted_and_paged(
        context: BrowserContext, base_url: str, admin: psycopg.Connection[Any]) -> None:
    page = context.new_page()
    page.goto(base_url)
    write(page, "Where is my parcel?")
    session_id = current_session(page)
    row = item(page, session_id)
    expect(row.locator(".title")).to_have_text("Untitled conversation")
    expect(row.locator(".preview")).to_have_text("Where is my parcel?")

    # Rename, with markup that must stay text.
    hostile = '<img src=x onerror="window.pwned=1">Parcel'
    row.get_by_role("button", name="Rename").click()
    expect(title_box(page)).to_be_focused()
    title_box(page).fill(hostile)
    title_box(page).press("Enter")
    expect(item(page, session_id).locator(".title")).to_have_text(hostile)
    assert page.locator("#conversations img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert admin.execute("SELECT title FROM conversation_sessions WHERE session_id = %s",
                         [session_id]).fetchone() == (hostile,)

    # A title the server refuses: its message and hint, and nothing changed.
    item(page, session_id).get_by_role("button", name="Rename").click()
    title_box(page).fill("x" * 200)
    page.evaluate("document.querySelector('.rename-form input').maxLength = 1000")
    title_box(page).fill("x" * 201)
    title_box(page).press("Enter")
    expect(page.locator("#notice")).to_have_class("error")
    expect(page.locator("#notice")).to_contain_text("200")
    assert "p_" not in page.locator("#notice").inner_text()
    title_box(page).press("Escape")
    expect(item(page, session_id).locator(".title")).to_have_text(hostile)
    assert admin.execute("SELECT title FROM conversation_sessions WHERE session_id = %s",
                         [session_id]).fetchone() == (hostile,)

    item(page, session_id).get_by_role("button", name="Rename").click()
    title_box(page).fill("Parcel tracking")
    page.get_by_role("button", name="Save").click()
    expect(item(page, session_id).locator(".title")).to_have_text("Parcel tracking")
    write_new(page, "Can I pay by bank transfer?")
    other_id = current_session(page)
    expect(conversation_buttons(page)).to_have_count(2)
    screenshot(page, "4-conversations-desktop.png")

    # An empty title clears it.
    item(page, session_id).get_by_role("button", name="Rename").click()
    title_box(page).fill("")
    page.get_by_role("button", name="Save").click()
    expect(item(page, session_id).locator(".title")).to_have_text("Untitled conversation")
    assert admin.execute("SELECT title FROM conversation_sessions WHERE session_id = %s",
                         [session_id]).fetchone() == (None,)

    # Delete: a dismissed confirmation deletes nothing; an accepted one deletes it.
    page.once("dialog", lambda d: d.dismiss())
    item(page, session_id).get_by_role("button", name="Delete").click()
    expect(conversation_buttons(page)).to_have_count(2)
    page.once("dialog", lambda d: d.accept())
    item(page, session_id).get_by_role("button", name="Delete").click()
    expect(conversation_buttons(page)).to_have_count(1)
    expect(page.locator("#notice")).to_contain_text("Deleted")
    assert admin.execute("SELECT count(*) FROM conversation_sessions WHERE session_id = %s",
                         [session_id]).fetchone() == (0,)
    assert admin.execute("SELECT count(*) FROM conversation_messages WHERE session_id = %s",
                         [session_id]).fetchone() == (0,)
    # Deleting the open conversation empties the chat.
    page.once("dialog", lambda d: d.accept())
    item(page, other_id).get_by_role("button", name="Delete").click()
    expect(conversation_buttons(page)).to_have_count(0)
    expect(page.locator("#messages li")).to_have_count(0)

    # 25 conversations: a page of 20, then "More conversations" brings the rest.
    guest_id = page.evaluate("localStorage.getItem('anonymousUserId')")
    for n in range(25):
        admin.execute("SELECT api.rename_session(session_id, %s, %s) FROM api.create_session(%s)",
                      [guest_id, f"Topic {n:02d}", guest_id])
    page.reload()
    expect(conversation_buttons(page)).to_have_count(20)
    expect(page.locator("#claim-preview")).to_have_text("Sign up to keep these 25 conversations.")
    expect(conversation_buttons(page).first.locator(".title")).to_have_text("Topic 24")
    page.click("#more-conversations")
    expect(conversation_buttons(page)).to_have_count(25)
    expect(page.locator("#more-conversations")).to_be_hidden()
    titles = page.locator("#conversations .title").all_inner_texts()
    assert titles == [f"Topic {n:02d}" for n in reversed(range(25))]


def write_new(page: Page, text: str) -> None:
    page.click("#new-conversation")
    expect(page.locator("#messages li")).to_have_count(0)
    write(page, text)


def test_a_signed_in_person_downloads_their_data_and_deletes_their_account(
        context: BrowserContext, base_url: str, admin: psycopg.Connection[Any]) -> None:
    page = context.new_page()
    page.goto(base_url)
    expect(page.locator("#signed-in")).to_be_hidden()
    write(page, "Keep this, then forget me")
    address = new_address()
    sign_up(page, address)

    # Behind the signed-in menu.
    expect(page.locator("#download-data")).to_be_hidden()
    page.get_by_text("Account", exact=True).click()
    expect(page.locator("#download-data")).to_be_visible()

    with page.expect_download() as download:
        page.click("#download-data")
    exported = json.loads(Path(download.value.path()).read_text())
    document = exported["data"]  # the envelope, as the route answers it
    assert document["profile"]["email"] == address
    assert [m["content"] for s in document["sessions"] for m in s["messages"]] == ["Keep this, then forget me"]
    assert download.value.suggested_filename.endswith(".json")

    # A wrong password: the server's message and hint, and the account is still there.
    user_id = admin.execute("SELECT id FROM users WHERE email = %s", [address]).fetchall()[0][0]
    page.once("dialog", lambda d: d.accept())
    page.fill("#delete-account input[name=password]", "not the password")
    page.click("#delete-account button[type=submit]")
    expect(page.locator("#notice")).to_have_class("error")
    assert "p_" not in page.locator("#notice").inner_text()
    assert admin.execute("SELECT count(*) FROM users WHERE id = %s", [user_id]).fetchone() == (1,)
    expect(page.locator("#who")).to_contain_text(address)

    old_guest = page.evaluate("localStorage.getItem('anonymousUserId')")
    page.once("dialog", lambda d: d.accept())
    page.fill("#delete-account input[name=password]", PASSWORD)
    page.click("#delete-account button[type=submit]")
    expect(page.locator("#notice")).to_have_text("Your account was deleted, with 1 conversation.")
    expect(page.locator("#who")).to_contain_text("Guest")
    expect(conversation_buttons(page)).to_have_count(0)
    assert page.evaluate("localStorage.getItem('token')") is None
    assert page.evaluate("localStorage.getItem('anonymousUserId')") != old_guest
    assert admin.execute("SELECT count(*) FROM users WHERE id = %s", [user_id]).fetchone() == (0,)
    assert admin.execute("SELECT count(*) FROM conversation_sessions WHERE user_id = %s",
                         [user_id]).fetchone() == (0,)


def test_the_allowance_counts_down_and_a_refused_turn_keeps_its_text(
        context: BrowserContext, base_url: str, admin_url: str, admin: psycopg.Connection[Any]) -> None:
    with settings_changed(admin_url, guest_messages_per_day=2):
        page = context.new_page()
        page.goto(base_url)
        expect(page.locator("#allowance")).to_have_text("2 messages left today")
        write(page, "One")
        expect(page.locator("#allowance")).to_have_text("1 message left today")
        write(page, "Two")
        expect(page.locator("#allowance")).to_have_text("0 messages left today")
        session_id = current_session(page)

        page.fill("#message", "Three")
        page.press("#message", "Enter")
        notice = page.locator("#notice")
        expect(notice).to_have_class("error")
        expect(notice).to_contain_text(" — ")  # the message, then the hint
        assert "api." not in notice.inner_text() and "p_" not in notice.inner_text()
        expect(page.locator("#message")).to_have_value("Three")  # to send again later
        expect(page.locator("#messages li")).to_have_text(["One", "Two"])
        assert admin.execute("SELECT count(*) FROM conversation_messages WHERE session_id = %s",
                             [session_id]).fetchone() == (2,)


def test_a_wrong_password_shows_the_servers_message(context: BrowserContext, base_url: str) -> None:
    page = context.new_page()
    page.goto(base_url)
    page.fill("#login input[name=email]", f"nobody-{uuid.uuid4().hex[:6]}@example.com")
    page.fill("#login input[name=password]", "not the password")
    page.click("#login button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("invalid email or password")
    expect(page.locator("#notice")).to_have_class("error")
