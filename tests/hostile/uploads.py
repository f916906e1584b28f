"""Multipart uploads for the hostile tests."""

from __future__ import annotations

import io

from aiohttp import FormData

from tests.api import Account, Api, Reply


async def upload(api: Api, account: Account, filename: str, data: bytes, **fields: str) -> Reply:
    """POST /api/v1/documents with `data` in field `file` named `filename`."""
    form = FormData()
    form.add_field("file", io.BytesIO(data), filename=filename, content_type="application/octet-stream")
    for name, value in fields.items():
        form.add_field(name, value)
    async with api.http.post(f"{api.base}/api/v1/documents", data=form, headers=account.headers) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return Reply(response.status, body, dict(response.headers))
