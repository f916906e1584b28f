"""A chat turn: store a streaming assistant message, stream the model, store how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pipelines.chat.citations import clean_citations
from pipelines.chat.events import AnswerFinished, AnswerStarted, Token, TurnEvent
from pipelines.chat.grounding import Grounding, ground
from pipelines.chat.model import (
    AnswerModel,
    AnswerStyle,
    Completed,
    GenerationFailed,
    ImagePart,
    PromptMessage,
    TextDelta,
)
from pipelines.chat.prompt import build_prompt, estimate_tokens
from pipelines.chat.repetition import LoopGuard, drop_repeated_sentences
from pipelines.chat.sources import Retrieved, context_record, search_options, standalone_query
from pipelines.rag.retrieval import Retriever
from store import answers
from store.db import Units
from store.models import Message, MessageStatus, MessageType

log = logging.getLogger(__name__)

#: messages read for the prompt's history; the model's style then bounds them by tokens
HISTORY_MESSAGES = 40


@dataclass(frozen=True)
class TurnRequest:
    """Everything one turn needs to know."""

    session_id: uuid.UUID
    user_message_id: uuid.UUID
    answer_id: uuid.UUID  # its `streaming` row is stored (with the user message)
    owner_id: uuid.UUID
    asked_at: datetime  # the question's created_at: the history is what came up to it
    rag_config: dict[str, Any] = field(default_factory=dict)


class PromptImages(Protocol):
    """Where the images of the conversation come from (pipelines/media/service.py `Attachments`)."""

    async def for_answer(self, history: Sequence[Message]) -> Mapping[uuid.UUID, tuple[ImagePart, ...]]:
        """Wait for the history's attachments to be indexed; their images by message id."""
        ...


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
        if not self._queue.empty():  # a fast provider is ahead of us: no waiters to set up
            item = self._queue.get_nowait()
        else:
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


async def _sources(
    request: TurnRequest,
    history: list[Message],
    retriever: Retriever | None,
    attachments: PromptImages | None,
    model: AnswerModel,
) -> tuple[Mapping[uuid.UUID, tuple[ImagePart, ...]] | None, Retrieved | None]:
    """The conversation's images and what retrieval found (after the attachments are indexed: they are sources)."""
    images = await attachments.for_answer(history) if attachments is not None else None
    max_sources = getattr(model, "max_sources", None)
    retrieved = await _retrieve(retriever, request, history, max_sources) if retriever is not None else None
    return images, retrieved


@dataclass
class _Answer:
    """What one answer gathered: the text shown so far and how it ended."""

    grounding: Grounding
    prompt: list[PromptMessage]
    parts: list[str] = field(default_factory=list)
    status: MessageStatus = MessageStatus.complete
    provider: str | None = None
    tokens: int | None = None
    cached_tokens: int | None = None
    first_token_at: float | None = None
    model_first_token_at: float | None = None
    model_deltas: int = 0

    def show(self, text: str, before: str = "") -> Token | None:
        """Keep `text` (after `before`, when it is the first text after the opening) and make it a token."""
        if before:
            text = text.lstrip()
        if not text:
            return None
        text = before + text
        self.first_token_at = self.first_token_at or time.monotonic()
        self.parts.append(text)
        return Token(text)

    def tokens_used(self) -> int | None:
        """What the provider reported; estimated when the answer was cut short before it could report."""
        if self.tokens is not None or not self.model_deltas:
            return self.tokens
        return sum(estimate_tokens(m.content) for m in self.prompt) + self.model_deltas

    def content(self) -> tuple[str, list[int]]:
        """The text to store, with no sentence twice and no marker that points nowhere; the markers cited."""
        return clean_citations(drop_repeated_sentences("".join(self.parts)), len(self.grounding.hits))


