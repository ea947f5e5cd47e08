"""The golden-signal table of the morning check (§6.1): each signal with its §2 warning / critical mark.

Marks are instantaneous (no hysteresis: that belongs to the global state) and an unknown signal is
marked ``unknown``, never ``ok``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import GoldenSignals, Measure

Category = Literal["platform", "ml", "trading", "lifecycle"]


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


MARKS = {Level.OK: "  ", Level.WARNING: "! ", Level.CRITICAL: "!!", Level.UNKNOWN: "? "}


class SignalRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: Category
    signal: str
    scope: str
    value: float | None
    display: str
    level: Level
    thresholds: str
    detail: str


Grader = Callable[[float], Level]


def _grade(critical: Callable[[float], bool], warning: Callable[[float], bool]) -> Grader:
    def grade(value: float) -> Level:
        if critical(value):
            return Level.CRITICAL
        if warning(value):
            return Level.WARNING
        return Level.OK

    return grade


def _row(category: Category, signal: str, scope: str, measure: Measure | None, grade: Grader, thresholds: str,
         unit: str = "", digits: int = 2) -> SignalRow | None:
    if measure is None:
        return None
    if measure.value is None:
        return SignalRow(category=category, signal=signal, scope=scope, value=None, display="unknown",
                         level=Level.UNKNOWN, thresholds=thresholds, detail=measure.unknown or "")
    display = f"{measure.value:.{digits}f}{unit}"
    return SignalRow(category=category, signal=signal, scope=scope, value=measure.value, display=display,
                     level=grade(measure.value), thresholds=thresholds, detail=measure.detail)


def signal_table(signals: GoldenSignals, settings: StateSettings | None = None) -> list[SignalRow]:
    s = settings or StateSettings()
    rows: list[SignalRow | None] = []
    infra = signals.infra_health
    disk = _grade(lambda v: v > s.disk_critical_percent, lambda v: v > s.disk_warning_percent)
    for label, measure in sorted(infra.disks.items()):
        rows.append(_row("platform", "infra_health.disk", label, measure, disk,
                         f"warn > {s.disk_warning_percent:g} %, crit > {s.disk_critical_percent:g} %", " %", 1))
    rows.append(_row("platform", "infra_health.memory", infra.mode, infra.memory_percent,
                     _grade(lambda v: False, lambda v: v > s.memory_warning_percent),
                     f"warn > {s.memory_warning_percent:g} %", " %", 1))
    rows.append(_row("platform", "infra_health.cpu", infra.mode, infra.cpu_percent,
                     _grade(lambda v: False, lambda v: v > s.cpu_warning_percent),
                     f"warn > {s.cpu_warning_percent:g} %", " %", 0))
    rows.append(_row("platform", "infra_health.oom_kills", infra.mode, infra.oom_kills,
                     _grade(lambda v: v > s.oom_critical_above, lambda v: v >= 1),
                     f"warn = 1, crit > {s.oom_critical_above}", "", 0))
    rows.append(_row("platform", "infra_health.pods_down", infra.mode, infra.pods_down,
                     _grade(lambda v: v >= 1, lambda v: False), "crit >= 1", "", 0))
    rows.append(_row("platform", "infra_health.restarts", infra.mode, infra.restarts,
                     _grade(lambda v: False, lambda v: v >= 1), "warn >= 1", "", 0))
    rows.append(_row("platform", "pipeline_success_rate", f"{s.success_window_days:g} days",
                     signals.pipeline_success_rate,
                     _grade(lambda v: v < s.success_rate_orange_below, lambda v: v < s.success_rate_yellow_below),
                     f"warn < {s.success_rate_yellow_below:g} %, crit < {s.success_rate_orange_below:g} %", " %", 1))
    ceiling = s.run_duration_ceiling_hours * 3600
    for job, latency in sorted(signals.pipeline_latency.items()):
        thresholds = (f"warn > p95×{s.latency_warning_factor:g} or > {s.run_duration_ceiling_hours:g} h, "
                      f"crit > p95×{s.latency_critical_factor:g}")
        row = _row("platform", "pipeline_latency", job, latency.ratio,
                   _grade(lambda v: v > s.latency_critical_factor, lambda v: v > s.latency_warning_factor),
                   thresholds, "×", 2)
        if row is not None and latency.seconds is not None and latency.seconds > ceiling \
                and row.level in (Level.OK, Level.UNKNOWN):
            row = row.model_copy(update={"level": Level.WARNING,
                                         "detail": f"{latency.seconds / 3600:.1f} h > {s.run_duration_ceiling_hours:g} h "
                                                   f"(§9.5); {row.detail}"})
        rows.append(row)

    for crypto, c in sorted(signals.cryptos.items()):
        scope = crypto + (f" ({c.group})" if c.group else " (no group)")
        rows += [
            _row("ml", "f1_buy_delta_vs_baseline", scope, c.f1_buy_delta_vs_baseline,
                 _grade(lambda v: v <= s.f1_delta_critical_at_or_below, lambda v: v < s.f1_delta_warning_below),
                 f"warn < {s.f1_delta_warning_below:g} pts, crit <= {s.f1_delta_critical_at_or_below:g}", "", 1),
            _row("ml", "screening_testing_gap", scope, c.screening_testing_gap,
                 _grade(lambda v: v > s.gap_critical_above, lambda v: v > s.gap_warning_above),
                 f"warn > {s.gap_warning_above:g}, crit > {s.gap_critical_above:g}", "", 3),
            _row("ml", "std_f1_buy", scope, c.std_f1_buy,
                 _grade(lambda v: v > s.std_critical_above, lambda v: v >= s.std_warning_at_or_above),
                 f"warn >= {s.std_warning_at_or_above:g}, crit > {s.std_critical_above:g}", "", 3),
            _row("trading", "sortino", scope, c.sortino,
                 _grade(lambda v: v < s.sortino_critical_below, lambda v: v < s.sortino_warning_below),
                 f"warn < {s.sortino_warning_below:g}, crit < {s.sortino_critical_below:g}", "", 2),
            _row("trading", "sl_pct", scope, c.sl_pct,
                 _grade(lambda v: v > s.sl_critical_above, lambda v: v >= s.sl_warning_at_or_above),
                 f"warn >= {s.sl_warning_at_or_above:g} %, crit > {s.sl_critical_above:g} %", " %", 1),
            _row("trading", "timeout_pct", scope, c.timeout_pct,
                 _grade(lambda v: v > s.timeout_critical_above, lambda v: v >= s.timeout_warning_at_or_above),
                 f"warn >= {s.timeout_warning_at_or_above:g} %, crit > {s.timeout_critical_above:g} %", " %", 1),
            _row("trading", "negative_sortino_streak", scope, c.negative_sortino_streak,
                 _grade(lambda v: False, lambda v: v >= s.sortino_negative_gates),
                 f"warn >= {s.sortino_negative_gates} gates", "", 0),
            _row("ml", "drift", scope, c.drift, _grade(lambda v: v >= 2, lambda v: v >= 1),
                 "0 ok, 1 warning (PSI >= 0.10), 2 critical (PSI >= 0.25)", "", 0),
            _row("lifecycle", "model_freshness", scope, c.model_freshness_days,
                 _grade(lambda v: v > s.core_model_stale_days, lambda v: v > s.noncore_model_stale_days),
                 f"warn > {s.noncore_model_stale_days:g} d, crit > {s.core_model_stale_days:g} d", " d", 1),
        ]
    rows.append(_row("lifecycle", "zero_pass_streak", "gates", signals.gates.zero_pass_streak,
                     _grade(lambda v: v >= s.zero_pass_gates, lambda v: v >= 1),
                     f"warn >= 1, crit >= {s.zero_pass_gates}", "", 0))
    rows.append(_row("lifecycle", "days_without_candidate", "universe", signals.gates.days_without_candidate,
                     _grade(lambda v: v > s.no_candidate_days, lambda v: False),
                     f"crit > {s.no_candidate_days:g} d", " d", 1))
    rows.append(_row("lifecycle", "challenger_count", "registry", signals.challenger_count,
                     _grade(lambda v: v > s.challenger_critical_above, lambda v: v > s.challenger_warning_above),
                     f"warn > {s.challenger_warning_above}, crit > {s.challenger_critical_above}", "", 0))
    return [row for row in rows if row is not None]


PER_CRYPTO = ("f1_buy_delta_vs_baseline", "screening_testing_gap", "std_f1_buy", "sortino", "sl_pct",
              "timeout_pct", "negative_sortino_streak", "model_freshness")
SHORT = {"f1_buy_delta_vs_baseline": "f1_delta", "screening_testing_gap": "gap", "std_f1_buy": "std_f1",
         "sortino": "sortino", "sl_pct": "sl_pct", "timeout_pct": "tmo_pct", "negative_sortino_streak": "neg_sort",
         "model_freshness": "model_d"}


def _cell(row: SignalRow) -> str:
    if row.level == Level.UNKNOWN:
        return "?"
    mark = {Level.OK: "", Level.WARNING: "!", Level.CRITICAL: "!!"}[row.level]
    return row.display.replace(" %", "").replace(" d", "") + mark


def render_table(rows: list[SignalRow]) -> str:
    """Fixed-width text: platform rows, a matrix crypto × ML / trading / lifecycle signal, registry rows.

    Marks: '!!' critical, '!' warning, '?' unknown (details and reasons in --json and in the rules).
    """
    lines = ["PLATFORM"]
    for row in (r for r in rows if r.category == "platform"):
        lines.append(f"  {MARKS[row.level]} {row.signal:<24} {row.scope[:22]:<22} {row.display:>9}  "
                     f"{row.level.value:<8} {row.detail}")
    matrix: dict[str, dict[str, SignalRow]] = {}
    for row in rows:
        if row.signal in PER_CRYPTO:
            matrix.setdefault(row.scope, {})[row.signal] = row
    if matrix:
        lines.append("ML · TRADING · LIFECYCLE per crypto (ADR-27: compare within a crypto)")
        lines.append(f"  {'crypto':<22}" + "".join(f"{SHORT[name]:>10}" for name in PER_CRYPTO))
        for scope, cells in matrix.items():
            lines.append(f"  {scope[:22]:<22}" + "".join(
                f"{_cell(cells[name]) if name in cells else '-':>10}" for name in PER_CRYPTO))
    others = [r for r in rows if r.category != "platform" and r.signal not in PER_CRYPTO]
    if others:
        lines.append("LIFECYCLE")
        for row in others:
            lines.append(f"  {MARKS[row.level]} {row.signal:<24} {row.scope[:22]:<22} {row.display:>9}  "
                         f"{row.level.value:<8} {row.detail}")
    return "\n".join(lines)
