"""RAG over REST: ask a question in a session (JSON or a server-sent event stream), read an answer's context."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from server import keys
from server.deps import authenticate, client_ip, db_session, message_for
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.schemas import Body
from server.validation import parse_body, path_uuid
from store import rag_contexts
from store.schemas import MessageOut, RagContextOut
from turns.intake import Author, NewMessage
from turns.wire import AssistantResponse, AssistantStart, AssistantToken


class RagQueryIn(Body):
    query: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(default=None, ge=1, le=20)


class RagQueryOut(BaseModel):
    message: MessageOut
    rag_context: RagContextOut | None
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="server-side seconds from the start of the turn: retrieval, first_token (the first text sent), "
        "model_first_token, total; cached_prompt_tokens when the provider reported its prompt cache",
    )


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


async def rag_query(request: web.Request) -> web.StreamResponse:
    """Store the question as a user message and wait for its answer, made by the one answer producer.

    The answer holds the session's lease, streams to the session's sockets, can be stopped from any of
    them (then it ends `cancelled`), and goes on if this request goes away.
    """
    async with db_session(request) as db:
        user = await authenticate(request, db)
    session_id = path_uuid(request, "session_id")
    body = await parse_body(request, RagQueryIn)
    new = NewMessage(body.query, follow=True, rag_overrides={"k": body.k} if body.k else None)
    author = Author(user.id, client_ip(request), username=user.username)
    accepted = await request.app[keys.INTAKE].accept(session_id, author, new)
    assert accepted.answer is not None, "a new message with answer=True always starts one"
    response: web.StreamResponse | None = None
    final: AssistantResponse | None = None
    streaming = "text/event-stream" in request.headers.get("Accept", "")
    async for event in accepted.answer.events():
        if isinstance(event, AssistantResponse):
            final = event
        elif streaming and isinstance(event, AssistantStart | AssistantToken):
            if response is None:
                headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
                response = web.StreamResponse(headers=headers)
                await response.prepare(request)
            await response.write(_sse("start" if isinstance(event, AssistantStart) else "token", event.wire()))
    if final is None:
        raise ApiError(503, "unavailable", "the answer was lost; see the session's history")
    async with db_session(request) as db:
        context = await rag_contexts.find_for_message(db, final.message_id)
    out = RagQueryOut(
        message=final.message,
        rag_context=RagContextOut.model_validate(context) if context else None,
        timings=accepted.answer.timings,
    )
    if response is not None:
        await response.write(_sse("final", out.model_dump(mode="json")))
        await response.write_eof()
        return response
    return json_response(out)


async def get_rag_context(request: web.Request) -> web.Response:
    """The retrieval record behind an answer of a session I am in."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        message, _ = await message_for(request, db, path_uuid(request, "message_id"), user.id)
        context = await rag_contexts.find_for_message(db, message.id)
    if context is None:
        raise ApiError(404, "not_found", "this message has no RAG context")
    return json_response(RagContextOut.model_validate(context))


ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/v1/chat/sessions/{session_id}/rag-query",
        rag_query,
        "Ask a question answered from my documents (JSON, or SSE with Accept: text/event-stream)",
        "rag",
        body=RagQueryIn,
        response=RagQueryOut,
        errors=(400, 401, 403, 404, 409, 422),
    ),
    Endpoint(
        "GET",
        "/api/v1/chat/messages/{message_id}/rag-context",
        get_rag_context,
        "The sources behind an answer",
        "rag",
        response=RagContextOut,
        errors=(401, 404),
    ),
)
