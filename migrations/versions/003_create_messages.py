"""create messages

Revision ID: 003
Revises: 002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import JSONType, UTCDateTime

revision = "003"
down_revision = "002"
branch_labels = None
depends_on = None

message_type = sa.Enum("user", "assistant", "system", name="message_type")
content_type = sa.Enum("text", "audio", "image", "file", name="content_type")
message_status = sa.Enum("streaming", "complete", "cancelled", "failed", name="message_status")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("session_id", sa.Uuid(), sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("message_type", message_type, nullable=False),
        sa.Column("content_type", content_type, nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("audio_url", sa.String(2048), nullable=True),
        sa.Column("rag_context", JSONType, nullable=True),
        sa.Column("processing_time", sa.Float(), nullable=True),
        sa.Column("tokens_used", sa.Integer(), nullable=True),
        sa.Column("status", message_status, nullable=False),
        sa.Column("reply_to_id", sa.Uuid(), sa.ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("edited_at", UTCDateTime(), nullable=True),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("session_id", "client_id", name="uq_messages_session_client_id"),
    )
    op.create_index("ix_messages_session_created", "messages", ["session_id", "created_at"])
    op.create_index("ix_messages_user_id", "messages", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_user_id", table_name="messages")
    op.drop_index("ix_messages_session_created", table_name="messages")
    op.drop_table("messages")
    bind = op.get_bind()
    for enum in (message_status, content_type, message_type):
        enum.drop(bind, checkfirst=True)
