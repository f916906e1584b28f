"""The bytes of message attachments and their thumbnails, to the session's owner (or the sender)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from server import keys
from server.deps import authenticate, db_session, require
from server.endpoints import Endpoint
from server.errors import ApiError
from server.validation import path_uuid
from store import attachments
from store.errors import NotFound
from store.models import Attachment
from store.schemas import ATTACHMENTS_PATH
from turns.access import Need

#: stored images were re-encoded by us and are shown inline; documents download, never render here
INLINE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
SERVED_TYPES = ",".join((*INLINE_TYPES, "application/pdf", "text/plain", "text/markdown", "text/html"))


async def _owned(request: web.Request) -> Attachment:
    async with db_session(request) as db:
        user = await authenticate(request, db, query_token=True)  # `?token=` for <img src>
        row = await attachments.get_live_attachment(db, path_uuid(request, "attachment_id"))
        if row.user_id != user.id:  # its sender, or anyone who may read the session
            try:
                await require(request, db, row.session_id, user.id, Need.read)
            except NotFound:
                raise NotFound("no such attachment") from None
        return row


def _file(path: Path, content_type: str, disposition: str) -> web.FileResponse:
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )


async def _existing(path: Path) -> Path:
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(404, "not_found", "the attachment's file is gone")
    return path


async def get_attachment(request: web.Request) -> web.StreamResponse:
    """An attachment's bytes with their type: images inline, documents as a download."""
    row = await _owned(request)
    path = await _existing(request.app[keys.ATTACHMENTS].path(row.storage_key))
    kind = "inline" if row.content_type in INLINE_TYPES else "attachment"
    disposition = f"{kind}; filename*=UTF-8''{quote(row.filename, safe='')}"
    return _file(path, row.content_type, disposition)


async def get_thumbnail(request: web.Request) -> web.StreamResponse:
    """A small WebP of an image attachment."""
    row = await _owned(request)
    if row.thumbnail_key is None:
        raise ApiError(404, "not_found", "this attachment has no thumbnail")
    path = await _existing(request.app[keys.ATTACHMENTS].path(row.thumbnail_key))
    return _file(path, "image/webp", "inline")


ENDPOINTS = (
    Endpoint(
        "GET",
        ATTACHMENTS_PATH + "/{attachment_id}",
        get_attachment,
        "An attachment's bytes (`?token=` works for <img src>)",
        "messages",
        errors=(401, 404),
        response_media_type=SERVED_TYPES,
    ),
    Endpoint(
        "GET",
        ATTACHMENTS_PATH + "/{attachment_id}/thumbnail",
        get_thumbnail,
        "An image attachment's thumbnail (WebP)",
        "messages",
        errors=(401, 404),
        response_media_type="image/webp",
    ),
)
