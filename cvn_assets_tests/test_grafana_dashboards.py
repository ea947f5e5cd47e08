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


MODEL_REGISTRY = "Model Registry"  # filled by lifecycle actions, not by gates (test below)


def queries(only: str | None = None, but: str | None = None) -> list[tuple[str, str, str]]:
    return [(board["title"], panel["title"], target["rawSql"])
            for board in boards() if (only is None or board["title"] == only) and board["title"] != but
            for panel in board["panels"] for target in panel["targets"]]


def empty_panels(store: DiagnosticsStore, selected: list[tuple[str, str, str]]) -> list[str]:
    empty = []
    with store.engine.connect() as connection:
        for board, panel, sql in selected:
            rows = connection.execute(sa.text(sql)).fetchall()
            if not rows or all(value is None for row in rows for value in row):
                empty.append(f"{board} / {panel}")
    return empty


def test_dashboards_are_the_manuals_views_on_our_datasource():
    assert {board["title"] for board in boards()} == {"Testing & Backtest", "MLOps Overview", "Model Registry"}
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
                   "diagnostic", "reasons", "relaunch", "cvn_global_state", "timeframe", "cvn_model_backtests",
                   "qualifies", "cvn_model_drift", "band"):
        assert column in sql, f"§2/§14: {column} is not on any dashboard"


def test_every_query_returns_rows_from_real_gates(real_gates, postgres_url, tmp_path):
    store = DiagnosticsStore(postgres_url)
    store.migrate()
    for case in real_gates.values():
        store.replace_gate(case.report)
    fill_model_operations(store, real_gates["pass"], tmp_path / "objects")  # backtests, walk-forward, drift
    store.record_global_state(datetime.now(UTC), "YELLOW", "GREEN", [{"rule": "success_rate_70_90"}], {})

    empty = empty_panels(store, queries(but=MODEL_REGISTRY))
    store.close()
    assert queries(but=MODEL_REGISTRY) and empty == []


def test_every_model_registry_query_returns_rows_from_real_lifecycle_actions(real_gates, postgres_url, tmp_path,
                                                                              monkeypatch):
    """Champion, challengers, quarantined, pending approvals and the event log — from real actions."""
    from cvn_assets.acquisition.market_data import load_candles
    from cvn_assets.gate.model_registry import register_challengers, tracking_uri_from_env
    from cvn_assets.models.lifecycle import Lifecycle

    monkeypatch.chdir(tmp_path)
    store = DiagnosticsStore(postgres_url)
    store.migrate()
    case = real_gates["pass"]
    store.replace_gate(case.report)
    lifecycle = Lifecycle(tracking_uri_from_env(), store, origin="test")
    registered = {entry["crypto"]: entry["version"] for entry in register_challengers(
        case.report, lifecycle, case.pooled, lambda crypto: load_candles(case.report.spec, crypto))}
    assert set(registered) == {"SOLUSDC", "ADAUSDC"}
    for crypto, version in registered.items():
        lifecycle.approve(crypto, version, "ml_owner", "alice")
        lifecycle.approve(crypto, version, "operator", "bob")
        lifecycle.promote(crypto, version, "mo")
    lifecycle.killswitch("SOLUSDC", f"SOLUSDC@{registered['SOLUSDC']}", "live drawdown", "op")
    lifecycle.approve("ADAUSDC", registered["ADAUSDC"], "mlops_maintainer", "max", "meta-label refresh",
                      action="meta_training")

    assert empty_panels(store, queries(only=MODEL_REGISTRY)) == []
    with store.engine.connect() as connection:
        champion = dict(connection.execute(sa.text(queries(only=MODEL_REGISTRY)[0][2])).mappings().one())
        states = {row.crypto: row.state for row in connection.execute(sa.text(
            next(sql for _, panel, sql in queries(only=MODEL_REGISTRY) if panel == "Lifecycle state per crypto")))}
    assert champion["crypto"] == "ADAUSDC" and champion["origin_campaign"] == case.report.campaign_id
    assert champion["promoted_by"] == "mo" and float(champion["age_days"]) < 0.01
    assert states == {"ADAUSDC": "in production", "SOLUSDC": "no champion"}
    store.close()
