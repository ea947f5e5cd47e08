"""Model operations: backtest / walk-forward results per version, drift per (crypto, feature).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SIGNAL_FLOATS = (
    "f1_buy", "precision_buy", "recall_buy", "buy_rate", "baseline_f1_buy", "f1_buy_delta", "std_f1_buy",
    "screening_f1_buy", "last_fold_f1_buy", "screening_testing_gap", "sortino", "tp_pct", "sl_pct",
    "timeout_pct", "expectancy", "max_drawdown",
)
SIGNAL_INTEGERS = ("folds", "test_rows", "n_trades")


def upgrade() -> None:
    op.create_table(
        "cvn_model_backtests",
        sa.Column("run_id", sa.String(63), primary_key=True),
        sa.Column("crypto", sa.String(20), primary_key=True),
        sa.Column("version", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("diagnostic", sa.String(32), nullable=False),
        sa.Column("codes", sa.Text, nullable=False),
        sa.Column("qualifies", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        *(sa.Column(name, sa.Float, nullable=True) for name in SIGNAL_FLOATS),
        *(sa.Column(name, sa.Integer, nullable=True) for name in SIGNAL_INTEGERS),
        sa.Column("windows", sa.Text, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cvn_model_backtests_evaluated_at", "cvn_model_backtests", ["evaluated_at"])
    op.create_table(
        "cvn_model_drift",
        sa.Column("run_id", sa.String(63), primary_key=True),
        sa.Column("crypto", sa.String(20), primary_key=True),
        sa.Column("feature", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("statistic", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("band", sa.String(16), nullable=False),
        sa.Column("ks_statistic", sa.Float, nullable=False),
        sa.Column("ks_pvalue", sa.Float, nullable=False),
        sa.Column("wasserstein", sa.Float, nullable=False),
        sa.Column("reference_rows", sa.Integer, nullable=False),
        sa.Column("current_rows", sa.Integer, nullable=False),
        sa.Column("reference_mean", sa.Float, nullable=False),
        sa.Column("current_mean", sa.Float, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("training_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("training_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cvn_model_drift_evaluated_at", "cvn_model_drift", ["evaluated_at"])


def downgrade() -> None:
    op.drop_table("cvn_model_drift")
    op.drop_table("cvn_model_backtests")
