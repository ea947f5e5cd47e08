"""Signal sources: run records of a real instance, the machine, Kubernetes pod objects, the table marks."""


import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from kubernetes.client import (
    V1ContainerState, V1ContainerStateTerminated, V1ContainerStateWaiting, V1ContainerStatus, V1ObjectMeta, V1Pod,
    V1PodStatus,
)

from cvn_assets.state.infra import InfraProbe, disk_percent, infra_health, memory_percent, pod_health
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import CryptoRecord, Measure, crypto_signals, pipeline_latency, pipeline_success_rate
from cvn_assets.state.table import Level, render_table, signal_table
from cvn_assets_tests.test_state_rules import healthy

NOW = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)


# Run records


class StepConfig(dg.Config):
    fail: bool = False


@dg.op
def step(config: StepConfig) -> None:
    if config.fail:
        raise RuntimeError("boom")


@dg.job(name="measured_job")
def measured_job() -> None:
    step()


def test_success_rate_and_latency_from_real_runs(instance):
    settings = StateSettings(jobs=("measured_job",), latency_min_history=2)
    now = datetime.now(UTC)
    assert not pipeline_success_rate(instance, settings, now).known
    for fail in (False, False, False, True):
        measured_job.execute_in_process(instance=instance, raise_on_error=False,
                                        run_config={"ops": {"step": {"config": {"fail": fail}}}})
    rate = pipeline_success_rate(instance, settings, datetime.now(UTC))
    assert rate.value == pytest.approx(75.0)
    assert rate.detail.startswith("3 of 4 finished runs succeeded over 7 days (failed: measured_job×1)")
    latency = pipeline_latency(instance, settings, datetime.now(UTC))["measured_job"]
    assert latency.ratio.known and latency.p95_seconds and latency.seconds
    # the window is a window: a week later those runs no longer count
    assert not pipeline_success_rate(instance, settings, datetime.now(UTC) + timedelta(days=8)).known


def test_latency_needs_history_before_it_has_a_p95(instance):
    measured_job.execute_in_process(instance=instance)
    latency = pipeline_latency(instance, StateSettings(jobs=("measured_job",)), datetime.now(UTC))["measured_job"]
    assert not latency.ratio.known and "need 5 for a p95" in latency.ratio.unknown
    assert latency.seconds is not None


def historical_run(instance, job: str, created: datetime, seconds: float, succeeded: bool = True) -> str:
    """A finished run as the run storage records it, at a moment in the past (start and end events)."""
    run = dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()))
    instance.run_storage.add_historical_run(run, created)
    instance.run_storage.handle_run_event(run.run_id, DagsterEvent(DagsterEventType.RUN_START.value, job), created)
    end = DagsterEventType.RUN_SUCCESS if succeeded else DagsterEventType.RUN_FAILURE
    instance.run_storage.handle_run_event(run.run_id, DagsterEvent(end.value, job),
                                          created + timedelta(seconds=seconds))
    return run.run_id


def test_success_rate_counts_the_runs_that_ended_in_the_window_whatever_touched_them_later(instance):
    settings = StateSettings(jobs=("measured_job",))
    now = datetime.now(UTC)
    historical_run(instance, "measured_job", now - timedelta(days=2), 60)
    historical_run(instance, "measured_job", now - timedelta(days=3), 60, succeeded=False)
    # started before the window, ended inside it: counted
    historical_run(instance, "measured_job", now - timedelta(days=7, minutes=10), 1200)
    # ended before the window, tagged yesterday (its update time moves into the window): not counted
    old = historical_run(instance, "measured_job", now - timedelta(days=9), 60, succeeded=False)
    instance.add_run_tags(old, {"note": "looked at during the post-mortem"})
    assert instance.get_run_record_by_id(old).update_timestamp > now - timedelta(days=7)
    # a month old: not counted
    historical_run(instance, "measured_job", now - timedelta(days=30), 60, succeeded=False)

    rate = pipeline_success_rate(instance, settings, now)
    assert rate.value == pytest.approx(200 / 3)
    assert rate.detail.startswith("2 of 3 finished runs succeeded over 7 days (failed: measured_job×1)")


def test_latency_p95_comes_from_the_latest_runs_of_the_job_only(instance):
    now = datetime.now(UTC)
    for day in range(20, 10, -1):  # ten slow runs, then six quick ones (the latest compared with five)
        historical_run(instance, "measured_job", now - timedelta(days=day), 1000)
    for hour in range(12, 0, -2):
        historical_run(instance, "measured_job", now - timedelta(hours=hour), 100)
    bounded = StateSettings(jobs=("measured_job",), latency_history_runs=6)
    latency = pipeline_latency(instance, bounded, now)["measured_job"]
    assert latency.seconds == pytest.approx(100) and latency.p95_seconds == pytest.approx(100)
    assert "over 5 runs" in latency.ratio.detail
    everything = pipeline_latency(instance, StateSettings(jobs=("measured_job",)), now)["measured_job"]
    assert everything.p95_seconds == pytest.approx(1000) and "over 15 runs" in everything.ratio.detail


