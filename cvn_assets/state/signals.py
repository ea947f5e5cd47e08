"""The golden signals (manual §2) and where each one is read.

Every signal is a ``Measure``: a value, or an explicit *unknown* with the reason it could not be
read. Unknown is never healthy: the global state cannot be GREEN while a signal its rules need is
unknown (``rules.py``), and the morning check prints the reason.

Sources: the Dagster run records of our jobs (success rate, latency), the diagnostics store
(latest gate per crypto, gate history), the MLflow registry (model freshness, challengers) and the
machine or cluster (infrastructure health: ``infra.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import dagster as dg
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cvn_assets.state.settings import StateSettings


class Measure(BaseModel):
    """One reading of a signal: ``value`` or ``unknown`` (the reason), never both, never neither."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None = None
    unknown: str | None = Field(default=None, description="why the value could not be read")
    detail: str = Field(default="", description="what the value is made of, for the operator")

    @model_validator(mode="after")
    def _exactly_one(self) -> Measure:
        if (self.value is None) == (self.unknown is None):
            raise ValueError("a measure holds exactly one of value / unknown "
                             f"(found value={self.value!r}, unknown={self.unknown!r})")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"a measure value must be finite (found {self.value!r}; {self.detail})")
        return self

    @classmethod
    def of(cls, value: float, detail: str = "") -> Measure:
        return cls(value=float(value), detail=detail)

    @classmethod
    def missing(cls, reason: str) -> Measure:
        return cls(unknown=reason)

    @property
    def known(self) -> bool:
        return self.value is not None


class InfraHealth(BaseModel):
    """Saturation / OOM / volumes / availability (§2 ``infra_health``).

    ``None`` means *not applicable in this mode* (no pods on one machine); an unknown ``Measure``
    means it applies but could not be read.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["local", "kubernetes"]
    disks: dict[str, Measure] = Field(default_factory=dict, description="volume label → percent used")
    memory_percent: Measure | None = None
    cpu_percent: Measure | None = None
    oom_kills: Measure | None = Field(default=None, description="OOMKilled containers of our pods in the window")
    pods_down: Measure | None = Field(default=None, description="our pods down, crash-looping or pending too long")
    restarts: Measure | None = Field(default=None, description="container restarts of our pods")


class JobLatency(BaseModel):
    """Latest duration of one job against its historical p95 (§2 ``pipeline_latency``, §9.5)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ratio: Measure = Field(description="duration / p95 (1.3 = p95 + 30 %)")
    seconds: float | None = Field(default=None, description="the duration compared (a running run: so far)")
    p95_seconds: float | None = None


class CryptoSignals(BaseModel):
    """ML, trading and lifecycle signals of one crypto (ADR-27: read within the crypto only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    group: str | None = None
    core: bool = False
    campaign_id: str | None = Field(default=None, description="campaign of the latest gate of this crypto")
    evaluated_at: datetime | None = None
    diagnostic: str | None = None
    f1_buy_delta_vs_baseline: Measure
    screening_testing_gap: Measure
    std_f1_buy: Measure
    sortino: Measure
    sl_pct: Measure
    timeout_pct: Measure
    negative_sortino_streak: Measure = Field(description="consecutive latest gates with Sortino < 0")
    model_freshness_days: Measure
    drift: Measure | None = Field(default=None, description="drift of the champion at its latest monitoring: "
                                  "0 ok, 1 warning, 2 critical (PSI bands); None when never monitored")


class GateHistory(BaseModel):
    """What the recent gates produced, over the full universe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    zero_pass_streak: Measure = Field(description="latest consecutive conclusive gates with 0 candidates")
    days_without_candidate: Measure = Field(description="days since a gate last produced a candidate")
    relaunches: list[str] = Field(default_factory=list, description="§9.3 relaunch of each campaign of the "
                                  "zero-pass streak, newest first, one per distinct command")


