"""global_state_sensor on a real instance: real runs, the real diagnostics store and MLflow registry,
alerts received by a real HTTP server on 127.0.0.1.

The universe is one core crypto so that every §0 input can be made known (GREEN needs evidence):
a PASS gate recorded in the diagnostics store and a fresh model version in the MLflow registry.
"""

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from cvn_assets.alerts.defs import alert_defs
from cvn_assets.alerts.resources import AlertChannelsResource
from cvn_assets.state.defs import state_defs
from cvn_assets.state.recording import GLOBAL_STATE_KEY
from cvn_assets.state.schedules import MORNING_CHECK_JOB
from cvn_assets.state.sensors import build_global_state_sensor
from cvn_assets.state.settings import StateSettings

diagnostics_resources = pytest.importorskip("cvn_assets.diagnostics.resources")
model_registry = pytest.importorskip("cvn_assets.gate.model_registry")

TOKEN = "T0KEN-gl0bal-51a7e"
# The runs of the test job are the pipelines; the volumes are this machine's, whose fill level is
# not what these tests are about (nor is the load of this shared machine: §7's CPU > 90 %).
SETTINGS = StateSettings(jobs=("pipeline_job",), disk_warning_percent=99.0, disk_critical_percent=99.9,
                         cpu_saturated_percent=10_000.0)
CAMPAIGN = "btc-core-20260504-070000"


class PipelineConfig(dg.Config):
    fail: bool = False


@dg.op
def pipeline_step(config: PipelineConfig) -> None:
    if config.fail:
        raise RuntimeError("exchange unreachable")


@dg.job(name="pipeline_job")
def pipeline_job() -> None:
    pipeline_step()


def run(instance: dg.DagsterInstance, fail: bool, times: int = 1) -> None:
    for _ in range(times):
        pipeline_job.execute_in_process(instance=instance, raise_on_error=False,
                                        run_config={"ops": {"pipeline_step": {"config": {"fail": fail}}}})


@pytest.fixture
def one_core_crypto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    universes = tmp_path / "universes.yaml"
    universes.write_text("groups:\n  btc-core:\n    core: true\n    symbols: [BTCUSDC]\n")
    monkeypatch.setenv("CVN_UNIVERSES_FILE", str(universes))


def record_pass_gate(store) -> None:
    """A conclusive PASS of BTCUSDC with a positive Sortino, evaluated now."""
    from cvn_assets.contracts.campaign import CampaignSpec
    from cvn_assets.gate.diagnosis import CryptoVerdict
    from cvn_assets.gate.report import GateReport, Verdict
    from cvn_assets.gate.signals import CryptoSignals

    spec = CampaignSpec(campaign_id=CAMPAIGN, group="btc-core", symbols=["BTCUSDC"])
    report = GateReport(
        campaign_id=CAMPAIGN, group="btc-core", verdict=Verdict.PASS, transport_suspect=False, cohort=[],
        missing=[], codes=[], summary="PASS: 1 of 1 cryptos qualify (BTCUSDC)", evaluated_at=datetime.now(UTC),
        spec=spec,
        cryptos={"BTCUSDC": CryptoVerdict(
            signals=CryptoSignals(
                crypto="BTCUSDC", family="hgb", folds=3, test_rows=9_000, f1_buy=0.61, precision_buy=0.55,
                recall_buy=0.68, buy_rate=0.4, baseline_f1_buy=0.42, f1_buy_delta=19.0, std_f1_buy=0.03,
                screening_f1_buy=0.66, last_fold_f1_buy=0.61, screening_testing_gap=0.05, n_trades=120,
                sortino=0.9, tp_pct=0.7, sl_pct=0.2, timeout_pct=0.1, expectancy=0.004, max_drawdown=0.08,
            ).model_dump(),
            diagnostic="ML_SOLID", codes=["ML_SOLID"], candidate=True, reasons=["beats always-BUY by 19 pts"],
            action="register the challenger")},
    )
    store.replace_gate(report)


def register_fresh_model(tracking_uri: str) -> None:
    from mlflow.tracking import MlflowClient

    from cvn_assets.models.contract import challenger_alias

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name = model_registry.model_name("BTCUSDC")
    client.create_registered_model(name)
    version = client.create_model_version(name, source="file:///dev/null").version
    # a challenger as the registry contract names it (no champion was ever promoted: freshness
    # is the newest challenger's age)
    client.set_registered_model_alias(name, challenger_alias("state-001"), version)


@pytest.fixture
def healthy_business(one_core_crypto) -> None:
    """Every §0 input besides the pipelines is known and healthy."""
    resource = diagnostics_resources.DiagnosticsResource(url=os.environ["CVN_DIAGNOSTICS_URL"])
    record_pass_gate(resource.store())
    register_fresh_model(os.environ["MLFLOW_TRACKING_URI"])


@pytest.fixture
def resources(http_receiver, monkeypatch) -> dict:
    monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", http_receiver.url(f"/hook/{TOKEN}?token={TOKEN}"))
    return {
        "diagnostics": diagnostics_resources.DiagnosticsResource(url=os.environ["CVN_DIAGNOSTICS_URL"]),
        "alert_channels": AlertChannelsResource(backoff_seconds=0.01, timeout_seconds=2.0),
    }


def tick(sensor, instance, cursor, resources) -> tuple[str, str]:
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
    return data.cursor, data.skip_message or ""


