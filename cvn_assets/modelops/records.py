"""Model operations in the diagnostics database (Grafana's source): backtests and drift.

A run's rows are written in one transaction, replacing whatever that run id had (a re-run never
duplicates). Signal columns reuse the gate's column set and its checks (``_column_value``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from cvn_assets.diagnostics.store import DiagnosticsStore, _column_value, _row, _utc
from cvn_assets.diagnostics.tables import SIGNAL_FLOATS, SIGNAL_INTEGERS, model_backtests, model_drift
from cvn_assets.modelops.evaluation import VersionResult


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def record_results(store: DiagnosticsStore, results: Sequence[VersionResult]) -> None:
    rows = []
    for result in results:
        where = f"record_results {result.run_id}/{result.crypto} v{result.version}"
        rows.append({
            "run_id": result.run_id, "crypto": result.crypto, "version": result.version, "kind": result.kind,
            "role": result.role, "family": result.family, "diagnostic": result.diagnostic,
            "codes": ",".join(result.codes), "qualifies": result.qualifies, "reasons": json.dumps(result.reasons),
            "action": result.action,
            **{name: _column_value(where, result.signals, name, float) for name in SIGNAL_FLOATS},
            **{name: _column_value(where, result.signals, name, int) for name in SIGNAL_INTEGERS},
            "windows": json.dumps(result.windows, default=str),
            "window_start": _moment(result.window.start_ms), "window_end": _moment(result.window.end_ms),
            "evaluated_at": _utc(result.evaluated_at),
        })
    if not rows:
        return
    with store.engine.begin() as connection:
        for run_id in sorted({row["run_id"] for row in rows}):
            connection.execute(sa.delete(model_backtests).where(model_backtests.c.run_id == run_id))
        connection.execute(sa.insert(model_backtests), rows)


def backtest_rows(store: DiagnosticsStore, run_id: str) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        found = connection.execute(sa.select(model_backtests).where(model_backtests.c.run_id == run_id)
                                   .order_by(model_backtests.c.crypto, model_backtests.c.version)).mappings().all()
    return [_row(row) for row in found]


def record_drift(store: DiagnosticsStore, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with store.engine.begin() as connection:
        for run_id in sorted({row["run_id"] for row in rows}):
            connection.execute(sa.delete(model_drift).where(model_drift.c.run_id == run_id))
        connection.execute(sa.insert(model_drift), list(rows))


def latest_drift(store: DiagnosticsStore) -> dict[str, list[dict[str, Any]]]:
    """For each crypto, the rows of its most recent monitoring run (every feature, prediction, label)."""
    newest = (sa.select(model_drift.c.crypto, sa.func.max(model_drift.c.evaluated_at).label("at"))
              .group_by(model_drift.c.crypto).subquery())
    query = (sa.select(model_drift)
             .join(newest, sa.and_(model_drift.c.crypto == newest.c.crypto, model_drift.c.evaluated_at == newest.c.at))
             .order_by(model_drift.c.crypto, model_drift.c.run_id, model_drift.c.feature))
    with store.engine.connect() as connection:
        found = connection.execute(query).mappings().all()
    latest: dict[str, list[dict[str, Any]]] = {}
    runs: dict[str, str] = {}
    for row in found:  # two runs at the same instant: keep one, deterministically
        if runs.setdefault(row["crypto"], row["run_id"]) == row["run_id"]:
            latest.setdefault(row["crypto"], []).append(_row(row))
    return latest
