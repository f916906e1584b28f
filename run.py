"""Parley's command line: `python run.py serve|migrate|createuser|ingest|reindex|models` (serve is the default)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import uuid
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from core.auth import Auth
from core.logs import access_log_options
from core.logs import configure as configure_logging
from core.settings import Settings, SettingsError, load_jwt_secret
from server.app import create_app
from server.ingest_command import ingest_paths
from server.models_command import VOSK_BASE_URL, fetch_vosk
from server.reindex_command import reindex
from store import users
from store.db import create_engine, create_sessionmaker
from store.errors import Conflict
from store.migrate import upgrade


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = replace(
        settings, host=args.host or settings.host, port=args.port if args.port is not None else settings.port
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, **access_log_options())
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    print(f"database is at the newest revision: {settings.database_url.split('@')[-1]}")
    return 0


async def _create_user(settings: Settings, username: str, password: str, email: str | None, admin: bool) -> None:
    engine = create_engine(settings.database_url)
    auth = Auth(load_jwt_secret(settings), settings.jwt_ttl_seconds)
    try:
        async with create_sessionmaker(engine)() as db:
            await users.create_user(
                db, username=username, password_hash=await auth.hash_password(password), email=email, is_admin=admin
            )
            await db.commit()
    finally:
        await engine.dispose()


async def _make_admin(settings: Settings, username: str) -> bool:
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as db:
            user = await users.find_by_username(db, username)
            if user is None:
                return False
            await users.update_profile(db, user, {"is_admin": True})
            await db.commit()
            return True
    finally:
        await engine.dispose()


def _createuser(settings: Settings, args: argparse.Namespace) -> int:
    if args.admin and args.password is None and asyncio.run(_make_admin(settings, args.username)):
        print(f"{args.username} is now an admin")
        return 0
    password = args.password or getpass.getpass("password: ")
    if len(password) < 8:
        print("the password needs at least 8 characters", file=sys.stderr)
        return 2
    try:
        asyncio.run(_create_user(settings, args.username, password, args.email, args.admin))
    except Conflict as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(f"created {'admin' if args.admin else 'user'} {args.username}")
    return 0


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    session_id = uuid.UUID(args.session) if args.session else None
    failed = asyncio.run(ingest_paths(settings, args.user, [Path(p) for p in args.paths], session_id))
    return 1 if failed else 0


def _reindex(settings: Settings, _args: argparse.Namespace) -> int:
    return 1 if asyncio.run(reindex(settings)) else 0


def _models(settings: Settings, args: argparse.Namespace) -> int:
    base_url = os.environ.get("VOSK_MODEL_BASE_URL") or VOSK_BASE_URL
    return fetch_vosk(args.language, settings.data_dir / "models", base_url)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve HTTP and Socket.IO (default)")
    serve.add_argument("--host", help="address to bind (default HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default PORT or 8000)")
    commands.add_parser("migrate", help="upgrade the database to the newest revision")
    create = commands.add_parser("createuser", help="create a user account")
    create.add_argument("username")
    create.add_argument("--email")
    create.add_argument(
        "--admin", action="store_true", help="may read analytics and the audit log (promotes an existing user)"
    )
    create.add_argument("--password", help="(prompted for when omitted)")
    ingest = commands.add_parser("ingest", help="add documents for a user (with a progress bar)")
    ingest.add_argument("paths", nargs="+", help=".txt, .md, .html or .pdf files")
    ingest.add_argument("--user", required=True, help="the owner's username")
    ingest.add_argument("--session", help="attach the documents to this session id")
    commands.add_parser("reindex", help="rebuild every document's vectors from its stored file (with a progress bar)")
    models = commands.add_parser("models", help="fetch a speech model (where the internet is reachable)")
    models.add_argument("kind", choices=["vosk"])
    models.add_argument("language", help="e.g. en-us")
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or sys.argv[1:])])

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    handlers = {
        "serve": _serve,
        "migrate": _migrate,
        "createuser": _createuser,
        "ingest": _ingest,
        "reindex": _reindex,
        "models": _models,
    }
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
