"""Attachments a process shares: prepare off the loop, store with the message's unit of work, index
the text for the session after the commit, and hand images to the answer that follows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.tasks import TaskSet
from pipelines.chat.model import ImagePart
from pipelines.media.ocr import Ocr, OcrFailed, OcrUnavailable
from pipelines.media.prepare import AttachmentLimits, PreparedAttachment, prepare_attachment
from pipelines.rag.ingest import Ingestor
from store import attachments, audit, documents
from store.models import Attachment, Document, DocumentStatus, Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """Something the sender should hear about an accepted attachment (e.g. `ocr_unavailable`)."""

    code: str
    message: str


@dataclass(frozen=True)
class Indexed:
    """How indexing an attachment's text for its session ended."""

    document_id: uuid.UUID | None
    status: DocumentStatus | None
    notice: Notice | None = None


class Attachments:
    """One per process. Files live under `root/<owner>/<attachment id>` (and `….thumb`)."""

    def __init__(
        self,
        root: Path,
        *,
        ingestor: Ingestor,
        sessionmaker: async_sessionmaker[AsyncSession],
        executor: Executor,
        limits: AttachmentLimits | None = None,
        ocr: Ocr | None = None,
        prompt_images: int = 2,
        index_wait: float = 30.0,
    ) -> None:
        self.root = root
        self.limits = limits or AttachmentLimits()
        self.ocr = ocr or Ocr(executor)
        self.prompt_images = prompt_images
        self.index_wait = index_wait
        self._ingestor = ingestor
        self._sessionmaker = sessionmaker
        self._executor = executor
        self._tasks = TaskSet()
        #: by message id, while it runs: the sender and the task
        self._indexing: dict[uuid.UUID, tuple[uuid.UUID, asyncio.Task[Indexed]]] = {}

    async def prepare(self, data: bytes, filename: str, declared_mime: str | None = None) -> PreparedAttachment:
        """`prepare_attachment` in a worker thread; raises `AttachmentRefused`."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, prepare_attachment, data, filename, declared_mime, self.limits
        )

    def path(self, key: str) -> Path:
        return self.root / key

    @contextlib.asynccontextmanager
    async def store(
        self,
        db: AsyncSession,
        prepared: PreparedAttachment,
        *,
        message: Message,
        user_id: uuid.UUID,
        ip: str | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[Attachment]:
        """Write the files and add the row (and its audit record) to `db`; commit inside the block.

        If the block raises (the commit included), the files are removed again: nothing is half-stored.
        """
        attachment_id = uuid.uuid4()
        key = f"{user_id.hex}/{attachment_id.hex}"
        thumbnail_key = f"{key}.thumb" if prepared.thumbnail is not None else None
        await asyncio.to_thread(self._write, key, prepared.data, thumbnail_key, prepared.thumbnail)
        try:
            row = attachments.add_attachment(
                db,
                message,
                id=attachment_id,
                user_id=user_id,
                filename=prepared.filename,
                content_type=prepared.content_type,
                size_bytes=prepared.size_bytes,
                sha256=prepared.sha256,
                storage_key=key,
                thumbnail_key=thumbnail_key,
            )
            details = {"content_type": prepared.content_type, "size_bytes": prepared.size_bytes}
            audit.record(
                db,
                "attachment_upload",
                user_id=user_id,
                target_type="attachment",
                target_id=attachment_id,
                ip=ip,
                request_id=request_id,
                details=details,
            )
            await db.flush()
            yield row
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._remove, key, thumbnail_key))
            raise

    def _write(self, key: str, data: bytes, thumbnail_key: str | None, thumbnail: bytes | None) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if thumbnail_key is not None and thumbnail is not None:
            self.path(thumbnail_key).write_bytes(thumbnail)

    def _remove(self, *keys: str | None) -> None:
        for key in keys:
            if key is not None:
                self.path(key).unlink(missing_ok=True)

    def index(self, attachment: Attachment, prepared: PreparedAttachment) -> asyncio.Task[Indexed]:
        """After the commit: ingest a file as a document of the session, or OCR an image and index its
        text the same way. Runs in the background; an answer to the message waits for it (bounded)."""
        task = self._tasks.spawn(self._index(attachment, prepared), name=f"attachment-{attachment.id}")
        self._indexing[attachment.message_id] = (attachment.user_id, task)
        task.add_done_callback(lambda _: self._indexing.pop(attachment.message_id, None))
        return task

    async def _index(self, attachment: Attachment, prepared: PreparedAttachment) -> Indexed:
        if prepared.kind == "file":
            name, data = prepared.filename, prepared.data
        else:
            try:
                text = await self.ocr.read(prepared.data)
            except (OcrUnavailable, OcrFailed) as exc:
                log.warning("attachment %s: %s", attachment.id, exc)
                return Indexed(None, None, Notice(exc.code, str(exc)))
            if not text:
                return Indexed(None, None)
            name, data = f"{prepared.filename}.txt", text.encode()
        document, created = await self._ingestor.add(
            user_id=attachment.user_id, session_id=attachment.session_id, filename=name, data=data
        )
        async with self._sessionmaker() as db:
            await attachments.link_document(db, attachment.id, document.id)
            await db.commit()
        status = await self._ingestor.submit(document) if created else document.status
        if status is DocumentStatus.failed:
            notice = Notice("attachment_not_indexed", f"the text of {prepared.filename} could not be indexed")
            return Indexed(document.id, status, notice)
        return Indexed(document.id, status)

    async def for_answer(self, history: Sequence[Message]) -> dict[uuid.UUID, tuple[ImagePart, ...]]:
        """Before an answer searches: wait (bounded) for its messages' attachments to be indexed, then
        the newest `prompt_images` images of the history, by message id, for models that see images."""
        attached = [m for m in history if m.attachment is not None]
        pending = [self._indexing[m.id][1] for m in attached if m.id in self._indexing]
        if pending:
            await asyncio.wait(pending, timeout=self.index_wait)  # a timeout leaves them running
        images = [m for m in attached if m.attachment and m.attachment.content_type.startswith("image/")]
        chosen = images[-self.prompt_images :] if self.prompt_images else []
        found: dict[uuid.UUID, tuple[ImagePart, ...]] = {}
        for message in chosen:
            assert message.attachment is not None
            path = self.path(message.attachment.storage_key)
            with contextlib.suppress(FileNotFoundError):
                data = await asyncio.to_thread(path.read_bytes)
                found[message.id] = (ImagePart(message.attachment.content_type, data),)
        return found

    async def forget(self, message_id: uuid.UUID) -> None:
        """After its message was deleted: the attachment's session document and vectors go, so answers no
        longer use it (its bytes stay, hidden behind 404, until the account is erased)."""
        if (running := self._indexing.get(message_id)) is not None:
            running[1].cancel()
            await asyncio.gather(running[1], return_exceptions=True)
        async with self._sessionmaker() as db:
            row = await attachments.of_message(db, message_id)
            document = await db.get(Document, row.document_id) if row and row.document_id else None
            if row is None or document is None or document.session_id != row.session_id:
                return
            await self._ingestor.remove(document)
            await documents.delete_document(db, document)
            await db.commit()

    async def erase_owner(self, user_id: uuid.UUID) -> None:
        """Stop the user's indexing, then delete every stored attachment file of theirs (account erase;
        their documents and vectors go with the ingestor's erase, which must come after this)."""
        running = [task for owner, task in self._indexing.values() if owner == user_id]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await asyncio.to_thread(shutil.rmtree, self.root / user_id.hex, ignore_errors=True)

    async def close(self) -> None:
        await self._tasks.close()
