"""The text events of the chat namespace: thin — validate, authorize, call one service, emit or ack."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import logs
from core.errors import Refused
from handlers.context import ChatContext, Connection
from handlers.errors import parse
from store import audit, messages
from store.errors import NotFound
from store.models import MessageStatus
from store.schemas import MessageOut
from turns.intake import Author, NewMessage, Upload
from turns.wire import (
    DeleteIn,
    EditIn,
    MessageDeleted,
    MessageUpdated,
    StopIn,
    SyncIn,
    TypingIn,
    TypingIndicator,
    UserMessageIn,
)


def _out(message: Any) -> dict[str, Any]:
    return MessageOut.model_validate(message).model_dump(mode="json")


class ChatEvents:
    """user_message, typing, stop_generation, edit_message, delete_message, sync."""

    def __init__(self, connection: Connection, context: ChatContext) -> None:
        self.conn, self.ctx = connection, context

    def handlers(self) -> dict[str, Any]:
        return {
            "user_message": self.user_message,
            "typing": self.typing,
            "stop_generation": self.stop_generation,
            "edit_message": self.edit_message,
            "delete_message": self.delete_message,
            "sync": self.sync,
        }

    async def user_message(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: UserMessageIn = parse(UserMessageIn, data)
        user_id, session_id = await self.conn.who(namespace, sid)
        author = Author(user_id, await self.conn.address(namespace, sid), sid)
        upload = None
        if body.file is not None and body.filename is not None:
            upload = Upload(body.file, body.filename, body.mime_type)
        new = NewMessage(
            body.content.strip() if upload else body.content,
            client_id=body.client_id,
            attachment=upload,
            answer=self.ctx.auto_answer,
        )
        accepted = await self.ctx.intake.accept(session_id, author, new)
        reply: dict[str, Any] = {"ok": True, "message": _out(accepted.message)}
        if not accepted.created:
            reply["duplicate"] = True
        return reply

    async def typing(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: TypingIn = parse(TypingIn, data)
        user_id, session_id = await self.conn.who(namespace, sid)
        indicator = TypingIndicator(user_id=str(user_id), is_typing=body.is_typing)
        await self.ctx.broadcaster.emit(session_id, indicator, skip_sid=sid)
        return {"ok": True}

    async def stop_generation(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: StopIn = parse(StopIn, data)
        _, session_id = await self.conn.who(namespace, sid)
        answer_id = body.message_id or await self.ctx.gate.current(session_id)
        if answer_id is None:
            return {"ok": True, "stopped": None}
        async with self.ctx.sessionmaker() as db:
            answer = await messages.get_in_session(db, answer_id, session_id)
        if answer.status is MessageStatus.streaming:
            await self.ctx.stops.request(answer_id)
        return {"ok": True, "stopped": str(answer_id)}

    async def edit_message(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: EditIn = parse(EditIn, data)
        limit = self.ctx.intake.max_message_chars
        if len(body.content) > limit:
            raise Refused("message_too_long", f"a message holds at most {limit} characters")
        user_id, session_id = await self.conn.who(namespace, sid)
        async with self.ctx.sessionmaker() as db:
            message, session = await messages.get_owned_message(db, body.message_id, user_id)
            if session.id != session_id:
                raise NotFound("no such message")
            await self._audit(db, namespace, sid, "message_edit", message.id)
            message = await messages.edit_message(db, message, session, user_id=user_id, content=body.content)
            await db.commit()
        out = MessageOut.model_validate(message)
        await self.ctx.broadcaster.emit(session_id, MessageUpdated(message=out), skip_sid=sid)
        return {"ok": True, "message": out.model_dump(mode="json")}

    async def delete_message(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: DeleteIn = parse(DeleteIn, data)
        user_id, session_id = await self.conn.who(namespace, sid)
        async with self.ctx.sessionmaker() as db:
            message, session = await messages.get_owned_message(db, body.message_id, user_id)
            if session.id != session_id:
                raise NotFound("no such message")
            await self._audit(db, namespace, sid, "message_delete", message.id)
            message = await messages.delete_message(db, message, session)
            await db.commit()
        await self.ctx.intake.forget_attachment(message.id)
        out = MessageOut.model_validate(message)
        await self.ctx.broadcaster.emit(session_id, MessageDeleted(message=out), skip_sid=sid)
        return {"ok": True, "message": out.model_dump(mode="json")}

    async def _audit(self, db: AsyncSession, namespace: str, sid: str, action: str, message_id: uuid.UUID) -> None:
        """An audit event that commits with the change it records."""
        user_id, _ = await self.conn.who(namespace, sid)
        audit.record(
            db,
            action,
            user_id=user_id,
            target_type="message",
            target_id=message_id,
            ip=await self.conn.address(namespace, sid),
            request_id=logs.REQUEST_ID.get(),
            details={"via": "socket"},
        )

    async def sync(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        """A page of messages after a cursor (`next_after_message_id` while `has_more`), and/or an answer's deltas."""
        body: SyncIn = parse(SyncIn, data)
        _, session_id = await self.conn.who(namespace, sid)
        reply: dict[str, Any] = {"ok": True}
        async with self.ctx.sessionmaker() as db:
            if body.message_id is None or body.after_message_id is not None:
                after = None
                if body.after_message_id is not None:
                    after = await messages.get_in_session(db, body.after_message_id, session_id)
                rows = await messages.messages_after(db, session_id, after, limit=body.limit + 1)
                page = rows[: body.limit]
                reply["messages"] = [_out(m) for m in page]
                reply["has_more"] = len(rows) > body.limit
                reply["next_after_message_id"] = str(page[-1].id) if reply["has_more"] else None
            if body.message_id is not None:
                answer = await messages.get_in_session(db, body.message_id, session_id)
                deltas = await self.ctx.deltas.read(answer.id, body.last_seq)
                reply["stream"] = {
                    "message_id": str(answer.id),
                    "status": answer.status.value,
                    "deltas": [{"seq": seq, "delta": delta} for seq, delta in deltas],
                    "message": _out(answer),
                }
        return reply
