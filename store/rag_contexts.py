"""The retrieval record kept with an assistant answer."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import RagContext


async def find_for_message(db: AsyncSession, message_id: uuid.UUID) -> RagContext | None:
    """The RAG context stored with an assistant message, if retrieval ran for it."""
    return await db.scalar(select(RagContext).where(RagContext.message_id == message_id))