class GoldenSignals(BaseModel):
    """Every golden signal at one instant: the input of the global state and of the morning check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    evaluated_at: datetime
    infra_health: InfraHealth
    pipeline_success_rate: Measure = Field(description="percent of finished runs of our jobs that succeeded")
    pipeline_latency: dict[str, JobLatency] = Field(default_factory=dict)
    gates: GateHistory
    cryptos: dict[str, CryptoSignals] = Field(default_factory=dict)
    challenger_count: Measure


# ---------------------------------------------------------------------------------------------
# Dagster run records: success rate and latency of our jobs


def _finished_in(records: Iterable[dg.RunRecord], since: datetime) -> list[dg.RunRecord]:
    cutoff = since.timestamp()
    return [r for r in records if (r.end_time or r.update_timestamp.timestamp()) >= cutoff]


# A run ends after it is created; this margin absorbs clock differences between the process that
# creates a run and the one that records its end (another pod, another host).
_CLOCK_MARGIN = timedelta(hours=1)


def _finished_counts(instance: dg.DagsterInstance, job: str, since: datetime) -> dict[dg.DagsterRunStatus, int]:
    """Runs of ``job`` that succeeded / failed at or after ``since``, counted by the run storage.

    The run storage sets a run's update time with its end time and only moves it forward later
    (tags added to a finished run), so ``updated_after`` counts every run that ended in the window
    plus old runs touched since. Only a run created before the window can have ended before it:
    those few are read and checked one by one; every other run is counted by the database, never
    loaded and deserialised, which is what made the tick grow with the history.
    """
    statuses = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)
    counts = {status: instance.get_runs_count(dg.RunsFilter(job_name=job, statuses=[status], updated_after=since))
              for status in statuses}
    straddling = instance.get_run_records(filters=dg.RunsFilter(
        job_name=job, statuses=list(statuses), updated_after=since, created_before=since + _CLOCK_MARGIN))
    inside = {r.dagster_run.run_id for r in _finished_in(straddling, since)}
    for record in straddling:
        if record.dagster_run.run_id not in inside:
            counts[record.dagster_run.status] -= 1
    return counts


def pipeline_success_rate(instance: dg.DagsterInstance, settings: StateSettings, now: datetime) -> Measure:
    """Share of our runs that finished in the window and succeeded.

    Cancelled runs are left out: an operator stopping a run is not the pipeline failing.
    """
    since = now - timedelta(days=settings.success_window_days)
    succeeded, failed = 0, {}
    for job in settings.jobs:
        counts = _finished_counts(instance, job, since)
        succeeded += counts[dg.DagsterRunStatus.SUCCESS]
        if counts[dg.DagsterRunStatus.FAILURE]:
            failed[job] = counts[dg.DagsterRunStatus.FAILURE]
    total = succeeded + sum(failed.values())
    window = f"{settings.success_window_days:g} days"
    if total < settings.min_finished_runs:
        return Measure.missing(
            f"{total} run(s) of {', '.join(settings.jobs)} finished in the last {window} "
            f"(need {settings.min_finished_runs})"
        )
    failures = ", ".join(f"{job}×{count}" for job, count in sorted(failed.items())) or "none"
    return Measure.of(100.0 * succeeded / total,
                      f"{succeeded} of {total} finished runs succeeded over {window} (failed: {failures})")


def _p95(values: Sequence[float]) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), 95))


def job_latency(instance: dg.DagsterInstance, job: str, settings: StateSettings, now: datetime) -> JobLatency:
    """The latest successful run (or a run still going, if it is longer) against the p95 before it.

    The p95 is taken over the latest ``latency_history_runs`` successful runs of the window (the
    newest first in the storage), not every run of 30 days: a bounded read per tick.
    """
    since = now - timedelta(days=settings.latency_history_days)
    successes = [
        r for r in _finished_in(instance.get_run_records(filters=dg.RunsFilter(
            job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=since),
            limit=settings.latency_history_runs), since)
        if r.start_time is not None and r.end_time is not None
    ]
    successes.sort(key=lambda r: r.end_time or 0.0, reverse=True)
    running = [r for r in instance.get_run_records(filters=dg.RunsFilter(
        job_name=job, statuses=[dg.DagsterRunStatus.STARTED])) if r.start_time is not None]

    candidates: list[tuple[float, str]] = []
    if successes:
        latest = successes[0]
        candidates.append((latest.end_time - latest.start_time, f"latest run {latest.dagster_run.run_id[:8]}"))
    for record in running:
        candidates.append((now.timestamp() - record.start_time,
                           f"run {record.dagster_run.run_id[:8]} still running"))
    if not candidates:
        return JobLatency(ratio=Measure.missing(
            f"no successful or running run of {job} in the last {settings.latency_history_days:g} days"))
    seconds, which = max(candidates)
    history = [r.end_time - r.start_time for r in successes[1:]]
    if len(history) < settings.latency_min_history:
        return JobLatency(seconds=seconds, ratio=Measure.missing(
            f"{len(history)} earlier successful run(s) of {job} in {settings.latency_history_days:g} days "
            f"(need {settings.latency_min_history} for a p95)"))
    p95 = _p95(history)
    if p95 <= 0:
        return JobLatency(seconds=seconds, p95_seconds=p95,
                          ratio=Measure.missing(f"p95 duration of {job} is {p95:g} s: no usable history"))
    return JobLatency(
        seconds=seconds, p95_seconds=p95,
        ratio=Measure.of(seconds / p95, f"{which}: {_duration(seconds)} vs p95 {_duration(p95)} "
                                        f"over {len(history)} runs"),
    )


def pipeline_latency(instance: dg.DagsterInstance, settings: StateSettings, now: datetime) -> dict[str, JobLatency]:
    return {job: job_latency(instance, job, settings, now) for job in settings.jobs}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


# ---------------------------------------------------------------------------------------------
# Diagnostics store: gate history and the latest gate of each crypto


class GateRecord(BaseModel):
    """One gate evaluation as the state needs it (from ``cvn_gate_verdicts`` / ``cvn_crypto_signals``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    campaign_id: str
    evaluated_at: datetime
    verdict: str
    candidates: int | None = Field(default=None, description="cryptos that passed; None when inconclusive")
    sortinos: dict[str, float | None] = Field(default_factory=dict, description="crypto → Sortino of this gate")
    relaunch: str | None = Field(default=None, description="§9.3 relaunch of this campaign on a wider grid "
                                                           "(its own group, symbols and data source)")

    @property
    def conclusive(self) -> bool:
        return self.verdict in ("PASS", "FAIL")


class CryptoRecord(BaseModel):
    """The latest gate signals of one crypto."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    crypto: str
    campaign_id: str | None = None
    evaluated_at: datetime | None = None
    diagnostic: str | None = None
    signals: dict[str, Any] = Field(default_factory=dict)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def gate_history(gates: Sequence[GateRecord], settings: StateSettings, now: datetime) -> GateHistory:
    """Zero-pass streak and days without a candidate, from gate verdicts (any order)."""
    ordered = sorted(gates, key=lambda g: _utc(g.evaluated_at), reverse=True)
    conclusive = [g for g in ordered if g.conclusive]
    relaunches: list[str] = []
    if not conclusive:
        reason = ("no gate recorded in the diagnostics store" if not ordered else
                  f"none of the {len(ordered)} recorded gate(s) is conclusive (all INCONCLUSIVE_TOOLING)")
        streak = Measure.missing(reason)
    else:
        count = 0
        for gate in conclusive:
            if (gate.candidates or 0) > 0 or gate.verdict == "PASS":
                break
            count += 1
        latest = ", ".join(f"{g.campaign_id}={g.verdict}" for g in conclusive[: settings.zero_pass_gates])
        streak = Measure.of(count, f"latest conclusive gates: {latest}")
        for gate in conclusive[:count]:
            if gate.relaunch and gate.relaunch not in relaunches:
                relaunches.append(gate.relaunch)
    if not ordered:
        days = Measure.missing("no gate recorded in the diagnostics store")
    else:
        productive = [g for g in ordered if g.verdict == "PASS" or (g.candidates or 0) > 0]
        if productive:
            last = productive[0]
            days = Measure.of((now - _utc(last.evaluated_at)).total_seconds() / 86400,
                              f"last candidate from campaign {last.campaign_id} at {_utc(last.evaluated_at):%Y-%m-%d %H:%M}Z")
        else:
            oldest = ordered[-1]
            days = Measure.of((now - _utc(oldest.evaluated_at)).total_seconds() / 86400,
                              f"no candidate in any of the {len(ordered)} recorded gate(s), the oldest "
                              f"({oldest.campaign_id}) at {_utc(oldest.evaluated_at):%Y-%m-%d %H:%M}Z")
    return GateHistory(zero_pass_streak=streak, days_without_candidate=days, relaunches=relaunches)


def negative_sortino_streak(crypto: str, gates: Sequence[GateRecord]) -> Measure:
    """Consecutive latest gates in which this crypto's Sortino was negative."""
    ordered = sorted((g for g in gates if crypto in g.sortinos and g.sortinos[crypto] is not None),
                     key=lambda g: _utc(g.evaluated_at), reverse=True)
    if not ordered:
        return Measure.missing(f"no gate with a Sortino for {crypto}")
    count = 0
    for gate in ordered:
        if gate.sortinos[crypto] >= 0:  # type: ignore[operator]
            break
        count += 1
    values = ", ".join(f"{g.sortinos[crypto]:.2f}" for g in ordered[:5])
    return Measure.of(count, f"latest Sortino values: {values}")


# our field → (name in the gate's signals (cvn_assets/gate/signals.py), factor to the state's unit).
# The gate keeps exit shares in [0, 1]; the state shows them in percent like the manual's §2.
SIGNAL_NAMES = {
    "f1_buy_delta_vs_baseline": ("f1_buy_delta", 1.0),  # F1 points (f1 × 100)
    "screening_testing_gap": ("screening_testing_gap", 1.0),
    "std_f1_buy": ("std_f1_buy", 1.0),
    "sortino": ("sortino", 1.0),
    "sl_pct": ("sl_pct", 100.0),
    "timeout_pct": ("timeout_pct", 100.0),
}


def _signal(record: CryptoRecord | None, field: str, crypto: str) -> Measure:
    if record is None:
        return Measure.missing(f"no gate signals recorded for {crypto}")
    name, factor = SIGNAL_NAMES[field]
    value = record.signals.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return Measure.of(float(value) * factor, f"campaign {record.campaign_id}")
    return Measure.missing(f"{field} absent from the latest gate of {crypto} (campaign {record.campaign_id}"
                           f"{', ' + record.diagnostic if record.diagnostic else ''})")


def crypto_signals(
    universes: Mapping[str, Any],
    latest: Mapping[str, CryptoRecord],
    gates: Sequence[GateRecord],
    freshness: Mapping[str, Measure],
    drift: Mapping[str, Measure] | None = None,
) -> dict[str, CryptoSignals]:
    """One row per crypto of every universe, plus any crypto gated outside the universes."""
    groups: dict[str, tuple[str, bool]] = {}
    for group, universe in universes.items():
        for symbol in universe.symbols:
            groups.setdefault(symbol, (group, bool(universe.core)))
    result = {}
    for crypto in sorted(set(groups) | set(latest)):
        group, core = groups.get(crypto, (None, False))
        record = latest.get(crypto)
        result[crypto] = CryptoSignals(
            crypto=crypto, group=group, core=core,
            campaign_id=record.campaign_id if record else None,
            evaluated_at=record.evaluated_at if record else None,
            diagnostic=record.diagnostic if record else None,
            negative_sortino_streak=negative_sortino_streak(crypto, gates),
            model_freshness_days=freshness.get(crypto) or Measure.missing(f"model freshness of {crypto} not read"),
            drift=(drift or {}).get(crypto),
            **{field: _signal(record, field, crypto) for field in SIGNAL_NAMES},
        )
    return result
