"""``global_state_sensor``: derives the §0 state on an interval, records it and alerts on change.

Resources by key: ``diagnostics`` (the diagnostics store: gate history, crypto signals, the
``cvn_global_state`` table) and ``alert_channels`` (channels and alert policy). The cursor holds
the alert memory; so does every ``global_state`` observation, and the newest copy wins — the
daily morning check and ``cvn state --notify`` share it, and a sensor restarted without its
cursor neither forgets nor re-sends.
"""


import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import ValidationError

from cvn_assets.alerts.policy import AlertMemory
from cvn_assets.state.check import CheckOutcome, StateRecorder, default_sources, run_state_check
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.sources import describe_error, source_unreachable

GLOBAL_STATE_SENSOR = "global_state_sensor"


def open_store(diagnostics: Any) -> tuple[Any | None, str | None]:
    """The diagnostics store of the resource, or why it cannot be opened (then the state says so)."""
    if diagnostics is None:
        return None, "diagnostics store not configured (CVN_DIAGNOSTICS_URL is not set)"
    try:
        return diagnostics.store(), None
    except Exception as exc:
        if not source_unreachable(exc):
            raise
        return None, f"diagnostics store unreadable — {describe_error(exc)}"


def evaluate_and_notify(
    instance: dg.DagsterInstance,
    diagnostics: Any,
    alert_channels: Any,
    logger: Any,
    *,
    settings: StateSettings,
    cursor_memory: AlertMemory | None = None,
    source: str,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[CheckOutcome, list[str]]:
    """One full evaluation with notification and recording (sensor, schedule, ``cvn state --notify``)."""
    environ = os.environ if environ is None else environ
    now = now or datetime.now(UTC)
    store, store_error = open_store(diagnostics)
    recorder = StateRecorder(instance=instance, store=store, source=source)
    memory = recorder.load(cursor_memory)
    outcome = run_state_check(
        sources=default_sources(instance, store, environ, store_error), settings=settings, now=now,
        memory=memory, logger=logger, notify=True, dispatcher=alert_channels.dispatcher(logger),
        policy=alert_channels.policy(), recorder=recorder,
    )
    return outcome, recorder.errors


def _cursor_memory(cursor: str | None) -> AlertMemory | None:
    if not cursor:
        return None
    try:
        return AlertMemory.model_validate_json(cursor)
    except ValidationError:
        return None  # a cursor from another version: the recorded observation takes over


def build_global_state_sensor(
    settings: StateSettings | None = None,
    *,
    name: str = GLOBAL_STATE_SENSOR,
    minimum_interval_seconds: int = 300,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    settings = settings or StateSettings()

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        required_resource_keys={"diagnostics", "alert_channels"},
        description=("Derives the global state GREEN / YELLOW / ORANGE / RED (manual §0) from the golden "
                     "signals, records it on the global_state asset and cvn_global_state, and alerts on change "
                     "(RED → P0, ORANGE → P1, YELLOW → P2; resolve on return to GREEN)."),
    )
    def global_state_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        outcome, errors = evaluate_and_notify(
            context.instance, context.resources.diagnostics, context.resources.alert_channels, context.log,
            settings=settings, cursor_memory=_cursor_memory(context.cursor), source=name,
        )
        for error in errors:
            context.log.warning(f"global state recorded without the diagnostics table: {error}")
        decision = outcome.decision
        what = (f"notified {decision.kind.value} ({decision.severity.value if decision.severity else '-'}) to "
                f"{', '.join(outcome.delivered) or 'no channel'}"
                + (f"; failed: {', '.join(sorted(outcome.failed))}" if outcome.failed else "")
                if decision and decision.kind else (decision.reason if decision else ""))
        return dg.SensorResult(
            cursor=outcome.memory.model_dump_json(),
            skip_reason=dg.SkipReason(f"{outcome.evaluation.summary()} — {what}"[:1000]),
        )

    return global_state_sensor
