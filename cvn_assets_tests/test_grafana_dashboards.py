"""Every SQL query of the Grafana dashboards runs on PostgreSQL filled by real gates, and returns rows."""


import json
from datetime import UTC, datetime
from pathlib import Path

import logging

import dagster as dg
import sqlalchemy as sa
import yaml

from cvn_assets.alerts.policy import AlertMemory

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
    assert {board["title"] for board in boards()} == {"Testing & Backtest", "MLOps Overview", "Model Registry",
                                                      "Pipeline Health", "Infra Monitoring"}
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
                   "qualifies", "cvn_model_drift", "band",
                   # §2 platform and lifecycle signals, §7 platform codes, §9.5 long runs, backlog
                   "success_rate", "latency_ratio", "cvn_pipeline_latency", "p95_seconds", "disk_percent",
                   "cpu_percent", "memory_percent", "oom_kills", "pods_down", "restarts", "model_freshness_days",
                   "challenger_count", "queued_runs", "PIPELINE_DEGRADED", "INFRA_SATURATED", "RUN_TOO_LONG",
                   "RUN_STUCK"):
        assert column in sql, f"§2/§14: {column} is not on any dashboard"


def test_every_query_returns_rows_from_real_gates(real_gates, postgres_url, instance, tmp_path):
    store = DiagnosticsStore(postgres_url)
    store.migrate()
    for case in real_gates.values():
        store.replace_gate(case.report)
    fill_model_operations(store, real_gates["pass"], tmp_path / "objects")  # backtests, walk-forward, drift
    store.record_global_state(datetime.now(UTC), "YELLOW", "GREEN", [{"rule": "success_rate_70_90"}], {})
    record_real_evaluations(store, instance, tmp_path)

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

    # A retrained challenger (origin retrain, registered by the lifecycle) waits, then — its backtest
    # qualifying it, two approvals — becomes the champion the panel shows, with its own age.
    from cvn_assets.diagnostics.tables import model_backtests
    from cvn_assets.models.registry import mlflow_client, model_name

    client, name = mlflow_client(lifecycle.tracking_uri), model_name("ADAUSDC")
    source = client.get_model_version(name, registered["ADAUSDC"]).source
    retrained = str(client.create_model_version(name, source).version)
    run_id = "retrain-adausdc-v1-20261205-070000"
    lifecycle.register_challenger("ADAUSDC", retrained, run_id, origin="retrain", actor="retrain")
    panels = {panel: sql for _, panel, sql in queries(only=MODEL_REGISTRY)}
    with store.engine.connect() as connection:
        assert connection.execute(sa.text(panels["Challengers awaiting promotion"])).scalar_one() == 1
    now = datetime.now(UTC)
    with store.engine.begin() as connection:
        connection.execute(sa.insert(model_backtests), [{
            "run_id": f"backtest-adausdc-v{retrained}-fixture", "crypto": "ADAUSDC", "version": retrained,
            "kind": "backtest", "role": "challenger", "family": "hgb", "diagnostic": "ML_SOLID", "codes": "",
            "qualifies": True, "reasons": "[]", "action": "", "windows": "[]", "window_start": now,
            "window_end": now, "evaluated_at": now}])
    lifecycle.approve("ADAUSDC", retrained, "ml_owner", "alice")
    lifecycle.approve("ADAUSDC", retrained, "operator", "bob")
    lifecycle.promote("ADAUSDC", retrained, "mo")
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text(panels["Champion per crypto"])).mappings().all()
        assert connection.execute(sa.text(panels["Challengers awaiting promotion"])).scalar_one() == 0
    (champion,) = [dict(row) for row in rows if row["crypto"] == "ADAUSDC"]
    assert (champion["champion"], champion["origin"], champion["origin_campaign"]) == (retrained, "retrain", run_id)
    store.close()


class BoardConfig(dg.Config):
    fail: bool = False


@dg.op
def board_step(config: BoardConfig) -> None:
    if config.fail:
        raise RuntimeError("exchange unreachable")


@dg.job(name="board_job")
def board_job() -> None:
    board_step()


