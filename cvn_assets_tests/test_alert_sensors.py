"""Failure sensors on a real Dagster instance, alerts received by a real HTTP server on 127.0.0.1.

Runs are real (``dg.materialize`` / ``execute_in_process`` with ``instance=``); the assets used
here carry the product's asset and check names and metadata keys (the contract the sensors read),
so a check failure or a failed run is recorded exactly as the product records it.
"""


import threading
import time

import dagster as dg
import pytest

from cvn_assets.alerts.defs import alert_defs
from cvn_assets.alerts.resources import AlertChannelsResource
from cvn_assets.alerts.sensors import (
    BLOBS_INTACT, COHORT_COMPLETE, COHORT_INTACT, S43_GATE, S43_PREDICTIONS, build_asset_check_sensor,
    build_run_failure_sensor, build_stuck_run_sensor,
)
from cvn_assets.runs import CAMPAIGN_TAG, CRYPTO_TAG, STAGE_TAG

TOKEN = "xoxb-T0KEN-4b1d"
KEY_SOL = "s43-predictions/defi-abc/SOLUSDC/hgb/fold-01.npz"


@pytest.fixture
def channels(http_receiver, monkeypatch, tmp_path) -> dict:
    from cvn_assets.diagnostics.resources import DiagnosticsResource

    monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", http_receiver.url(f"/hook/{TOKEN}"))
    return {"alert_channels": AlertChannelsResource(backoff_seconds=0.01, timeout_seconds=2.0),
            "diagnostics": DiagnosticsResource(url=f"sqlite:///{tmp_path / 'diagnostics.sqlite'}")}


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None, resources) -> tuple[str, str]:
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
    return data.cursor, data.skip_message or ""


def received(receiver) -> list[dict]:
    return [request.json() for request in receiver.accepted("/hook")]


# Failed runs


class FlakyConfig(dg.Config):
    fail: bool = True


@dg.op
def acquire_step(config: FlakyConfig) -> None:
    if config.fail:
        raise RuntimeError("market data fetch failed: HTTP 503 from the exchange")


@dg.job(name="flaky_job")
def flaky_job() -> None:
    acquire_step()


def run_flaky(instance, fail: bool, crypto: str = "ADAUSDC") -> dg.ExecuteInProcessResult:
    return flaky_job.execute_in_process(
        instance=instance, raise_on_error=False, run_config={"ops": {"acquire_step": {"config": {"fail": fail}}}},
        tags={CAMPAIGN_TAG: "defi-abc", CRYPTO_TAG: crypto, STAGE_TAG: "acquire"},
    )


def test_a_failed_run_is_alerted_once_with_its_root_cause(instance, http_receiver, channels):
    sensor = build_run_failure_sensor(["flaky_job"])
    cursor, message = tick(sensor, instance, None, channels)
    assert received(http_receiver) == [] and "no new failed run" in message

    result = run_flaky(instance, fail=True)
    run_flaky(instance, fail=False)
    cursor, message = tick(sensor, instance, cursor, channels)
    alerts = received(http_receiver)
    # the failure is told, and the later success of the same job and campaign resolves its incident
    assert [a["kind"] for a in alerts] == ["run_failure", "resolved"]
    assert alerts[1]["key"] == alerts[0]["key"] == "incident:run:flaky_job:defi-abc"
    assert alerts[1]["title"].startswith("RESOLVED: flaky_job passes again")
    alert = alerts[0]
    assert alert["kind"] == "run_failure" and alert["severity"] == "P2"
    assert result.run_id[:8] in alert["title"] and "campaign defi-abc, crypto ADAUSDC" in alert["title"]
    assert "acquire_step: RuntimeError: market data fetch failed: HTTP 503" in alert["text"]
    assert "cvn campaign rerun defi-abc --cryptos ADAUSDC" in alert["commands"]

    cursor, message = tick(sensor, instance, cursor, channels)  # next tick, and a restart with that cursor
    assert len(received(http_receiver)) == 2
    assert TOKEN not in cursor + message


def test_identical_failures_in_one_tick_are_one_grouped_alert(instance, http_receiver, channels):
    sensor = build_run_failure_sensor(["flaky_job"])
    cursor, _ = tick(sensor, instance, None, channels)
    for crypto in ("SOLUSDC", "ADAUSDC", "XRPUSDC"):
        run_flaky(instance, fail=True, crypto=crypto)
    tick(sensor, instance, cursor, channels)
    alerts = received(http_receiver)
    assert len(alerts) == 1
    assert alerts[0]["title"].startswith("3 runs of flaky_job failed with the same cause")
    assert sum(command.startswith("cvn campaign rerun defi-abc --cryptos ") for command in alerts[0]["commands"]) == 3


