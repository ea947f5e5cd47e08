"""Every SQL query of the Grafana dashboards runs on PostgreSQL filled by real gates, and returns rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import yaml

from cvn_assets.diagnostics.store import DiagnosticsStore
from cvn_assets_tests.fixtures.campaigns import passing_campaign, small_spec

GRAFANA = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def queries() -> list[tuple[str, str, str]]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((board["title"], panel["title"], target["rawSql"]))
    return found


def test_dashboards_are_the_manuals_views_on_our_datasource():
    titles = {json.loads(path.read_text())["title"] for path in DASHBOARDS}
    assert titles == {"Testing & Backtest", "MLOps Overview"}
    datasource = yaml.safe_load((GRAFANA / "datasource.yaml").read_text())["datasources"][0]
    for board, panel, _ in queries():
        assert "$__" not in _, f"{board} / {panel}: Grafana macros are not run by this test"
    assert all(p["datasource"]["uid"] == datasource["uid"] for path in DASHBOARDS
               for p in json.loads(path.read_text())["panels"])


def test_every_query_returns_rows_from_real_gates(pass_harness, postgres_url):
    store = DiagnosticsStore(postgres_url)
    store.migrate()
    report, _ = passing_campaign(pass_harness, "grafana-001")
    store.replace_gate(report)
    manifest = pass_harness.launch(small_spec("grafana-002", symbols=["XRPUSDC"]))
    pass_harness.store.delete(pass_harness.blob_keys(manifest)[0])
    assert pass_harness.gate("grafana-002").success
    store.replace_gate(pass_harness.report("grafana-002"))
    store.record_global_state(datetime.now(UTC), "YELLOW", "GREEN", [{"rule": "success_rate_70_90"}], {})

    engine = sa.create_engine(store.url)
    empty = []
    with engine.connect() as connection:
        for board, panel, sql in queries():
            rows = connection.execute(sa.text(sql)).fetchall()
            if not rows:
                empty.append(f"{board} / {panel}")
    assert queries() and empty == []
