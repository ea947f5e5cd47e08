"""The global state of the manual §0, computed from the golden signals — pure functions, no Dagster.

| condition (§0)                                             | state  |
|------------------------------------------------------------|--------|
| infra critical (pod down, volume > 85 %, OOMKill in a loop) | RED    |
| pipeline success rate < 70 %                               | ORANGE |
| pass rate 0 on 3 consecutive (conclusive) gates            | ORANGE |
| a core-group (btc-core) model stale > 14 days              | ORANGE |
| 0 useful candidate on the full universe for > 3 days       | ORANGE |
| success rate 70–90 %, or Sortino negative on 3 consecutive gates of a crypto | YELLOW |
| a non-core model stale > 7 days                            | YELLOW |
| critical drift on a champion (ours, not the manual's)      | YELLOW |
| everything else                                            | GREEN  |

The drift rule is ours: the manual lists drift monitoring as a target and has no rule for it. A
champion whose latest monitoring found critical drift (docs/diagnostics.md) is a weak signal of
anomaly — "dérive contrôlée" — so YELLOW, the manual's state for heightened surveillance.

Readings pinned here (docs/operations.md): "70–90 %" is 70 ≤ rate < 90 (90 % is healthy, 70 %
is YELLOW); "> 14 days" is strictly more; "3 consecutive" fires at exactly 3. GREEN needs
evidence: when an input of these rules is unknown, the state is at least YELLOW with the rule
``signals_unknown`` naming what is missing.

Hysteresis: a rule enters at the manual's threshold and, once fired, stays fired until its value
is back past the threshold by the settings' margin (2 points of success rate, 5 points of disk,
half a day). The caller passes the rules that fired at the previous evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import GoldenSignals, Measure


class State(StrEnum):
    GREEN = "GREEN"
    YELLOW = "YELLOW"
    ORANGE = "ORANGE"
    RED = "RED"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def severity(self) -> str | None:
        """§8: RED → P0, ORANGE → P1, YELLOW → P2; GREEN has none."""
        return _SEVERITY[self]


_RANK = {State.GREEN: 0, State.YELLOW: 1, State.ORANGE: 2, State.RED: 3}
_SEVERITY = {State.GREEN: None, State.YELLOW: "P2", State.ORANGE: "P1", State.RED: "P0"}

REACTION = {
    State.GREEN: "normal operation",
    State.YELLOW: "controlled drift — heightened surveillance",
    State.ORANGE: "significant business or pipeline degradation — priority investigation",
    State.RED: "unavailable or unable to produce — immediate escalation",
}


class FiredRule(BaseModel):
    """One §0 rule that holds now, with the values that made it hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="stable identifier, e.g. success_rate or core_model_stale:BTCUSDC")
    state: State
    rule: str = Field(description="the manual's condition")
    reason: str = Field(description="the condition with today's values")
    values: dict[str, float | int | str | None] = Field(default_factory=dict)
    commands: list[str] = Field(default_factory=list, description="ready commands for this very rule, e.g. the "
                                "relaunch of the campaigns that made it fire")


class UnknownInput(BaseModel):
    """A rule input that could not be read: the state cannot claim GREEN because of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: str
    scope: str
    reason: str


class StateEvaluation(BaseModel):
    """The global state and every rule that fired (the highest one decides the state)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: State
    evaluated_at: datetime
    rules: list[FiredRule]
    unknown: list[UnknownInput]

    @property
    def rule_states(self) -> dict[str, State]:
        return {rule.id: rule.state for rule in self.rules}

    def summary(self) -> str:
        if not self.rules:
            return f"{self.state.value}: every §0 rule reads healthy"
        worst = [rule.reason for rule in self.rules if rule.state == self.state]
        more = len(self.rules) - len(worst)
        return f"{self.state.value}: " + "; ".join(worst) + (f" (+{more} lower rule(s))" if more else "")


DRIFT_CRITICAL = 2  # the drift measure: 0 ok, 1 warning, 2 critical (cvn_assets/modelops/drift.py)
DRIFT_RULE = "critical drift on a champion → YELLOW (our rule: the manual has no drift rule)"


def _was(previous: Mapping[str, State], rule_id: str, at_least: State) -> bool:
    state = previous.get(rule_id)
    return state is not None and state.rank >= at_least.rank


