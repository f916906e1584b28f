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


def _same_file(fields: dict[str, Any]) -> Any:
    """The owner's copy of this file in the same scope: the library, or one session."""
    session_id = fields.get("session_id")
    scope = Document.session_id.is_(None) if session_id is None else Document.session_id == session_id
    return select(Document).where(Document.user_id == fields["user_id"], Document.sha256 == fields["sha256"], scope)


async def create_document(db: AsyncSession, **fields: Any) -> tuple[Document, bool]:
    """A new pending document, or the owner's existing one with the same sha256 in the same scope (and False)."""
    existing = await db.scalar(_same_file(fields))
    if existing is not None:
        return existing, False
    document = Document(status=DocumentStatus.pending, chunk_count=0, chunks_done=0, **fields)
    db.add(document)
    try:
        await db.flush()
    except IntegrityError:  # the same file uploaded twice at once (this insert is its unit's first write)
        await db.rollback()
        existing = await db.scalar(_same_file(fields))
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


async def delete_document(db: AsyncSession, document: Document) -> None:
    await db.delete(document)
    await db.flush()


async def ready_document_ids(db: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await db.scalars(
        select(Document.id).where(Document.user_id == user_id, Document.status == DocumentStatus.ready)
    )
    return list(rows)


async def stored_bytes(db: AsyncSession, user_id: uuid.UUID) -> int:
    """How many bytes of uploads the user keeps (their storage quota counts these)."""
    total = await db.scalar(select(func.coalesce(func.sum(Document.size_bytes), 0)).where(Document.user_id == user_id))
    return int(total or 0)


async def unfinished_documents(db: AsyncSession) -> list[Document]:
    """Documents whose ingestion has not ended (pending, or stopped while processing), oldest first."""
    rows = await db.scalars(
        select(Document)
        .where(Document.status.in_([DocumentStatus.pending, DocumentStatus.processing]))
        .order_by(Document.created_at, Document.id)
    )
    return list(rows)


async def all_documents(db: AsyncSession) -> list[Document]:
    """Every document of every owner, oldest first (for `run.py reindex`)."""
    return list(await db.scalars(select(Document).order_by(Document.created_at, Document.id)))
