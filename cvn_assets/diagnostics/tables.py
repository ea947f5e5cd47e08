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
    sa.Column("timeframe", sa.String(4), nullable=False, server_default="5m"),
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
    sa.Column("timeframe", sa.String(4), nullable=False, server_default="5m"),
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

# One row per notification decided (a transition, a repeat, a retry), keyed by what the deciding
# evaluator knew: the primary key lets exactly one of several concurrent evaluators insert it,
# and only that one sends (state/check.py).
alert_claims = sa.Table(
    "cvn_alert_claims", metadata,
    sa.Column("claim_key", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("claimed_by", sa.String(128), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
)

# Manual §11: the crypto groups. One row per (group, symbol); ``core`` is the group's flag (the
# state rules watch core models more closely). Seeded from contracts/universes.yaml by
# `cvn universes sync`; when it holds rows, it is where campaigns and the state rules read groups.
universes = sa.Table(
    "cvntrade_universes", metadata,
    sa.Column("crypto_group", sa.String(64), primary_key=True),
    sa.Column("symbol", sa.String(20), primary_key=True),
    sa.Column("core", sa.Boolean, nullable=False),
)

# Model lifecycle (manual §4, §10): the audit trail, the approvals, and a mirror of the registry's
# roles for Grafana (MLflow holds the aliases; the dashboard reads SQL only).
model_events = sa.Table(
    "cvn_model_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("crypto", sa.String(20), nullable=False, index=True),
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

model_approvals = sa.Table(
    "cvn_model_approvals", metadata,
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
    sa.Index("ix_cvn_model_approvals_pending", "crypto", "version", "action"),
)

model_roles = sa.Table(
    "cvn_model_roles", metadata,
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

# Model operations (cvn_assets/modelops): one row per (run, crypto, version) of a backtest or a
# walk-forward — the gate's signals on a later window and whether the version still qualifies.
model_backtests = sa.Table(
    "cvn_model_backtests", metadata,
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
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

# Drift of a champion (monitoring): one row per (run, crypto, feature) — each model input, plus
# 'proba_buy' (prediction drift) and 'buy_rate' (label drift); PSI decides the band.
model_drift = sa.Table(
    "cvn_model_drift", metadata,
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
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
