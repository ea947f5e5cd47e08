"""Model lifecycle: audit trail (cvn_model_events), approvals, registry roles mirror.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cvn_model_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("crypto", sa.String(20), nullable=False),
        sa.Column("version", sa.String(16), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approvals", sa.Text, nullable=False),
        sa.Column("before_aliases", sa.Text, nullable=False),
        sa.Column("after_aliases", sa.Text, nullable=True),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("applied", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("origin", sa.String(128), nullable=False),
        sa.Column("resumes", sa.Integer, nullable=True),
    )
    op.create_index("ix_cvn_model_events_occurred_at", "cvn_model_events", ["occurred_at"])
    op.create_index("ix_cvn_model_events_crypto", "cvn_model_events", ["crypto"])
    op.create_table(
        "cvn_model_approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("crypto", sa.String(20), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("consumed_event_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_cvn_model_approvals_pending", "cvn_model_approvals", ["crypto", "version", "action"])
    op.create_table(
        "cvn_model_roles",
        sa.Column("crypto", sa.String(20), primary_key=True),
        sa.Column("version", sa.String(16), primary_key=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("campaign_id", sa.String(63), nullable=True),
        sa.Column("origin", sa.String(64), nullable=True),
        sa.Column("diagnostic", sa.String(32), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage_by", sa.String(128), nullable=True),
        sa.Column("stage_reason", sa.Text, nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cvn_model_roles")
    op.drop_table("cvn_model_approvals")
    op.drop_table("cvn_model_events")
