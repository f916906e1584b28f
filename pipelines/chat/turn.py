"""A chat turn: store a streaming assistant message, stream the model, store how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pipelines.chat.events import AnswerFinished, AnswerStarted, Token, TurnEvent
from pipelines.chat.model import AnswerModel, Completed, GenerationFailed, ImagePart, PromptMessage, TextDelta
from pipelines.chat.sources import Retrieved, context_record, search_options, sources_block, standalone_query
from pipelines.rag.retrieval import Retriever
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
    owner_id: uuid.UUID
    rag_config: dict[str, Any] = field(default_factory=dict)


class PromptImages(Protocol):
    """Where the images of the conversation come from (pipelines/media/service.py `Attachments`)."""

    async def for_answer(self, history: Sequence[Message]) -> Mapping[uuid.UUID, tuple[ImagePart, ...]]:
        """Wait for the history's attachments to be indexed; their images by message id."""
        ...


def build_prompt(
    history: list[Message],
    retrieved: Retrieved | None = None,
    images: Mapping[uuid.UUID, tuple[ImagePart, ...]] | None = None,
) -> list[PromptMessage]:
    """System prompt (with the sources, when retrieval ran) plus the recent conversation, oldest first."""
    system = SYSTEM_PROMPT if retrieved is None else f"{SYSTEM_PROMPT}\n\n{sources_block(retrieved.hits)}"
    prompt = [PromptMessage("system", system)]
    for message in history:
        if message.message_type is MessageType.user:
            prompt.append(PromptMessage("user", message.content, (images or {}).get(message.id, ())))
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
                # a provider whose bytes are already buffered never suspends: yield so the consumer emits
                # this token now instead of after the whole answer has been parsed
                await asyncio.sleep(0)
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


async def _retrieve(
    retriever: Retriever, request: TurnRequest, history: list[Message], max_sources: int | None
) -> Retrieved:
    options = replace(search_options(request.rag_config), session_id=request.session_id)  # + its attachments
    if max_sources is not None and options.k > max_sources:
        options = replace(options, k=max_sources)
    query = standalone_query(history)
    started = time.monotonic()
    hits = await retriever.search(request.owner_id, query, options) if query else []
    return Retrieved(query, hits, "hybrid" if options.hybrid else "dense", time.monotonic() - started)


async def run_turn(
    request: TurnRequest,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    model: AnswerModel,
    stop: asyncio.Event,
    retriever: Retriever | None = None,
    attachments: PromptImages | None = None,
) -> AsyncIterator[TurnEvent]:
    """Yield `AnswerStarted`, `Token`s, then `AnswerFinished`; a cancelled task still stores what was said."""
    started = time.monotonic()
    async with sessionmaker() as db:
        answer = await answers.start_answer(db, request.session_id, request.answer_id, request.user_message_id)
        history = await answers.recent_history(db, request.session_id, before=answer, limit=HISTORY_MESSAGES)
        await db.commit()
    yield AnswerStarted(answer)
    images = await attachments.for_answer(history) if attachments is not None else None
    max_sources = getattr(model, "max_sources", None)
    retrieved = await _retrieve(retriever, request, history, max_sources) if retriever is not None else None
    prompt = build_prompt(history, retrieved, images)

    parts: list[str] = []
    status = MessageStatus.complete
    provider: str | None = None
    tokens: int | None = None
    first_token_at: float | None = None
    pump = _Pump(model.stream(prompt))
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
        await asyncio.shield(
            _finish(sessionmaker, answer, parts, MessageStatus.cancelled, started, None, retrieved, prompt, provider)
        )
        raise
    finally:
        await pump.close()

    timings = {"total": time.monotonic() - started}
    if first_token_at is not None:
        timings["first_token"] = first_token_at - started
    if retrieved is not None:
        timings["retrieval"] = retrieved.seconds
    stored = await _finish(sessionmaker, answer, parts, status, started, tokens, retrieved, prompt, provider)
    yield AnswerFinished(stored, rag_context=stored.rag_context, provider=provider, timings=timings)


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    answer: Message,
    parts: list[str],
    status: MessageStatus,
    started: float,
    tokens: int | None,
    retrieved: Retrieved | None,
    prompt: list[PromptMessage],
    provider: str | None,
) -> Message:
    record = None
    if retrieved is not None:
        record = answers.RetrievalRecord(
            query=retrieved.query,
            search_mode=retrieved.search_mode,
            retrieved_documents=[
                {
                    "document_id": str(h.document_id),
                    "document_name": h.document_name,
                    "chunk_text": h.text,
                    "score": h.score,
                    "page": h.page,
                    "heading": h.heading,
                    "chunk_index": h.chunk_index,
                }
                for h in retrieved.hits
            ],
            generation_prompt="\n\n".join(f"{m.role}: {m.content}" for m in prompt),
            llm_provider=provider,
            retrieval_time=retrieved.seconds,
            summary=context_record(retrieved.hits, retrieved.search_mode),
        )
    async with sessionmaker() as db:
        stored = await answers.finish_answer(
            db,
            answer.id,
            content="".join(parts),
            status=status,
            processing_time=time.monotonic() - started,
            tokens_used=tokens,
            retrieval=record,
        )
        await db.commit()
    return stored
