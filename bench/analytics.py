"""Analytics summary latency over 1 M messages on PostgreSQL (and a smaller SQLite set), with and without
the analytics indexes of migration 006, in one run.

    python -m bench.analytics [--messages 1000000] [--sqlite-messages 200000]

Rows are generated inside the database (generate_series / a recursive CTE), so seeding takes seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store import analytics
from store.db import create_engine, create_sessionmaker
from store.migrate import upgrade

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
USERS, SESSIONS = 2_000, 50_000
INDEXES = ("ix_messages_created_type", "ix_chat_sessions_created_at")

SEED_PG = """
INSERT INTO users (id, username, username_key, password_hash, preferences, is_active, is_admin, created_at, updated_at)
SELECT md5('u' || i)::uuid, 'u' || i, 'u' || i, 'x', '{}', true, false, now(), now()
FROM generate_series(1, :users) AS i;
INSERT INTO chat_sessions (id, user_id, session_type, rag_config, speech_config, metadata, is_archived,
                           message_count, created_at, updated_at)
SELECT md5('s' || i)::uuid, md5('u' || (i % :users + 1))::uuid, 'rag', '{}', '{}', '{}', false, 0,
       now() - interval '60 days', now()
FROM generate_series(1, :sessions) AS i;
INSERT INTO messages (id, session_id, user_id, message_type, content_type, content, status, created_at, is_deleted)
SELECT md5('m' || i)::uuid, md5('s' || (i % :sessions + 1))::uuid,
       CASE WHEN i % 2 = 0 THEN md5('u' || ((i % :sessions) % :users + 1))::uuid END,
       CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END::message_type, 'text',
       'question number ' || (i % 500), 'complete',
       now() - (i % 86400) * interval '60 seconds', false
FROM generate_series(1, :messages) AS i;
ANALYZE;
"""


async def _time_summary(engine: AsyncEngine, days: int, runs: int = 5) -> list[float]:
    sessionmaker = create_sessionmaker(engine)
    until = datetime.now(UTC)
    timings = []
    for _ in range(runs):
        async with sessionmaker() as db:
            started = time.perf_counter()
            await analytics.summary(db, until - timedelta(days=days), until)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


async def _drop_indexes(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for name in INDEXES:
            await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))


async def postgres(messages: int) -> dict[str, list[float]]:
    name = f"parley_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url)
        started = time.perf_counter()
        async with engine.begin() as conn:
            for statement in filter(str.strip, SEED_PG.split(";\n")):
                await conn.execute(text(statement), {"users": USERS, "sessions": SESSIONS, "messages": messages})
        print(f"postgres: seeded {messages:,} messages in {time.perf_counter() - started:.1f} s")
        results = {f"pg {days}d": await _time_summary(engine, days) for days in (1, 30)}
        await _drop_indexes(engine)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        results.update({f"pg {days}d, no analytics indexes": await _time_summary(engine, days) for days in (1, 30)})
        await engine.dispose()
        return results
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def sqlite(messages: int, folder: Path) -> dict[str, list[float]]:
    url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users (id, username, username_key, password_hash, preferences, is_active, is_admin,"
                " created_at, updated_at) VALUES ('00000000000000000000000000000001', 'u', 'u', 'x', '{}', 1, 0,"
                " datetime('now'), datetime('now'))"
            )
        )
        await conn.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :sessions)"
                " INSERT INTO chat_sessions (id, user_id, session_type, rag_config, speech_config, metadata,"
                " is_archived, message_count, created_at, updated_at)"
                " SELECT printf('%032x', i), '00000000000000000000000000000001', 'rag', '{}', '{}', '{}', 0, 0,"
                " datetime('now', '-60 days'), datetime('now') FROM n"
            ),
            {"sessions": SESSIONS // 10},
        )
        await conn.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :messages)"
                " INSERT INTO messages (id, session_id, user_id, message_type, content_type, content, status,"
                " created_at, is_deleted)"
                " SELECT printf('%032x', i + 1000000000), printf('%032x', i % :sessions + 1),"
                " CASE WHEN i % 2 = 0 THEN '00000000000000000000000000000001' END,"
                " CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END, 'text', 'question number ' || (i % 500),"
                " 'complete', datetime('now', '-' || (i % 86400) || ' minutes'), 0 FROM n"
            ),
            {"messages": messages, "sessions": SESSIONS // 10},
        )
        await conn.execute(text("ANALYZE"))
    print(f"sqlite: seeded {messages:,} messages in {time.perf_counter() - started:.1f} s")
    results = {f"sqlite {days}d": await _time_summary(engine, days) for days in (1, 30)}
    await _drop_indexes(engine)
    results.update({f"sqlite {days}d, no analytics indexes": await _time_summary(engine, days) for days in (1, 30)})
    await engine.dispose()
    return results


def _report(results: dict[str, list[float]]) -> None:
    print(f"{'summary over':<40} {'p50 ms':>10} {'max ms':>10}")
    for name, timings in results.items():
        print(f"{name:<40} {statistics.median(timings):>10.1f} {max(timings):>10.1f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--sqlite-messages", type=int, default=200_000)
    args = parser.parse_args()
    results = await postgres(args.messages)
    with tempfile.TemporaryDirectory() as folder:
        results.update(await sqlite(args.sqlite_messages, Path(folder)))
    _report(results)


if __name__ == "__main__":
    asyncio.run(main())