def _above(value: float, threshold: float, fired_before: bool, margin: float) -> bool:
    """value > threshold; once fired, it holds until value <= threshold - margin."""
    return value > (threshold - margin if fired_before else threshold)


def _below(value: float, threshold: float, fired_before: bool, margin: float) -> bool:
    """value < threshold; once fired, it holds until value >= threshold + margin."""
    return value < (threshold + margin if fired_before else threshold)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def evaluate_state(
    signals: GoldenSignals,
    settings: StateSettings | None = None,
    previous: Mapping[str, State] | None = None,
) -> StateEvaluation:
    """Apply §0 to the signals; ``previous`` = rule id → state fired at the last evaluation."""
    settings = settings or StateSettings()
    previous = previous or {}
    rules: list[FiredRule] = []
    unknown: list[UnknownInput] = []

    def need(measure: Measure | None, signal: str, scope: str) -> float | None:
        if measure is None:
            return None
        if measure.value is None:
            unknown.append(UnknownInput(signal=signal, scope=scope, reason=measure.unknown or "unknown"))
        return measure.value

    _infra_rules(signals, settings, previous, rules, need)
    _success_rate_rules(signals, settings, previous, rules, need)
    _gate_rules(signals, settings, previous, rules, need)
    _crypto_rules(signals, settings, previous, rules, need)

    if unknown:
        scopes: dict[str, list[str]] = {}
        for u in unknown:
            scopes.setdefault(u.signal, []).append(u.scope)
        names = [signal if scopes[signal] in (["platform"], ["universe"]) else
                 f"{signal}[{', '.join(scopes[signal])}]" for signal in scopes]
        rules.append(FiredRule(
            id="signals_unknown", state=State.YELLOW,
            rule="GREEN needs evidence: an unknown signal never counts as healthy",
            reason=f"{len(unknown)} rule input(s) unknown: {', '.join(names)}",
            values={"unknown": len(unknown)},
        ))
    state = max((rule.state for rule in rules), key=lambda s: s.rank, default=State.GREEN)
    rules.sort(key=lambda rule: (-rule.state.rank, rule.id))
    return StateEvaluation(state=state, evaluated_at=signals.evaluated_at, rules=rules, unknown=unknown)


def _infra_rules(signals, settings, previous, rules, need) -> None:
    infra = signals.infra_health
    findings: list[str] = []
    values: dict[str, float | int | str | None] = {}
    fired_before = _was(previous, "infra_critical", State.RED)
    for label, measure in sorted(infra.disks.items()):
        value = need(measure, "infra_health.disk_percent", label)
        if value is not None and _above(value, settings.disk_critical_percent, fired_before,
                                        settings.percent_margin_points):
            findings.append(f"volume {label} {_num(value)} % used > {_num(settings.disk_critical_percent)} %")
            values[f"disk_percent[{label}]"] = round(value, 2)
    oom = need(infra.oom_kills, "infra_health.oom_kills", "platform")
    if oom is not None and oom > settings.oom_critical_above:
        findings.append(f"{int(oom)} OOMKilled container(s) in {settings.oom_window_hours:g} h "
                        f"> {settings.oom_critical_above} (OOMKill in a loop)")
        values["oom_kills"] = int(oom)
    down = need(infra.pods_down, "infra_health.pods_down", "platform")
    if down is not None and down >= 1:
        findings.append(f"{int(down)} pod(s) down ({infra.pods_down.detail})")
        values["pods_down"] = int(down)
    if findings:
        rules.append(FiredRule(id="infra_critical", state=State.RED,
                               rule="infra critical (pod down, PVC full, OOMKill in a loop)",
                               reason="infra critical: " + "; ".join(findings), values=values))


