"""A shared chat in two browsers: the owner invites by name, each sees who is here and who types, and every
message is labelled with its author."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from tests.api import Account, Api
from tests.e2e.test_web_client import assert_accessible
from tests.fakes.groq import GroqFake


async def _signed_in(browser: Browser, base: str, account: Account, problems: list[str]) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 820}, color_scheme="light")
    page = await context.new_page()
    page.on("pageerror", lambda error: problems.append(f"{account.username}: page error: {error}"))
    page.on(
        "console",
        lambda msg: problems.append(f"{account.username}: console: {msg.text}") if msg.type == "error" else None,
    )
    await page.goto(base + "/")
    await page.get_by_label("Username").fill(account.username)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Log in", exact=True).click()
    await expect(page.locator("#whoami")).to_have_text(account.username)
    return page


@pytest.mark.timeout(180)
async def test_two_people_share_a_chat_in_two_browsers(
    browser: Browser, chat_server: TestServer, chat_api: Api, groq: GroqFake, artifacts: Path
) -> None:
    base = str(chat_server.make_url("")).rstrip("/")
    olivia, max_ = await chat_api.register(), await chat_api.register()
    problems: list[str] = []
    groq.script.tokens = ["Welcome ", "both."]

    # Olivia starts a chat and says something
    owner = await _signed_in(browser, base, olivia, problems)
    await owner.get_by_role("button", name="Start your first chat").click()
    await expect(owner.locator("#connection")).to_have_attribute("data-state", "connected")
    box = owner.get_by_label("Message", exact=True)
    await box.fill("Hello team")
    await box.press("Enter")
    await expect(owner.locator("li.msg.assistant").last).to_have_attribute("data-status", "complete", timeout=60_000)
    await expect(owner.locator("li.msg.user .author")).to_have_count(0)  # not shared yet: no names

    # she invites Max by his username, as a member
    await owner.get_by_role("button", name="Share").click()
    await owner.get_by_label("Person to invite").fill(max_.username)
    await owner.get_by_label("Role").select_option("member")
    await owner.get_by_role("button", name="Invite").click()
    members = owner.locator("#member-list")
    await expect(members.locator("li.member")).to_have_count(2)
    await expect(members.locator("li.member").nth(1)).to_contain_text(max_.username)
    await expect(members.locator("li.member").nth(1)).to_contain_text("member")
    await expect(owner.locator("li.msg.user .author").first).to_have_text(olivia.username)

    # Max finds it among his chats and joins: both see both
    guest = await _signed_in(browser, base, max_, problems)
    shared = guest.locator("button.session-item", has_text="Hello team")
    await expect(shared).to_contain_text("shared with you (member)")
    await shared.click()
    await expect(guest.locator("#connection")).to_have_attribute("data-state", "connected")
    for page in (owner, guest):
        presence = page.locator("#presence")
        await expect(presence).to_contain_text(olivia.username)
        await expect(presence).to_contain_text(max_.username)
    await expect(guest.locator("li.msg.user .author").first).to_have_text(olivia.username)
    await expect(guest.locator("#rename")).to_be_hidden()  # the owner's

    # Max types: Olivia sees who; then he sends, and his message carries his name on both pages
    guest_box = guest.get_by_label("Message", exact=True)
    await guest_box.press_sequentially("Hi from Max", delay=20)
    await expect(owner.locator("#typing")).to_have_text(re.compile(rf"{re.escape(max_.username)} is typing"))
    groq.script.tokens = ["Hello ", "Max."]
    await guest_box.press("Enter")
    for page in (owner, guest):
        mine = page.locator("li.msg.user", has_text="Hi from Max")
        await expect(mine.locator(".author")).to_have_text(max_.username)
        await expect(page.locator("li.msg.assistant").last).to_have_attribute("data-status", "complete", timeout=60_000)
    await owner.screenshot(path=str(artifacts / "web-client-shared-room.png"), animations="disabled")
    await assert_accessible(owner)
    await assert_accessible(guest)

    # Max leaves: Olivia sees him gone
    await guest.get_by_role("button", name=re.compile("Members")).click()
    await guest.get_by_role("button", name="Leave this chat").click()
    await expect(owner.locator("#presence")).not_to_contain_text(max_.username)
    assert not problems, problems
