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

    # The lifecycle alerts, each told once: the killswitch (P1) pages the webhook; the promotion (P3)
    # goes to the digest only (the routing table of the manual §8: P3 → log, read at the morning check)
    monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", http_receiver.url("/hook/lifecycle"))
    resources = {"alert_channels": AlertChannelsResource(backoff_seconds=0.01, timeout_seconds=2.0),
                 "diagnostics": DiagnosticsResource(url=diagnostics_url_from_env())}
    sensor = build_model_alert_sensor()
    cursor, ticks = None, []
    for _ in range(2):
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
        cursor = data.cursor
        ticks.append(data.skip_message or "")
    told = [request.json() for request in http_receiver.accepted("/hook")]
    assert [(a["facts"]["action"], a["severity"]) for a in told] == [("killswitch", "P1")]
    assert "promoted to champion" in ticks[0] and "promoted" not in ticks[1], ticks

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


def _backtest_row(run_id: str, version: str, qualifies: bool, at: datetime) -> dict:
    return {"run_id": run_id, "crypto": "SOLUSDC", "version": version, "kind": "backtest", "role": "challenger",
            "family": "hgb", "diagnostic": "ML_SOLID" if qualifies else "ML_USELESS", "codes": "",
            "qualifies": qualifies, "reasons": "[]", "action": "", "windows": "[]", "window_start": at,
            "window_end": at, "evaluated_at": at}


def test_a_retrained_version_passes_its_gate_by_its_latest_backtest_a_discovery_one_by_its_campaign(tmp_path):
    import sqlalchemy as sa

    from cvn_assets.diagnostics.store import DiagnosticsStore
    from cvn_assets.diagnostics.tables import model_backtests
    from cvn_assets.models.lifecycle import qualified_reason

    store = DiagnosticsStore(f"sqlite:///{tmp_path / 'd.sqlite'}")
    store.migrate()
    retrained = {"campaign_id": "retrain-solusdc-v1-20261205-070000", "origin": "retrain"}
    assert "has no backtest recorded" in qualified_reason(store, "SOLUSDC", "2", retrained)
    with store.engine.begin() as connection:
        connection.execute(sa.insert(model_backtests), [
            _backtest_row("backtest-a", "2", True, datetime(2026, 12, 1, tzinfo=UTC)),
            _backtest_row("backtest-b", "2", False, datetime(2026, 12, 2, tzinfo=UTC))])
    assert "did not qualify at its latest backtest backtest-b (ML_USELESS)" in qualified_reason(
        store, "SOLUSDC", "2", retrained)
    with store.engine.begin() as connection:
        connection.execute(sa.insert(model_backtests), [_backtest_row("backtest-c", "2", True,
                                                                      datetime(2026, 12, 3, tzinfo=UTC))])
    assert qualified_reason(store, "SOLUSDC", "2", retrained) is None
    # a discovery version is judged by its campaign's gate, never by a backtest
    assert "no gate verdict recorded for campaign camp-001" in qualified_reason(
        store, "SOLUSDC", "2", {"campaign_id": "camp-001", "origin": "gate"})
    store.close()


def test_an_approved_action_is_audited_refused_failed_then_done_and_consumes_its_approval(tmp_path):
    from cvn_assets.diagnostics.store import DiagnosticsStore
    from cvn_assets.models.contract import Action, Approval, Outcome, Refused, Role

    store = DiagnosticsStore(f"sqlite:///{tmp_path / 'e.sqlite'}")
    store.migrate()
    lifecycle = Lifecycle("sqlite:///unused.sqlite", store, origin="test")  # no registry read on this path
    with pytest.raises(Refused, match="needs approvals by mlops_maintainer"):
        lifecycle.run_approved(Action.META_TRAINING, "SOLUSDC", "3", "paul", lambda approvals: ("never", ""))
    now = datetime(2026, 12, 5, 7, tzinfo=UTC)
    approval_event = lifecycle.audit.start(action=Action.APPROVE, crypto="SOLUSDC", version="3", actor="maria",
                                           role="mlops_maintainer", reason="", approvals=[], before={}, plan=None,
                                           origin="test", now=now, outcome=Outcome.DONE)
    lifecycle.audit.add_approval(Approval(crypto="SOLUSDC", version="3", action="meta_training",
                                          role=Role.MLOPS_MAINTAINER, actor="maria", approved_at=now), approval_event)
    with pytest.raises(Refused, match="another person"):
        lifecycle.run_approved(Action.META_TRAINING, "SOLUSDC", "3", "maria", lambda approvals: ("never", ""))

    def broken(approvals):
        raise ValueError("too few BUYs on the window")

    with pytest.raises(ValueError, match="too few BUYs"):
        lifecycle.run_approved(Action.META_TRAINING, "SOLUSDC", "3", "paul", broken)
    assert len(lifecycle.audit.pending_approvals("SOLUSDC", "3", "meta_training")) == 1  # kept for a re-run
    result, event_id = lifecycle.run_approved(Action.META_TRAINING, "SOLUSDC", "3", "paul",
                                              lambda approvals: ([a.actor for a in approvals], "meta-label v1"))
    assert result == ["maria"] and lifecycle.audit.pending_approvals("SOLUSDC", "3", "meta_training") == []
    rows = [e for e in lifecycle.audit.events("SOLUSDC") if e["action"] == "meta_training"]
    assert [(e["actor"], e["outcome"]) for e in rows] == [
        ("paul", "refused"), ("maria", "refused"), ("paul", "failed"), ("paul", "done")]
    assert "too few BUYs" in rows[2]["detail"] and rows[3]["id"] == event_id and rows[3]["detail"] == "meta-label v1"
    assert rows[3]["approvals"][0]["actor"] == "maria" and rows[3]["role"] == "mlops_maintainer"
    store.close()
