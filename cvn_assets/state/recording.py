"""Where the global state is recorded: the ``global_state`` asset's observations and ``cvn_global_state``.

Each recorded evaluation is an ``AssetObservation`` of the ``global_state`` asset — its history
(state, level for plots, fired rules, unknown signals) is the asset's event history in the Dagster
UI — and a row of the diagnostics table ``cvn_global_state`` for Grafana. The observation also
carries the alert memory (last state told, when, to which channels), so that every evaluator —
the sensor, the daily morning check, ``cvn state --notify`` — shares one memory and a restarted
sensor does not re-send. Nothing here holds a channel URL: the memory names channels only.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import dagster as dg

from cvn_assets.alerts.policy import AlertMemory, Decision
from cvn_assets.state.rules import State, StateEvaluation
from cvn_assets.state.signals import GoldenSignals
from cvn_assets.state.table import SignalRow

GLOBAL_STATE = "global_state"
GLOBAL_STATE_KEY = dg.AssetKey(GLOBAL_STATE)
MEMORY_METADATA_KEY = "alert_memory"
LEVELS = {State.GREEN: 0, State.YELLOW: 1, State.ORANGE: 2, State.RED: 3}

global_state_spec = dg.AssetSpec(
    GLOBAL_STATE_KEY,
    group_name="operations",
    description=(
        "The platform's global state GREEN / YELLOW / ORANGE / RED (manual §0), observed by "
        "global_state_sensor and the daily morning check. Each observation holds the state, the "
        "rules that fired with their values, the unknown signals and the alert memory."
    ),
    metadata={"levels": "0 = GREEN, 1 = YELLOW, 2 = ORANGE, 3 = RED"},
)


def _rules_markdown(evaluation: StateEvaluation) -> str:
    if not evaluation.rules:
        return "no rule fired"
    lines = ["| state | rule | values |", "|---|---|---|"]
    for rule in evaluation.rules:
        lines.append(f"| {rule.state.value} | {rule.reason.replace('|', '/')} | "
                     f"{', '.join(f'{k}={v}' for k, v in rule.values.items())} |")
    return "\n".join(lines)


def _table_markdown(rows: list[SignalRow]) -> str:
    lines = ["| category | signal | scope | value | level |", "|---|---|---|---|---|"]
    lines += [f"| {r.category} | {r.signal} | {r.scope} | {r.display} | {r.level.value} |" for r in rows]
    return "\n".join(lines)


def observation(evaluation: StateEvaluation, previous: State | None, rows: list[SignalRow],
                memory: AlertMemory, decision: Decision | None, source: str) -> dg.AssetObservation:
    metadata: dict[str, Any] = {
        "state": evaluation.state.value,
        "state_level": LEVELS[evaluation.state],
        "previous_state": previous.value if previous else "none",
        "summary": evaluation.summary(),
        "rules": dg.MetadataValue.md(_rules_markdown(evaluation)),
        "rules_fired": len(evaluation.rules),
        "unknown_signals": dg.MetadataValue.json([u.model_dump(mode="json") for u in evaluation.unknown]),
        "signals": dg.MetadataValue.md(_table_markdown(rows)),
        "evaluated_by": source,
        "notification": (f"{decision.kind.value}: {decision.reason}" if decision and decision.kind
                         else (decision.reason if decision else "not evaluated (read-only)")),
        MEMORY_METADATA_KEY: dg.MetadataValue.json(json.loads(memory.model_dump_json())),
    }
    for row in rows:
        if row.signal == "pipeline_success_rate" and row.value is not None:
            metadata["pipeline_success_rate"] = float(row.value)
    return dg.AssetObservation(asset_key=GLOBAL_STATE_KEY, metadata=metadata)


def stored_memory(instance: dg.DagsterInstance) -> AlertMemory | None:
    """The alert memory of the latest ``global_state`` observation, if any."""
    records = instance.fetch_observations(GLOBAL_STATE_KEY, limit=1).records
    if not records or records[0].asset_observation is None:
        return None
    value = records[0].asset_observation.metadata.get(MEMORY_METADATA_KEY)
    data = getattr(value, "data", None)
    if data is None:
        return None
    return AlertMemory.model_validate(data)


def memory_from_row(row: dict[str, Any] | None) -> AlertMemory | None:
    """A memory rebuilt from the latest ``cvn_global_state`` row when no other copy exists.

    The row does not say whether that state was notified; it is taken as told, at its time —
    after losing both the cursor and the event log, staying quiet beats re-paging.
    """
    if row is None:
        return None
    moment = row["evaluated_at"]
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    rule_states = {rule["id"]: State(rule["state"]) for rule in row["rules"]}
    state = State(row["state"])
    return AlertMemory(updated_at=moment, state=state, rule_states=rule_states, evaluated_at=moment,
                       recorded_at=moment, notified_state=state, notified_rules=sorted(rule_states),
                       notified_at=moment)


def signals_summary(signals: GoldenSignals, rows: list[SignalRow]) -> dict[str, Any]:
    """What the ``cvn_global_state`` row keeps of the signals: every table row, compactly."""
    return {
        "evaluated_at": signals.evaluated_at.isoformat(),
        "rows": [{"category": r.category, "signal": r.signal, "scope": r.scope, "value": r.value,
                  "level": r.level.value, "detail": r.detail} for r in rows],
    }
