"""Campaign runs around failures: S3 dying mid-acquisition, and the sensor that gates a campaign."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from cvn_assets.campaigns.sensors import campaign_sensor
from cvn_assets.definitions import build_defs
from cvn_assets.gate.report import Verdict
from cvn_assets.runs import ACQUIRE_JOB, CAMPAIGN_TAG, GATE_JOB, LAUNCH_JOB
from cvn_assets.gate.assets import COHORT_INTACT
from cvn_assets_tests.fixtures.campaigns import CampaignHarness, check_evaluations, logged_lines, small_spec


@pytest.fixture
def s3_harness(s3_fault_proxy, instance) -> CampaignHarness:
    from cvn_assets.storage.factory import build_object_store
    from cvn_assets.storage.settings import StorageSettings

    settings = StorageSettings.from_env()
    return CampaignHarness(instance=instance, defs=build_defs(), store=build_object_store(settings),
                           prefix=settings.prefix)


def test_s3_lost_during_an_acquisition_fails_that_step_and_gate_is_inconclusive_for_it(s3_harness, s3_fault_proxy):
    manifest = s3_harness.register(small_spec("s3down-001"))
    assert s3_harness.acquire("s3down-001", "SOLUSDC").success

    s3_fault_proxy.refuse_uploads_matching = r"/s3down-001/ADAUSDC/.*\.npz"  # S3 dies as ADAUSDC persists
    failed = s3_harness.acquire("s3down-001", "ADAUSDC")
    assert not failed.success
    assert s3_fault_proxy.refused, "the upload never reached the cut"
    lines = logged_lines(s3_harness.instance, failed.run_id)
    persist_failed = [line for line in lines if "event=s43_pred_persist_failed" in line]
    assert persist_failed and "crypto=ADAUSDC" in persist_failed[0] and "key=s43-predictions/s3down-001/ADAUSDC/" in persist_failed[0]

    s3_fault_proxy.refuse_uploads_matching = None  # S3 is back; the gate re-reads the cohort
    assert s3_harness.gate("s3down-001").success
    report = s3_harness.report("s3down-001")
    assert report.verdict == Verdict.INCONCLUSIVE_TOOLING and not report.transport_suspect
    absent = [entry for entry in report.cohort if entry.status == "absent"]
    assert {entry.crypto for entry in absent} == {"ADAUSDC"}
    assert len(absent) == len([ref for ref in manifest.expected if ref.crypto == "ADAUSDC"])
    assert all(entry.reason and "failure" in entry.reason.lower() for entry in absent), absent[0].reason


def test_lost_acknowledgement_of_blob_writes_still_completes_the_acquisition(s3_harness, s3_fault_proxy):
    """S3 stores every ADAUSDC blob but its answer is lost: the objects are verified, the step succeeds."""
    s3_harness.register(small_spec("lostack-001"))
    assert s3_harness.acquire("lostack-001", "SOLUSDC").success
    s3_fault_proxy.arm("lost-ack", "PUT", r"/lostack-001/ADAUSDC/.*\.npz", times=None)
    assert s3_harness.acquire("lostack-001", "ADAUSDC").success
    assert any(kind == "lost-ack" for kind, _, _ in s3_fault_proxy.injected), "no acknowledgement was cut"
    s3_fault_proxy.disarm()
    assert s3_harness.gate("lostack-001").success
    report = s3_harness.report("lostack-001")
    assert report.missing == [] and report.verdict in {Verdict.PASS, Verdict.FAIL}


def test_one_fault_while_reading_a_blob_body_still_gives_the_verdict(s3_harness, s3_fault_proxy):
    manifest = s3_harness.launch(small_spec("bodyfault-001", symbols=["SOLUSDC"]))
    key = s3_harness.blob_keys(manifest)[1]
    for kind in ("reset-body", "truncate-body", "flip-body"):
        s3_fault_proxy.injected.clear()
        s3_fault_proxy.arm(kind, "GET", re.escape(key), times=1)  # one fault; CVN_S3_MAX_ATTEMPTS=2 here
        result = s3_harness.gate("bodyfault-001")
        assert result.success, kind
        assert [k for k, _, _ in s3_fault_proxy.injected] == [kind]
        assert check_evaluations(result)[COHORT_INTACT].passed, kind
        report = s3_harness.report("bodyfault-001")
        assert report.missing == [] and report.verdict in {Verdict.PASS, Verdict.FAIL}, kind


def test_stalled_endpoint_fails_cvn_gate_within_the_deadline_naming_scenario_c(s3_fault_proxy, dagster_home):
    s3_fault_proxy.arm("stall", "GET", r".", times=None)
    env = {**os.environ, "CVN_S3_READ_TIMEOUT": "1", "CVN_S3_DEADLINE": "3", "CVN_S3_MAX_ATTEMPTS": "10"}
    started = time.monotonic()
    result = subprocess.run([str(Path(sys.executable).with_name("cvn")), "gate", "--campaign", "stalled-001"],
                            capture_output=True, text=True, env=env, timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert s3_fault_proxy.endpoint_url in result.stderr and "runbook scenario C: `cvn s3 check`" in result.stderr
    assert elapsed < 30, f"`cvn gate` took {elapsed:.0f} s against a stalled endpoint (deadline 3 s)"


def _tick(instance: dg.DagsterInstance, defs: dg.Definitions):
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        return campaign_sensor(context)


def write_ohlcv_csv(path, bars: int, seed: int = 0, step_ms: int = 300_000) -> None:
    """A plain CSV of bars ``step_ms`` apart (5 minutes by default; timestamp in epoch ms), a geometric random walk."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, bars)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0, 0.001, bars)) * close
    frame = pd.DataFrame({
        "timestamp": 1_700_000_000_000 + np.arange(bars, dtype=np.int64) * step_ms,
        "open": open_, "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
        "close": close, "volume": rng.gamma(2.0, 10.0, bars),
    })
    frame.to_csv(path, index=False)