def alerts(receiver) -> list[dict]:
    return [request.json() for request in receiver.accepted("/hook")]


def test_orange_alerts_once_resolves_once_and_a_restart_does_not_resend(
        instance, http_receiver, resources, healthy_business, caplog):
    caplog.set_level(logging.INFO)
    sensor = build_global_state_sensor(SETTINGS)
    run(instance, fail=False, times=2)
    cursor, message = tick(sensor, instance, None, resources)
    assert message.startswith("GREEN"), message
    assert alerts(http_receiver) == []

    run(instance, fail=True)  # 2 of 3 succeeded: 66.7 % < 70 %
    cursor, message = tick(sensor, instance, cursor, resources)
    assert message.startswith("ORANGE") and "notified firing (P1)" in message
    [alert] = alerts(http_receiver)
    assert alert["severity"] == "P1" and alert["kind"] == "firing" and alert["facts"]["state"] == "ORANGE"
    assert "pipeline success rate 66.7 % < 70 %" in alert["text"]

    cursor, message = tick(sensor, instance, cursor, resources)  # the next tick
    assert len(alerts(http_receiver)) == 1 and message.startswith("ORANGE")
    _, message = tick(sensor, instance, None, resources)  # restarted without its cursor
    assert len(alerts(http_receiver)) == 1, message

    run(instance, fail=False, times=10)  # 12 of 13 = 92.3 %: past the 90 % threshold and its 2-point margin
    cursor, message = tick(sensor, instance, cursor, resources)
    assert message.startswith("GREEN"), message
    assert len(alerts(http_receiver)) == 2
    resolve = alerts(http_receiver)[-1]
    assert resolve["kind"] == "resolved" and resolve["title"] == "RESOLVED: global state back to GREEN (was ORANGE)"
    assert resolve["severity"] == "P1"  # routed like the state it resolves

    tick(sensor, instance, cursor, resources)
    tick(sensor, instance, None, resources)
    assert len(alerts(http_receiver)) == 2

    # the history is visible on the global_state asset, and in cvn_global_state for Grafana
    observations = instance.fetch_observations(GLOBAL_STATE_KEY, limit=20).records
    states = [r.asset_observation.metadata["state"].value for r in reversed(observations)]
    assert states[0] == "GREEN" and "ORANGE" in states and states[-1] == "GREEN"
    latest = resources["diagnostics"].store().latest_global_state()
    assert latest is not None

    # every evaluation is a row of cvn_global_state (7 ticks), with its signals as columns; the
    # ORANGE ones carry §7's PIPELINE_DEGRADED, linked to the evaluation that found it
    history = resources["diagnostics"].store().global_state_history(limit=50)
    assert len(history) == 7
    assert [row["source"] for row in history] == ["global_state_sensor"] * 7
    orange = [row for row in history if row["state"] == "ORANGE"]
    assert len(orange) == 3 and all(row["codes"] == ["PIPELINE_DEGRADED"] for row in orange)
    assert round(orange[-1]["success_rate"], 1) == 66.7 and orange[-1]["rules_fired"] == 1
    assert orange[-1]["routing"] == [{"rule": "success_rate", "severity": "P1", "family": "pipeline",
                                      "role": "mlops_maintainer",
                                      "channels": ["log", "webhook", "slack", "alertmanager", "sms"]}]
    assert history[0]["state"] == "GREEN" and history[0]["codes"] == [] and history[0]["queued_runs"] == 0
    [degraded] = resources["diagnostics"].store().state_diagnostics("PIPELINE_DEGRADED")[:1]
    assert degraded["severity"] == "P1" and degraded["state"] == "ORANGE" and degraded["values"]["success_rate"] == 66.67
    assert degraded["global_state_id"] == orange[-1]["id"]

    # the webhook URL and its token appear nowhere
    metadata = json.dumps([{k: str(v.value) for k, v in r.asset_observation.metadata.items()} for r in observations])
    for visible in (cursor, message, metadata, caplog.text):
        assert TOKEN not in visible


def test_a_lost_cursor_and_event_log_falls_back_to_the_database_row(
        instance, http_receiver, resources, healthy_business):
    sensor = build_global_state_sensor(SETTINGS)
    run(instance, fail=True)
    tick(sensor, instance, None, resources)
    assert len(alerts(http_receiver)) == 1
    instance.wipe_assets([GLOBAL_STATE_KEY])  # the event log forgot; cvn_global_state did not
    _, message = tick(sensor, instance, None, resources)
    assert len(alerts(http_receiver)) == 1, message


def test_definitions_load_and_the_morning_check_job_runs(instance, resources, one_core_crypto):
    defs = dg.Definitions.merge(state_defs(), alert_defs(), dg.Definitions(resources=resources))
    defs.get_repository_def().load_all_definitions()
    assert {s.name for s in defs.sensors} >= {"global_state_sensor", "stuck_run_sensor"}
    assert [s.name for s in defs.schedules] == ["morning_check_schedule"]
    result = defs.resolve_job_def(MORNING_CHECK_JOB).execute_in_process(instance=instance)
    assert result.success
    logs = "\n".join(record.user_message for record in instance.all_logs(result.run_id))
    assert "morning check" in logs and "golden signals" in logs and "GREEN cannot be claimed" in logs
    assert instance.fetch_observations(GLOBAL_STATE_KEY, limit=1).records
