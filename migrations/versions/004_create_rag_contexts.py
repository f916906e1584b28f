"""create rag_contexts

Revision ID: 004
Revises: 003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONType, UTCDateTime

revision = "004"
down_revision = "003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rag_contexts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "message_id", sa.Uuid(), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, unique=True
        ),
        sa.Column("session_id", sa.Uuid(), sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("search_mode", sa.String(32), nullable=False),
        sa.Column("retrieved_documents", JSONType, nullable=False),
        sa.Column("generation_prompt", sa.Text(), nullable=True),
        sa.Column("llm_provider", sa.String(64), nullable=True),
        sa.Column("retrieval_time", sa.Float(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_rag_contexts_session_id", "rag_contexts", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_rag_contexts_session_id", table_name="rag_contexts")
    op.drop_table("rag_contexts")
