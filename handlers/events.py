"""The text events of the chat namespace: thin — validate, authorize, call one service, emit or ack."""

from __future__ import annotations

from typing import Any

from core.errors import Refused
from handlers.context import ChatContext, Connection
from handlers.errors import parse
from store import messages
from store.models import MessageStatus
from store.schemas import MessageOut
from turns import edits
from turns.intake import NewMessage, Upload
from turns.wire import (
    Ack,
    DeleteIn,
    EditIn,
    MessageAck,
    StopAck,
    StopIn,
    SyncAck,
    SyncDelta,
    SyncIn,
    SyncStream,
    TypingIn,
    TypingIndicator,
    UserMessageAck,
    UserMessageIn,
)


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

    async def user_message(self, namespace: str, sid: str, data: Any) -> Ack:
        body: UserMessageIn = parse(UserMessageIn, data)
        author, session_id = await self.conn.author(namespace, sid)
        upload = None
        if body.file is not None and body.filename is not None:
            upload = Upload(body.file, body.filename, body.mime_type)
        new = NewMessage(
            body.content.strip() if upload else body.content,
            client_id=body.client_id,
            attachment=upload,
            answer=self.ctx.auto_answer,
            session_in_ack=True,
        )
        accepted = await self.ctx.intake.accept(session_id, author, new)
        ack = UserMessageAck(message=accepted.payload(), duplicate=not accepted.created, session=accepted.session)
        return ack

    async def typing(self, namespace: str, sid: str, data: Any) -> Ack:
        body: TypingIn = parse(TypingIn, data)
        user_id, session_id = await self.conn.who(namespace, sid)
        username = await self.conn.username(namespace, sid)
        indicator = TypingIndicator(user_id=str(user_id), username=username, is_typing=body.is_typing)
        await self.ctx.broadcaster.emit(session_id, indicator, skip_sid=sid)
        return Ack()

    async def stop_generation(self, namespace: str, sid: str, data: Any) -> Ack:
        body: StopIn = parse(StopIn, data)
        _, session_id = await self.conn.who(namespace, sid)
        answer_id = body.message_id or await self.ctx.gate.current(session_id)
        if answer_id is None:
            return StopAck(stopped=None)
        async with self.ctx.sessionmaker() as db:
            answer = await messages.get_in_session(db, answer_id, session_id)
        if answer.status is MessageStatus.streaming:
            await self.ctx.stops.request(answer_id)
        return StopAck(stopped=answer_id)

    async def edit_message(self, namespace: str, sid: str, data: Any) -> Ack:
        body: EditIn = parse(EditIn, data)
        limit = self.ctx.intake.max_message_chars
        if len(body.content) > limit:
            raise Refused("message_too_long", f"a message holds at most {limit} characters")
        author, session_id = await self.conn.author(namespace, sid)
        edited = await edits.edit_message(
            self.ctx.sessionmaker,
            self.ctx.access,
            self.ctx.broadcaster,
            author,
            body.message_id,
            body.content,
            session_id=session_id,
        )
        return MessageAck(message=edited)

    async def delete_message(self, namespace: str, sid: str, data: Any) -> Ack:
        body: DeleteIn = parse(DeleteIn, data)
        author, session_id = await self.conn.author(namespace, sid)
        deleted = await edits.delete_message(
            self.ctx.sessionmaker, self.ctx.access, self.ctx.broadcaster, author, body.message_id, session_id=session_id
        )
        await self.ctx.intake.forget_attachment(deleted.id)  # its text leaves the session's search
        return MessageAck(message=deleted)

    async def sync(self, namespace: str, sid: str, data: Any) -> Ack:
        """A page of messages after a cursor (`next_after_message_id` while `has_more`), and/or an answer's deltas."""
        body: SyncIn = parse(SyncIn, data)
        _, session_id = await self.conn.who(namespace, sid)
        reply = SyncAck()
        async with self.ctx.sessionmaker() as db:
            if body.message_id is None or body.after_message_id is not None:
                after = None
                if body.after_message_id is not None:
                    after = await messages.get_in_session(db, body.after_message_id, session_id)
                rows = await messages.messages_after(db, session_id, after, limit=body.limit + 1)
                page = rows[: body.limit]
                reply.messages = [MessageOut.model_validate(m) for m in page]
                reply.has_more = len(rows) > body.limit
                reply.next_after_message_id = page[-1].id if reply.has_more else None
            if body.message_id is not None:
                answer = await messages.get_in_session(db, body.message_id, session_id)
                deltas = await self.ctx.deltas.read(answer.id, body.last_seq)
                reply.stream = SyncStream(
                    message_id=answer.id,
                    status=answer.status.value,
                    deltas=[SyncDelta(seq=seq, delta=delta) for seq, delta in deltas],
                    message=MessageOut.model_validate(answer),
                )
        return reply
