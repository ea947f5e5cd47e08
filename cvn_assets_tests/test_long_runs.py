"""§9.5 run too long, on a real instance: a step still logging past its job's p95 + 30 % is alerted once."""


import threading
import time

import dagster as dg
import pytest

from cvn_assets.alerts.alert import Severity
from cvn_assets.alerts.long_runs import RUN_TOO_LONG, build_long_run_sensor, long_run_level
from cvn_assets.alerts.resources import AlertChannelsResource
from cvn_assets.diagnostics.resources import DiagnosticsResource
from cvn_assets.runs import CAMPAIGN_TAG, CRYPTO_TAG
from cvn_assets.state.settings import StateSettings
from cvn_assets_tests.test_alert_sensors import received, tick

# Small thresholds instead of hours: a p95 from 3 quick runs, warning at p95 + 30 %, the 3 h
# ceiling and the p95 + 100 % critical mark out of reach for this test.
SETTINGS = StateSettings(jobs=("hpo_job",), latency_min_history=2, latency_critical_factor=1000.0,
                         run_duration_ceiling_hours=10.0)


class StepConfig(dg.Config):
    seconds: float = 0.0


@dg.op(name="s43_predictions")
def training_step(context: dg.OpExecutionContext, config: StepConfig) -> None:
    deadline = time.monotonic() + config.seconds
    while time.monotonic() < deadline:
        context.log.info("HPO trial finished")  # alive and logging: not a stuck run
        time.sleep(0.2)


@dg.job(name="hpo_job", tags={CAMPAIGN_TAG: "defi-abc", CRYPTO_TAG: "SOLUSDC"})
def hpo_job() -> None:
    training_step()


def run(instance, seconds: float) -> None:
    hpo_job.execute_in_process(instance=instance, run_config={"ops": {"s43_predictions": {"config": {
        "seconds": seconds}}}})


@pytest.fixture
def resources(http_receiver, monkeypatch, postgres_url, tmp_path) -> dict:
    monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", http_receiver.url("/hook/long"))
    # P3 is digest-only by default (log); this deployment also wants its digest on the webhook
    routing = tmp_path / "routing.yaml"
    routing.write_text("routes:\n"
                       "  - {severity: P0, role: platform_owner, channels: [log, webhook, sms]}\n"
                       "  - {severity: P1, role: mlops_maintainer, channels: [log, webhook, sms]}\n"
                       "  - {severity: P2, role: ml_owner, channels: [log, webhook]}\n"
                       "  - {severity: P3, role: digest, channels: [log, webhook]}\n")
    return {"alert_channels": AlertChannelsResource(backoff_seconds=0.01, timeout_seconds=2.0,
                                                    routing_file=str(routing)),
            "diagnostics": DiagnosticsResource(url=postgres_url)}


def test_a_long_running_step_is_alerted_once_with_its_step_and_checks(instance, http_receiver, resources):
    for _ in range(3):
        run(instance, 0.0)  # the history: quick runs
    sensor = build_long_run_sensor(["hpo_job"], SETTINGS)
    worker = threading.Thread(target=run, args=(instance, 6.0))
    worker.start()
    try:
        deadline = time.time() + 20
        while not instance.get_runs(filters=dg.RunsFilter(job_name="hpo_job",
                                                          statuses=[dg.DagsterRunStatus.STARTED])):
            assert time.time() < deadline, "the run never started"
            time.sleep(0.05)
        cursor = None
        for _ in range(4):  # ticks while it runs: told once
            time.sleep(0.8)
            cursor, message = tick(sensor, instance, cursor, resources)
        alerts = received(http_receiver)
        assert len(alerts) == 1, message
        alert = alerts[0]
        assert alert["kind"] == "long_run" and alert["severity"] == "P3"
        assert "in step s43_predictions" in alert["title"] and "campaign defi-abc, crypto SOLUSDC" in alert["title"]
        assert "(p95 + 30 %, §2 warning)" in alert["text"]
        assert any("hpo_trials (50 = normal, > 100 = suspect)" in step for step in alert["next_steps"])
        assert alert["scenario"] == "manual §9.5 run too long"
    finally:
        worker.join()
    tick(sensor, instance, cursor, resources)
    assert len(received(http_receiver)) == 1  # finished: never told again
    [row] = resources["diagnostics"].store().state_diagnostics(RUN_TOO_LONG)
    assert row["severity"] == "P3" and row["step"] == "s43_predictions" and row["job"] == "hpo_job"
    assert row["campaign_id"] == "defi-abc" and row["seconds"] > row["values"]["p95_seconds"] * 1.3


@pytest.mark.parametrize(("elapsed", "p95", "expected"), [
    (100.0, 100.0, None), (131.0, 100.0, Severity.P3), (201.0, 100.0, Severity.P2),
    (3 * 3600 + 1, None, Severity.P2), (3 * 3600 + 1, 10_000.0, Severity.P2), (600.0, None, None),
])
def test_levels_of_section_9_5(elapsed, p95, expected):
    assert long_run_level(elapsed, p95, StateSettings())[0] == expected
