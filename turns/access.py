"""Who may do what in a session: the one answer to "what is this user's role here", cached.

The owner (`chat_sessions.user_id`) does everything; a `member` reads, writes and asks; a `viewer` reads.
Anyone else is told the session does not exist, as before sessions could be shared.
"""

from __future__ import annotations

import enum
import uuid

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store import members, sessions
from store.cache import SESSION_TTL, Cache, access_key, session_key
from store.errors import Forbidden, NotFound
from store.schemas import SessionOut


class Role(enum.StrEnum):
    owner = "owner"
    member = "member"
    viewer = "viewer"


class Need(enum.IntEnum):
    """What an operation needs; a role grants every need up to its own."""

    read = 1
    write = 2
    manage = 3


GRANTS = {Role.viewer: Need.read, Role.member: Need.write, Role.owner: Need.manage}
REFUSALS = {
    Need.write: "viewers read this session but may not write to it",
    Need.manage: "only the session's owner may do this",
}


class SessionAccess(BaseModel):
    """The `session_access:{id}` entry: the owner and every member's role."""

    owner: uuid.UUID
    members: dict[uuid.UUID, Role]


def allows(role: Role | None, need: Need) -> bool:
    return role is not None and GRANTS[role] >= need


class Access:
    """Answers role questions from the cache (`session_access:{id}`, 1 h, dropped when a membership
    changes), or the database once."""

    def __init__(self, cache: Cache, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._cache = cache
        self._sessionmaker = sessionmaker

    async def _entry(self, session_id: uuid.UUID, db: AsyncSession | None) -> SessionAccess | None:
        key = access_key(session_id)
        entry = await self._cache.get(key, SessionAccess)
        if entry is not None:
            return entry
        if db is None:
            async with self._sessionmaker() as own:
                return await self._entry(session_id, own)
        try:
            session = await sessions.get_session(db, session_id)
        except NotFound:
            return None
        roles = {user_id: Role(role.value) for user_id, role in (await members.roles(db, session_id)).items()}
        entry = SessionAccess(owner=session.user_id, members=roles)
        await self._cache.put(key, entry, SESSION_TTL)
        return entry

    async def role(self, session_id: uuid.UUID, user_id: uuid.UUID, db: AsyncSession | None = None) -> Role | None:
        """The user's role in the session; None for a stranger or a session that does not exist."""
        entry = await self._entry(session_id, db)
        if entry is None:
            return None
        if entry.owner == user_id:
            return Role.owner
        return entry.members.get(user_id)

    async def require(
        self, session_id: uuid.UUID, user_id: uuid.UUID, need: Need, db: AsyncSession | None = None
    ) -> Role:
        """The user's role if it grants `need`; a stranger gets `NotFound`, a member short of it `Forbidden`."""
        role = await self.role(session_id, user_id, db)
        if role is None:
            raise NotFound("no such session")
        if not allows(role, need):
            raise Forbidden(REFUSALS[need], code="forbidden")
        return role

    async def session(
        self, session_id: uuid.UUID, user_id: uuid.UUID, need: Need, db: AsyncSession
    ) -> tuple[SessionOut, Role]:
        """The session (from the cache `session:{id}`, or the database) and the user's role, if it grants `need`."""
        role = await self.require(session_id, user_id, need, db)
        key = session_key(session_id)
        session = await self._cache.get(key, SessionOut)
        if session is None:
            session = SessionOut.model_validate(await sessions.get_session(db, session_id))
            await self._cache.put(key, session, SESSION_TTL)
        return session, role
