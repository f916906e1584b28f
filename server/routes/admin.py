"""Admin-only reading: usage analytics and the audit log."""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.deps import db_session, require_admin
from server.endpoints import Endpoint, json_response
from server.schemas import AnalyticsOut, AnalyticsQuery, AuditEventOut, AuditQuery
from server.validation import parse_query
from store import analytics, audit
from store.schemas import Page


async def analytics_summary(request: web.Request) -> web.Response:
    """Sessions, messages, popular questions, engagement and error rates in a time range."""
    async with db_session(request) as db:
        await require_admin(request, db)
        query = parse_query(request, AnalyticsQuery)
        encrypted = request.app[keys.SETTINGS].content_encryption_key is not None
        figures = await analytics.summary(db, query.since, query.until, top=query.top, content_encrypted=encrypted)
    return json_response(AnalyticsOut.model_validate(figures))


async def audit_events(request: web.Request) -> web.Response:
    """Audit events, newest first, filtered by user, action, outcome and time."""
    async with db_session(request) as db:
        await require_admin(request, db)
        query = parse_query(request, AuditQuery)
        rows, total = await audit.list_events(
            db,
            user_id=query.user_id,
            action=query.action,
            outcome=query.outcome,
            since=query.since,
            until=query.until,
            limit=query.limit,
            offset=query.offset,
        )
    items = [AuditEventOut.model_validate(row) for row in rows]
    return json_response(Page[AuditEventOut](items=items, total=total, limit=query.limit, offset=query.offset))


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/v1/analytics/summary",
        analytics_summary,
        "Usage analytics (admins)",
        "admin",
        query=AnalyticsQuery,
        response=AnalyticsOut,
        errors=(401, 403, 422),
    ),
    Endpoint(
        "GET",
        "/api/v1/audit",
        audit_events,
        "The audit log (admins)",
        "admin",
        query=AuditQuery,
        response=Page[AuditEventOut],
        errors=(401, 403, 422),
    ),
)
