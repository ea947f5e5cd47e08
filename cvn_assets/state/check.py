"""One evaluation of the global state, as the sensor, the daily morning check and ``cvn state`` run it.

read the signals → apply §0 (with the previous rules, for hysteresis) → decide with the alert
policy → send through the channels → record (``global_state`` observation + ``cvn_global_state``
row) whenever the state, its rules or the notification changed, or the record is older than the
settings' interval. The memory is written right after a send, so a crash later in the tick does
not make the next evaluation send again.

Several evaluators may decide the same notification at once (the sensor and two operators'
``cvn state --notify``): before sending, each claims it in the diagnostics database
(``cvn_alert_claims``, keyed by what the evaluator knew of the last notification); one insert
wins and only its evaluator sends, the others take the notification as told. Without a
reachable diagnostics database there is nothing shared to claim in, and the evaluator sends.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.alerts.channels import AlertDispatcher
from cvn_assets.alerts.routing import RoutingTable, family_of
from cvn_assets.alerts.messages import state_alert
from cvn_assets.alerts.policy import (
    AlertMemory, AlertPolicy, Decision, NotificationKind, decide, newest, remember_evaluation,
    remember_notification, remember_retry,
)
from cvn_assets.events import Event, log_event
from cvn_assets.state.history import latency_rows, platform_diagnostics, rule_routing, run_backlog, state_columns
from cvn_assets.state.recording import memory_from_row, observation, signals_summary, stored_memory
from cvn_assets.state.rules import StateEvaluation, evaluate_state
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import GoldenSignals
from cvn_assets.state.sources import SignalSources, describe_error, source_unreachable, collect_signals
from cvn_assets.state.table import SignalRow, signal_table


class CheckOutcome(BaseModel):
    """What one evaluation found and did."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    signals: GoldenSignals
    evaluation: StateEvaluation
    table: list[SignalRow]
    previous_state: str | None
    decision: Decision | None
    delivered: list[str]
    failed: dict[str, str]
    recorded: bool
    memory: AlertMemory
    routing: list[dict[str, Any]] = Field(default_factory=list, description="per fired rule: role and channels")
    alert_routing: dict[str, Any] | None = Field(default=None, description="the state alert's route (sent or due)")
    diagnostics: list[dict[str, Any]] = Field(default_factory=list, description="§7 platform codes found")
    history_id: int | None = Field(default=None, description="the cvn_global_state row of this evaluation")


@dataclass
class StateRecorder:
    """Writes the evaluation to the Dagster event log and, when configured, the diagnostics table."""

    instance: dg.DagsterInstance
    store: Any | None = None  # cvn_assets.diagnostics DiagnosticsStore
    source: str = "global_state_sensor"
    errors: list[str] = field(default_factory=list)

    def load(self, cursor_memory: AlertMemory | None) -> AlertMemory:
        """The newest memory among the cursor, the latest observation and (fallback) the latest row."""
        memory = newest(cursor_memory, stored_memory(self.instance))
        if memory.updated_at is None and self.store is not None:
            row = self._try("read cvn_global_state", lambda: self.store.latest_global_state())
            memory = memory_from_row(row) or memory
        return memory

    def record(self, evaluation: StateEvaluation, previous: Any, rows: list[SignalRow],
               memory: AlertMemory, decision: Decision | None) -> None:
        """The ``global_state`` observation (on change, notification or interval)."""
        self.instance.report_runless_asset_event(
            observation(evaluation, previous, rows, memory, decision, self.source))

    def record_history(self, evaluation: StateEvaluation, previous: Any, signals: GoldenSignals,
                       rows: list[SignalRow], settings: StateSettings, routing: list[dict[str, Any]],
                       diagnostics: list[dict[str, Any]]) -> int | None:
        """Every evaluation: one ``cvn_global_state`` row, its latency rows and its §7 codes."""
        if self.store is None:
            return None
        queued, started = run_backlog(self.instance, settings.jobs)
        return self._try("write cvn_global_state", lambda: self.store.record_global_state(
            evaluated_at=evaluation.evaluated_at, state=evaluation.state.value,
            previous_state=previous.value if previous else None,
            rules=[rule.model_dump(mode="json") for rule in evaluation.rules],
            signals=signals_summary(signals, rows), source=self.source,
            unknown=[u.model_dump(mode="json") for u in evaluation.unknown],
            columns=state_columns(signals, queued_runs=queued, started_runs=started),
            routing=routing, latency=latency_rows(signals, rows), diagnostics=diagnostics,
        ))

    def claim(self, key: str, kind: str, state: str, now: datetime) -> tuple[bool, datetime]:
        """Whether this evaluator may send the notification ``key``; if not, when the winner claimed it."""
        if self.store is None:
            return True, now
        claimed_by = f"{self.source} on {socket.gethostname()} pid {os.getpid()}"
        outcome = self._try("claim the alert in cvn_alert_claims",
                            lambda: self.store.claim_alert(key, kind, state, claimed_by, now))
        return outcome if outcome is not None else (True, now)

    def _try(self, what: str, action) -> Any:
        try:
            return action()
        except Exception as exc:
            if not source_unreachable(exc):
                raise
            self.errors.append(f"{what}: {describe_error(exc)}")
            return None


