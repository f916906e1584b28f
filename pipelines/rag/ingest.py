"""Background ingestion of uploaded documents, with progress written to the store as it goes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.tasks import TaskSet
from pipelines.rag.extract import SUPPORTED, ExtractLimits, UnsupportedDocument, extract_isolated, kind_of
from pipelines.rag.retrieval import Progress, Retriever
from store import documents
from store.models import Document, DocumentStatus

log = logging.getLogger(__name__)


class Ingestor:
    """Keeps uploaded files under `files_dir` and ingests them in background tasks it owns."""

    def __init__(
        self,
        retriever: Retriever,
        sessionmaker: async_sessionmaker[AsyncSession],
        files_dir: Path,
        *,
        limits: ExtractLimits | None = None,
        per_node: int = 2,
        per_user: int = 1,
    ) -> None:
        self.retriever = retriever
        self._sessionmaker = sessionmaker
        self.files_dir = files_dir
        self.limits = limits or ExtractLimits()
        self._tasks = TaskSet()
        self._running: dict[uuid.UUID, set[asyncio.Task[Any]]] = {}
        self._by_document: dict[uuid.UUID, asyncio.Task[DocumentStatus]] = {}
        # at most `per_user` of one owner's documents, and `per_node` in all, are ingested at once; the rest wait
        self._node_slots = asyncio.Semaphore(per_node)
        self._per_user = per_user
        self._user_slots: dict[uuid.UUID, tuple[asyncio.Semaphore, int]] = {}  # and how many hold or wait

    def path_of(self, document: Document) -> Path:
        return self.files_dir / document.user_id.hex / document.id.hex

    async def add(
        self, *, user_id: uuid.UUID, session_id: uuid.UUID | None, filename: str, data: bytes
    ) -> tuple[Document, bool]:
        """Record and keep an upload; an identical file of the same owner returns the existing document."""
        kind = kind_of(filename)  # raises UnsupportedDocument
        async with self._sessionmaker() as db:
            document, created = await documents.create_document(
                db,
                user_id=user_id,
                session_id=session_id,
                filename=filename,
                content_type=SUPPORTED[kind],
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            await db.commit()
        if created:
            await self.save(document, data)
        return document, created

    async def save(self, document: Document, data: bytes) -> None:
        """Keep the uploaded bytes (for re-ingestion, and so an erase can remove them)."""
        path = self.path_of(document)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        await asyncio.to_thread(write)

    def submit(self, document: Document) -> asyncio.Task[DocumentStatus]:
        """Ingest in the background, once a slot is free; progress and the outcome land on the document row (and
        the task's result). A document that is already being ingested here is not started twice (an upload racing
        the start-up resume): its running task is returned."""
        if (running := self._by_document.get(document.id)) is not None:
            return running
        task = self._tasks.spawn(self._queued(document), name=f"ingest-{document.id}")
        owned = self._running.setdefault(document.user_id, set())
        owned.add(task)
        task.add_done_callback(owned.discard)
        self._by_document[document.id] = task
        task.add_done_callback(lambda _: self._by_document.pop(document.id, None))
        return task

    def ingesting(self, document_id: uuid.UUID) -> bool:
        """Whether an ingestion of the document runs in this process."""
        return document_id in self._by_document

    def resume_soon(self) -> None:
        """`resume()` in the background: start-up does not wait for (or fail on) the database."""
        self._tasks.spawn(self.resume(), name="resume-ingestions")

    async def resume(self) -> int:
        """Queue again the documents a previous run left `pending` or `processing` (a crash, a kill -9, a
        shutdown): their vectors may be partial, and re-ingesting overwrites them. Only documents whose
        file is kept here: on a node of a cluster, another node's uploads are that node's to finish."""
        try:
            async with self._sessionmaker() as db:
                unfinished = await documents.unfinished_documents(db)
        except Exception as exc:  # the database is down: the next start looks again
            log.warning("could not look for unfinished ingestions: %s", exc)
            return 0
        exists = await asyncio.to_thread(lambda: [self.path_of(d).exists() for d in unfinished])
        queued = [d for d, here in zip(unfinished, exists, strict=True) if here]
        for document in queued:
            log.info("document %s was %s when the last run stopped: ingesting it again", document.id, document.status)
            self.submit(document)
        return len(queued)

    async def _queued(self, document: Document) -> DocumentStatus:
        """`ingest` once a slot of the owner's and one of the node's are free (the document stays `pending`)."""
        owner = document.user_id
        user_slots, waiting = self._user_slots.get(owner) or (asyncio.Semaphore(self._per_user), 0)
        self._user_slots[owner] = (user_slots, waiting + 1)
        try:
            async with user_slots, self._node_slots:
                return await self.ingest(document)
        finally:
            user_slots, waiting = self._user_slots[owner]
            if waiting > 1:
                self._user_slots[owner] = (user_slots, waiting - 1)
            else:
                del self._user_slots[owner]  # nobody of this owner is running or waiting

    async def _progress(self, document_id: uuid.UUID, status: DocumentStatus, **values: object) -> None:
        async with self._sessionmaker() as db:
            await documents.set_progress(db, document_id, status=status, **values)  # type: ignore[arg-type]
            await db.commit()

    async def ingest(self, document: Document, report: Progress | None = None) -> DocumentStatus:
        """Ingest a saved document now; `report` also hears the progress. Returns how it ended."""
        document_id, owner_id, filename, session_id = (
            document.id,
            document.user_id,
            document.filename,
            document.session_id,
        )
        path = self.path_of(document)
        try:
            await self._progress(document_id, DocumentStatus.processing)
            data = await asyncio.to_thread(path.read_bytes)
            pages = await extract_isolated(filename, data, self.limits)

            async def progress(done: int, total: int) -> None:
                await self._progress(document_id, DocumentStatus.processing, done=done, total=total)
                if report is not None:
                    await report(done, total)

            # the vectors are flushed when this returns, so `ready` is never written before them
            total = await self.retriever.ingest(owner_id, document_id, filename, pages, progress, session_id=session_id)
            if total == 0:
                raise UnsupportedDocument("no text could be extracted from the file")
            await self._progress(document_id, DocumentStatus.ready, done=total, total=total)
            return DocumentStatus.ready
        except asyncio.CancelledError:  # shutdown (or an erase): queued again, picked up by the next start
            await asyncio.shield(self._progress(document_id, DocumentStatus.pending))
            raise
        except UnsupportedDocument as exc:
            await self._progress(document_id, DocumentStatus.failed, error=str(exc))
        except Exception as exc:
            log.exception("ingesting document %s failed", document_id)
            await self._progress(document_id, DocumentStatus.failed, error=f"ingestion failed: {type(exc).__name__}")
        return DocumentStatus.failed

    async def remove(self, document: Document) -> None:
        """Delete a document's vectors and stored file (the caller deletes the row); a running ingestion of
        it stops first, so no batch lands after the delete."""
        task = self._by_document.get(document.id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.retriever.delete_document(document.user_id, document.id)
        await asyncio.to_thread(self.path_of(document).unlink, missing_ok=True)

    async def erase_owner(self, owner_id: uuid.UUID) -> None:
        """Stop the owner's ingestions, then delete all their vectors and stored files (account erase)."""
        tasks = list(self._running.pop(owner_id, ()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.retriever.delete_owner(owner_id)
        await asyncio.to_thread(shutil.rmtree, self.files_dir / owner_id.hex, ignore_errors=True)

    async def close(self) -> None:
        await self._tasks.close()