def test_sensor_gates_a_campaign_once_every_acquisition_finished_failed_ones_included(instance, storage_root, tmp_path):
    defs = build_defs()
    harness = CampaignHarness(instance=instance, defs=defs, store=defs.resources["object_store"].store(),
                              prefix="s43-predictions")
    data_dir = tmp_path / "ohlcv"
    data_dir.mkdir()
    write_ohlcv_csv(data_dir / "ADAUSDC.csv", bars=12 * 288)
    (data_dir / "SOLUSDC.csv").write_text("timestamp,open,high,low,close,volume\n")  # no rows: its step fails
    harness.register(small_spec("sensor-001", data_source="files", data_dir=data_dir))
    assert harness.acquire("sensor-001", "ADAUSDC").success

    waiting = _tick(instance, defs)
    assert isinstance(waiting, dg.SkipReason) and "waiting for SOLUSDC" in waiting.skip_message

    assert not harness.acquire("sensor-001", "SOLUSDC").success
    requests = _tick(instance, defs)
    assert [(request.job_name, request.partition_key) for request in requests] == [(GATE_JOB, "sensor-001")]

    assert harness.gate("sensor-001").success
    report = harness.report("sensor-001")
    assert report.verdict == Verdict.INCONCLUSIVE_TOOLING
    reasons = {entry.reason for entry in report.cohort if entry.status == "absent"}
    assert len(reasons) == 1 and "SOLUSDC.csv" in reasons.pop()  # the reason the acquisition logged
    assert isinstance(_tick(instance, defs), dg.SkipReason)  # gated since the last acquisition ended


def test_launch_discovery_job_registers_and_sensor_requests_one_acquisition_per_crypto(instance, storage_root):
    defs = build_defs()
    result = defs.resolve_job_def(LAUNCH_JOB).execute_in_process(
        instance=instance,
        run_config={"ops": {"register_campaign": {"config": {
            "group": "defi", "symbols": "SOLUSDC,XRPUSDC", "horizons": "H1", "sl_range": "1.0",
            "tp_range": "2.0", "folds": 2, "families": "naive,logreg", "backtest_days": 10,
            "campaign_id": "launchpad-001"}}}},
    )
    assert result.success
    assert instance.get_run_by_id(result.run_id).tags[CAMPAIGN_TAG] == "launchpad-001"
    assert set(instance.get_dynamic_partitions("campaign")) == {"launchpad-001"}
    requests = _tick(instance, defs)
    assert sorted((r.job_name, r.tags["cvn/crypto"]) for r in requests) == [(ACQUIRE_JOB, "SOLUSDC"), (ACQUIRE_JOB, "XRPUSDC")]


def test_launch_discovery_refuses_bad_parameters_naming_the_field(instance, storage_root):
    result = build_defs().resolve_job_def(LAUNCH_JOB).execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"ops": {"register_campaign": {"config": {"group": "defi", "sl_range": "abc"}}}},
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "sl_range" in failure.step_failure_data.error.message
    assert not storage_root.exists() or not list(storage_root.rglob("*.json"))


def test_the_default_worker_count_never_spawns_on_two_cores_and_spreads_big_campaigns_on_more():
    from cvn_assets.campaigns.runner import available_cpus, default_workers

    assert default_workers(4, cpus=2) == 1 and default_workers(40, cpus=2) == 1  # this machine: in-process
    assert default_workers(4, cpus=8) == 1  # the demo's 4 acquisitions do not pay for a second interpreter
    assert default_workers(20, cpus=8) == 5 and default_workers(200, cpus=8) == 7  # one core stays ours
    assert default_workers(0, cpus=1) == 1
    assert 1 <= default_workers(1_000) <= max(1, available_cpus() - 1)