def test_an_alert_a_channel_refused_is_re_sent_on_the_next_tick(instance, http_receiver, channels):
    sensor = build_run_failure_sensor(["flaky_job"])
    cursor, _ = tick(sensor, instance, None, channels)
    run_flaky(instance, fail=True)
    http_receiver.fail_next(3, status=503)  # every attempt of this tick
    cursor, message = tick(sensor, instance, cursor, channels)
    assert received(http_receiver) == [] and "failed: webhook" in message
    cursor, message = tick(sensor, instance, cursor, channels)
    assert len(received(http_receiver)) == 1 and "re-sent" in message
    tick(sensor, instance, cursor, channels)
    assert len(received(http_receiver)) == 1


# Failed transport checks (runbook scenarios A, B, C)


acquisition = dg.MultiPartitionsDefinition({
    "campaign": dg.StaticPartitionsDefinition(["defi-abc"]),
    "crypto": dg.StaticPartitionsDefinition(["SOLUSDC", "ADAUSDC"]),
})
campaigns = dg.StaticPartitionsDefinition(["defi-abc", "defi-xyz"])


@dg.asset(name=S43_PREDICTIONS, partitions_def=acquisition, check_specs=[
    dg.AssetCheckSpec(BLOBS_INTACT, asset=S43_PREDICTIONS, blocking=True, partitions_def=acquisition)])
def predictions(context: dg.AssetExecutionContext):
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name=BLOBS_INTACT, passed=False, severity=dg.AssetCheckSeverity.ERROR,
                              metadata={"blobs_checked": 6,
                                        "problems": f"{KEY_SOL}: s43 npz shape mismatch: {KEY_SOL}: "
                                                    "y_pred has 99 rows, expected 100"})


@dg.asset(name=S43_GATE, partitions_def=campaigns, check_specs=[dg.AssetCheckSpec(COHORT_COMPLETE, asset=S43_GATE)])
def gate(context: dg.AssetExecutionContext):
    everything_absent = context.partition_key == "defi-xyz"
    missing = ([f"s43-predictions/{context.partition_key}/{c}/hgb/fold-00.npz" for c in ("SOLUSDC", "ADAUSDC")]
               if everything_absent else ["s43-predictions/defi-abc/ADAUSDC/hgb/fold-00.npz"])
    return dg.MaterializeResult(
        metadata={"verdict": "INCONCLUSIVE_TOOLING", "transport_suspect": everything_absent,
                  "absent_blobs": len(missing)},
        check_results=[dg.AssetCheckResult(check_name=COHORT_COMPLETE, passed=False,
                                           severity=dg.AssetCheckSeverity.WARN,
                                           metadata={"absent": len(missing), "missing": dg.MetadataValue.json(missing),
                                                     "transport_suspect": everything_absent})],
    )


@dg.asset_check(asset=S43_GATE, name=COHORT_INTACT, partitions_def=campaigns)
def cohort_intact(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"key": KEY_SOL, "error": f"s43 npz schema mismatch: {KEY_SOL}: "
                                                                  "schema_version 9, expected one of [1]"})


def test_transport_checks_map_to_runbook_scenarios_once_each(instance, http_receiver, channels):
    sensor = build_asset_check_sensor()
    run_sensor = build_run_failure_sensor(["__ephemeral_asset_job__"])
    cursor, _ = tick(sensor, instance, None, channels)
    run_cursor, _ = tick(run_sensor, instance, None, channels)

    failed = dg.materialize([predictions], instance=instance, raise_on_error=False,
                            partition_key=dg.MultiPartitionKey({"campaign": "defi-abc", "crypto": "SOLUSDC"}))
    assert not failed.success  # a blocking ERROR check fails the run
    dg.materialize([gate, cohort_intact], instance=instance, partition_key="defi-abc")
    dg.materialize([gate], instance=instance, partition_key="defi-xyz")

    cursor, message = tick(sensor, instance, cursor, channels)
    assert len(received(http_receiver)) == 4, message

    blobs = next(a for a in received(http_receiver) if a["facts"].get("check") == BLOBS_INTACT)
    assert blobs["severity"] == "P1" and blobs["scenario"].startswith("runbook scenario B")
    assert blobs["commands"][:2] == [
        f"cvn blob inspect {KEY_SOL}", "cvn campaign rerun defi-abc --cryptos SOLUSDC"]
    intact = next(a for a in received(http_receiver) if a["facts"].get("check") == COHORT_INTACT)
    assert intact["severity"] == "P1" and "schema_version 9" in intact["text"]
    assert f"cvn blob inspect {KEY_SOL}" in intact["commands"]
    incomplete = next(a for a in received(http_receiver) if a["scenario"].startswith("runbook scenario A"))
    assert incomplete["facts"]["campaign"] == "defi-abc" and "cvn campaign rerun defi-abc --cryptos ADAUSDC" in incomplete["commands"]
    suspects = [a for a in received(http_receiver) if a["scenario"].startswith("runbook scenario C")]
    assert len(suspects) == 1 and suspects[0]["facts"]["campaign"] == "defi-xyz"
    assert suspects[0]["commands"][0] == "cvn s3 check"

    tick(sensor, instance, cursor, channels)
    assert len(received(http_receiver)) == 4  # nothing twice
    # the failed acquisition run is the same incident: the run-failure sensor leaves it to the check alert
    _, message = tick(run_sensor, instance, run_cursor, channels)
    assert len(received(http_receiver)) == 4 and "left to asset_check_alert_sensor" in message


