"""Failure alerts: failed runs of our jobs, failed transport checks, runs stuck in silence.

- ``run_failure_alert_sensor``: a run of s43_acquire_job / s43_gate_job / launch_discovery
  failed → its root cause and next step (manual §17.1: the failure was in the logs at minute 2
  and acknowledged an hour later because nothing paged). Failures with the same job and cause
  in one tick are grouped into one alert (§17.4: 250 identical failures are one incident).
- ``asset_check_alert_sensor``: ``blobs_intact`` / ``cohort_intact`` failed (ERROR) → P1 runbook
  scenario B; ``cohort_complete`` failed (WARN) → scenario A; a gate whose every blob is absent
  (``transport_suspect``) → scenario C. A failed run whose cause is such a check is left to this
  sensor, so the incident is told once.
- ``stuck_run_sensor`` (§17.5): a STARTED run of our jobs whose last event is older than N
  minutes → one alert per run.

Cursors remember what was alerted (so a tick, a restart or a re-evaluation never repeats it) and
the alerts a channel failed to take, retried on the next ticks. On its first tick a sensor looks
back ``initial_lookback_minutes`` only, not over the whole history.
"""


import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cvn_assets.alerts.alert import Alert
from cvn_assets.alerts.channels import AlertDispatcher
from cvn_assets.alerts.incidents import Incident, admit, clear, prune
from cvn_assets.alerts.messages import (
    crypto_of, group_alerts, incomplete_cohort_alert, malformed_blob_alert, run_failure_alert, stuck_run_alert,
    transport_suspect_alert,
)
from cvn_assets.partitions import CAMPAIGN_DIMENSION, CRYPTO_DIMENSION
from cvn_assets.runs import CAMPAIGN_TAG, CRYPTO_TAG, SUPERVISED_JOBS, campaign_scope, current_step, root_cause

# The product's asset and check names (acquisition/assets.py, gate/assets.py).
S43_PREDICTIONS = "s43_predictions"
S43_GATE = "s43_gate"
BLOBS_INTACT = "blobs_intact"
COHORT_INTACT = "cohort_intact"
COHORT_COMPLETE = "cohort_complete"
MALFORMED_CHECKS = {(S43_PREDICTIONS, BLOBS_INTACT), (S43_GATE, COHORT_INTACT)}
WATCHED_CHECKS = (*sorted(MALFORMED_CHECKS), (S43_GATE, COHORT_COMPLETE))

RUN_FAILURE_SENSOR = "run_failure_alert_sensor"
ASSET_CHECK_SENSOR = "asset_check_alert_sensor"
STUCK_RUN_SENSOR = "stuck_run_sensor"
RUN_STUCK = "RUN_STUCK"  # the diagnostics code of a stuck run (cvn_state_diagnostics)