def test_the_launchpad_accepts_everything_the_cli_does(instance, storage_root, tmp_path):
    from cvn_assets.storage.manifests import read_manifest

    defs = build_defs()
    job = defs.resolve_job_def(LAUNCH_JOB)
    data_dir = tmp_path / "hourly"
    data_dir.mkdir()
    write_ohlcv_csv(data_dir / "BTCUSDC.csv", bars=2600, step_ms=3_600_000)
    common = {"horizons": "H1", "sl_range": "1.0", "tp_range": "2.0", "folds": 2, "families": "naive"}
    launches = {
        "launchpad-synth": {"group": "defi", "symbols": "SOLUSDC", "timeframe": "30m", "planted_signal": 0.6,
                            "backtest_days": 60, **common},
        "launchpad-files": {"group": "btc-core", "symbols": "BTCUSDC", "timeframe": "1h", "data_source": "files",
                            "data_dir": str(data_dir), "backtest_days": 105, **common},
    }
    for campaign_id, config in launches.items():
        result = job.execute_in_process(instance=instance, run_config={"ops": {"register_campaign": {"config": {
            **config, "campaign_id": campaign_id}}}})
        assert result.success
    store = defs.resources["object_store"].store()
    synth = read_manifest(store, "s43-predictions", "launchpad-synth").spec
    files = read_manifest(store, "s43-predictions", "launchpad-files").spec
    assert (synth.timeframe, synth.planted_signal, synth.data_source) == ("30m", 0.6, "synthetic")
    assert (files.timeframe, files.data_source, files.data_dir, files.group) == ("1h", "files", data_dir, "btc-core")


def test_a_mistyped_group_fails_the_launchpad_config_validation_and_starts_no_run(instance, storage_root):
    job = build_defs().resolve_job_def(LAUNCH_JOB)
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        job.execute_in_process(instance=instance,
                               run_config={"ops": {"register_campaign": {"config": {"group": "dfi"}}}})
    assert "not in enum type CryptoGroup got dfi" in str(refused.value)
    assert instance.get_runs_count() == 0  # no failed run counts against the pipeline success rate
    assert not storage_root.exists() or not list(storage_root.rglob("*.json"))


def test_the_launchpad_runs_the_preflight_and_registers_nothing_for_bad_candles(instance, storage_root, tmp_path):
    data_dir = tmp_path / "hourly"
    data_dir.mkdir()
    write_ohlcv_csv(data_dir / "BTCUSDC.csv", bars=2600, step_ms=3_600_000)  # hourly bars, launched as 5m
    result = build_defs().resolve_job_def(LAUNCH_JOB).execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"ops": {"register_campaign": {"config": {
            "group": "btc-core", "symbols": "BTCUSDC", "data_source": "files", "data_dir": str(data_dir),
            "campaign_id": "launchpad-bad"}}}})
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "found a median spacing of 3600000 ms (1h)" in failure.step_failure_data.user_failure_data.description
    assert instance.get_dynamic_partitions("campaign") == []


def test_every_blob_absent_because_every_acquisition_refused_its_data_is_said_so_not_transport(
        instance, storage_root, tmp_path, http_receiver, monkeypatch):
    from cvn_assets.alerts.resources import AlertChannelsResource
    from cvn_assets.alerts.sensors import build_asset_check_sensor
    from cvn_assets.gate.assets import COHORT_COMPLETE
    from cvn_assets_tests.fixtures.campaigns import check_evaluations

    defs = build_defs()
    harness = CampaignHarness(instance=instance, defs=defs, store=defs.resources["object_store"].store(),
                              prefix="s43-predictions")
    data_dir = tmp_path / "ohlcv"
    data_dir.mkdir()
    for symbol in ("SOLUSDC", "ADAUSDC"):  # registered without the CLI's pre-flight: the steps refuse them
        (data_dir / f"{symbol}.csv").write_text("timestamp,open,high,low,close,volume\n")
    harness.register(small_spec("data-absent-001", data_source="files", data_dir=data_dir))
    monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", http_receiver.url("/hook/data"))
    sensor, resources = build_asset_check_sensor(), {"alert_channels": AlertChannelsResource(backoff_seconds=0.01)}
    cursor = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, resources=resources)).cursor
    for symbol in ("SOLUSDC", "ADAUSDC"):
        assert not harness.acquire("data-absent-001", symbol).success

    gate = harness.gate("data-absent-001")
    report = harness.report("data-absent-001")
    assert report.verdict == Verdict.INCONCLUSIVE_TOOLING
    assert not report.transport_suspect and report.absence_causes == ["data"]
    assert "because every acquisition failed (data — not a transport problem)" in report.summary
    assert "expected candle rows, found none" in report.summary and "cvn s3 check" not in report.summary
    assert report.next_step.startswith("data: fix the candles")
    complete = check_evaluations(gate)[COHORT_COMPLETE]
    assert complete.metadata["absence_causes"].value == "data"
    assert complete.metadata["next_step"].value.startswith("data: fix the candles")

    sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
    alerts = [request.json() for request in http_receiver.accepted("/hook")]
    assert len(alerts) == 1 and not alerts[0]["scenario"].startswith("runbook scenario C")
    assert "every acquisition failed (data, not transport)" in alerts[0]["title"]
    assert alerts[0]["next_steps"][0].startswith("data: fix the candles")
