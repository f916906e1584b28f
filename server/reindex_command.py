"""`python run.py reindex`: rebuild every document's vectors from its stored file, with a progress bar.

For a data dir of the former layout (a collection per user), and after changing the embedding model.
The old layout's vectors are deleted once every document has been rebuilt.
"""

from __future__ import annotations

import asyncio
import sys
import time

from core.settings import Settings
from pipelines.rag.ingest import Ingestor
from pipelines.rag.vectors.legacy import remove_legacy
from server.app import create_retriever
from server.ingest_command import bar
from store import documents
from store.db import create_engine, create_sessionmaker
from store.models import DocumentStatus


async def reindex(settings: Settings) -> int:
    """Re-ingest every document that is not `failed`; returns how many could not be rebuilt."""
    engine = await asyncio.to_thread(create_engine, settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        try:
            retriever = await create_retriever(settings)
        except RuntimeError as exc:  # the embedded shard is open in one process at a time
            print(f"{exc}\nStop the server first, or set QDRANT_URL to use a Qdrant server.", file=sys.stderr)
            return 1
        ingestor = Ingestor(retriever, sessionmaker, settings.data_dir / "documents")
        async with sessionmaker() as db:
            rows = [d for d in await documents.all_documents(db) if d.status is not DocumentStatus.failed]
        failed, chunks, started = 0, 0, time.monotonic()
        for number, document in enumerate(rows, start=1):
            label = f"[{number}/{len(rows)}] {document.filename}"
            if not await asyncio.to_thread(ingestor.path_of(document).exists):
                print(f"{label}: the stored file is missing ({ingestor.path_of(document)})", file=sys.stderr)
                failed += 1
                continue
            await retriever.delete_document(document.user_id, document.id)

            async def report(done: int, total: int, name: str = label) -> None:
                bar(name, done, total)

            status = await ingestor.ingest(document, report)
            sys.stderr.write("\n")
            if status is DocumentStatus.ready:
                chunks += await retriever.count(document.user_id, document.id)
            else:
                print(f"{label}: failed (see the document's error)", file=sys.stderr)
                failed += 1
        seconds = time.monotonic() - started
        print(f"reindexed {len(rows) - failed} of {len(rows)} documents, {chunks} chunks in {seconds:.1f} s")
        if not failed:
            for what in await asyncio.to_thread(remove_legacy, settings.data_dir, retriever.store):
                print(f"removed {what} (the former layout)")
        await retriever.close()
        return failed
    finally:
        await engine.dispose()
