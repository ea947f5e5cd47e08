"""Every threshold of the operating state in one model: the manual's numbers as defaults.

§0 gives the global-state rules, §2 the warning / critical marks of each golden signal, §9.4 and
§9.5 the infrastructure and run-duration limits. An operator who changes a number changes it here
(or passes another ``StateSettings`` to the sensor factories); nothing else holds a threshold.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cvn_assets.runs import SUPERVISED_JOBS


class StateSettings(BaseModel):
    """Thresholds, windows and hysteresis margins of the golden signals and the global state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jobs: tuple[str, ...] = Field(default=SUPERVISED_JOBS, min_length=1,
                                  description="the Dagster jobs whose runs are 'our pipelines'")

    # Platform (§2, §0)
    success_window_days: float = Field(default=7.0, gt=0, description="rolling window of pipeline_success_rate")
    min_finished_runs: int = Field(default=1, ge=1, description="finished runs needed before the rate is known")
    success_rate_orange_below: float = Field(default=70.0, description="§0: success rate < 70 % → ORANGE")
    success_rate_yellow_below: float = Field(default=90.0, description="§0: success rate 70–90 % → YELLOW")
    latency_history_days: float = Field(default=30.0, gt=0, description="history of the per-job p95 duration")
    latency_min_history: int = Field(default=5, ge=1, description="finished runs needed before a job has a p95")
    latency_history_runs: int = Field(
        default=100, ge=2, description="at most this many latest successful runs of a job (within "
                                       "latency_history_days) give its p95: the tick does not grow with history")
    latency_warning_factor: float = Field(default=1.3, description="§2: duration > p95 + 30 % → warning")
    latency_critical_factor: float = Field(default=2.0, description="§2: duration > p95 + 100 % → critical")
    run_duration_ceiling_hours: float = Field(default=3.0, description="§9.5: a run longer than 3 h → warning")
    disk_warning_percent: float = Field(default=70.0, description="§9.4 exit criterion: PVC < 70 %")
    disk_critical_percent: float = Field(default=85.0, description="§2: PVC > 85 % → infra critical")
    memory_warning_percent: float = Field(default=90.0, description="memory in use above this → warning")
    cpu_warning_percent: float = Field(default=70.0, description="§2: CPU > 70 % → warning")
    cpu_saturated_percent: float = Field(default=90.0, description="§7 INFRA_SATURATED: CPU > 90 %")
    oom_window_hours: float = Field(default=24.0, description="§9.4: OOMKill = 0 over 24 h")
    oom_critical_above: int = Field(default=2, description="§2: OOM > 2 → infra critical (OOMKill in a loop)")
    pending_pod_minutes: float = Field(default=15.0, description="a pod of ours Pending longer than this is down")

    # Business results (§0)
    zero_pass_gates: int = Field(default=3, ge=1, description="§0: pass rate 0 on 3 consecutive gates → ORANGE")
    no_candidate_days: float = Field(default=3.0, description="§0: 0 useful candidate for > 3 days → ORANGE")
    sortino_negative_gates: int = Field(
        default=3, ge=2, description="'recurrent' negative Sortino: that many consecutive gates of one crypto")
    gate_history_limit: int = Field(default=200, ge=1, description="gate verdicts read to compute the streaks")

    # Lifecycle (§0, §2)
    core_model_stale_days: float = Field(default=14.0, description="§0: core model stale > 14 days → ORANGE")
    noncore_model_stale_days: float = Field(default=7.0, description="§0: non-core model stale > 7 days → YELLOW")
    challenger_warning_above: int = Field(default=5, description="§2: > 5 pending challengers → warning")
    challenger_critical_above: int = Field(default=10, description="§2: > 10 pending challengers → critical")

    # ML and trading per crypto (§2; table marks only, the state uses the gate history)
    f1_delta_warning_below: float = Field(
        default=15.0, description="§2: f1_buy delta vs baseline < 15 → warning (F1 points, as the diagnostics store)")
    f1_delta_critical_at_or_below: float = Field(default=0.0, description="§2: delta <= 0 → critical")
    gap_warning_above: float = Field(default=0.15, description="§2: screening/testing gap > 0.15 → warning")
    gap_critical_above: float = Field(default=0.30, description="§2: gap > 0.30 → critical")
    std_warning_at_or_above: float = Field(default=0.05, description="§2: std_f1_buy 0.05–0.10 → warning")
    std_critical_above: float = Field(default=0.10, description="§2: std_f1_buy > 0.10 → critical")
    sortino_warning_below: float = Field(default=0.5, description="§2: Sortino 0–0.5 → warning")
    sortino_critical_below: float = Field(default=0.0, description="§2: Sortino < 0 → critical")
    sl_warning_at_or_above: float = Field(default=35.0, description="§2: sl_pct 35–50 % → warning")
    sl_critical_above: float = Field(default=50.0, description="§2: sl_pct > 50 % → critical")
    timeout_warning_at_or_above: float = Field(default=30.0, description="§2: timeout_pct 30–40 % → warning")
    timeout_critical_above: float = Field(default=40.0, description="§2: timeout_pct > 40 % → critical")

    # Hysteresis (docs/operations.md): a fired rule clears only once its value is back past the
    # threshold by this margin, so a value sitting on a threshold does not flap the state.
    rate_margin_points: float = Field(default=2.0, ge=0, description="success-rate deadband, in points")
    percent_margin_points: float = Field(default=5.0, ge=0, description="disk-use deadband, in points")
    days_margin: float = Field(default=0.5, ge=0, description="deadband of the day thresholds, in days")

    # Recording: besides every change, the state is re-recorded at least this often (Grafana, UI)
    record_interval_minutes: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> StateSettings:
        pairs = [
            ("success_rate_orange_below", "success_rate_yellow_below"),
            ("latency_warning_factor", "latency_critical_factor"),
            ("disk_warning_percent", "disk_critical_percent"),
            ("challenger_warning_above", "challenger_critical_above"),
            ("gap_warning_above", "gap_critical_above"),
            ("std_warning_at_or_above", "std_critical_above"),
            ("sortino_critical_below", "sortino_warning_below"),
            ("f1_delta_critical_at_or_below", "f1_delta_warning_below"),
            ("sl_warning_at_or_above", "sl_critical_above"),
            ("timeout_warning_at_or_above", "timeout_critical_above"),
        ]
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low}={getattr(self, low)} must not exceed {high}={getattr(self, high)}")
        return self