# Stuck runs (§17.5)


@dg.op
def silent_step() -> None:
    time.sleep(3.0)  # alive, writing nothing: the deadlocked pod of §17.5


@dg.job(name="sleepy_job", tags={CAMPAIGN_TAG: "defi-abc", CRYPTO_TAG: "SOLUSDC"})
def sleepy_job() -> None:
    silent_step()


def test_a_silent_running_run_is_flagged_once(instance, http_receiver, channels):
    sensor = build_stuck_run_sensor(["sleepy_job"], silent_minutes=1.0 / 60)  # one second of silence
    worker = threading.Thread(target=lambda: sleepy_job.execute_in_process(instance=instance))
    worker.start()
    try:
        deadline = time.time() + 20
        while not instance.get_runs(filters=dg.RunsFilter(job_name="sleepy_job",
                                                          statuses=[dg.DagsterRunStatus.STARTED])):
            assert time.time() < deadline, "the run never started"
            time.sleep(0.05)
        time.sleep(1.3)
        cursor, message = tick(sensor, instance, None, channels)
        alerts = received(http_receiver)
        assert len(alerts) == 1, message
        assert alerts[0]["kind"] == "stuck_run" and alerts[0]["severity"] == "P1"
        assert "sleepy_job" in alerts[0]["title"] and "silent for" in alerts[0]["title"]
        assert "campaign defi-abc, crypto SOLUSDC" in alerts[0]["title"]
        cursor, _ = tick(sensor, instance, cursor, channels)
        assert len(received(http_receiver)) == 1
        [row] = channels["diagnostics"].store().state_diagnostics("RUN_STUCK")  # Pipeline Health's stuck runs
        assert row["job"] == "sleepy_job" and row["step"] == "silent_step" and row["campaign_id"] == "defi-abc"
    finally:
        worker.join()
    cursor, message = tick(sensor, instance, cursor, channels)  # finished: forgotten, never re-flagged
    assert len(received(http_receiver)) == 1 and "0 run(s) started" in message


def test_alert_definitions_load_with_their_resource(tmp_path):
    from cvn_assets.diagnostics.resources import DiagnosticsResource

    defs = dg.Definitions.merge(alert_defs(), dg.Definitions(resources={
        "alert_channels": AlertChannelsResource(),
        "diagnostics": DiagnosticsResource(url=f"sqlite:///{tmp_path / 'diagnostics.sqlite'}")}))
    names = {sensor.name for sensor in defs.sensors}
    assert names == {"run_failure_alert_sensor", "asset_check_alert_sensor", "stuck_run_sensor", "long_run_sensor"}
    defs.get_repository_def().load_all_definitions()


def test_the_watched_names_are_the_products():
    from cvn_assets.acquisition import assets as acquisition_assets
    from cvn_assets.gate import assets as gate_assets

    assert (S43_PREDICTIONS, BLOBS_INTACT) == (acquisition_assets.S43_PREDICTIONS, acquisition_assets.BLOBS_INTACT)
    assert (S43_GATE, COHORT_COMPLETE, COHORT_INTACT) == (
        gate_assets.S43_GATE, gate_assets.COHORT_COMPLETE, gate_assets.COHORT_INTACT)


# A rerun from the asset page (__ASSET_JOB, no campaign tags) is supervised as its campaign's


@dg.asset(name="market_candles", partitions_def=acquisition)
def failing_candles(context: dg.AssetExecutionContext) -> None:
    raise RuntimeError("market data fetch failed: HTTP 503 from the exchange")


def test_a_failed_rerun_from_the_asset_page_is_alerted_as_its_campaigns(instance, http_receiver, channels):
    sensor = build_run_failure_sensor()  # the supervised jobs, the asset page's included
    cursor, _ = tick(sensor, instance, None, channels)
    job = dg.Definitions(assets=[failing_candles]).resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, raise_on_error=False,
                                    partition_key=dg.MultiPartitionKey({"campaign": "defi-abc", "crypto": "SOLUSDC"}))
    assert not result.success and job.name == "__ASSET_JOB"
    assert CAMPAIGN_TAG not in instance.get_run_by_id(result.run_id).tags
    tick(sensor, instance, cursor, channels)
    [alert] = received(http_receiver)
    assert alert["kind"] == "run_failure" and "campaign defi-abc, crypto SOLUSDC" in alert["title"]
    assert alert["key"] == "incident:run:__ASSET_JOB:defi-abc"
    assert "cvn campaign rerun defi-abc --cryptos SOLUSDC" in alert["commands"]
