"""Groq and Gemini through their real client libraries against local doubles of their wire formats,
and the fallback chain's timeouts, retries and hand-overs."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from pipelines.chat.model import Completed, GenerationFailed, ImagePart, PromptMessage, TextDelta
from pipelines.llm.chain import ChainPolicy, FallbackChain
from pipelines.llm.gemini import GeminiModel
from pipelines.llm.groq import GroqModel
from tests.fakes.gemini import GeminiFake
from tests.fakes.groq import GroqFake
from tests.helpers import eventually
from tests.pipelines.media_util import text_image

PROMPT = [PromptMessage("system", "Be brief."), PromptMessage("user", "Say hello.")]


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiFake]:
    fake = GeminiFake()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


async def _groq(url: str) -> GroqModel:
    """Clients are built in a thread: their constructors load TLS certificates."""
    return await asyncio.to_thread(GroqModel, "test-key", "llama-test", base_url=url)


async def _gemini(url: str) -> GeminiModel:
    return await asyncio.to_thread(GeminiModel, "gem-key", "gemini-test", base_url=url, api_version="v1beta")


async def _collect(model: FallbackChain | GroqModel | GeminiModel) -> tuple[str, Completed]:
    items = [item async for item in model.stream(PROMPT)]
    text = "".join(i.text for i in items if isinstance(i, TextDelta))
    done = items[-1]
    assert isinstance(done, Completed)
    return text, done


async def test_groq_streams_deltas_and_usage(groq: GroqFake) -> None:
    groq.script.tokens = ["Hel", "lo", " there"]
    model = await _groq(groq.url)
    text, done = await _collect(model)
    assert text == "Hello there" and done.provider == "groq" and done.completion_tokens == 3
    assert groq.requests[0]["stream"] is True and groq.requests[0]["messages"][0]["role"] == "system"
    await model.close()


async def test_gemini_streams_deltas_and_usage(gemini: GeminiFake) -> None:
    gemini.script.tokens = ["Hi", " from", " Gemini"]
    model = await _gemini(gemini.url)
    text, done = await _collect(model)
    assert text == "Hi from Gemini" and (done.provider, done.prompt_tokens, done.completion_tokens) == ("gemini", 11, 3)
    request = gemini.requests[0]
    assert request["path"] == "/v1beta/models/gemini-test:streamGenerateContent" and request["query"]["alt"] == "sse"
    assert request["api_key"] == "gem-key"
    assert request["body"]["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert request["body"]["contents"] == [{"parts": [{"text": "Say hello."}], "role": "user"}]
    await model.close()


@pytest.mark.parametrize("status", [429, 500])
async def test_errors_before_the_first_token_fall_back(groq: GroqFake, gemini: GeminiFake, status: int) -> None:
    groq.script.fail_with = [status, status]
    gemini.script.tokens = ["saved"]
    chain = FallbackChain([await _groq(groq.url), await _gemini(gemini.url)], ChainPolicy(retries=1, backoff=0.01))
    text, done = await _collect(chain)
    assert (text, done.provider) == ("saved", "gemini")
    assert len(groq.requests) == 2  # one retry with backoff, then the next provider
    await chain.close()


async def test_a_retry_can_succeed_on_the_same_provider(groq: GroqFake) -> None:
    groq.script.fail_with, groq.script.tokens = [503], ["second", " try"]
    chain = FallbackChain([await _groq(groq.url)], ChainPolicy(retries=2, backoff=0.01))
    text, done = await _collect(chain)
    assert (text, done.provider, len(groq.requests)) == ("second try", "groq", 2)
    await chain.close()


async def test_a_hang_before_the_first_token_times_out_and_falls_back(groq: GroqFake, gemini: GeminiFake) -> None:
    groq.script.hang_before_first_token = True
    gemini.script.tokens = ["fast"]
    chain = FallbackChain(
        [await _groq(groq.url), await _gemini(gemini.url)], ChainPolicy(first_token_timeout=0.5, retries=0)
    )
    text, done = await _collect(chain)
    assert (text, done.provider) == ("fast", "gemini")
    await eventually(lambda: groq.disconnects == 1)  # the hung request was closed, not left open
    await chain.close()


async def test_a_drop_mid_stream_fails_without_switching_provider(groq: GroqFake, gemini: GeminiFake) -> None:
    groq.script.tokens, groq.script.drop_after = ["one ", "two ", "three ", "four "], 2
    chain = FallbackChain([await _groq(groq.url), await _gemini(gemini.url)], ChainPolicy(retries=1, backoff=0.01))
    said: list[str] = []
    with pytest.raises(GenerationFailed) as failure:
        async for item in chain.stream(PROMPT):
            if isinstance(item, TextDelta):
                said.append(item.text)
    assert "".join(said) == "one two " and failure.value.provider == "groq"
    assert gemini.requests == []  # no second voice after the user saw words
    await chain.close()


@pytest.mark.parametrize("which", ["groq", "gemini"])
async def test_closing_the_stream_closes_the_upstream_http_stream(
    groq: GroqFake, gemini: GeminiFake, which: str
) -> None:
    fake = groq if which == "groq" else gemini
    fake.script.tokens, fake.script.delay = [f"t{i} " for i in range(500)], 0.01
    model = await _groq(groq.url) if which == "groq" else await _gemini(gemini.url)
    stream = model.stream(PROMPT)
    received = 0
    async for item in stream:
        received += isinstance(item, TextDelta)
        if received == 3:
            break
    await stream.aclose()
    await eventually(lambda: fake.disconnects == 1)
    assert fake.completed == 0
    await model.close()


PNG = text_image(["code 4821"])
WITH_IMAGE = [
    PromptMessage("system", "Be brief."),
    PromptMessage("user", "What does the screenshot say?", images=(ImagePart("image/png", PNG),)),
]


async def test_gemini_receives_the_image_as_an_inline_data_part(gemini: GeminiFake) -> None:
    model = await _gemini(gemini.url)
    items = [item async for item in model.stream(WITH_IMAGE)]
    assert isinstance(items[-1], Completed)
    image, text = gemini.requests[0]["body"]["contents"][0]["parts"]
    assert image["inlineData"]["mime_type"] == "image/png" and text == {"text": "What does the screenshot say?"}
    assert gemini.images == [("image/png", PNG)]  # the double decoded the inline data back to the same bytes
    await model.close()


async def test_groq_sends_images_to_the_vision_model_as_data_uri_parts(groq) -> None:  # type: ignore[no-untyped-def]
    model = await asyncio.to_thread(
        GroqModel, "test-key", "llama-test", base_url=groq.url, vision_model="llama-vision-test"
    )
    text, done = await _collect_prompt(model, WITH_IMAGE)
    assert done.provider == "groq" and text
    body = groq.requests[0]
    assert body["model"] == "llama-vision-test"
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "What does the screenshot say?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
    ]
    assert groq.images == [("image/png", PNG)]
    await _collect_prompt(model, PROMPT)  # a prompt without images stays on the text model
    assert groq.requests[1]["model"] == "llama-test"
    await model.close()


async def test_groq_without_a_vision_model_leaves_images_out(groq) -> None:  # type: ignore[no-untyped-def]
    model = await _groq(groq.url)
    await _collect_prompt(model, WITH_IMAGE)
    body = groq.requests[0]
    assert body["model"] == "llama-test" and body["messages"][1]["content"] == "What does the screenshot say?"
    assert groq.images == []
    await model.close()


async def test_the_groq_double_refuses_images_for_a_text_model_as_groq_does(groq) -> None:  # type: ignore[no-untyped-def]
    model = await asyncio.to_thread(GroqModel, "test-key", "llama-test", base_url=groq.url, vision_model="text-only")
    with pytest.raises(GenerationFailed, match="does not support image input"):
        await _collect_prompt(model, WITH_IMAGE)
    await model.close()


async def _collect_prompt(model: GroqModel, prompt: list[PromptMessage]) -> tuple[str, Completed]:
    items = [item async for item in model.stream(prompt)]
    done = items[-1]
    assert isinstance(done, Completed)
    return "".join(i.text for i in items if isinstance(i, TextDelta)), done
