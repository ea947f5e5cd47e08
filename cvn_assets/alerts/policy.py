"""When the global state is notified, at which severity, to which channels — pure functions.

As alert managers do it (Prometheus Alertmanager's grouping, ``repeat_interval`` and
``send_resolved``):

- a change of state is notified at once (GREEN → non-GREEN: *firing*; between two non-GREEN
  states: *changed*); the same state with a rule that was not yet notified: *updated*;
- an unchanged non-GREEN state is not repeated before its severity's repeat interval (*repeat*);
- the return to GREEN sends one *resolved* message, routed like the state it resolves;
- severity from §8: RED → P0, ORANGE → P1, YELLOW → P2; each channel takes the severities at or
  above its minimum (SMS: P0/P1 by default).

``AlertMemory`` is everything the policy remembers between evaluations; it is stored in the
sensor cursor and in the ``global_state`` observations, so a restart neither forgets nor re-sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.alerts.alert import Severity
from cvn_assets.state.rules import State, StateEvaluation


class NotificationKind(StrEnum):
    FIRING = "firing"
    CHANGED = "changed"
    UPDATED = "updated"
    REPEAT = "repeat"
    RESOLVED = "resolved"


class AlertPolicy(BaseModel):
    """Repeat intervals per severity and how long the notification log is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repeat_minutes: dict[Severity, float] = Field(
        default_factory=lambda: {Severity.P0: 60.0, Severity.P1: 240.0, Severity.P2: 1440.0, Severity.P3: 1440.0},
        description="an unchanged state is re-notified after this long (per severity)",
    )
    notify_new_rules: bool = Field(default=True, description="same state, a rule not yet notified → 'updated'")
    log_size: int = Field(default=20, ge=1, description="notifications kept in the memory")

    def repeat_interval(self, severity: Severity) -> timedelta:
        return timedelta(minutes=self.repeat_minutes.get(severity, 240.0))


class NotificationRecord(BaseModel):
    """One notification sent (or attempted): the notification log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    kind: str
    state: str
    severity: str
    delivered: list[str] = Field(default_factory=list, description="channels that accepted it")
    failed: list[str] = Field(default_factory=list, description="channels that did not, after retries")


class AlertMemory(BaseModel):
    """What the state sensor remembers: the last evaluation, the last notification and the log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    updated_at: datetime | None = None
    state: State | None = Field(default=None, description="state of the last evaluation")
    rule_states: dict[str, State] = Field(default_factory=dict, description="rules fired at the last evaluation")
    evaluated_at: datetime | None = None
    recorded_at: datetime | None = Field(default=None, description="last time the state was recorded")
    notified_state: State | None = Field(default=None, description="the state the channels were last told")
    notified_rules: list[str] = Field(default_factory=list)
    notified_at: datetime | None = None
    pending_channels: list[str] = Field(default_factory=list, description="channels to retry the last notification on")
    log: list[NotificationRecord] = Field(default_factory=list)


class Decision(BaseModel):
    """Whether to notify now, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: NotificationKind | None
    severity: Severity | None
    previous_state: State | None
    reason: str


def severity_of(state: State) -> Severity | None:
    return Severity(state.severity) if state.severity else None


def decide(evaluation: StateEvaluation, memory: AlertMemory, policy: AlertPolicy, now: datetime) -> Decision:
    """Notify on change, on a new rule, on a due repeat, or to resolve; otherwise stay quiet."""
    told = memory.notified_state or State.GREEN
    current = evaluation.state
    if current == State.GREEN:
        if told == State.GREEN:
            return Decision(kind=None, severity=None, previous_state=told, reason="GREEN, nothing to resolve")
        return Decision(kind=NotificationKind.RESOLVED, severity=severity_of(told), previous_state=told,
                        reason=f"{told.value} → GREEN")
    severity = severity_of(current)
    if told != current:
        kind = NotificationKind.FIRING if told == State.GREEN else NotificationKind.CHANGED
        return Decision(kind=kind, severity=severity, previous_state=told, reason=f"{told.value} → {current.value}")
    new_rules = sorted(set(evaluation.rule_states) - set(memory.notified_rules))
    if policy.notify_new_rules and new_rules:
        return Decision(kind=NotificationKind.UPDATED, severity=severity, previous_state=told,
                        reason=f"{current.value} unchanged, new rule(s): {', '.join(new_rules)}")
    interval = policy.repeat_interval(severity)
    if memory.notified_at is None or now - memory.notified_at >= interval:
        return Decision(kind=NotificationKind.REPEAT, severity=severity, previous_state=told,
                        reason=f"{current.value} unchanged for {interval} (repeat interval of {severity.value})")
    return Decision(kind=None, severity=severity, previous_state=told,
                    reason=f"{current.value} unchanged, notified at {memory.notified_at:%Y-%m-%d %H:%M}Z; "
                           f"next repeat after {memory.notified_at + interval:%Y-%m-%d %H:%M}Z")


def route(severity: Severity, minimums: Mapping[str, Severity]) -> list[str]:
    """Channels whose minimum severity the alert meets, in the given order."""
    return [name for name, minimum in minimums.items() if severity.at_least(minimum)]


def remember_evaluation(memory: AlertMemory, evaluation: StateEvaluation, now: datetime) -> AlertMemory:
    return memory.model_copy(update={
        "state": evaluation.state, "rule_states": evaluation.rule_states,
        "evaluated_at": evaluation.evaluated_at, "updated_at": now,
    })


def remember_notification(
    memory: AlertMemory, evaluation: StateEvaluation, decision: Decision, now: datetime,
    delivered: Iterable[str], failed: Iterable[str], policy: AlertPolicy,
) -> AlertMemory:
    """After a notification: what was told, when, and which channels still owe it."""
    record = NotificationRecord(at=now, kind=decision.kind.value if decision.kind else "retry",
                                state=evaluation.state.value,
                                severity=decision.severity.value if decision.severity else "",
                                delivered=sorted(delivered), failed=sorted(failed))
    return memory.model_copy(update={
        "notified_state": evaluation.state,
        "notified_rules": sorted(evaluation.rule_states),
        "notified_at": now,
        "pending_channels": sorted(failed),
        "log": [*memory.log, record][-policy.log_size:],
        "updated_at": now,
    })


def remember_retry(memory: AlertMemory, now: datetime, delivered: Iterable[str], failed: Iterable[str],
                   policy: AlertPolicy) -> AlertMemory:
    """After re-sending the last notification to the channels that had failed."""
    last = memory.log[-1] if memory.log else None
    record = NotificationRecord(at=now, kind="retry", state=last.state if last else "",
                                severity=last.severity if last else "",
                                delivered=sorted(delivered), failed=sorted(failed))
    return memory.model_copy(update={
        "pending_channels": sorted(failed),
        "log": [*memory.log, record][-policy.log_size:],
        "updated_at": now,
    })


def newest(*memories: AlertMemory | None) -> AlertMemory:
    """The most recently updated memory among the copies (sensor cursor, recorded observation)."""
    present = [m for m in memories if m is not None and m.updated_at is not None]
    if not present:
        return AlertMemory()
    return max(present, key=lambda m: m.updated_at)  # type: ignore[arg-type, return-value]
