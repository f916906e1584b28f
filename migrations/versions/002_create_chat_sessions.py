"""create chat_sessions

Revision ID: 002
Revises: 001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONType, UTCDateTime

revision = "002"
down_revision = "001"
branch_labels = None
depends_on = None

session_type = sa.Enum("rag", "speech", "mixed", name="session_type")


def upgrade() -> None:
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("session_type", session_type, nullable=False),
        sa.Column("rag_config", JSONType, nullable=False),
        sa.Column("speech_config", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("is_archived", sa.Boolean(), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_message_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_chat_sessions_user_last_message", "chat_sessions", ["user_id", "last_message_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_sessions_user_last_message", table_name="chat_sessions")
    op.drop_table("chat_sessions")
    session_type.drop(op.get_bind(), checkfirst=True)
