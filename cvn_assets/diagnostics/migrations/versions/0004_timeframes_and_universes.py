"""Timeframe of every gate row; cvntrade_universes, the crypto groups' source of truth (manual §11).

Rows written before timeframes existed were all 5-minute campaigns: the column defaults to '5m'.
The group column is ``crypto_group`` (``group`` is an SQL keyword), as in the other tables.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("cvn_gate_verdicts", "cvn_crypto_signals"):
        op.add_column(table, sa.Column("timeframe", sa.String(4), nullable=False, server_default="5m"))
    op.create_table(
        "cvntrade_universes",
        sa.Column("crypto_group", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(20), primary_key=True),
        sa.Column("core", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cvntrade_universes")
    for table in ("cvn_crypto_signals", "cvn_gate_verdicts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("timeframe")