def _success_rate_rules(signals, settings, previous, rules, need) -> None:
    rate = need(signals.pipeline_success_rate, "pipeline_success_rate", "platform")
    if rate is None:
        return
    prior = previous.get("success_rate")
    margin = settings.rate_margin_points
    detail = signals.pipeline_success_rate.detail
    if _below(rate, settings.success_rate_orange_below, prior is not None and prior.rank >= State.ORANGE.rank, margin):
        rules.append(FiredRule(
            id="success_rate", state=State.ORANGE, rule="pipeline success rate < 70 %",
            reason=f"pipeline success rate {_num(rate)} % < {_num(settings.success_rate_orange_below)} % ({detail})",
            values={"success_rate": round(rate, 2), "threshold": settings.success_rate_orange_below},
        ))
    elif _below(rate, settings.success_rate_yellow_below, prior is not None, margin):
        rules.append(FiredRule(
            id="success_rate", state=State.YELLOW, rule="pipeline success rate 70–90 %",
            reason=f"pipeline success rate {_num(rate)} % < {_num(settings.success_rate_yellow_below)} % ({detail})",
            values={"success_rate": round(rate, 2), "threshold": settings.success_rate_yellow_below},
        ))


def _gate_rules(signals, settings, previous, rules, need) -> None:
    streak = need(signals.gates.zero_pass_streak, "zero_pass_streak", "platform")
    if streak is not None and streak >= settings.zero_pass_gates:
        rules.append(FiredRule(
            id="zero_pass_gates", state=State.ORANGE, rule="pass rate = 0 on 3 consecutive runs",
            reason=f"pass rate 0 on the last {int(streak)} consecutive gates "
                   f"(>= {settings.zero_pass_gates}; {signals.gates.zero_pass_streak.detail})",
            values={"zero_pass_streak": int(streak), "threshold": settings.zero_pass_gates},
            commands=list(signals.gates.relaunches),
        ))
    days = need(signals.gates.days_without_candidate, "days_without_candidate", "universe")
    if days is not None and _above(days, settings.no_candidate_days, _was(previous, "no_candidates", State.ORANGE),
                                   settings.days_margin):
        rules.append(FiredRule(
            id="no_candidates", state=State.ORANGE, rule="0 useful candidate on the full universe > 3 days",
            reason=f"no useful candidate on the full universe for {days:.1f} days "
                   f"> {_num(settings.no_candidate_days)} ({signals.gates.days_without_candidate.detail})",
            values={"days_without_candidate": round(days, 2), "threshold": settings.no_candidate_days},
            commands=list(signals.gates.relaunches),
        ))


def _crypto_rules(signals, settings, previous, rules, need) -> None:
    for crypto, row in sorted(signals.cryptos.items()):
        if row.group is None:
            continue  # gated outside the universes: shown in the table, not a §0 input
        age = need(row.model_freshness_days, "model_freshness", crypto)
        if age is not None:
            kind, state, threshold, rule = (
                ("core_model_stale", State.ORANGE, settings.core_model_stale_days,
                 "model stale > 14 days on a core crypto (btc-core)") if row.core else
                ("noncore_model_stale", State.YELLOW, settings.noncore_model_stale_days,
                 "model stale > 7 days on a non-core crypto"))
            rule_id = f"{kind}:{crypto}"
            if _above(age, threshold, _was(previous, rule_id, state), settings.days_margin):
                rules.append(FiredRule(
                    id=rule_id, state=state, rule=rule,
                    reason=f"{crypto} ({row.group}) model is {age:.1f} days old > {_num(threshold)}",
                    values={"crypto": crypto, "age_days": round(age, 2), "threshold": threshold},
                ))
        drift = need(row.drift, "drift", crypto)
        if drift is not None and drift >= DRIFT_CRITICAL:
            rules.append(FiredRule(
                id=f"champion_drift:{crypto}", state=State.YELLOW, rule=DRIFT_RULE,
                reason=f"{crypto} champion drifted critically ({row.drift.detail})",
                values={"crypto": crypto, "drift_band": int(drift)},
            ))
        streak = need(row.negative_sortino_streak, "negative_sortino_streak", crypto)
        if streak is not None and streak >= settings.sortino_negative_gates:
            rules.append(FiredRule(
                id=f"negative_sortino:{crypto}", state=State.YELLOW, rule="recurrent negative Sortino",
                reason=f"{crypto} Sortino negative on its last {int(streak)} gates "
                       f"(>= {settings.sortino_negative_gates}; {row.negative_sortino_streak.detail})",
                values={"crypto": crypto, "negative_streak": int(streak),
                        "threshold": settings.sortino_negative_gates},
            ))
