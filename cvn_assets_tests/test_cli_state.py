"""`cvn state`: the morning check on a real instance — unknown is shown, never GREEN; secrets stay out."""

from __future__ import annotations

import json

import dagster as dg
from click.testing import CliRunner

from cvn_assets.cli.main import get_cli
from cvn_assets.state.recording import GLOBAL_STATE_KEY

TOKEN = "hooks-T0KEN-77aa"


def run_cli(*args: str):
    result = CliRunner().invoke(get_cli(), ["state", *args], catch_exceptions=False)
    return result


def test_fresh_instance_reports_unknowns_and_does_not_claim_green(dagster_home):
    result = run_cli()
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "global state: GREEN" not in out and "global state: " in out
    assert "rule input(s) unknown" in out and "unknown (never counted as healthy):" in out
    assert ("pipeline_success_rate: 0 run(s) of s43_acquire_job, s43_gate_job, launch_discovery, backtest_job, "
            "walkforward_job, retrain_job, monitoring_job, meta_training_job, __ASSET_JOB finished") in out
    assert "no gate recorded" in out
    assert "PLATFORM" in out and "infra_health.disk" in out and "ML · TRADING · LIFECYCLE per crypto" in out


def test_json_output(dagster_home):
    result = run_cli("--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["state"] != "GREEN" and document["green_claimed"] is False
    assert "signals_unknown" in [rule["id"] for rule in document["rules"]]
    unknown = {entry["signal"]: entry["reason"] for entry in document["unknown"]}
    assert "pipeline_success_rate" in unknown and "model_freshness" in unknown
    assert document["notification"] is None  # read-only without --notify
    assert any(row["signal"] == "pipeline_success_rate" and row["level"] == "unknown" for row in document["signals"])
    # §2 pipeline_latency per job, and the routing decision of the state alert and of each fired rule
    assert set(document["pipeline_latency"]) >= {"s43_acquire_job", "s43_gate_job", "launch_discovery"}
    assert "no successful or running run" in document["pipeline_latency"]["s43_gate_job"]["unknown"]
    route = document["routing"]["alert"]
    assert route["alert"] == "global_state" and route["sent"] is False
    assert route["severity"] == "P2" and route["role"] == "ml_owner" and "sms" not in route["channels"]
    assert {"rule": "signals_unknown", "severity": "P2", "family": "pipeline", "role": "ml_owner",
            "channels": ["log", "webhook", "slack", "alertmanager"]} in document["routing"]["rules"]


def test_a_bad_routing_file_is_a_configuration_error(dagster_home, tmp_path, monkeypatch):
    routing = tmp_path / "routing.yaml"
    routing.write_text("routes: [{severity: P3, role: digest, channels: [sms]}]\n")
    monkeypatch.setenv("CVN_ALERT_ROUTING_FILE", str(routing))
    result = run_cli("--json")
    assert result.exit_code == 2
    assert "routing.yaml: routes.0" in result.stderr and "sms is for P0/P1 only" in result.stderr


def test_read_only_check_records_nothing(dagster_home):
    run_cli()
    with dg.DagsterInstance.get() as instance:
        assert not instance.fetch_observations(GLOBAL_STATE_KEY, limit=1).records


def test_notify_sends_once_with_the_sensor_policy_and_never_leaks_the_url(dagster_home, http_receiver, monkeypatch):
    url = http_receiver.url(f"/services/{TOKEN}?token={TOKEN}")
    monkeypatch.setenv("CVN_SLACK_WEBHOOK_URL", url)
    first = run_cli("--notify", "--json")
    assert first.exit_code == 0, first.output
    assert len(http_receiver.accepted()) == 1
    message = http_receiver.accepted()[0].json()["text"]
    assert "global state" in message and "rule input(s) unknown" in message
    document = json.loads(first.stdout)
    assert document["notification"]["kind"] == "firing" and document["notification"]["delivered"] == ["log", "slack"]

    second = run_cli("--notify", "--json")  # same state: the memory recorded by the first says it was told
    assert second.exit_code == 0
    assert len(http_receiver.accepted()) == 1
    assert json.loads(second.stdout)["notification"]["kind"] is None
    assert json.loads(second.stdout)["routing"]["alert"]["sent"] is False
    assert json.loads(first.stdout)["routing"]["alert"]["sent"] is True

    # both evaluations are rows of the state history, written by the command
    from cvn_assets.cli.state import diagnostics_resource

    history = diagnostics_resource().store().global_state_history()
    assert [row["source"] for row in history] == ["cvn state --notify"] * 2

    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_observations(GLOBAL_STATE_KEY, limit=10).records
        assert records  # the state is recorded for the UI
        metadata = json.dumps({k: str(v.value) for r in records for k, v in r.asset_observation.metadata.items()})
        logs = " ".join(str(r.event_log_entry.user_message) for r in records)
    for visible in (first.stdout, first.stderr, second.stdout, second.stderr, metadata, logs):
        assert TOKEN not in visible and url not in visible


def test_an_alert_url_that_is_not_a_url_is_a_configuration_error(dagster_home, monkeypatch):
    monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", f"not-a-url/{TOKEN}")
    result = run_cli("--notify")
    assert result.exit_code == 2
    assert "CVN_ALERT_WEBHOOK_URL" in result.stderr and TOKEN not in result.stderr + result.stdout


def test_a_malformed_diagnostics_url_is_a_configuration_error_without_its_password(dagster_home, monkeypatch):
    monkeypatch.setenv("CVN_DIAGNOSTICS_URL", "nosuchdriver://cvn:s3cret-pw@db.internal/cvn")
    result = run_cli()
    assert result.exit_code == 2
    assert "CVN_DIAGNOSTICS_URL" in result.stderr and "s3cret-pw" not in result.stderr + result.stdout