async def run_turn(
    request: TurnRequest,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    units: Units,
    model: AnswerModel,
    stop: asyncio.Event,
    retriever: Retriever | None = None,
    attachments: PromptImages | None = None,
) -> AsyncIterator[TurnEvent]:
    """Yield `AnswerStarted`, `Token`s, then `AnswerFinished`; a cancelled task still stores what was said."""
    started = time.monotonic()
    style: AnswerStyle = getattr(model, "style", None) or AnswerStyle()
    yield AnswerStarted(request.answer_id)  # its `streaming` row was stored with the question
    history = await units.read(
        functools.partial(
            answers.recent_history, session_id=request.session_id, until=request.asked_at, limit=HISTORY_MESSAGES
        )
    )
    images, retrieved = await _sources(request, history, retriever, attachments, model)
    question = next((m.content for m in reversed(history) if m.message_type is MessageType.user), "")
    grounding = await ground(retrieved, question, style, retriever.embedder if retriever is not None else None)
    state = _Answer(grounding, build_prompt(history, grounding.passages, style, images))
    # small models copy earlier answers of the conversation too: none of their sentences may come again
    earlier = [m.content for m in history if m.message_type is MessageType.assistant]
    guard = LoopGuard(
        [*grounding.quoted, *earlier], max_sentences=grounding.max_sentences, fold_numbers=style.fold_numbers
    )
    if token := state.show(grounding.opening):
        yield token
    separator = "\n\n" if grounding.opening else ""  # between the opening and the model's first words
    pump = _Pump(model.stream(state.prompt))
    try:
        while (item := await pump.next(stop)) is not None:
            if isinstance(item, Completed):
                state.provider, state.tokens = item.provider, item.prompt_tokens + item.completion_tokens
                state.cached_tokens = item.cached_tokens
                continue
            state.provider = item.provider or state.provider
            state.model_first_token_at = state.model_first_token_at or time.monotonic()
            state.model_deltas += 1
            if token := state.show(guard.feed(item.text), separator):
                separator = ""
                yield token
            if guard.stopped:  # it started repeating itself, or said enough: end the answer here
                break
        if not pump.finished and not guard.stopped:
            state.status = MessageStatus.cancelled
        elif token := state.show(guard.flush(), separator):
            yield token
    except GenerationFailed as exc:
        log.warning("answer %s failed: %s", request.answer_id, exc)
        state.status, state.provider = MessageStatus.failed, exc.provider
    except (asyncio.CancelledError, GeneratorExit):
        # shutdown, or the consumer went away: store the partial answer, then let the cancellation through
        state.status = MessageStatus.cancelled
        await asyncio.shield(_finish(sessionmaker, request.answer_id, state, started, retrieved))
        raise
    finally:
        await pump.close()

    finished = await _finish(sessionmaker, request.answer_id, state, started, retrieved)
    stored, timings = finished.message, _timings(state, started, retrieved)
    yield AnswerFinished(
        stored, rag_context=stored.rag_context, provider=state.provider, timings=timings, session=finished.session
    )


def _timings(state: _Answer, started: float, retrieved: Retrieved | None) -> dict[str, float]:
    timings = {"total": time.monotonic() - started}
    if state.first_token_at is not None:
        timings["first_token"] = state.first_token_at - started
    if state.model_first_token_at is not None:
        timings["model_first_token"] = state.model_first_token_at - started
    if state.cached_tokens is not None:
        timings["cached_prompt_tokens"] = float(state.cached_tokens)
    if retrieved is not None:
        timings["retrieval"] = retrieved.seconds
    return timings


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    answer_id: uuid.UUID,
    state: _Answer,
    started: float,
    retrieved: Retrieved | None,
) -> answers.Finished:
    content, citations = state.content()
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
            generation_prompt="\n\n".join(f"{m.role}: {m.content}" for m in state.prompt),
            llm_provider=state.provider,
            retrieval_time=retrieved.seconds,
            summary=context_record(state.grounding.hits, retrieved.search_mode, citations),
        )
    async with sessionmaker() as db:
        stored = await answers.finish_answer(
            db,
            answer_id,
            content=content,
            status=state.status,
            processing_time=time.monotonic() - started,
            tokens_used=state.tokens_used(),
            retrieval=record,
        )
        await db.commit()
    return stored
