"""session members: shared rooms

Revision ID: 009
Revises: 008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.types import UTCDateTime

revision = "009"
down_revision = "008"
branch_labels = None
depends_on = None

member_role = sa.Enum("member", "viewer", name="member_role")


def upgrade() -> None:
    op.create_table(
        "session_members",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("session_id", sa.Uuid(), sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role", member_role, nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("session_id", "user_id", name="uq_session_members_session_user"),
    )
    op.create_index("ix_session_members_user_id", "session_members", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_session_members_user_id", table_name="session_members")
    op.drop_table("session_members")
    member_role.drop(op.get_bind(), checkfirst=True)
