"""Every SQL query of the Grafana dashboards runs on PostgreSQL filled by real gates, and returns rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import yaml

from cvn_assets.diagnostics.store import DiagnosticsStore
from cvn_assets_tests.fixtures.modelops import fill_model_operations

GRAFANA = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def boards() -> list[dict]:
    return [json.loads(path.read_text()) for path in DASHBOARDS]


def queries() -> list[tuple[str, str, str]]:
    return [(board["title"], panel["title"], target["rawSql"])
            for board in boards() for panel in board["panels"] for target in panel["targets"]]


def test_dashboards_are_the_manuals_views_on_our_datasource():
    assert {board["title"] for board in boards()} == {"Testing & Backtest", "MLOps Overview"}
    datasource = yaml.safe_load((GRAFANA / "datasource.yaml").read_text())["datasources"][0]
    assert datasource["type"] == "grafana-postgresql-datasource"
    assert "password" not in json.dumps(datasource.get("jsonData", {}))  # secrets only from the environment
    provider = yaml.safe_load((GRAFANA / "dashboards.yaml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]
    for board in boards():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{board['title']}: panel ids must be unique"
        assert board["uid"].startswith("cvn-")
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == datasource["uid"] and target["rawQuery"] is True
                assert "$__" not in target["rawSql"], f"{panel['title']}: Grafana macros are not run by this test"


def test_the_dashboards_show_the_golden_signals_of_the_manual():
    sql = " ".join(query for _, _, query in queries())
    for column in ("f1_buy", "baseline_f1_buy", "f1_buy_delta", "screening_f1_buy", "last_fold_f1_buy",
                   "screening_testing_gap", "std_f1_buy", "sortino", "tp_pct", "sl_pct", "timeout_pct",
                   "diagnostic", "reasons", "relaunch", "cvn_global_state", "cvn_model_backtests", "qualifies",
                   "cvn_model_drift", "band"):
        assert column in sql, f"§2/§14: {column} is not on any dashboard"


def test_every_query_returns_rows_from_real_gates(real_gates, postgres_url, tmp_path):
    store = DiagnosticsStore(postgres_url)
    store.migrate()
    for case in real_gates.values():
        store.replace_gate(case.report)
    fill_model_operations(store, real_gates["pass"], tmp_path / "objects")  # backtests, walk-forward, drift
    store.record_global_state(datetime.now(UTC), "YELLOW", "GREEN", [{"rule": "success_rate_70_90"}], {})

    empty = []
    with store.engine.connect() as connection:
        for board, panel, sql in queries():
            rows = connection.execute(sa.text(sql)).fetchall()
            if not rows or all(value is None for row in rows for value in row):
                empty.append(f"{board} / {panel}")
    store.close()
    assert queries() and empty == []