def claim_key(memory: AlertMemory, kind: str, state: str, pending: list[str] | None = None) -> str:
    """The identity of one notification: its kind and state, and the last notification the deciding
    evaluator knew of. Concurrent evaluators loading the same memory compute the same key; once a
    notification is recorded, the next one has another key."""
    parts = [kind, state, memory.notified_state.value if memory.notified_state else "-",
             memory.notified_at.isoformat() if memory.notified_at else "-"]
    if pending is not None:  # a retry: each attempt is a log record of its own
        parts += [memory.log[-1].at.isoformat() if memory.log else "-", ",".join(pending)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _told_by_another(memory: AlertMemory, evaluation: StateEvaluation, claimed_at: datetime) -> AlertMemory:
    """The memory of an evaluator whose claim lost: the state was told (by the winner), at its claim."""
    return memory.model_copy(update={"notified_state": evaluation.state, "notified_rules": sorted(evaluation.rule_states),
                                     "notified_at": claimed_at, "pending_channels": []})


def run_state_check(
    *,
    sources: SignalSources,
    settings: StateSettings,
    now: datetime,
    memory: AlertMemory,
    logger: logging.Logger | Any,
    notify: bool,
    dispatcher: AlertDispatcher | None = None,
    policy: AlertPolicy | None = None,
    recorder: StateRecorder | None = None,
    routing: RoutingTable | None = None,
) -> CheckOutcome:
    """Evaluate; with ``notify``, apply the policy and send; with a recorder, record (history: always)."""
    policy = policy or AlertPolicy()
    routing = routing or (dispatcher.routing if dispatcher is not None else RoutingTable())
    signals = collect_signals(sources, settings, now)
    evaluation = evaluate_state(signals, settings, memory.rule_states)
    rows = signal_table(signals, settings)
    rules_routing = rule_routing(evaluation, routing)
    diagnostics = platform_diagnostics(evaluation, signals, settings)
    previous = memory.state
    changed = previous != evaluation.state or set(memory.rule_states) != set(evaluation.rule_states)
    # A change is an event only where it is remembered (the sensor, `cvn state --notify`): a read-only
    # check compares with the same memory every time and would announce the same "change" on each call.
    if previous != evaluation.state and (notify or recorder is not None):
        log_event(logger, Event.GLOBAL_STATE_CHANGED,
                  logging.INFO if evaluation.state.rank <= (previous.rank if previous else 0) else logging.WARNING,
                  state=evaluation.state.value, previous_state=previous.value if previous else "none",
                  rules=[rule.id for rule in evaluation.rules], unknown=len(evaluation.unknown))
    new_memory = remember_evaluation(memory, evaluation, now)
    decision: Decision | None = None
    alert_routing: dict[str, Any] | None = None
    if evaluation.state.severity:
        due = state_alert(evaluation, decide(evaluation, memory, policy, now), now)
        alert_routing = {"alert": "global_state", "sent": False,
                         **(dispatcher.route(due) if dispatcher is not None else
                            routing.decide(due.severity, family_of(due))).model_dump(mode="json")}
    delivered: list[str] = []
    failed: dict[str, str] = {}
    sent = False
    if notify:
        if dispatcher is None:
            raise ValueError("notify=True needs the alert channels (dispatcher)")
        decision = decide(evaluation, memory, policy, now)
        retrying = (decision.kind is None and bool(memory.pending_channels)
                    and memory.notified_state == evaluation.state)
        won, claimed_at = True, now
        if (decision.kind is not None or retrying) and recorder is not None:
            kind = decision.kind.value if decision.kind is not None else "retry"
            won, claimed_at = recorder.claim(
                claim_key(memory, kind, evaluation.state.value, memory.pending_channels if retrying else None),
                kind, evaluation.state.value, now)
        if not won:
            decision = decision.model_copy(update={
                "kind": None, "reason": f"{decision.reason} — sent by another evaluator (claimed at {claimed_at.isoformat()})"})
            new_memory = _told_by_another(new_memory, evaluation, claimed_at)
        elif decision.kind is not None:
            report = dispatcher.deliver(state_alert(evaluation, decision, now))
            delivered, failed = report.delivered, report.failed
            alert_routing = {"alert": "global_state", "sent": True, **report.routing.model_dump(mode="json")}
            new_memory = remember_notification(new_memory, evaluation, decision, now, report.delivered,
                                               report.failed, policy)
            sent = True
        elif retrying:
            # The last notification did not reach every channel: try those again, same content.
            last_kind = NotificationKind(memory.log[-1].kind) if memory.log and memory.log[-1].kind in \
                NotificationKind._value2member_map_ else NotificationKind.REPEAT
            retry = decision.model_copy(update={"kind": last_kind})
            report = dispatcher.deliver(state_alert(evaluation, retry, now), only=memory.pending_channels)
            delivered, failed = report.delivered, report.failed
            new_memory = remember_retry(new_memory, now, report.delivered, report.failed, policy)
            sent = True
    recorded = False
    if recorder is not None:
        due = memory.recorded_at is None or now - memory.recorded_at >= timedelta(minutes=settings.record_interval_minutes)
        if changed or sent or due:
            new_memory = new_memory.model_copy(update={"recorded_at": now})
            recorder.record(evaluation, previous, rows, new_memory, decision)
            recorded = True
        history_id = recorder.record_history(evaluation, previous, signals, rows, settings, rules_routing,
                                             diagnostics)
    else:
        history_id = None
    return CheckOutcome(signals=signals, evaluation=evaluation, table=rows,
                        previous_state=previous.value if previous else None, decision=decision,
                        delivered=delivered, failed=failed, recorded=recorded, memory=new_memory,
                        routing=rules_routing, alert_routing=alert_routing, diagnostics=diagnostics,
                        history_id=history_id)


def default_sources(instance: dg.DagsterInstance, store: Any | None, environ: Mapping[str, str],
                    store_error: str | None = None) -> SignalSources:
    """Sources of this deployment: the instance, the diagnostics store, MLflow, this machine or cluster."""
    from cvn_assets.contracts.campaign import load_universes
    from cvn_assets.state.infra import InfraProbe
    from cvn_assets.state.sources import MlflowRegistry, StoreDiagnostics

    from cvn_assets.gate.model_registry import tracking_uri_from_env

    missing = {}
    if store is None:
        missing["diagnostics"] = store_error or "diagnostics store not configured (CVN_DIAGNOSTICS_URL)"
    registry = None
    try:
        tracking_uri = tracking_uri_from_env(environ)
    except ValueError as exc:
        missing["registry"] = str(exc)
    else:
        if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
            # Reading would create the registry (and take seconds): say what is true instead.
            missing["registry"] = "the MLflow registry does not exist yet (no gate has registered a model)"
        else:
            registry = MlflowRegistry(tracking_uri)
    return SignalSources(
        instance=instance,
        diagnostics=StoreDiagnostics(store) if store is not None else None,
        registry=registry,
        probe=InfraProbe.from_env(environ),
        universes=load_universes(environ=environ),
        missing=missing,
    )
