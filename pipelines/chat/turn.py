"""A chat turn: store a streaming assistant message, stream the model, store how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pipelines.chat.events import AnswerFinished, AnswerStarted, Token, TurnEvent
from pipelines.chat.model import AnswerModel, Completed, GenerationFailed, PromptMessage, TextDelta
from store import answers
from store.models import Message, MessageStatus, MessageType

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are Parley, a helpful assistant. Answer clearly and concisely. "
    "When sources are given, answer from them and say when they do not contain the answer."
)
HISTORY_MESSAGES = 12


@dataclass(frozen=True)
class TurnRequest:
    """Everything one turn needs to know."""

    session_id: uuid.UUID
    user_message_id: uuid.UUID
    answer_id: uuid.UUID


def build_prompt(history: list[Message]) -> list[PromptMessage]:
    """System prompt plus the recent conversation, oldest first."""
    prompt = [PromptMessage("system", SYSTEM_PROMPT)]
    for message in history:
        if message.message_type is MessageType.user:
            prompt.append(PromptMessage("user", message.content))
        elif message.message_type is MessageType.assistant and message.content:
            prompt.append(PromptMessage("assistant", message.content))
    return prompt


class _Pump:
    """Runs the model's stream in a task of its own, so stopping it is a plain cancellation there."""

    _END = object()

    def __init__(self, stream: AsyncIterator[TextDelta | Completed]) -> None:
        self._stream = stream
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.finished = False
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            async for item in self._stream:
                await self._queue.put(item)
        except GenerationFailed as exc:
            await self._queue.put(exc)
        await self._queue.put(self._END)

    async def next(self, stop: asyncio.Event) -> TextDelta | Completed | None:
        """The next item; None at the end or once `stop` is set; raises `GenerationFailed`."""
        if stop.is_set():
            return None
        get = asyncio.ensure_future(self._queue.get())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({get, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (get, stopped):
                waiter.cancel()
        if not get.done() or get.cancelled():
            return None
        item = get.result()
        if isinstance(item, GenerationFailed):
            raise item
        if item is self._END:
            self.finished = True
            return None
        return item  # type: ignore[return-value]

    async def close(self) -> None:
        """Stop the model (closing its upstream stream) and wait until it has."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def run_turn(
    request: TurnRequest, *, sessionmaker: async_sessionmaker[AsyncSession], model: AnswerModel, stop: asyncio.Event
) -> AsyncIterator[TurnEvent]:
    """Yield `AnswerStarted`, `Token`s, then `AnswerFinished`; a cancelled task still stores what was said."""
    started = time.monotonic()
    async with sessionmaker() as db:
        answer = await answers.start_answer(db, request.session_id, request.answer_id, request.user_message_id)
        history = await answers.recent_history(db, request.session_id, before=answer, limit=HISTORY_MESSAGES)
    yield AnswerStarted(answer)

    parts: list[str] = []
    status = MessageStatus.complete
    provider: str | None = None
    tokens: int | None = None
    first_token_at: float | None = None
    pump = _Pump(model.stream(build_prompt(history)))
    try:
        while (item := await pump.next(stop)) is not None:
            if isinstance(item, Completed):
                provider, tokens = item.provider, item.prompt_tokens + item.completion_tokens
                continue
            if item.text:
                first_token_at = first_token_at or time.monotonic()
                parts.append(item.text)
                yield Token(item.text)
        if not pump.finished:
            status = MessageStatus.cancelled
    except GenerationFailed as exc:
        log.warning("answer %s failed: %s", request.answer_id, exc)
        status, provider = MessageStatus.failed, exc.provider
    except (asyncio.CancelledError, GeneratorExit):
        # shutdown, or the consumer went away: store the partial answer, then let the cancellation through
        await asyncio.shield(_finish(sessionmaker, answer, parts, MessageStatus.cancelled, started, None))
        raise
    finally:
        await pump.close()

    timings = {"total": time.monotonic() - started}
    if first_token_at is not None:
        timings["first_token"] = first_token_at - started
    stored = await _finish(sessionmaker, answer, parts, status, started, tokens)
    yield AnswerFinished(stored, provider=provider, timings=timings)


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    answer: Message,
    parts: list[str],
    status: MessageStatus,
    started: float,
    tokens: int | None,
) -> Message:
    async with sessionmaker() as db:
        return await answers.finish_answer(
            db,
            answer.id,
            content="".join(parts),
            status=status,
            processing_time=time.monotonic() - started,
            tokens_used=tokens,
        )
