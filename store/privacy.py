"""Everything stored about a user: gathered for export, or erased."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import attachments, members
from store.cache import access_key, mark_stale, messages_key, rag_generation_key, session_key, user_key
from store.models import (
    Attachment,
    AuditEvent,
    ChatSession,
    Document,
    Login,
    Message,
    MessageType,
    RagContext,
    SessionMember,
    User,
)
from store.schemas import AttachmentRecord, DocumentOut, MessageOut, RagContextOut, SessionOut, UserOut


async def export_user(db: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The user's account, sessions, messages (deleted ones too), attachments, RAG contexts and documents, as JSON;
    of the sessions of others shared with them, the memberships and the messages they wrote there.

    Attachment bytes are not inlined: each message's `attachment.url` serves them."""
    user = await db.get(User, user_id)
    sessions = list(await db.scalars(select(ChatSession).where(ChatSession.user_id == user_id)))
    session_ids = [s.id for s in sessions]
    in_mine_or_by_me = Message.session_id.in_(session_ids) | (Message.user_id == user_id)
    messages = list(await db.scalars(select(Message).where(in_mine_or_by_me).order_by(Message.created_at, Message.id)))
    joined = await members.memberships(db, user_id)
    contexts = list(await db.scalars(select(RagContext).where(RagContext.session_id.in_(session_ids))))
    documents = list(await db.scalars(select(Document).where(Document.user_id == user_id)))
    attached = await attachments.of_user(db, user_id)

    def dump(model: Any, rows: list[Any]) -> list[dict[str, Any]]:
        return [model.model_validate(row).model_dump(mode="json") for row in rows]

    return {
        "user": UserOut.model_validate(user).model_dump(mode="json"),
        "sessions": dump(SessionOut, sessions),
        "messages": dump(MessageOut, messages),
        "rag_contexts": dump(RagContextOut, contexts),
        "documents": dump(DocumentOut, documents),
        "attachments": dump(AttachmentRecord, attached),
        "memberships": [
            {"session_id": str(m.session_id), "role": m.role.value, "added_at": m.added_at.isoformat()} for m in joined
        ],
    }


async def assistant_texts(db: AsyncSession, user_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    """The answers in the user's sessions with their session's speech settings (to drop cached speech)."""
    rows = await db.execute(
        select(Message.content, ChatSession.speech_config)
        .join(ChatSession, Message.session_id == ChatSession.id)
        .where(ChatSession.user_id == user_id, Message.message_type == MessageType.assistant, Message.content != "")
    )
    return [(str(row[0]), dict(row[1] or {})) for row in rows.all()]


async def erase_user(db: AsyncSession, user_id: uuid.UUID) -> tuple[dict[str, int], list[uuid.UUID]]:
    """Delete the user's rows and strip their audit trail down to bare events; the caller commits.

    In the sessions of others shared with them, their memberships go; the messages they wrote there stay
    (the room's conversation), attributed to no one (`user_id` null: "a deleted user"), without their
    recordings and attachments. Returns how many rows of each kind went, and the ids of the sessions that went."""
    session_ids = list(await db.scalars(select(ChatSession.id).where(ChatSession.user_id == user_id)))
    joined = [member.session_id for member in await members.memberships(db, user_id)]
    written = select(Message.session_id).where(Message.user_id == user_id, Message.session_id.not_in(session_ids))
    elsewhere = set(await db.scalars(written.distinct())) | set(joined)
    counts = {
        "sessions": len(session_ids),
        "messages": len(list(await db.scalars(select(Message.id).where(Message.session_id.in_(session_ids))))),
        "documents": len(list(await db.scalars(select(Document.id).where(Document.user_id == user_id)))),
        "attachments": len(
            list(
                await db.scalars(
                    select(Attachment.id).where(
                        (Attachment.session_id.in_(session_ids)) | (Attachment.user_id == user_id)
                    )
                )
            )
        ),
        "memberships": len(joined),
    }
    # explicit deletes, children first: no reliance on the database's cascade settings
    await db.execute(delete(SessionMember).where(SessionMember.session_id.in_(session_ids)))
    await db.execute(delete(SessionMember).where(SessionMember.user_id == user_id))
    await db.execute(delete(RagContext).where(RagContext.session_id.in_(session_ids)))
    await db.execute(delete(Attachment).where(Attachment.session_id.in_(session_ids) | (Attachment.user_id == user_id)))
    await db.execute(update(Message).where(Message.session_id.in_(session_ids)).values(reply_to_id=None))
    await db.execute(delete(Message).where(Message.session_id.in_(session_ids)))
    await db.execute(update(Message).where(Message.user_id == user_id).values(user_id=None, audio_url=None))
    await db.execute(delete(Document).where(Document.user_id == user_id))
    await db.execute(delete(ChatSession).where(ChatSession.user_id == user_id))
    await db.execute(delete(Login).where(Login.user_id == user_id))
    await db.execute(delete(User).where(User.id == user_id))
    # the audit log keeps that things happened, not from where or with which names
    await db.execute(update(AuditEvent).where(AuditEvent.user_id == user_id).values(ip=None, details={}))
    mark_stale(db, user_key(user_id), rag_generation_key(user_id))
    for session_id in (*session_ids, *elsewhere):
        mark_stale(db, session_key(session_id), messages_key(session_id), access_key(session_id))
    return counts, session_ids
