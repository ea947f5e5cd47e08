"""What each evaluation of the global state leaves in ``cvn_global_state`` — pure functions.

Every evaluation (sensor, morning check, ``cvn state --notify``) is one row: the state, the rules
fired, the unknown inputs, the routing of each fired rule and every §2 golden signal as a number
(the Grafana panels need no JSON operator), plus the per-job latency rows (§2
``pipeline_latency``, §9.5) and the §7 platform diagnostics it found:

- ``PIPELINE_DEGRADED``: the success-rate rule fired at ORANGE (success rate < 70 %), P1;
- ``INFRA_SATURATED``: OOMKill > 2, a volume > 85 % or CPU > 90 % (§7's trigger), P0 when the
  §0 ``infra_critical`` rule fired with it (RED), P1 otherwise.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from cvn_assets.alerts.alert import Severity
from cvn_assets.alerts.routing import RoutingTable, rule_family
from cvn_assets.state.rules import State, StateEvaluation
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import GoldenSignals, Measure
from cvn_assets.state.table import SignalRow

PIPELINE_DEGRADED = "PIPELINE_DEGRADED"
INFRA_SATURATED = "INFRA_SATURATED"


def _value(measure: Measure | None) -> float | None:
    return measure.value if measure is not None else None


def _maximum(values) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _int(value: float | None) -> int | None:
    return int(value) if value is not None else None


def state_columns(signals: GoldenSignals, *, queued_runs: int | None = None,
                  started_runs: int | None = None) -> dict[str, float | int | None]:
    """The §2 signals of one evaluation as columns of ``cvn_global_state`` (worst value where there are several)."""
    infra = signals.infra_health
    return {
        "success_rate": _value(signals.pipeline_success_rate),
        "latency_ratio": _maximum(latency.ratio.value for latency in signals.pipeline_latency.values()),
        "disk_percent": _maximum(_value(m) for m in infra.disks.values()),
        "memory_percent": _value(infra.memory_percent),
        "cpu_percent": _value(infra.cpu_percent),
        "oom_kills": _int(_value(infra.oom_kills)),
        "pods_down": _int(_value(infra.pods_down)),
        "restarts": _int(_value(infra.restarts)),
        "model_freshness_days": _maximum(c.model_freshness_days.value for c in signals.cryptos.values()),
        "challenger_count": _int(_value(signals.challenger_count)),
        "queued_runs": queued_runs,
        "started_runs": started_runs,
    }


def latency_rows(signals: GoldenSignals, rows: list[SignalRow]) -> list[dict[str, Any]]:
    """One row per job: its latest (or running) duration against its p95, with the table's §2 mark."""
    marks = {row.scope: row for row in rows if row.signal == "pipeline_latency"}
    out = []
    for job, latency in sorted(signals.pipeline_latency.items()):
        mark = marks.get(job)
        out.append({"job": job, "seconds": latency.seconds, "p95_seconds": latency.p95_seconds,
                    "ratio": latency.ratio.value, "level": mark.level.value if mark else "unknown",
                    "detail": (mark.detail if mark else "") or latency.ratio.unknown or latency.ratio.detail})
    return out


def platform_diagnostics(evaluation: StateEvaluation, signals: GoldenSignals,
                         settings: StateSettings) -> list[dict[str, Any]]:
    """§7's platform codes found by this evaluation, with the values that made them hold."""
    codes: list[dict[str, Any]] = []
    rules = {rule.id: rule for rule in evaluation.rules}
    rate = rules.get("success_rate")
    if rate is not None and rate.state == State.ORANGE:
        codes.append({"code": PIPELINE_DEGRADED, "severity": Severity.P1.value, "reason": rate.reason,
                      "values": dict(rate.values)})
    infra = signals.infra_health
    findings, values = [], {}
    oom = _value(infra.oom_kills)
    if oom is not None and oom > settings.oom_critical_above:
        findings.append(f"{int(oom)} OOMKill(s) > {settings.oom_critical_above}")
        values["oom_kills"] = int(oom)
    for label, measure in sorted(infra.disks.items()):
        if measure.value is not None and measure.value > settings.disk_critical_percent:
            findings.append(f"volume {label} {measure.value:.1f} % > {settings.disk_critical_percent:g} %")
            values[f"disk_percent[{label}]"] = round(measure.value, 2)
    cpu = _value(infra.cpu_percent)
    if cpu is not None and cpu > settings.cpu_saturated_percent:
        findings.append(f"CPU {cpu:.0f} % > {settings.cpu_saturated_percent:g} %")
        values["cpu_percent"] = round(cpu, 2)
    if findings:
        severity = Severity.P0 if "infra_critical" in rules else Severity.P1
        codes.append({"code": INFRA_SATURATED, "severity": severity.value,
                      "reason": "INFRA_SATURATED: " + "; ".join(findings) + " (§9.4)", "values": values})
    return codes


def rule_routing(evaluation: StateEvaluation, routing: RoutingTable) -> list[dict[str, Any]]:
    """For each fired rule: the severity of its state (§8), its family and the role and channels it pages."""
    out = []
    for rule in evaluation.rules:
        decision = routing.decide(Severity(rule.state.severity), rule_family(rule.id))
        out.append({"rule": rule.id, **decision.model_dump(mode="json")})
    return out


def run_backlog(instance: dg.DagsterInstance, jobs: tuple[str, ...]) -> tuple[int, int]:
    """(queued or not yet started, started) runs of our jobs: the backlog Pipeline Health shows."""
    queued = sum(instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING])) for job in jobs)
    started = sum(instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.STARTED]))
                  for job in jobs)
    return queued, started
