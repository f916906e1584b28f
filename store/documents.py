"""Uploaded documents and their ingestion progress, scoped to their owner."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.cache import mark_stale, rag_generation_key
from store.errors import NotFound
from store.models import Document, DocumentStatus


async def create_document(db: AsyncSession, **fields: Any) -> tuple[Document, bool]:
    """A new pending document, or the owner's existing one with the same sha256 (and False)."""
    existing = await db.scalar(
        select(Document).where(Document.user_id == fields["user_id"], Document.sha256 == fields["sha256"])
    )
    if existing is not None:
        return existing, False
    document = Document(status=DocumentStatus.pending, chunk_count=0, chunks_done=0, **fields)
    db.add(document)
    try:
        await db.commit()
    except IntegrityError:  # the same file uploaded twice at once
        await db.rollback()
        existing = await db.scalar(
            select(Document).where(Document.user_id == fields["user_id"], Document.sha256 == fields["sha256"])
        )
        if existing is None:
            raise
        return existing, False
    return document, True


async def get_owned_document(db: AsyncSession, document_id: uuid.UUID, user_id: uuid.UUID) -> Document:
    document = await db.get(Document, document_id)
    if document is None or document.user_id != user_id:
        raise NotFound("no such document")
    return document


async def list_documents(
    db: AsyncSession, user_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[Document], int]:
    """The owner's documents, newest first."""
    where = Document.user_id == user_id
    rows = await db.scalars(
        select(Document).where(where).order_by(Document.created_at.desc(), Document.id).limit(limit).offset(offset)
    )
    total = await db.scalar(select(func.count()).select_from(Document).where(where))
    return list(rows), int(total or 0)


async def set_progress(
    db: AsyncSession,
    document_id: uuid.UUID,
    *,
    status: DocumentStatus,
    done: int | None = None,
    total: int | None = None,
    error: str | None = None,
) -> None:
    """Record where ingestion stands."""
    values: dict[str, Any] = {"status": status, "error": error}
    if done is not None:
        values["chunks_done"] = done
    if total is not None:
        values["chunk_count"] = total
    owner = await db.scalar(
        update(Document).where(Document.id == document_id).values(**values).returning(Document.user_id)
    )
    if owner is not None:  # what the user's questions can find may have changed
        mark_stale(db, rag_generation_key(owner))
    await db.commit()


async def delete_document(db: AsyncSession, document: Document) -> None:
    await db.delete(document)
    await db.commit()


async def ready_document_ids(db: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await db.scalars(
        select(Document.id).where(Document.user_id == user_id, Document.status == DocumentStatus.ready)
    )
    return list(rows)


async def stored_bytes(db: AsyncSession, user_id: uuid.UUID) -> int:
    """How many bytes of uploads the user keeps (their storage quota counts these)."""
    total = await db.scalar(select(func.coalesce(func.sum(Document.size_bytes), 0)).where(Document.user_id == user_id))
    return int(total or 0)
