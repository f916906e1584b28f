"""REST routes under /api/v1, one module per resource."""

from __future__ import annotations

from server import asyncapi, openapi
from server.endpoints import Endpoint
from server.routes import (
    admin,
    attachments,
    documents,
    health,
    members,
    messages,
    privacy,
    rag,
    sessions,
    speech,
    users,
)

API_PREFIX = "/api/v1"


def all_endpoints() -> tuple[Endpoint, ...]:
    """Every REST endpoint of the app, in documentation order."""
    return (
        *health.ENDPOINTS,
        *openapi.ENDPOINTS,
        *asyncapi.ENDPOINTS,
        *users.ENDPOINTS,
        *privacy.ENDPOINTS,
        *sessions.ENDPOINTS,
        *members.ENDPOINTS,
        *messages.ENDPOINTS,
        *attachments.ENDPOINTS,
        *rag.ENDPOINTS,
        *documents.ENDPOINTS,
        *speech.ENDPOINTS,
        *admin.ENDPOINTS,
    )
