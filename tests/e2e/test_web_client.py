"""The web client in a real browser: every capability of the page, driven like a user would."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, WebSocketRoute, expect

from tests.api import Api
from tests.e2e.conftest import SPOKEN_QUESTION, WEB_DIR
from tests.fakes.groq import GroqFake
from tests.pipelines.media_util import text_image
from tests.pipelines.speech_util import wer
from tests.sio import Recorder

DOCUMENT = """# Zephyr-9 lighthouse lamp

The Zephyr-9 lighthouse lamp carries a warranty of seven years from the date of installation.
Its beam reaches 22 nautical miles in clear weather. Replacement bulbs are ordered from the harbour office.
"""
QUESTION = "How long is the warranty of the Zephyr-9 lighthouse lamp?"
ANSWER = ["The ", "Zephyr-9 ", "lamp ", "is ", "under ", "warranty ", "for ", "seven ", "years ", "[1]."]
LONG_ANSWER = [f"part{i} " for i in range(600)]
VOICE_ANSWER = ["Sunny ", "with ", "a ", "light ", "breeze."]
CODE = 'def warranty_years(part: str) -> int:\n    return {"lamp": 7, "bulb": 1}[part]'
MARKDOWN = f"""## Zephyr-9 at a glance

The lamp is **under warranty** for *seven years* [1]; see the [maintenance guide](https://example.com/zephyr-9).

| Part | Warranty |
|------|---------:|
| Lamp | 7 years |
| Bulb | 1 year |

```python
{CODE}
```

<script>window.__pwned = "script"</script>
Unsafe [click me](javascript:window.__pwned='link') and <img src="x" onerror="window.__pwned='img'"> stay inert [7].
"""
MARKDOWN_ANSWER = [MARKDOWN[i : i + 3] for i in range(0, len(MARKDOWN), 3)]  # deltas that split every construct
AXE = WEB_DIR / "node_modules" / "axe-core" / "axe.min.js"

# Records, for the next answer, how much text it shows at each change (no whitespace: what a reader sees), whether
# its first block stays the same element from the moment it is complete (rendered once), and what the screen
# reader's live region says.
WATCH_MARKDOWN = r"""() => {
  const index = document.querySelectorAll("li.msg.assistant").length;
  window.__md = {lengths: [], announced: [], firstBlockKept: null};
  const announcer = document.querySelector("#announcer");
  let lastAnnounced = announcer.textContent;
  let firstBlock = null;
  new MutationObserver(() => {
    const li = document.querySelectorAll("li.msg.assistant")[index];
    const content = li && li.querySelector(".content");
    if (content && li.dataset.status === "streaming") {
      window.__md.lengths.push(content.textContent.replace(/\s+/g, "").length);
      const h2 = content.querySelector(".md-done h2");
      if (h2 && !firstBlock) firstBlock = h2;
    }
    if (li && li.dataset.status === "complete" && firstBlock) {
      window.__md.firstBlockKept = firstBlock.isConnected && content.querySelector("h2") === firstBlock;
    }
    if (announcer.textContent !== lastAnnounced) {
      lastAnnounced = announcer.textContent;
      window.__md.announced.push(lastAnnounced);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""

# Records what the page showed, even briefly: banner texts and live transcripts.
OBSERVE = """() => {
  window.__seen = {banner: [], transcript: []};
  const watch = (selector, key) => new MutationObserver(() => {
    const el = document.querySelector(selector);
    if (!el.closest("[hidden]") && el.textContent) window.__seen[key].push(el.textContent);
  }).observe(document.querySelector(selector).parentElement,
             {subtree: true, childList: true, characterData: true, attributes: true});
  watch("#banner-text", "banner");
  watch("#transcript-text", "transcript");
}"""


def answer_item(page: Page, index: int = -1) -> Any:
    items = page.locator("li.msg.assistant")
    return items.last if index == -1 else items.nth(index)


async def text_of(page: Page, selector: str) -> str:
    return str(await page.locator(selector).text_content())


async def assert_accessible(page: Page) -> None:
    """No serious or critical violation from axe-core on the page as it is."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    violations = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
          id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
        }))"""
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, serious


async def watch_answer(page: Page, answer_id: str) -> None:
    """Record every text an answer shows on its way (window.__texts)."""
    await page.evaluate(
        """(id) => {
          window.__texts = [];
          new MutationObserver(() => {
            const content = document.querySelector(`li[data-id="${id}"] .content`);
            if (content) window.__texts.push(content.textContent);
          }).observe(document.querySelector("#messages"), {subtree: true, childList: true, characterData: true});
        }""",
        answer_id,
    )


async def grows(page: Page, answer_id: str, by: int = 60) -> None:
    """Wait until the answer's text is `by` characters longer than now."""
    script = "(id) => document.querySelector(`li[data-id='${id}'] .content`).textContent.length"
    now = await page.evaluate(script, answer_id)
    await page.wait_for_function(
        "([id, n]) => document.querySelector(`li[data-id='${id}'] .content`).textContent.length > n",
        arg=[answer_id, now + by],
    )


def assert_prefixes(texts: list[str]) -> None:
    """Nothing duplicated, nothing missing: every text shown is a prefix of the answer, and it only grows."""
    whole = "".join(LONG_ANSWER)
    texts = [text.strip() for text in texts]  # the rendered paragraph's own whitespace
    assert texts and all(whole.startswith(text) for text in texts), [t for t in texts if not whole.startswith(t)][:3]
    assert [len(t) for t in texts] == sorted(len(t) for t in texts)


@pytest.mark.timeout(300)
async def test_the_web_client_does_everything_in_a_real_browser(
    browser: Browser,
    chat_server: TestServer,
    chat_api: Api,
    groq: GroqFake,
    spoken_wav: tuple[Path, float],
    artifacts: Path,
    tmp_path: Path,
) -> None:
    base = str(chat_server.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 820}, color_scheme="light")
    await context.grant_permissions(["microphone", "clipboard-read", "clipboard-write"], origin=base)
    page = await context.new_page()
    # the page's websockets pass through here, so the test can cut one as a network failure would
    sockets: list[WebSocketRoute] = []

    def relay(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    await page.route_web_socket(re.compile(r"/socket\.io/"), relay)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and "status of 401" not in msg.text  # the expired-login step
            else None
        ),
    )
    username, password = f"web_{uuid.uuid4().hex[:10]}", "correct horse battery"
    try:
        # ---- register, log out, log in ----
        await page.goto(base + "/")
        await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        await page.screenshot(path=str(artifacts / "web-client-login.png"), animations="disabled")
        await assert_accessible(page)
        await page.get_by_role("tab", name="Register").click()
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Create account").click()
        await expect(page.locator("#whoami")).to_have_text(username)
        assert await page.evaluate("sessionStorage.getItem('parley.token')")
        await page.get_by_role("button", name="Log out").click()
        await expect(page.locator("#auth-notice")).to_have_text("You are logged out.")
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Log in", exact=True).click()
        await expect(page.locator("#app-view")).to_be_visible()
        await expect(page.locator("#whoami")).to_have_text(username)
        token = await page.evaluate("sessionStorage.getItem('parley.token')")

        # ---- a new user is told what to do first ----
        await expect(page.get_by_role("heading", name="Welcome to Parley")).to_be_visible()
        await expect(page.locator("#empty-state .steps li")).to_have_count(3)
        await expect(page.get_by_role("button", name="Upload a document")).to_be_visible()
        await page.screenshot(path=str(artifacts / "web-client-welcome.png"), animations="disabled")
        await assert_accessible(page)

        # ---- a new chat, renamed ----
        await page.get_by_role("button", name="Start your first chat").click()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        await expect(page.locator(".first-hint")).to_contain_text("Ask a question to start")
        await page.get_by_role("button", name="Rename").click()
        await page.get_by_label("Chat title").fill("Lighthouse questions")
        await page.get_by_label("Chat title").press("Enter")
        await expect(page.locator("#chat-title")).to_have_text("Lighthouse questions")
        await expect(page.locator("#session-list .session-title").first).to_have_text("Lighthouse questions")
        session_id = page.url.split("#", 1)[1]  # the open chat is in the address

        # ---- upload a document by drag and drop; it is ingested ----
        await page.evaluate(
            """([name, text]) => {
              const data = new DataTransfer();
              data.items.add(new File([text], name, {type: "text/markdown"}));
              const zone = document.querySelector("#dropzone");
              zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true, cancelable: true}));
              zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
            }""",
            ["zephyr-lamp.md", DOCUMENT],
        )
        document = page.locator("#document-list li.document", has_text="zephyr-lamp.md")
        await expect(document).to_have_attribute("data-status", "ready", timeout=60_000)
        await expect(document.locator(".chip")).to_have_text("Ready")

        # ---- ask: the answer streams token by token, with its source ----
        await page.evaluate(OBSERVE)
        groq.script.tokens, groq.script.delay = ANSWER, 0.15
        box = page.get_by_label("Message", exact=True)
        await box.fill("first line")
        await box.press("Shift+Enter")  # a new line, not a send
        await box.press_sequentially("second line")
        assert await box.input_value() == "first line\nsecond line"
        await box.fill(QUESTION)
        await box.press("Enter")
        await expect(box).to_have_value("")
        await expect(page.locator("li.msg.user").last.locator(".content")).to_have_text(QUESTION)
        answer = answer_item(page)
        await expect(answer).to_have_attribute("data-status", "streaming")
        await expect(page.get_by_role("button", name="Stop")).to_be_visible()
        # a part of the answer is on screen while it is still being written
        await page.wait_for_function(
            """() => {
              const li = [...document.querySelectorAll("li.msg.assistant")].pop();
              const text = li.querySelector(".content").textContent;
              return li.dataset.status === "streaming" && text.startsWith("The ") && text.length < LIMIT;
            }""".replace("LIMIT", str(len("".join(ANSWER))))
        )
        await expect(answer).to_have_attribute("data-status", "complete")
        await expect(answer.locator(".content")).to_have_text("".join(ANSWER))
        await expect(page.get_by_role("button", name="Stop")).to_be_hidden()
        await expect(answer.locator("time")).to_have_text("just now")
        sources = answer.locator("details.sources")
        await expect(sources.locator("summary")).to_have_text(re.compile(r"Sources \(\d+\)"))
        await sources.locator("summary").click()
        first_source = sources.locator("li.source").first
        await expect(first_source.locator(".source-name")).to_have_text("zephyr-lamp.md")
        await expect(first_source.locator(".snippet")).to_contain_text("seven years")
        await expect(first_source.locator(".score")).to_have_text(re.compile(r"score \d\.\d\d"))
        await sources.locator("summary").click()  # closed again

        # ---- a citation marker opens the passage it cites ----
        answer_id = str(await answer.get_attribute("data-id"))
        await answer.get_by_role("link", name=re.compile(r"^Source 1: zephyr-lamp\.md")).click()
        await expect(sources).to_have_attribute("open", "")
        cited = page.locator(f"#src-{answer_id}-1")
        await expect(cited).to_have_class(re.compile(r"\bhighlighted\b"))
        await expect(cited).to_be_focused()
        await expect(cited).to_be_in_viewport()
        await page.keyboard.press("Escape")  # closes what the link opened
        await expect(sources).not_to_have_attribute("open", "")
        await expect(sources.locator("summary")).to_be_focused()

        # ---- relative times keep themselves current ----
        await page.evaluate(
            """(id) => {
              const time = document.querySelector(`li[data-id="${id}"] time`);
              time.setAttribute("datetime", new Date(Date.now() - 2 * 3600 * 1000).toISOString());
              document.dispatchEvent(new Event("visibilitychange"));
            }""",
            answer_id,
        )
        await expect(answer.locator("time")).to_have_text("2 h ago")

        # ---- a Markdown answer: rendered as it streams, safely, without flicker ----
        await page.evaluate(WATCH_MARKDOWN)
        groq.script.tokens, groq.script.delay = MARKDOWN_ANSWER, 0.02
        await box.fill("Summarize the Zephyr-9 warranty, with a table and some code.")
        await box.press("Enter")
        md = answer_item(page)
        await expect(md).to_have_attribute("data-status", "streaming")
        await expect(md.locator("table")).to_be_visible()  # the table is on screen before the answer ends
        assert await md.get_attribute("data-status") == "streaming"
        await expect(md).to_have_attribute("data-status", "complete", timeout=30_000)
        seen = await page.evaluate("window.__md")
        lengths = seen["lengths"]
        assert len(set(lengths)) > 20, lengths  # many renders on the way…
        assert lengths == sorted(lengths), lengths  # …and the text only grew: nothing shown was taken back
        assert seen["firstBlockKept"] is True  # a complete block is rendered once, not on every delta
        content = md.locator(".content")
        await expect(content.get_by_role("heading", name="Zephyr-9 at a glance")).to_be_visible()
        await expect(content.locator("strong")).to_have_text("under warranty")
        await expect(content.locator("table th")).to_have_text(["Part", "Warranty"])
        await expect(content.locator("table tbody tr")).to_have_count(2)
        await expect(content.locator("table tbody tr").first.locator("td")).to_have_text(["Lamp", "7 years"])
        code = content.locator(".code-block[data-language='python'] code")
        assert await code.text_content() == CODE + "\n"
        await expect(code.locator(".hljs-keyword").first).to_have_text("def")  # highlighted
        copy = content.get_by_role("button", name="Copy code")
        await copy.click()
        await expect(content.locator(".copy-code")).to_have_attribute("data-copied", "true")
        assert await page.evaluate("navigator.clipboard.readText()") == CODE + "\n"
        guide = content.get_by_role("link", name="maintenance guide")
        await expect(guide).to_have_attribute("href", "https://example.com/zephyr-9")
        await expect(guide).to_have_attribute("target", "_blank")
        await expect(guide).to_have_attribute("rel", "noopener noreferrer")
        await expect(content.locator("a", has_text="click me")).to_have_count(0)  # javascript: is not a link
        await expect(content).to_contain_text("Unsafe click me and")
        await expect(content).to_contain_text('<script>window.__pwned = "script"</script>')  # shown, as text
        await expect(content.locator("script, img, [onerror]")).to_have_count(0)
        assert await page.evaluate("window.__pwned") is None  # and nothing ran
        await expect(content.get_by_role("link", name=re.compile(r"^Source 1:"))).to_have_count(1)
        # no source 7: the server drops the marker from the stored answer, and the final render shows that
        await expect(content).not_to_contain_text("[7]")
        # a screen reader hears the answer once, when it is complete, not token by token
        assert len(seen["announced"]) <= 1, seen["announced"]
        await expect(page.locator("#announcer")).to_contain_text("Assistant: Zephyr-9 at a glance")
        await md.locator("details.sources summary").click()
        await page.screenshot(path=str(artifacts / "web-client-light.png"), animations="disabled")
        await assert_accessible(page)
        await page.emulate_media(color_scheme="dark")
        await page.screenshot(path=str(artifacts / "web-client-dark.png"), animations="disabled")
        await assert_accessible(page)
        await page.emulate_media(color_scheme="light")

        # ---- another device types ----
        other = Recorder(base, f"/chat/{session_id}")
        await other.connect(token)
        try:
            await other.call("typing", {"is_typing": True})
            await expect(page.locator("#typing")).to_have_text("Typing on another device…")
            await other.call("typing", {"is_typing": False})
            await expect(page.locator("#typing")).to_have_text("")
        finally:
            await other.close()

        # ---- reload: the history comes back over REST, sources included ----
        await page.reload()
        await expect(page.locator("#chat-title")).to_have_text("Lighthouse questions")
        await expect(page.locator("li.msg.user .content").first).to_have_text(QUESTION)
        await expect(answer_item(page, 0).locator(".content")).to_have_text("".join(ANSWER))
        await expect(answer_item(page, 0).locator("details.sources summary")).to_be_visible()
        await expect(answer_item(page, 1).locator(".content table")).to_be_visible()  # Markdown from the history too
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")

        # ---- edit, then delete, own messages ----
        await page.get_by_role("button", name="Edit message").first.click()
        editor = page.get_by_role("textbox", name="Edit message")
        await editor.press("Escape")  # closes the edit box, the focus back on Edit
        await expect(editor).to_have_count(0)
        await expect(page.get_by_role("button", name="Edit message").first).to_be_focused()
        await page.keyboard.press("Enter")
        # a refused edit: said once, by the caller that awaited the ack (the `error` event it also gets is not repeated)
        await editor.fill("x" * 8001)
        await editor.press("Enter")
        await expect(page.locator(".toast.error")).to_have_text(
            ["Could not edit: a message holds at most 8000 characters"]
        )
        await editor.fill(QUESTION + " (in years)")
        await editor.press("Enter")
        await expect(page.locator("li.msg.user .content").first).to_have_text(QUESTION + " (in years)")
        await expect(page.locator("li.msg.user .meta").first).to_contain_text("edited")

        # ---- a long answer: the connection drops mid-answer and resumes, then Stop ends it ----
        await page.evaluate(OBSERVE)
        groq.script.tokens, groq.script.delay = LONG_ANSWER, 0.03
        # keyboard only: a chat opens with the focus in the message box; type, Enter
        await page.reload()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        await page.evaluate(OBSERVE)
        await expect(box).to_be_focused()
        await page.keyboard.type("Tell me everything about lighthouses.")
        await page.keyboard.press("Enter")
        long_answer = answer_item(page)
        await expect(long_answer).to_have_attribute("data-status", "streaming")
        answer_id = await long_answer.get_attribute("data-id")
        await watch_answer(page, str(answer_id))
        await expect(long_answer.locator(".content")).to_contain_text("part5 ")
        await sockets[-1].close()  # the connection drops, as on a network failure
        await page.wait_for_function("window.__seen.banner.some(t => t.includes('reconnecting'))")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        await expect(page.locator("#banner")).to_be_hidden()
        await grows(page, str(answer_id))  # after the reconnect
        assert_prefixes(await page.evaluate("window.__texts"))

        # a reload mid-answer: the history shows it streaming, and `sync` picks it up from its first delta
        await page.reload()
        await expect(long_answer).to_have_attribute("data-id", str(answer_id))
        await expect(long_answer).to_have_attribute("data-status", "streaming")
        await page.evaluate(OBSERVE)
        await watch_answer(page, str(answer_id))
        await grows(page, str(answer_id))
        await page.screenshot(path=str(artifacts / "web-client-streaming.png"), animations="disabled")
        # keyboard only: from the message box, Tab reaches Stop (the focus ring shows), Enter stops the answer
        await expect(box).to_be_focused()
        stop = page.get_by_role("button", name="Stop")
        for _ in range(3):
            await page.keyboard.press("Tab")
            if await stop.evaluate("el => el === document.activeElement"):
                break
        await expect(stop).to_be_focused()
        assert await stop.evaluate("el => el.matches(':focus-visible') && getComputedStyle(el).outlineStyle !== 'none'")
        await page.keyboard.press("Enter")
        await expect(long_answer).to_have_attribute("data-status", "cancelled")
        await expect(long_answer.locator(".chip.cancelled")).to_have_text("Stopped")
        await expect(page.get_by_role("button", name="Send message")).to_be_visible()
        assert_prefixes(await page.evaluate("window.__texts"))
        stored = await chat_api.call("GET", f"/api/v1/chat/sessions/{session_id}/messages", token=token)
        stored_answer = next(m for m in stored.body["items"] if m["id"] == answer_id)
        shown = str(await long_answer.locator(".content").text_content()).strip()
        # nothing duplicated, nothing missing: the page shows exactly what the server stored, a prefix of the answer
        assert shown == stored_answer["content"].strip() and "".join(LONG_ANSWER).startswith(shown) and len(shown) > 40

        # ---- delete a message ----
        last_user = page.locator("li.msg.user").last
        await last_user.get_by_role("button", name="Delete message").click()
        await last_user.get_by_role("button", name="Confirm delete").click()
        await expect(last_user.locator(".deleted")).to_have_text("This message was deleted.")

        # ---- voice: hold the microphone, the spoken question becomes a transcript and gets an answer ----
        _, seconds = spoken_wav
        groq.script.tokens, groq.script.delay = VOICE_ANSWER, 0.0
        users_before = await page.locator("li.msg.user").count()
        mic = page.get_by_role("button", name="Hold to talk")
        await mic.hover()
        await page.mouse.down()
        await page.wait_for_function(f"Number(document.querySelector('#mic').dataset.seconds) >= {seconds:.2f}")
        await page.screenshot(path=str(artifacts / "web-client-recording.png"), animations="disabled")
        await page.mouse.up()
        await expect(page.locator("li.msg.user")).to_have_count(users_before + 1, timeout=90_000)
        voice = page.locator("li.msg.user").last
        await expect(voice.locator(".voice-tag")).to_be_visible()
        transcript = str(await voice.locator(".content").text_content())
        partials = await page.evaluate("window.__seen.transcript")
        print(f"\nvoice transcript: {transcript!r} (WER {wer(SPOKEN_QUESTION, transcript):.2f}); partials: {partials}")
        assert wer(SPOKEN_QUESTION, transcript) <= 0.35, transcript
        assert any("weather" in p.lower() for p in partials), partials  # partial transcripts were shown live
        voice_answer = answer_item(page)
        await expect(voice_answer).to_have_attribute("data-status", "complete", timeout=60_000)
        await expect(voice_answer.locator(".content")).to_have_text("".join(VOICE_ANSWER))

        # ---- speech out: the speaker button plays an answer; auto-speak is a session setting ----
        listen = voice_answer.get_by_role("button", name="Read this answer aloud")
        await listen.click()
        await expect(voice_answer).to_have_attribute("data-played", "true", timeout=60_000)  # playback started
        await page.get_by_label("Auto-speak").check()
        await expect(page.locator(".toast", has_text="Answers will be read aloud.")).to_be_visible()
        session = await chat_api.call("GET", f"/api/v1/chat/sessions/{session_id}", token=token)
        assert session.body["speech_config"]["auto_tts"] is True
        groq.script.tokens = ["Bring ", "a ", "warm ", "coat."]
        await box.fill("What should I wear?")
        await box.press("Enter")
        spoken_answer = answer_item(page)
        await expect(spoken_answer.locator(".content")).to_have_text("Bring a warm coat.")
        spoken_id = await spoken_answer.get_attribute("data-id")
        # the answer is read aloud without a click (tts_ready)
        await expect(page.locator(f"li[data-id='{spoken_id}']")).to_have_attribute(
            "data-played", "true", timeout=60_000
        )

        # ---- a refusal of an event nobody awaits (a fire-and-forget audio_chunk) is shown ----
        refusal = {"code": "utterance_too_long", "message": "an utterance lasts at most 60 s", "event": "audio_chunk"}
        sockets[-1].send(f"42/chat/{session_id},{json.dumps(['error', refusal])}")  # as the server sends it
        await expect(page.locator(".toast.error")).to_have_text("Voice: an utterance lasts at most 60 s")

        await expect(page.locator(".toast")).to_have_count(0, timeout=10_000)  # nothing covering the chat
        await page.screenshot(path=str(artifacts / "web-client.png"), animations="disabled")
        await answer_item(page, 0).locator("details.sources summary").click()

        # ---- a phone-sized screen: the chat fills it, the drawer holds chats and documents ----
        await page.set_viewport_size({"width": 390, "height": 844})
        await expect(page.get_by_role("button", name="Show chats and documents")).to_be_visible()
        await expect(page.locator("#sidebar")).not_to_be_in_viewport()
        await page.screenshot(path=str(artifacts / "web-client-phone.png"), animations="disabled")
        await page.get_by_role("button", name="Show chats and documents").click()
        await expect(page.locator("#sidebar")).to_be_in_viewport()
        await page.screenshot(path=str(artifacts / "web-client-phone-drawer.png"), animations="disabled")
        await page.locator("#scrim").click(position={"x": 370, "y": 400})
        await page.set_viewport_size({"width": 1280, "height": 820})

        # ---- archive, show archived, restore ----
        await page.get_by_role("button", name="Archive").click()
        await page.get_by_role("button", name="Archive?").click()
        await expect(page.locator("#readonly-note")).to_be_visible()
        await expect(page.locator(".toast")).to_have_count(0, timeout=10_000)
        await page.screenshot(path=str(artifacts / "web-client-archived.png"), animations="disabled")
        await page.get_by_label("Show archived").check()
        await expect(page.locator("#archived-list .session-title")).to_have_text(["Lighthouse questions"])
        await page.get_by_role("button", name="Restore").click()
        await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
        await expect(page.locator("#session-list .session-title").first).to_have_text("Lighthouse questions")

        # ---- delete the document (a second click confirms) ----
        await page.get_by_role("button", name="Delete zephyr-lamp.md").click()
        await page.get_by_role("button", name="Delete?").click()
        await expect(page.locator("#document-list")).to_have_text("No documents yet.")
        assert (await chat_api.call("GET", "/api/v1/documents", token=token)).body["total"] == 0

        # ---- an expired login: a clear message and the way back ----
        await page.evaluate("sessionStorage.setItem('parley.token', 'expired.token.value')")
        await page.get_by_role("button", name="+ New chat").click()
        await expect(page.locator("#banner-text")).to_have_text("Your login has expired. Log in again to continue.")
        await page.get_by_role("button", name="Log in again").click()
        await expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    except BaseException:
        await page.screenshot(path=str(artifacts / "web-client-failure.png"), full_page=True)
        print("\n".join(problems))
        raise
    finally:
        await context.close()
    assert not problems, problems


PASTE_IMAGE = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type: "image/png"}));
  const box = document.querySelector("#composer-input");
  box.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
}"""


@pytest.mark.timeout(180)
async def test_a_pasted_screenshot_is_previewed_sent_shown_and_cited(
    browser: Browser, chat_server: TestServer, chat_api: Api, groq: GroqFake, artifacts: Path
) -> None:
    base = str(chat_server.make_url("")).rstrip("/")
    account = await chat_api.register()
    page = await (await browser.new_context(viewport={"width": 1280, "height": 820}, color_scheme="light")).new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    await page.goto(base + "/")
    await page.get_by_label("Username").fill(account.username)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Log in", exact=True).click()
    await page.get_by_role("button", name="Start your first chat").click()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected")

    # paste a screenshot with text in it: a preview with a remove button, then removed and pasted again
    screenshot = base64.b64encode(text_image(["Access code: 4821-ZEBRA"])).decode()
    await page.evaluate(PASTE_IMAGE, ["image.png", screenshot])
    preview = page.locator("#attach-preview")
    await expect(preview).to_be_visible()
    await expect(preview.get_by_role("img")).to_have_attribute("alt", re.compile(r"Preview of pasted-.*\.png"))
    await page.get_by_role("button", name="Remove the attachment").click()
    await expect(preview).to_be_hidden()
    await page.evaluate(PASTE_IMAGE, ["image.png", screenshot])
    await expect(preview).to_be_visible()
    await assert_accessible(page)

    # ask about it: the message shows the thumbnail, the answer cites the screenshot and links to it
    groq.script.tokens = ["The ", "access ", "code ", "is ", "4821-ZEBRA ", "[1]."]
    box = page.get_by_label("Message", exact=True)
    await box.fill("What is the access code in this screenshot?")
    await box.press("Enter")
    await expect(preview).to_be_hidden()
    mine = page.locator("li.msg.user").last
    thumbnail = mine.locator("a.attachment-image img")
    await expect(thumbnail).to_be_visible()
    assert await thumbnail.evaluate("img => img.complete && img.naturalWidth > 0")
    answer = answer_item(page)
    await expect(answer).to_have_attribute("data-status", "complete", timeout=60_000)
    cite = answer.locator("a.cite")
    await expect(cite).to_have_text("[1]")
    await expect(cite).to_have_attribute("title", re.compile(r"Source 1: pasted-.*\.png\.txt"))
    await cite.click()
    passage = answer.locator("li.source").first
    await expect(passage).to_be_focused()
    await expect(passage.locator("blockquote")).to_contain_text("4821-ZEBRA")
    link = passage.locator("a.source-attachment")
    await expect(link).to_have_text(re.compile(r"Image: pasted-.*\.png"))
    href = await link.get_attribute("href")
    assert href and href == await mine.locator("a.attachment-image").get_attribute("href")
    async with chat_api.http.get(base + href) as response:  # the link serves the image (?token=)
        assert (response.status, response.content_type) == (200, "image/png")
    await page.screenshot(path=str(artifacts / "web-client-attachment.png"), animations="disabled")
    await assert_accessible(page)
    assert not problems, problems
