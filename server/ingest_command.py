"""`python run.py ingest PATH…`: add documents for a user from the command line, with a progress bar."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from core.settings import Settings
from pipelines.rag.extract import ExtractLimits, UnsupportedDocument
from pipelines.rag.ingest import Ingestor
from server.app import create_retriever
from store import users
from store.db import create_engine, create_sessionmaker
from store.models import DocumentStatus

BAR = 30


def bar(name: str, done: int, total: int) -> None:
    """One line of progress on stderr, redrawn in place."""
    filled = BAR * done // total if total else BAR
    sys.stderr.write(f"\r{name[:40]:40} [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total} chunks")
    sys.stderr.flush()


async def ingest_paths(settings: Settings, username: str, paths: list[Path], session_id: uuid.UUID | None) -> int:
    """Ingest each file for `username`; returns the number that failed."""
    engine = await asyncio.to_thread(create_engine, settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as db:
            user = await users.find_by_username(db, username)
        if user is None:
            print(f"no such user: {username}", file=sys.stderr)
            return len(paths)
        try:
            retriever = await create_retriever(settings)
        except RuntimeError as exc:  # the embedded shard is open in one process at a time
            print(f"{exc}\nStop the server first, or set QDRANT_URL to use a Qdrant server.", file=sys.stderr)
            return len(paths)
        limits = ExtractLimits(
            settings.ingest_timeout_seconds, settings.ingest_max_pages, settings.ingest_max_memory_mb
        )
        ingestor = Ingestor(retriever, sessionmaker, settings.data_dir / "documents", limits=limits)
        failed = 0
        for path in paths:
            try:
                data = await asyncio.to_thread(path.read_bytes)
                document, created = await ingestor.add(
                    user_id=user.id, session_id=session_id, filename=path.name, data=data
                )
            except (OSError, UnsupportedDocument) as exc:
                print(f"{path}: {exc}", file=sys.stderr)
                failed += 1
                continue
            if not created:
                print(f"{path.name}: already uploaded as {document.id} ({document.status.value})", file=sys.stderr)
                continue

            async def report(done: int, total: int, name: str = path.name) -> None:
                bar(name, done, total)

            status = await ingestor.ingest(document, report)
            sys.stderr.write("\n")
            if status is not DocumentStatus.ready:
                async with sessionmaker() as db:
                    row = await db.get(type(document), document.id)
                print(f"{path.name}: failed: {row.error if row else 'unknown'}", file=sys.stderr)
                failed += 1
            else:
                print(f"{path.name}: ready ({document.id})")
        await retriever.close()
        return failed
    finally:
        await engine.dispose()
