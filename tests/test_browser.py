"""A real browser: a guest chats in two conversations, reloads, signs up, and keeps them.

Headless Chromium (Debian's package) driven by Playwright against the gateway
on a free port.  Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gateway_server import running_gateway

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
# Chromium keeps calling home without these; this network refuses it.
FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def base_url(admin_url: str) -> Iterator[str]:
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


def write(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.click("#composer button[type=submit]")
    expect(page.locator("#messages li").last).to_have_text(text)


def conversation_buttons(page: Page) -> Any:
    return page.locator("#conversations li button")


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


def test_guest_chat_survives_sign_up_and_shows_on_another_profile(
        browser: Browser, base_url: str, admin: psycopg.Connection[Any]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    address = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse"

    guest_ctx = browser.new_context(viewport=PHONE)
    page = guest_ctx.new_page()
    page.goto(base_url)
    expect(page.locator("#who")).to_contain_text("Guest")
    guest_id = page.evaluate("localStorage.getItem('anonymousUserId')")
    assert uuid.UUID(guest_id).version == 4
    assert page.evaluate("localStorage.getItem('anonymousCreatedAt')")

    page.click("#new-conversation")
    write(page, "How do refunds work?")
    page.click("#new-conversation")
    write(page, "Can I change my plan?")
    expect(conversation_buttons(page)).to_have_count(2)

    # Stored, not just shown: a reload brings both conversations back.
    page.reload()
    expect(conversation_buttons(page)).to_have_count(2)
    seen = {open_conversation(page, i) for i in range(2)}
    assert seen == {"How do refunds work?", "Can I change my plan?"}
    assert page.evaluate("localStorage.getItem('anonymousUserId')") == guest_id
    page.screenshot(path=str(ARTIFACTS / "1-guest-phone.png"), full_page=True)

    page.fill("#register input[name=name]", "Browser Guest")
    page.fill("#register input[name=email]", address)
    page.fill("#register input[name=password]", password)
    page.click("#register button[type=submit]")
    expect(page.locator("#notice")).to_have_text("Welcome! 2 conversations were saved to your account.")
    expect(page.locator("#who")).to_contain_text(address)
    expect(conversation_buttons(page)).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "2-signed-up-phone.png"), full_page=True)

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
    other.fill("#login input[name=password]", password)
    other.click("#login button[type=submit]")
    expect(other.locator("#notice")).to_contain_text("Welcome back")
    expect(conversation_buttons(other)).to_have_count(2)
    assert {open_conversation(other, i) for i in range(2)} == seen
    other.screenshot(path=str(ARTIFACTS / "3-second-profile-desktop.png"), full_page=True)

    guest_ctx.close()
    other_ctx.close()


def test_a_wrong_password_shows_the_servers_message(browser: Browser, base_url: str) -> None:
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    page.goto(base_url)
    page.fill("#login input[name=email]", f"nobody-{uuid.uuid4().hex[:6]}@example.com")
    page.fill("#login input[name=password]", "not the password")
    page.click("#login button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("invalid email or password")
    expect(page.locator("#notice")).to_have_class("error")
    ctx.close()