class PendingAlert(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alert: Alert
    channels: list[str]
    since: float


class AlertCursor(BaseModel):
    """What an alert sensor has handled (identity → when) and what it still owes to a channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    started_at: float
    seen: dict[str, float] = Field(default_factory=dict)
    pending: list[PendingAlert] = Field(default_factory=list)
    incidents: dict[str, Incident] = Field(default_factory=dict, description="open incidents (incidents.py)")

    @classmethod
    def load(cls, cursor: str | None, now: float, initial_lookback_minutes: float) -> "AlertCursor":
        if cursor:
            try:
                return cls.model_validate_json(cursor)
            except ValidationError:
                pass  # a cursor from another version: start again from the initial lookback
        return cls(started_at=now - initial_lookback_minutes * 60)

    def horizon(self, now: float, lookback_hours: float) -> float:
        return max(self.started_at, now - lookback_hours * 3600)


def _deliver(dispatcher: AlertDispatcher, alerts: Sequence[Alert], cursor: AlertCursor, now: float,
             lookback_hours: float) -> tuple[AlertCursor, list[str]]:
    """Send new alerts, retry owed ones; return the cursor to store and a line per outcome."""
    lines: list[str] = []
    pending: list[PendingAlert] = []
    for owed in cursor.pending:
        if now - owed.since > lookback_hours * 3600:
            lines.append(f"gave up re-sending {owed.alert.key} to {', '.join(owed.channels)}")
            continue
        report = dispatcher.deliver(owed.alert, only=owed.channels)
        if report.failed:
            pending.append(owed.model_copy(update={"channels": sorted(report.failed)}))
        lines.append(f"re-sent {owed.alert.key}: delivered {', '.join(report.delivered) or '-'}"
                     + (f", still failing {', '.join(sorted(report.failed))}" if report.failed else ""))
    for alert in alerts:
        report = dispatcher.deliver(alert)
        if report.failed:
            pending.append(PendingAlert(alert=alert, channels=sorted(report.failed), since=now))
        lines.append(f"[{alert.severity.value}] {alert.title} → {', '.join(report.delivered) or 'no channel'}"
                     + (f" (failed: {', '.join(sorted(report.failed))})" if report.failed else ""))
    return cursor.model_copy(update={"pending": pending[-50:]}), lines


def _incidents(alerts: Sequence[Alert], scopes: Sequence[str], resolutions: Sequence[tuple[str, str, float]],
               cursor: AlertCursor, now: float, alert_channels) -> tuple[list[Alert], AlertCursor, int]:
    """One incident, one page: what to send of ``alerts`` and of the passes / successes (``resolutions``:
    incident key, scope, when). Returns the alerts to send, the cursor, and how many were held back."""
    incidents = dict(cursor.incidents)
    policy = alert_channels.policy()
    out: list[Alert] = []
    held = 0
    for alert, scope in zip(alerts, scopes, strict=True):
        sent, incidents = admit(incidents, alert, scope.split(","), now,
                                policy.repeat_interval(alert.severity).total_seconds())
        if sent is None:
            held += 1
        else:
            out.append(sent)
    for key, scope, at in sorted(resolutions, key=lambda r: r[2]):
        resolved, incidents = clear(incidents, key, scope, at, datetime.now(UTC))
        if resolved is not None:
            out.append(resolved)
    return out, cursor.model_copy(update={"incidents": prune(incidents, now)}), held


def _prune(seen: dict[str, float], horizon: float) -> dict[str, float]:
    return {key: at for key, at in seen.items() if at >= horizon}


def _result(cursor: AlertCursor, lines: list[str], nothing: str) -> dg.SensorResult:
    return dg.SensorResult(cursor=cursor.model_dump_json(),
                           skip_reason=dg.SkipReason("; ".join(lines)[:1000] if lines else nothing))


# ---------------------------------------------------------------------------------------------
# Failed runs


def _user_error(error) -> str:
    """'ErrorClass: first line' of the user error under Dagster's wrappers."""
    cause = error
    while cause.cause is not None and "dagster" in cause.cls_name.lower():
        cause = cause.cause
    return f"{cause.cls_name}: {root_cause(cause)}"


def _step_errors(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    errors = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        if event is not None and event.step_failure_data.error is not None:
            errors.append(f"{event.step_key}: {_user_error(event.step_failure_data.error)}")
    if not errors:
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
            if record.dagster_event is not None and record.dagster_event.message:
                errors.append(record.dagster_event.message.strip().splitlines()[0])
    return errors


def _check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list:
    return [record.dagster_event.event_specific_data
            for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            if record.dagster_event is not None]


def _failed_by_malformed_check(instance: dg.DagsterInstance, run_id: str) -> bool:
    return any(not evaluation.passed and (evaluation.asset_key.to_user_string(), evaluation.check_name)
               in MALFORMED_CHECKS for evaluation in _check_evaluations(instance, run_id))


def build_run_failure_sensor(
    jobs: Sequence[str] = SUPERVISED_JOBS,
    *,
    name: str = RUN_FAILURE_SENSOR,
    minimum_interval_seconds: int = 30,
    lookback_hours: float = 24.0,
    initial_lookback_minutes: float = 60.0,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    jobs = tuple(jobs)

    @dg.sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
               required_resource_keys={"alert_channels"},
               description=f"Alerts once per failed run of {', '.join(jobs)}, with the root cause and the next step.")
    def run_failure_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = time.time()
        cursor = AlertCursor.load(context.cursor, now, initial_lookback_minutes)
        horizon = cursor.horizon(now, lookback_hours)
        seen = dict(cursor.seen)
        records = []
        for job in jobs:
            records += instance_failures(context.instance, job, horizon)
        alerts: list[Alert] = []
        deferred = 0
        for record in sorted(records, key=lambda r: r.update_timestamp):
            run = record.dagster_run
            identity = f"run:{run.run_id}"
            if identity in seen:
                continue
            seen[identity] = now
            if _failed_by_malformed_check(context.instance, run.run_id):
                deferred += 1  # asset_check_alert_sensor tells this one, with scenario B
                continue
            campaign_id, crypto, stage = campaign_scope(run.tags)
            alerts.append(run_failure_alert(
                job=run.job_name, run_id=run.run_id, campaign_id=campaign_id, crypto=crypto, stage=stage,
                errors=_step_errors(context.instance, run.run_id),
                created_at=datetime.fromtimestamp(record.end_time or record.update_timestamp.timestamp(), UTC),
            ))
        grouped = group_alerts(alerts)
        successes = []
        for job in jobs:
            for record in instance_runs(context.instance, job, horizon, dg.DagsterRunStatus.SUCCESS):
                campaign_id, crypto, _ = campaign_scope(record.dagster_run.tags)
                successes.append((f"incident:run:{job}:{campaign_id or '-'}", crypto or "",
                                  record.end_time or record.update_timestamp.timestamp()))
        to_send, cursor, held = _incidents(grouped, [str(a.facts.get("crypto") or "") for a in grouped], successes,
                                           cursor, now, context.resources.alert_channels)
        dispatcher = context.resources.alert_channels.dispatcher(context.log)
        cursor = cursor.model_copy(update={"seen": _prune(seen, horizon)})
        cursor, lines = _deliver(dispatcher, to_send, cursor, now, lookback_hours)
        if deferred:
            lines.append(f"{deferred} failed run(s) left to {ASSET_CHECK_SENSOR} (malformed blob)")
        if held:
            lines.append(f"{held} failure(s) counted in an open incident (not paged again before its repeat interval)")
        return _result(cursor, lines, f"no new failed run of {', '.join(jobs)}")

    return run_failure_alert_sensor


def instance_failures(instance: dg.DagsterInstance, job: str, horizon: float) -> list[dg.RunRecord]:
    return instance_runs(instance, job, horizon, dg.DagsterRunStatus.FAILURE)


def instance_runs(instance: dg.DagsterInstance, job: str, horizon: float,
                  status: dg.DagsterRunStatus) -> list[dg.RunRecord]:
    return list(instance.get_run_records(filters=dg.RunsFilter(
        job_name=job, statuses=[status], updated_after=datetime.fromtimestamp(horizon, UTC))))


# ---------------------------------------------------------------------------------------------
# Failed checks and transport-suspect gates


def _value(metadata, key: str):
    entry = metadata.get(key) if metadata else None
    return getattr(entry, "value", entry)


def _split_partition(partition: str | None) -> tuple[str | None, str | None]:
    """(campaign, crypto) of a check's partition: 'campaign|crypto' (acquisition) or 'campaign' (gate)."""
    if not partition:
        return None, None
    parts = partition.split("|")
    if len(parts) == 2:
        values = dict(zip(sorted((CAMPAIGN_DIMENSION, CRYPTO_DIMENSION)), parts, strict=True))
        return values[CAMPAIGN_DIMENSION], values[CRYPTO_DIMENSION]
    return partition, None


def _first_problem(problems: str) -> tuple[str, str, list[str]]:
    """(first key, its error, other keys) from blobs_intact's 'key: error' lines."""
    keys, first_error = [], ""
    for line in (problems or "").splitlines():
        key, _, error = line.partition(": ")
        if key.endswith(".npz"):
            keys.append(key)
            first_error = first_error or line
    return (keys[0] if keys else ""), (first_error or problems or ""), keys[1:]


def transport_alerts(instance: dg.DagsterInstance, cursor: AlertCursor, now: float, lookback_hours: float,
                     created_at: datetime) -> tuple[list[Alert], dict[str, float], list[tuple[str, str, float]]]:
    """New alerts from failed transport checks and transport-suspect gates, what they cover, and the
    passes since (incident key, partition, when) that may resolve an open incident.

    Each alert carries its ``partition`` fact and the time of its failure as ``created_at``.
    """
    horizon = cursor.horizon(now, lookback_hours)
    seen = dict(cursor.seen)
    storage = instance.event_log_storage
    failures: list[tuple[str, str, object, str, float]] = []  # (identity, run_id, evaluation, partition, at)
    passes: list[tuple[str, str, float]] = []
    for asset, check_name in WATCHED_CHECKS:
        key = dg.AssetCheckKey(dg.AssetKey(asset), check_name)
        for record in storage.get_asset_check_execution_history(key, limit=200):
            if record.event is None or record.event.timestamp < horizon:
                continue
            evaluation = record.event.dagster_event.event_specific_data
            partition = getattr(evaluation, "partition", None) or record.partition or ""
            if record.status.value == "SUCCEEDED":
                campaign = _split_partition(partition)[0] or _run_tag(instance, record.run_id, CAMPAIGN_TAG)
                passes.append((f"incident:check:{check_name}:{campaign}", partition, record.event.timestamp))
                if check_name == COHORT_COMPLETE:
                    passes.append((f"incident:check:transport:{campaign}", partition, record.event.timestamp))
                continue
            if record.status.value != "FAILED" or f"check:{record.id}" in seen:
                continue
            failures.append((f"check:{record.id}", record.run_id, evaluation, partition, record.event.timestamp))
    suspect_runs: dict[str, tuple[str, int | None]] = {}
    for record in instance.fetch_materializations(dg.AssetKey(S43_GATE), limit=200).records:
        identity = f"gate:{record.storage_id}"
        if record.timestamp < horizon or identity in seen:
            continue
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization else {}
        seen[identity] = now
        if _value(metadata, "transport_suspect") is True:
            absent = _value(metadata, "absent_blobs")
            suspect_runs[record.run_id] = (record.partition_key or "", int(absent) if absent is not None else None,
                                           record.timestamp)
    for identity, run_id, evaluation, partition, at in failures:
        if evaluation.check_name == COHORT_COMPLETE and _value(evaluation.metadata, "transport_suspect") is True:
            suspect_runs.setdefault(run_id, (partition, _value(evaluation.metadata, "absent"), at))

    alerts: list[Alert] = []
    told_suspect: set[str] = {key.split(":", 1)[1] for key in seen if key.startswith("suspect:")}
    for run_id, (partition, absent, at) in sorted(suspect_runs.items()):
        seen[f"suspect:{run_id}"] = now
        if run_id in told_suspect:
            continue
        campaign_id = _split_partition(partition)[0] or _run_tag(instance, run_id, CAMPAIGN_TAG) or "unknown"
        alerts.append(_at(transport_suspect_alert(campaign_id=campaign_id, absent=absent, run_id=run_id,
                                                  created_at=created_at), partition, at))
    for identity, run_id, evaluation, partition, at in failures:
        seen[identity] = now
        campaign_id, crypto = _split_partition(partition or _run_tag(instance, run_id, "dagster/partition"))
        campaign_id = campaign_id or _run_tag(instance, run_id, CAMPAIGN_TAG)
        crypto = crypto or _run_tag(instance, run_id, CRYPTO_TAG)
        metadata = evaluation.metadata
        if evaluation.check_name == COHORT_COMPLETE:
            if run_id in suspect_runs:
                continue  # every blob absent: scenario C above, not N scenario A's
            missing = _value(metadata, "missing") or []
            alert = incomplete_cohort_alert(
                campaign_id=campaign_id or "unknown", missing=list(missing), run_id=run_id, created_at=created_at,
                absence_causes=_value(metadata, "absence_causes"), next_step=_value(metadata, "next_step"))
        elif evaluation.check_name == BLOBS_INTACT:
            key, error, others = _first_problem(str(_value(metadata, "problems") or ""))
            alert = malformed_blob_alert(key=key, check=BLOBS_INTACT, campaign_id=campaign_id, crypto=crypto,
                                         run_id=run_id, error=error, created_at=created_at, more_keys=others)
        else:
            key = str(_value(metadata, "key") or "")
            alert = malformed_blob_alert(
                key=key, check=evaluation.check_name, campaign_id=campaign_id, crypto=crypto_of(key) if key else crypto,
                run_id=run_id, error=str(_value(metadata, "error") or evaluation.description or "check failed"),
                created_at=created_at)
        alerts.append(_at(alert, partition, at))
    return alerts, _prune(seen, horizon), passes


def _at(alert: Alert, partition: str, at: float) -> Alert:
    """The alert as of its failure: its partition (the incident's scope) and the failure's time."""
    return alert.model_copy(update={"facts": {**alert.facts, "partition": partition},
                                    "created_at": datetime.fromtimestamp(at, UTC)})


def _run_tag(instance: dg.DagsterInstance, run_id: str, tag: str) -> str | None:
    run = instance.get_run_by_id(run_id) if run_id else None
    return run.tags.get(tag) if run is not None else None


def build_asset_check_sensor(
    *,
    name: str = ASSET_CHECK_SENSOR,
    minimum_interval_seconds: int = 30,
    lookback_hours: float = 24.0,
    initial_lookback_minutes: float = 60.0,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    @dg.sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
               required_resource_keys={"alert_channels"},
               description=("Alerts on transport failures: blobs_intact / cohort_intact (scenario B, P1), "
                            "cohort_complete (scenario A), every blob absent (scenario C)."))
    def asset_check_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = time.time()
        cursor = AlertCursor.load(context.cursor, now, initial_lookback_minutes)
        alerts, seen, passes = transport_alerts(context.instance, cursor, now, lookback_hours, datetime.now(UTC))
        to_send, cursor, held = _incidents(alerts, [str(a.facts.get("partition") or "") for a in alerts], passes,
                                           cursor.model_copy(update={"seen": seen}), now,
                                           context.resources.alert_channels)
        dispatcher = context.resources.alert_channels.dispatcher(context.log)
        cursor, lines = _deliver(dispatcher, to_send, cursor, now, lookback_hours)
        if held:
            lines.append(f"{held} failed check(s) counted in an open incident (not paged again before its "
                         "repeat interval)")
        return _result(cursor, lines, "no new failed transport check")

    return asset_check_alert_sensor


# ---------------------------------------------------------------------------------------------
# Stuck runs


def silent_runs(instance: dg.DagsterInstance, jobs: Iterable[str], silent_after_seconds: float,
                now: float) -> tuple[list[tuple[dg.DagsterRun, float, str]], set[str]]:
    """(run, seconds since its last event, that event) for silent STARTED runs; and all STARTED ids."""
    silent, started = [], set()
    for job in jobs:
        for record in instance.get_run_records(filters=dg.RunsFilter(
                job_name=job, statuses=[dg.DagsterRunStatus.STARTED])):
            run = record.dagster_run
            started.add(run.run_id)
            connection = instance.get_records_for_run(run.run_id, limit=1, ascending=False)
            if connection.records:
                last = connection.records[0].event_log_entry
                last_at = last.timestamp
                what = last.dagster_event.event_type_value if last.dagster_event else "log message"
            else:
                last_at, what = record.start_time or record.create_timestamp.timestamp(), "run start"
            if now - last_at >= silent_after_seconds:
                silent.append((run, now - last_at, what))
    return silent, started


def build_stuck_run_sensor(
    jobs: Sequence[str] = SUPERVISED_JOBS,
    *,
    silent_minutes: float = 15.0,
    name: str = STUCK_RUN_SENSOR,
    minimum_interval_seconds: int = 60,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    jobs = tuple(jobs)

    @dg.sensor(name=name, minimum_interval_seconds=minimum_interval_seconds, default_status=default_status,
               required_resource_keys={"alert_channels", "diagnostics"},
               description=(f"Alerts once per run of {', '.join(jobs)} that is STARTED but has written no event "
                            f"for {silent_minutes:g} minutes (manual §17.5)."))
    def stuck_run_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = time.time()
        cursor = AlertCursor.load(context.cursor, now, 0.0)
        silent, started = silent_runs(context.instance, jobs, silent_minutes * 60, now)
        # A run is flagged once; its mark is dropped only when it is no longer STARTED.
        seen = {key: at for key, at in cursor.seen.items() if key.split(":", 1)[1] in started}
        alerts = []
        for run, seconds, what in silent:
            identity = f"stuck:{run.run_id}"
            if identity in seen:
                continue
            seen[identity] = now
            campaign_id, crypto, _ = campaign_scope(run.tags)
            alerts.append(stuck_run_alert(job=run.job_name, run_id=run.run_id, campaign_id=campaign_id,
                                          crypto=crypto, silent_minutes=seconds / 60,
                                          last_event=what, created_at=datetime.now(UTC)))
            # Pipeline Health's "stuck and long runs" (cvn_state_diagnostics)
            context.resources.diagnostics.store().record_run_anomaly(
                detected_at=alerts[-1].created_at, code=RUN_STUCK, severity=alerts[-1].severity.value,
                reason=alerts[-1].text.split(":")[0], run_id=run.run_id, job=run.job_name, campaign_id=campaign_id,
                step=current_step(context.instance, run.run_id), seconds=seconds, values={"last_event": what})
        dispatcher = context.resources.alert_channels.dispatcher(context.log)
        cursor, lines = _deliver(dispatcher, alerts, cursor.model_copy(update={"seen": seen}), now, 24.0)
        return _result(cursor, lines, f"{len(started)} run(s) started, none newly silent for {silent_minutes:g} min")

    return stuck_run_sensor
