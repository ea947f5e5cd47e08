"""The model lifecycle end to end on a real MLflow (SQLite store, then a real `mlflow server`):
PASS → approvals → promotion → killswitch → refused rollback → promotions → rollback → decommission,
every step through `cvn model …`, every step in the audit table, the lifecycle alerts told once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import mlflow
import pytest
from click.testing import CliRunner

from cvn_assets.acquisition.market_data import load_candles
from cvn_assets.alerts.resources import AlertChannelsResource
from cvn_assets.cli.main import get_cli
from cvn_assets.diagnostics.resources import DiagnosticsResource, diagnostics_url_from_env, migrated_store
from cvn_assets.gate.model_registry import register_challengers, tracking_uri_from_env
from cvn_assets.models.lifecycle import Lifecycle
from cvn_assets.models.registry import mlflow_client, model_name
from cvn_assets.models.sensors import build_model_alert_sensor
from cvn_assets.state.rules import evaluate_state
from cvn_assets.state.sources import MlflowRegistry
from cvn_assets_tests.fixtures.gate_reports import gate_spec, run_gate
from cvn_assets_tests.test_state_rules import crypto as crypto_row
from cvn_assets_tests.test_state_rules import healthy


def cvn(*args: str, code: int = 0) -> dict:
    result = CliRunner().invoke(get_cli(), ["model", *args, "--json"])
    assert result.exit_code == code, (args, result.output, result.stderr if hasattr(result, "stderr") else "")
    return json.loads(result.stdout)


def pass_campaign(campaign_id: str, crypto: str) -> str:
    """A planted-signal PASS gated and recorded, its candidate registered: the new version."""
    case = run_gate(gate_spec(campaign_id, [crypto], planted_signal=1.0))
    assert case.report.verdict.value == "PASS" and case.report.cryptos[crypto].candidate
    store = migrated_store(diagnostics_url_from_env())
    store.replace_gate(case.report)
    lifecycle = Lifecycle(tracking_uri_from_env(), store, origin="test")
    registered = register_challengers(case.report, lifecycle, case.pooled,
                                      lambda c: load_candles(case.report.spec, c))
    return registered[0]["version"]


def ls(crypto: str) -> dict:
    return cvn("ls", "--crypto", crypto)["models"][0]


def walk(crypto: str, http_receiver, monkeypatch, instance) -> None:
    v1 = pass_campaign("walk-pass-001", crypto)
    assert ls(crypto)["challengers"][0]["version"] == v1 and ls(crypto)["champion"] is None

    # Promotion: refused without both approvals, with the same person twice, for an unknown version
    assert "missing ml_owner, operator" in cvn("promote", crypto, v1, "--by", "mo", code=2)["error"]
    cvn("approve", crypto, v1, "--role", "ml_owner", "--by", "alice", "--reason", "beats baseline")
    cvn("approve", crypto, v1, "--role", "operator", "--by", "alice")
    assert "different people" in cvn("promote", crypto, v1, "--by", "mo", code=2)["error"]
    cvn("approve", crypto, v1, "--role", "operator", "--by", "bob", "--reason", "business ok")
    assert "has no version 99" in cvn("promote", crypto, "99", "--by", "mo", code=2)["error"]
    assert ls(crypto)["champion"] is None  # nothing changed by the refusals
    promoted = cvn("promote", crypto, v1, "--by", "mo")
    assert promoted["after"]["champion"] == v1 and f"challenger-walk-pass-001" not in promoted["after"]

    # Freshness 0 d from the champion; the §0 stale-model rule sees a champion
    registry = MlflowRegistry(tracking_uri_from_env())
    freshness = registry.freshness_days(crypto, datetime.now(UTC))
    assert freshness.value < 0.01 and f"champion v{v1}" in freshness.detail
    state = evaluate_state(healthy(cryptos={crypto: crypto_row(crypto, "defi", False, model_freshness_days=freshness)}))
    assert state.state.value == "GREEN" and not state.unknown
    assert ls(crypto)["approvals"] == []  # consumed by the promotion

    # Killswitch: refused without the exact --confirm or a reason, then done
    assert "expected" in cvn("killswitch", crypto, "--confirm", f"{crypto}@{int(v1) + 1}", "--reason", "x",
                             "--by", "op", code=2)["error"]
    assert "reason is mandatory" in cvn("killswitch", crypto, "--confirm", f"{crypto}@{v1}", "--by", "op",
                                        code=2)["error"]
    cvn("killswitch", crypto, "--confirm", f"{crypto}@{v1}", "--reason", "sortino collapsed live", "--by", "op")
    model = ls(crypto)
    assert model["champion"] is None and [q["version"] for q in model["quarantined"]] == [v1]
    assert model["quarantined"][0]["quarantine_reason"] == "sortino collapsed live"
    freshness = registry.freshness_days(crypto, datetime.now(UTC))
    assert not freshness.known and "has no champion" in freshness.unknown
    state = evaluate_state(healthy(cryptos={crypto: crypto_row(crypto, "defi", False, model_freshness_days=freshness)}))
    assert state.state.value != "GREEN" and any(u.scope == crypto for u in state.unknown)

    # The lifecycle alerts: promotion (P3) and killswitch (P1), each told once
    monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", http_receiver.url("/hook/lifecycle"))
    resources = {"alert_channels": AlertChannelsResource(backoff_seconds=0.01, timeout_seconds=2.0),
                 "diagnostics": DiagnosticsResource(url=diagnostics_url_from_env())}
    sensor = build_model_alert_sensor()
    cursor, outcomes = None, []
    for _ in range(2):
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
        cursor = data.cursor
        outcomes.append(data.skip_message or "")
    # §8 routing: the P3 promotion goes to the digest (log channel) only, nobody is paged; the P1
    # killswitch reaches the webhook. Each is told once over the two ticks.
    told = [request.json() for request in http_receiver.accepted("/hook")]
    assert [(a["facts"]["action"], a["severity"]) for a in told] == [("killswitch", "P1")]
    promotions = [line for line in "; ".join(outcomes).split("; ") if line.startswith("[P3]")]
    assert len(promotions) == 1 and "promot" in promotions[0] and promotions[0].endswith("→ log"), outcomes

    # Rollback refused: no previous
    assert "no previous" in cvn("rollback", crypto, "--confirm", f"{crypto}@{v1}", "--reason", "r", "--by", "op",
                                code=2)["error"]

    # Two more campaigns: v2 promoted (no champion to keep), v3 promoted (v2 → previous)
    v2 = pass_campaign("walk-pass-002", crypto)
    v3 = pass_campaign("walk-pass-003", crypto)
    assert registry.challengers().value == 2  # versions awaiting promotion, not models
    for version in (v2, v3):
        cvn("approve", crypto, version, "--role", "ml_owner", "--by", "alice")
        cvn("approve", crypto, version, "--role", "operator", "--by", "bob")
        cvn("promote", crypto, version, "--by", "mo")
    model = ls(crypto)
    assert model["champion"]["version"] == v3 and model["previous"]["version"] == v2 and model["challengers"] == []
    assert "killed" not in json.dumps(model["champion"]) and model["champion"]["origin"] == "gate"
    assert model["champion"]["campaign_id"] == "walk-pass-003" and model["champion"]["signals"]["f1_buy_delta"]

    # Rollback: v2 back, v3 quarantined
    rolled = cvn("rollback", crypto, "--confirm", f"{crypto}@{v3}", "--reason", "drift", "--by", "op")
    assert rolled["after"]["champion"] == v2 and "previous" not in rolled["after"]
    assert [q["version"] for q in ls(crypto)["quarantined"]] == [v1, v3]

    # Decommission: never the champion; the quarantined v1 with its artifacts deleted
    assert "champion" in cvn("decommission", crypto, v2, "--confirm", f"{crypto}@{v2}", "--by", "pf", code=2)["error"]
    assert "expected" in cvn("decommission", crypto, v1, "--by", "pf", code=2)["error"]
    cvn("decommission", crypto, v1, "--confirm", f"{crypto}@{v1}", "--by", "pf", "--delete-artifacts")
    client = mlflow_client(tracking_uri_from_env())
    archived = client.get_model_version(model_name(crypto), v1)
    assert archived.tags["stage"] == "decommissioned" and archived.tags["decommissioned_by"] == "pf"
    assert archived.tags["artifacts"] == "deleted"
    with pytest.raises(Exception):  # noqa: B017 — the files are gone, whatever error the store raises
        mlflow.sklearn.load_model(f"models:/{model_name(crypto)}/{v1}")
    assert [q["version"] for q in ls(crypto)["quarantined"]] == [v3]

    # The audit trail: every step, with its actor and outcome
    events = Lifecycle(tracking_uri_from_env(), migrated_store(diagnostics_url_from_env())).audit.events(crypto)
    steps = [(e["action"], e["actor"], e["outcome"]) for e in events if e["action"] != "register"]
    assert steps == [
        ("promotion", "mo", "refused"), ("approve", "alice", "done"), ("approve", "alice", "done"),
        ("promotion", "mo", "refused"), ("approve", "bob", "done"), ("promotion", "mo", "refused"),
        ("promotion", "mo", "done"),
        ("killswitch", "op", "refused"), ("killswitch", "op", "refused"), ("killswitch", "op", "done"),
        ("rollback", "op", "refused"),
        ("approve", "alice", "done"), ("approve", "bob", "done"), ("promotion", "mo", "done"),
        ("approve", "alice", "done"), ("approve", "bob", "done"), ("promotion", "mo", "done"),
        ("rollback", "op", "done"),
        ("decommission", "pf", "refused"), ("decommission", "pf", "refused"), ("decommission", "pf", "done"),
    ]
    done = [e for e in events if e["outcome"] == "done" and e["action"] == "promotion"]
    assert done[0]["role"] == "mlops_maintainer" and {a["actor"] for a in done[0]["approvals"]} == {"alice", "bob"}
    assert done[0]["before_aliases"] == {f"challenger-walk-pass-001": v1} and done[0]["after_aliases"] == {"champion": v1}
    assert all(e["detail"] for e in events if e["outcome"] == "refused")
    assert [e["action"] for e in events if e["action"] == "register"] == ["register"] * 3


def test_the_lifecycle_walk_on_a_sqlite_store(http_receiver, monkeypatch, instance, tmp_path):
    monkeypatch.chdir(tmp_path)
    walk("SOLUSDC", http_receiver, monkeypatch, instance)


def test_the_lifecycle_walk_against_a_real_mlflow_server(mlflow_server, http_receiver, monkeypatch, instance, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    walk("ADAUSDC", http_receiver, monkeypatch, instance)


def test_mlflow_cut_in_the_middle_of_a_promotion_is_recorded_and_completed_by_rerunning(
        mlflow_server, monkeypatch, tmp_path):
    from cvn_assets_tests.fixtures.fault_proxy import FaultProxy

    monkeypatch.chdir(tmp_path)
    proxy = FaultProxy(upstream_port=mlflow_server.port)
    proxy.start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.endpoint_url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dead endpoint fails now, not in minutes
        crypto = "XRPUSDC"
        v1 = pass_campaign("fault-pass-001", crypto)
        cvn("approve", crypto, v1, "--role", "ml_owner", "--by", "alice")
        cvn("approve", crypto, v1, "--role", "operator", "--by", "bob")

        # The registry dies for alias deletions: the champion alias is set, the challenger alias stays.
        proxy.refused_methods, proxy.refuse_uploads_matching = ("DELETE",), r"registered-models/alias"
        failed = cvn("promote", crypto, v1, "--by", "mo", code=1)["error"]
        assert proxy.refused and "failed" in failed and f"alias champion → v{v1}" in failed
        assert "re-run the same command to complete" in failed
        proxy.refuse_uploads_matching = None
        client = mlflow_client(mlflow_server.url)
        assert client.get_registered_model(model_name(crypto)).aliases == {
            "champion": v1, "challenger-fault-pass-001": v1}  # half-done, and visible as such
        model = ls(crypto)
        assert model["unfinished"]["action"] == "promotion" and model["unfinished"]["outcome"] == "failed"
        assert "unfinished promotion" in cvn("killswitch", crypto, "--confirm", f"{crypto}@{v1}", "--reason", "x",
                                             "--by", "op", code=2)["error"]

        done = cvn("promote", crypto, v1, "--by", "mo")  # the same command again completes it
        assert done["after"] == {"champion": v1} and "completes event" in done["detail"]
        assert ls(crypto)["unfinished"] is None
        events = Lifecycle(tracking_uri_from_env(), migrated_store(diagnostics_url_from_env())).audit.events(crypto)
        promotions = [e for e in events if e["action"] == "promotion"]
        assert [(e["outcome"], e["resumes"]) for e in promotions] == [("failed", None), ("done", promotions[0]["id"])]
        assert promotions[0]["applied"] < len(promotions[0]["plan"]["changes"])
        assert f"alias champion → v{v1}" in promotions[0]["detail"]
    finally:
        proxy.stop()