# The machine


def test_disk_use_of_a_volume_not_yet_created_is_read_on_its_parent(tmp_path: Path):
    measure = disk_percent(str(tmp_path / "not" / "yet"))
    assert measure.known and 0 <= measure.value <= 100 and str(tmp_path) in measure.detail


def test_memory_from_meminfo(tmp_path: Path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000000 kB\nMemFree:  1 kB\nMemAvailable:    250000 kB\n")
    assert memory_percent(meminfo).value == pytest.approx(75.0)
    assert not memory_percent(tmp_path / "absent").known


def test_local_probe_watches_the_object_store_and_instance_volumes(tmp_path: Path):
    probe = InfraProbe.from_env({"CVN_STORAGE_ROOT": str(tmp_path / "objects"), "DAGSTER_HOME": str(tmp_path)})
    health = infra_health(probe, StateSettings(), NOW)
    assert health.mode == "local" and set(health.disks) == {"object store", "dagster instance"}
    assert health.oom_kills is None and health.pods_down is None  # not applicable on one machine
    s3_probe = InfraProbe.from_env({"CVN_STORAGE_ROOT": "/x", "CVN_S3_BUCKET": "b", "DAGSTER_HOME": str(tmp_path)})
    assert set(s3_probe.volumes) == {"dagster instance"}


def test_in_a_cluster_without_a_namespace_the_pods_are_unknown(tmp_path: Path):
    probe = InfraProbe(volumes={}, kubernetes=True, namespace=None)
    health = infra_health(probe, StateSettings(), NOW)
    assert health.mode == "kubernetes" and not health.pods_down.known
    assert "CVN_K8S_NAMESPACE" in health.pods_down.unknown


# Kubernetes pods (the API's own models)


def pod(name: str, phase: str, *, component: str = "user-deployments", created_minutes_ago: float = 60,
        statuses: list[V1ContainerStatus] | None = None) -> V1Pod:
    return V1Pod(
        metadata=V1ObjectMeta(name=name, labels={"app.kubernetes.io/component": component},
                              creation_timestamp=NOW - timedelta(minutes=created_minutes_ago)),
        status=V1PodStatus(phase=phase, container_statuses=statuses,
                           start_time=NOW - timedelta(minutes=created_minutes_ago)),
    )


def container(name: str = "main", *, ready: bool = True, restarts: int = 0, last: V1ContainerState | None = None,
              state: V1ContainerState | None = None) -> V1ContainerStatus:
    return V1ContainerStatus(name=name, ready=ready, restart_count=restarts, image="img", image_id="id",
                             last_state=last, state=state or V1ContainerState())


def oom(minutes_ago: float) -> V1ContainerState:
    return V1ContainerState(terminated=V1ContainerStateTerminated(
        exit_code=137, reason="OOMKilled", finished_at=NOW - timedelta(minutes=minutes_ago)))


def test_pod_health_counts_oom_loops_restarts_and_pods_down():
    pods = [
        pod("code-server", "Running", statuses=[container()]),
        pod("step-sol", "Running", component="step_worker",
            statuses=[container(restarts=3, last=oom(5))]),
        pod("step-old", "Running", component="step_worker",
            statuses=[container(restarts=1, last=oom(60 * 30))]),  # outside the 24 h window
        pod("daemon", "Running", statuses=[container(
            ready=False, state=V1ContainerState(waiting=V1ContainerStateWaiting(reason="CrashLoopBackOff")))]),
        pod("run-ada", "Pending", component="run_worker", created_minutes_ago=20),
        pod("run-new", "Pending", component="run_worker", created_minutes_ago=2),
        pod("run-done", "Failed", component="run_worker"),  # a failed run: the success rate's business
    ]
    health = pod_health(pods, NOW, StateSettings())
    assert health["oom_kills"].value == 3 and "step-sol/main" in health["oom_kills"].detail
    assert health["restarts"].value == 4
    assert health["pods_down"].value == 2
    assert "daemon (CrashLoopBackOff)" in health["pods_down"].detail and "run-ada (Pending 20 min)" in health["pods_down"].detail


# Diagnostics rows → crypto signals, units


def test_gate_signals_are_read_in_the_manual_units():
    record = CryptoRecord(crypto="SOLUSDC", campaign_id="defi-abc", diagnostic="SL_TOO_TIGHT",
                          signals={"f1_buy_delta": 12.5, "sl_pct": 0.55, "timeout_pct": 0.3, "sortino": -0.2,
                                   "std_f1_buy": 0.04, "screening_testing_gap": None})
    universes = {"defi": type("U", (), {"symbols": ["SOLUSDC", "ADAUSDC"], "core": False})()}
    rows = crypto_signals(universes, {"SOLUSDC": record}, [], {"SOLUSDC": Measure.of(2.0)})
    sol = rows["SOLUSDC"]
    assert sol.sl_pct.value == pytest.approx(55.0) and sol.timeout_pct.value == pytest.approx(30.0)
    assert sol.f1_buy_delta_vs_baseline.value == 12.5
    assert not sol.screening_testing_gap.known and "absent from the latest gate" in sol.screening_testing_gap.unknown
    assert not rows["ADAUSDC"].sortino.known and "no gate signals recorded for ADAUSDC" in rows["ADAUSDC"].sortino.unknown
    assert not rows["ADAUSDC"].model_freshness_days.known


def test_table_marks_follow_section_2():
    signals = healthy(pipeline_success_rate=Measure.of(80.0), challenger_count=Measure.of(11))
    row = signals.cryptos["SOLUSDC"].model_copy(update={
        "sl_pct": Measure.of(50.0), "timeout_pct": Measure.of(40.01), "sortino": Measure.of(0.0),
        "std_f1_buy": Measure.of(0.05), "f1_buy_delta_vs_baseline": Measure.of(0.0),
        "screening_testing_gap": Measure.missing("no screening")})
    signals = signals.model_copy(update={"cryptos": {**signals.cryptos, "SOLUSDC": row}})
    levels = {(r.signal, r.scope.split()[0]): r.level for r in signal_table(signals)}
    assert levels[("pipeline_success_rate", "7")] == Level.WARNING
    assert levels[("challenger_count", "registry")] == Level.CRITICAL
    assert levels[("sl_pct", "SOLUSDC")] == Level.WARNING        # 50 % is not > 50 %
    assert levels[("timeout_pct", "SOLUSDC")] == Level.CRITICAL
    assert levels[("sortino", "SOLUSDC")] == Level.WARNING       # 0 is in "0 to 0.5"
    assert levels[("std_f1_buy", "SOLUSDC")] == Level.WARNING
    assert levels[("f1_buy_delta_vs_baseline", "SOLUSDC")] == Level.CRITICAL
    assert levels[("screening_testing_gap", "SOLUSDC")] == Level.UNKNOWN
    text = render_table(signal_table(signals))
    assert "SOLUSDC (defi)" in text and "?" in text and "!!" in text


# The no-candidate rules relaunch the campaigns that failed, not a fixed group


def test_no_candidate_rules_relaunch_the_failed_campaigns_own_group_and_data_source(real_gates, tmp_path):
    from cvn_assets.alerts.messages import state_alert
    from cvn_assets.alerts.policy import Decision, NotificationKind
    from cvn_assets.alerts.alert import Severity
    from cvn_assets.diagnostics.store import DiagnosticsStore
    from cvn_assets.state.rules import evaluate_state
    from cvn_assets.state.signals import gate_history
    from cvn_assets.state.sources import StoreDiagnostics

    store = DiagnosticsStore(f"sqlite:///{tmp_path / 'diag.sqlite'}")
    store.migrate()
    failed = real_gates["fail"].report
    data_dir = tmp_path / "candles"
    for day, (campaign_id, group) in enumerate([("core-fail-001", "btc-core"), ("core-fail-002", "btc-core"),
                                                ("core-fail-003", "btc-core")]):
        spec = failed.spec.model_copy(update={"campaign_id": campaign_id, "group": group, "symbols": ["BTCUSDC"],
                                              "data_source": "files", "data_dir": data_dir, "timeframe": "1h"})
        store.replace_gate(failed.model_copy(update={
            "campaign_id": campaign_id, "group": group, "spec": spec,
            "evaluated_at": NOW - timedelta(days=5 - day)}))
    history = gate_history(StoreDiagnostics(store).gate_records(10), StateSettings(), NOW)
    evaluation = evaluate_state(healthy(gates=history), StateSettings(), {})
    fired = {rule.id: rule for rule in evaluation.rules}
    assert {"zero_pass_gates", "no_candidates"} <= set(fired)

    alert = state_alert(evaluation, Decision(kind=NotificationKind.FIRING, severity=Severity.P2, previous_state=None,
                                             reason="test"), NOW)
    relaunches = [command for command in alert.commands if command.startswith("cvn campaign launch")]
    assert relaunches and all("--group btc-core --symbols BTCUSDC" in command for command in relaunches)
    assert all(f"--data-source files --data-dir {data_dir}" in command and "--timeframe 1h" in command
               for command in relaunches)
    assert not any("--group defi" in command for command in alert.commands)
    store.close()
