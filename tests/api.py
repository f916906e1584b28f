"""A thin REST client for tests: real HTTP, JSON in and out, nothing hidden."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass
from typing import IO, Any

import jwt
from aiohttp import ClientSession, FormData


def login_of(token: str) -> uuid.UUID:
    """The login a token belongs to (its `sid` claim), read without checking the signature."""
    return uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sid"])


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        """The error code of an error reply."""
        return self.body["error"]["code"] if isinstance(self.body, dict) and "error" in self.body else None


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    def __init__(self, base_url: str, http: ClientSession) -> None:
        self.base = base_url.rstrip("/")
        self.http = http

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        token: str | None = None,
        data: bytes | str | IO[bytes] | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        """One request; the reply's body is JSON when the server said so, else text."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(
            method, self.base + path, json=json, data=data, headers=all_headers, params=params
        ) as response:
            body: Any = await response.json() if response.content_type == "application/json" else await response.text()
            return Reply(response.status, body, dict(response.headers))

    async def register(self, username: str | None = None, password: str = "correct horse", **extra: Any) -> Account:
        """A new account, signed in."""
        username = username or f"user_{uuid.uuid4().hex[:12]}"
        reply = await self.call("POST", "/api/v1/users/register", {"username": username, "password": password, **extra})
        assert reply.status == 201, reply.body
        return Account(reply.body["user"]["id"], username, password, reply.body["access_token"])

    async def new_session(self, account: Account, **fields: Any) -> dict[str, Any]:
        reply = await self.call("POST", "/api/v1/chat/sessions", fields, token=account.token)
        assert reply.status == 201, reply.body
        return dict(reply.body)

    async def post_message(self, account: Account, session_id: str, content: str, **extra: Any) -> Reply:
        return await self.call(
            "POST", f"/api/v1/chat/sessions/{session_id}/messages", {"content": content, **extra}, token=account.token
        )

    async def upload(
        self, account: Account, filename: str, data: bytes, *, content_type: str | None = None, **fields: str
    ) -> Reply:
        """POST /api/v1/documents with `data` as multipart field `file` named `filename` (its type guessed from
        the name unless given), and `fields` beside it."""
        form = FormData()
        # a stream, not bytes: aiohttp warns (an error here) that a large bytes body could block the loop
        form.add_field("file", io.BytesIO(data), filename=filename, content_type=content_type)
        for name, value in fields.items():
            form.add_field(name, value)
        async with self.http.post(f"{self.base}/api/v1/documents", data=form, headers=account.headers) as response:
            body: Any = await response.json() if response.content_type == "application/json" else await response.text()
            return Reply(response.status, body, dict(response.headers))

    async def attach(
        self,
        account: Account,
        session_id: str,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        **fields: str,
    ) -> Reply:
        """POST a message with an attachment: multipart `file` named `filename`, and text parts `fields`
        (`content`, `client_id`)."""
        form = FormData()
        form.add_field("file", io.BytesIO(data), filename=filename, content_type=content_type)
        for name, value in fields.items():
            form.add_field(name, value)
        url = f"{self.base}/api/v1/chat/sessions/{session_id}/messages"
        async with self.http.post(url, data=form, headers=account.headers) as response:
            body: Any = await response.json() if response.content_type == "application/json" else await response.text()
            return Reply(response.status, body, dict(response.headers))

    async def document_ready(self, account: Account, document_id: str, seconds: float = 60) -> dict[str, Any]:
        """The document once its ingestion ended, `ready` or `failed`."""
        async with asyncio.timeout(seconds):
            while True:
                reply = await self.call("GET", f"/api/v1/documents/{document_id}", token=account.token)
                if reply.body["status"] in ("ready", "failed"):
                    return dict(reply.body)
                await asyncio.sleep(0.05)
