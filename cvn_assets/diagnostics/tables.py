"""The diagnostics tables Grafana reads (names are a contract: DESIGN.md, deploy/grafana/).

Numbers are columns, one per golden signal, so a dashboard query needs no JSON operator; the
few structured values (missing keys, the campaign spec, rule lists) are JSON text.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

SIGNAL_FLOATS = (
    "f1_buy", "precision_buy", "recall_buy", "buy_rate", "baseline_f1_buy", "f1_buy_delta", "std_f1_buy",
    "screening_f1_buy", "last_fold_f1_buy", "screening_testing_gap", "sortino", "tp_pct", "sl_pct",
    "timeout_pct", "expectancy", "max_drawdown",
)
SIGNAL_INTEGERS = ("folds", "test_rows", "n_trades")

gate_verdicts = sa.Table(
    "cvn_gate_verdicts", metadata,
    sa.Column("campaign_id", sa.String(63), primary_key=True),
    sa.Column("crypto_group", sa.String(64), nullable=False),
    sa.Column("verdict", sa.String(32), nullable=False),
    sa.Column("transport_suspect", sa.Boolean, nullable=False),
    sa.Column("n_expected", sa.Integer, nullable=False),
    sa.Column("n_present", sa.Integer, nullable=False),
    sa.Column("n_candidates", sa.Integer, nullable=True),
    sa.Column("missing", sa.Text, nullable=False),
    sa.Column("codes", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("spec", sa.Text, nullable=False),
)

crypto_signals = sa.Table(
    "cvn_crypto_signals", metadata,
    sa.Column("campaign_id", sa.String(63), primary_key=True),
    sa.Column("crypto", sa.String(20), primary_key=True),
    sa.Column("crypto_group", sa.String(64), nullable=False),
    sa.Column("family", sa.String(32), nullable=False),
    sa.Column("diagnostic", sa.String(32), nullable=False),
    sa.Column("codes", sa.Text, nullable=False),
    sa.Column("candidate", sa.Boolean, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("relaunch", sa.Text, nullable=True),
    *(sa.Column(name, sa.Float, nullable=True) for name in SIGNAL_FLOATS),
    *(sa.Column(name, sa.Integer, nullable=True) for name in SIGNAL_INTEGERS),
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

global_state = sa.Table(
    "cvn_global_state", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("previous_state", sa.String(8), nullable=True),
    sa.Column("rules", sa.Text, nullable=False),
    sa.Column("signals", sa.Text, nullable=False),
    # 0003: one row per evaluation, with who evaluated, what was unknown and each §2 signal as a column
    *(sa.Column(name, kind, nullable=True) for name, kind in (
        ("source", sa.String(64)), ("unknown", sa.Text), ("rules_fired", sa.Integer),
        ("unknown_count", sa.Integer), ("routing", sa.Text))),
    *(sa.Column(name, sa.Float, nullable=True) for name in (
        "success_rate", "latency_ratio", "disk_percent", "memory_percent", "cpu_percent",
        "model_freshness_days")),
    *(sa.Column(name, sa.Integer, nullable=True) for name in (
        "oom_kills", "pods_down", "restarts", "challenger_count", "queued_runs", "started_runs")),
)

# Per-job latency of each evaluation (§2 pipeline_latency, §9.5): Pipeline Health's duration vs p95.
pipeline_latency = sa.Table(
    "cvn_pipeline_latency", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("global_state_id", sa.Integer, nullable=False, index=True),
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("job", sa.String(128), nullable=False),
    sa.Column("seconds", sa.Float, nullable=True),
    sa.Column("p95_seconds", sa.Float, nullable=True),
    sa.Column("ratio", sa.Float, nullable=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

# §7 diagnostic codes of the platform (PIPELINE_DEGRADED, INFRA_SATURATED), with the evaluation
# (cvn_global_state.id) that found them; run anomalies (RUN_TOO_LONG) from the run sensors.
state_diagnostics = sa.Table(
    "cvn_state_diagnostics", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("global_state_id", sa.Integer, nullable=True, index=True),
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, index=True),
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