def record_real_evaluations(store: DiagnosticsStore, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    """What the state sensor writes after real runs; plus what it writes in a cluster with a registry.

    Real runs on a real instance (6 successes, 4 failures: 60 % → ORANGE, PIPELINE_DEGRADED, a p95)
    evaluated and recorded by the product's own check; then one evaluation as in a cluster — our
    pods as kubernetes ``V1Pod`` objects read by ``pod_health`` (one OOM-killed thrice → INFRA_SATURATED)
    with the registry's lifecycle signals — recorded through the same history functions; and the
    run anomalies the stuck and long-run sensors write.
    """
    from kubernetes.client import (
        V1ContainerState, V1ContainerStateTerminated, V1ContainerStatus, V1ObjectMeta, V1Pod, V1PodStatus,
    )

    from cvn_assets.alerts.routing import RoutingTable
    from cvn_assets.contracts.campaign import load_universes
    from cvn_assets.state.check import StateRecorder, run_state_check
    from cvn_assets.state.history import latency_rows, platform_diagnostics, rule_routing, state_columns
    from cvn_assets.state.infra import InfraProbe, pod_health
    from cvn_assets.state.recording import signals_summary
    from cvn_assets.state.rules import evaluate_state
    from cvn_assets.state.settings import StateSettings
    from cvn_assets.state.signals import InfraHealth, Measure
    from cvn_assets.state.sources import SignalSources, StoreDiagnostics
    from cvn_assets.state.table import signal_table

    for fail in [False] * 6 + [True] * 4:
        board_job.execute_in_process(instance=instance, raise_on_error=False,
                                     run_config={"ops": {"board_step": {"config": {"fail": fail}}}})
    settings = StateSettings(jobs=("board_job",))
    sources = SignalSources(instance=instance, diagnostics=StoreDiagnostics(store), registry=None,
                            probe=InfraProbe(volumes={"tmp": str(tmp_path)}), universes=load_universes(),
                            missing={"registry": "no MLflow registry in this test"})
    outcome = run_state_check(sources=sources, settings=settings, now=datetime.now(UTC), memory=AlertMemory(),
                              logger=logging.getLogger("cvn.test.grafana"), notify=False,
                              recorder=StateRecorder(instance=instance, store=store, source="test"))
    assert outcome.history_id is not None and "PIPELINE_DEGRADED" in [d["code"] for d in outcome.diagnostics]
    assert store.latency_rows(outcome.history_id)[0]["ratio"] is not None

    now = datetime.now(UTC)
    oom = V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=137, reason="OOMKilled", finished_at=now))
    pods = [V1Pod(metadata=V1ObjectMeta(name="run-worker-1", labels={"app.kubernetes.io/component": "run_worker"}),
                  status=V1PodStatus(phase="Running", container_statuses=[V1ContainerStatus(
                      name="dagster", image="cvn", image_id="", ready=True, restart_count=3, last_state=oom,
                      state=V1ContainerState())]))]
    infra = InfraHealth(mode="kubernetes", disks={"pvc": Measure.of(72.0)}, **pod_health(pods, now, settings))
    signals = outcome.signals.model_copy(update={"infra_health": infra, "challenger_count": Measure.of(3),
                                                 "evaluated_at": now})
    signals = signals.model_copy(update={"cryptos": {crypto: row.model_copy(update={
        "model_freshness_days": Measure.of(2.5)}) for crypto, row in signals.cryptos.items()}})
    evaluation = evaluate_state(signals, settings)
    rows = signal_table(signals, settings)
    diagnostics = platform_diagnostics(evaluation, signals, settings)
    assert "INFRA_SATURATED" in [d["code"] for d in diagnostics]
    store.record_global_state(now, evaluation.state.value, "ORANGE", [r.model_dump(mode="json") for r in evaluation.rules],
                              signals_summary(signals, rows), source="test (cluster)",
                              columns=state_columns(signals, queued_runs=1, started_runs=2),
                              routing=rule_routing(evaluation, RoutingTable()), latency=latency_rows(signals, rows),
                              diagnostics=diagnostics)
    for code, seconds in (("RUN_TOO_LONG", 4000.0), ("RUN_STUCK", 960.0)):
        store.record_run_anomaly(detected_at=now, code=code, severity="P2", reason=code, run_id="r1", job="board_job",
                                 campaign_id="defi-abc", step="s43_predictions", seconds=seconds, values={})


# No Grafana server is installable here (no Debian package, none on PyPI), so the boards are checked
# against the dashboard model of Grafana's "dashboard kind" schema (its CUE definition, transcribed
# to JSON Schema for the fields we use) and for overlapping panels, which Grafana would re-flow.
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "time", "editable"],
    "properties": {
        "uid": {"type": "string", "minLength": 8, "maxLength": 40, "pattern": "^[a-zA-Z0-9_-]+$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "editable": {"type": "boolean"},
        "refresh": {"type": "string"},
        "timezone": {"enum": ["utc", "browser", ""]},
        "time": {"type": "object", "required": ["from", "to"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["id", "type", "title", "gridPos", "datasource", "targets"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "type": {"enum": ["stat", "table", "timeseries", "piechart", "bargauge", "gauge", "barchart", "histogram",
                                  "heatmap", "state-timeline", "text"]},
                "title": {"type": "string", "minLength": 1},
                "gridPos": {"type": "object", "required": ["x", "y", "w", "h"], "properties": {
                    "x": {"type": "integer", "minimum": 0, "maximum": 23},
                    "y": {"type": "integer", "minimum": 0},
                    "w": {"type": "integer", "minimum": 1, "maximum": 24},
                    "h": {"type": "integer", "minimum": 1}}},
                "targets": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["refId", "rawSql", "format"],
                    "properties": {"format": {"enum": ["table", "time_series"]}}}},
            }}},
    },
}


def test_dashboards_validate_against_the_dashboard_model_and_do_not_overlap():
    import jsonschema

    for board in boards():
        jsonschema.validate(board, DASHBOARD_SCHEMA)
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{board['title']} / {panel['title']}: wider than the grid"
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{board['title']}: {panel['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["title"]
