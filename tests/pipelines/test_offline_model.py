"""The offline default model generates for real (SmolLM2 on llama.cpp), off the event loop, and stops when asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pipelines.chat.model import Completed, ImagePart, PromptMessage, TextDelta
from pipelines.llm.offline import OfflineModel

pytestmark = pytest.mark.slow  # loads the bundled GGUF model


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[OfflineModel]:
    offline = OfflineModel(max_tokens=48)
    yield offline
    await offline.close()


async def test_it_answers_a_question(model: OfflineModel) -> None:
    prompt = [
        PromptMessage("system", "You are a helpful assistant."),
        PromptMessage("user", "What is the capital of France? Answer in one sentence."),
    ]
    items = [item async for item in model.stream(prompt)]
    text = "".join(i.text for i in items if isinstance(i, TextDelta))
    done = items[-1]
    assert isinstance(done, Completed) and done.provider == "offline" and done.completion_tokens > 0
    assert "paris" in text.lower()


async def test_closing_the_stream_stops_generation_early_and_the_loop_stays_free(model: OfflineModel) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    clock = asyncio.ensure_future(ticker())
    stream = model.stream([PromptMessage("user", "Write a very long story about the sea.")])
    received = 0
    async for item in stream:
        if isinstance(item, TextDelta):
            received += 1
            if received == 5:
                break
    await stream.aclose()
    clock.cancel()
    assert received == 5
    assert ticks > 0  # the loop kept running while llama.cpp worked
    # a second request is served right away: the first generation did not run on to max_tokens
    again = [i async for i in model.stream([PromptMessage("user", "Say hi.")])]
    assert isinstance(again[-1], Completed)


async def test_images_are_left_out_the_text_model_answers_from_the_words(model: OfflineModel) -> None:
    image = ImagePart("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)  # never decoded: not sent at all
    prompt = [
        PromptMessage("system", "You are a helpful assistant."),
        PromptMessage("user", "What is the capital of France? Answer in one sentence.", images=(image,)),
    ]
    items = [item async for item in model.stream(prompt)]
    assert isinstance(items[-1], Completed)
    assert "paris" in "".join(i.text for i in items if isinstance(i, TextDelta)).lower()
