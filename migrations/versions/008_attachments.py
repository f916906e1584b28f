"""attachments, and documents scoped to a session

Revision ID: 008
Revises: 007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision = "008"
down_revision = "007"
branch_labels = None
depends_on = None

LIBRARY = sa.text("session_id IS NULL")


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("session_id", sa.Uuid(), sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.Uuid(), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("thumbnail_key", sa.String(255), nullable=True),
        sa.Column("document_id", sa.Uuid(), sa.ForeignKey("documents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("message_id"),
    )
    op.create_index("ix_attachments_user_id", "attachments", ["user_id"])
    op.create_index("ix_attachments_session_created", "attachments", ["session_id", "created_at"])
    # one copy of a file per scope: the owner's library, or one session
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint("uq_documents_user_sha256", type_="unique")
    op.create_index(
        "uq_documents_library_sha256",
        "documents",
        ["user_id", "sha256"],
        unique=True,
        postgresql_where=LIBRARY,
        sqlite_where=LIBRARY,
    )
    op.create_index("uq_documents_session_sha256", "documents", ["user_id", "session_id", "sha256"], unique=True)
    op.create_index("ix_documents_session_id", "documents", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_documents_session_id", table_name="documents")
    op.drop_index("uq_documents_session_sha256", table_name="documents")
    op.drop_index("uq_documents_library_sha256", table_name="documents")
    # session copies of a library file would break the old constraint: they go back to one copy
    op.execute(
        "DELETE FROM documents WHERE session_id IS NOT NULL AND EXISTS (SELECT 1 FROM documents AS other "
        "WHERE other.user_id = documents.user_id AND other.sha256 = documents.sha256 AND other.id <> documents.id "
        "AND (other.session_id IS NULL OR other.created_at < documents.created_at))"
    )
    with op.batch_alter_table("documents") as batch:
        batch.create_unique_constraint("uq_documents_user_sha256", ["user_id", "sha256"])
    op.drop_index("ix_attachments_session_created", table_name="attachments")
    op.drop_index("ix_attachments_user_id", table_name="attachments")
    op.drop_table("attachments")
