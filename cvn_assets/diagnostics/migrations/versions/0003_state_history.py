"""Global state history: every evaluation a row with its §2 signals as columns; per-job latency;
§7 platform diagnostics (PIPELINE_DEGRADED, INFRA_SATURATED) and run anomalies (RUN_TOO_LONG).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATE_COLUMNS = (
    ("source", sa.String(64)), ("unknown", sa.Text), ("rules_fired", sa.Integer), ("unknown_count", sa.Integer),
    ("routing", sa.Text),
    *((name, sa.Float) for name in ("success_rate", "latency_ratio", "disk_percent", "memory_percent",
                                    "cpu_percent", "model_freshness_days")),
    *((name, sa.Integer) for name in ("oom_kills", "pods_down", "restarts", "challenger_count", "queued_runs",
                                      "started_runs")),
)


def upgrade() -> None:
    with op.batch_alter_table("cvn_global_state") as batch:
        for name, kind in STATE_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_table(
        "cvn_pipeline_latency",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("global_state_id", sa.Integer, nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job", sa.String(128), nullable=False),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("p95_seconds", sa.Float, nullable=True),
        sa.Column("ratio", sa.Float, nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_cvn_pipeline_latency_global_state_id", "cvn_pipeline_latency", ["global_state_id"])
    op.create_index("ix_cvn_pipeline_latency_evaluated_at", "cvn_pipeline_latency", ["evaluated_at"])
    op.create_table(
        "cvn_state_diagnostics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("global_state_id", sa.Integer, nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(2), nullable=False),
        sa.Column("state", sa.String(8), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("job", sa.String(128), nullable=True),
        sa.Column("campaign_id", sa.String(63), nullable=True),
        sa.Column("step", sa.String(256), nullable=True),
        sa.Column("seconds", sa.Float, nullable=True),
        sa.Column("values", sa.Text, nullable=False),
    )
    op.create_index("ix_cvn_state_diagnostics_global_state_id", "cvn_state_diagnostics", ["global_state_id"])
    op.create_index("ix_cvn_state_diagnostics_evaluated_at", "cvn_state_diagnostics", ["evaluated_at"])


def downgrade() -> None:
    op.drop_table("cvn_state_diagnostics")
    op.drop_table("cvn_pipeline_latency")
    with op.batch_alter_table("cvn_global_state") as batch:
        for name, _ in reversed(STATE_COLUMNS):
            batch.drop_column(name)
