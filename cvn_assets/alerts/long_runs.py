"""``long_run_sensor`` (manual §9.5): a run still logging but running too long.

A STARTED run of our jobs that still writes events (a silent one is ``stuck_run_sensor``'s) is
compared with its job's historical p95 duration (``state.signals.job_latency``, §2
``pipeline_latency``) and with the absolute ceiling: over p95 + 30 % → P3 (digest), over 3 h or
p95 + 100 % → P2. Each run is alerted once per level (a P3 that grows into a P2 is told again,
once), with the step it is in and the §9.5 checks for that step; each alert is also a
``RUN_TOO_LONG`` row of ``cvn_state_diagnostics`` (Pipeline Health's long runs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg

from cvn_assets.alerts.alert import Severity
from cvn_assets.alerts.messages import long_run_alert
from cvn_assets.alerts.sensors import AlertCursor, _deliver, _result, silent_runs
from cvn_assets.runs import SUPERVISED_JOBS, campaign_scope, current_step
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import job_latency

LONG_RUN_SENSOR = "long_run_sensor"
RUN_TOO_LONG = "RUN_TOO_LONG"


def long_run_level(elapsed: float, p95: float | None, settings: StateSettings) -> tuple[Severity | None, str]:
    """The §9.5 level of a run running for ``elapsed`` seconds, and why (pure)."""
    ceiling = settings.run_duration_ceiling_hours * 3600
    if elapsed > ceiling:
        return Severity.P2, f"running for {elapsed / 3600:.2f} h > {settings.run_duration_ceiling_hours:g} h (§9.5)"
    if p95 and elapsed > p95 * settings.latency_critical_factor:
        return Severity.P2, (f"running for {elapsed:.0f} s > p95 {p95:.0f} s × {settings.latency_critical_factor:g} "
                             "(p95 + 100 %, §2 critical)")
    if p95 and elapsed > p95 * settings.latency_warning_factor:
        return Severity.P3, (f"running for {elapsed:.0f} s > p95 {p95:.0f} s × {settings.latency_warning_factor:g} "
                             "(p95 + 30 %, §2 warning)")
    return None, ""


def build_long_run_sensor(
    jobs: Sequence[str] = SUPERVISED_JOBS,
    settings: StateSettings | None = None,
    *,
    silent_minutes: float = 15.0,
    name: str = LONG_RUN_SENSOR,
    minimum_interval_seconds: int = 120,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    jobs = tuple(jobs)
    settings = settings or StateSettings()

    @dg.sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
               required_resource_keys={"alert_channels", "diagnostics"},
               description=(f"§9.5: alerts once per run (and level) of {', '.join(jobs)} still logging but running "
                            f"over its p95 + 30 % (P3), or over {settings.run_duration_ceiling_hours:g} h or p95 + 100 % "
                            "(P2), with the step it is in and the §9.5 checks."))
    def long_run_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = time.time()
        cursor = AlertCursor.load(context.cursor, now, 0.0)
        silent, started = silent_runs(context.instance, jobs, silent_minutes * 60, now)
        silent_ids = {run.run_id for run, _, _ in silent}
        # A mark is dropped only when its run is no longer STARTED.
        seen = {key: at for key, at in cursor.seen.items() if key.split(":")[1] in started}
        alerts, anomalies = [], []
        p95s: dict[str, float | None] = {}
        for job in jobs:
            for record in context.instance.get_run_records(filters=dg.RunsFilter(
                    job_name=job, statuses=[dg.DagsterRunStatus.STARTED])):
                run = record.dagster_run
                if run.run_id in silent_ids or record.start_time is None:
                    continue
                if job not in p95s:
                    p95s[job] = job_latency(context.instance, job, settings, datetime.now(UTC)).p95_seconds
                elapsed = now - record.start_time
                severity, reason = long_run_level(elapsed, p95s[job], settings)
                if severity is None or f"long:{run.run_id}:{severity.value}" in seen:
                    continue
                for level in (Severity.P3, Severity.P2):  # a P2 told first makes a later P3 pointless
                    if severity.at_least(level):
                        seen[f"long:{run.run_id}:{level.value}"] = now
                step = current_step(context.instance, run.run_id)
                campaign_id, crypto, _ = campaign_scope(run.tags)
                alert = long_run_alert(job=job, run_id=run.run_id, campaign_id=campaign_id,
                                       crypto=crypto, severity=severity, elapsed_seconds=elapsed,
                                       p95_seconds=p95s[job], reason=reason, step=step,
                                       created_at=datetime.now(UTC))
                alerts.append(alert)
                anomalies.append(dict(detected_at=alert.created_at, code=RUN_TOO_LONG, severity=severity.value,
                                      reason=reason, run_id=run.run_id, job=job,
                                      campaign_id=campaign_id, step=step, seconds=elapsed,
                                      values={"p95_seconds": p95s[job], "checks": alert.next_steps}))
        if anomalies:
            store = context.resources.diagnostics.store()
            for anomaly in anomalies:
                store.record_run_anomaly(**anomaly)
        dispatcher = context.resources.alert_channels.dispatcher(context.log)
        cursor, lines = _deliver(dispatcher, alerts, cursor.model_copy(update={"seen": seen}), now, 24.0)
        return _result(cursor, lines, f"{len(started)} run(s) started, none newly over its p95 or "
                                      f"{settings.run_duration_ceiling_hours:g} h")

    return long_run_sensor
