"""Structured events in logfmt (``event=… key=value``), so the runbook's log queries work as written.

The event names are a contract (DESIGN.md). Values are quoted when they hold spaces, quotes or
``=``; secrets never reach this module (callers pass identifiers and counts, not URLs or tokens).
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any


class Event(StrEnum):
    PRED_PERSIST_FAILED = "s43_pred_persist_failed"
    PRED_LOAD_FAILED = "s43_pred_load_failed"
    ACQUIRE_OUTCOME = "s43_acquire_outcome"
    COHORT = "s43_cohort"
    GATE_VERDICT = "s43_gate_verdict"
    GLOBAL_STATE_CHANGED = "global_state_changed"
    ALERT_SENT = "alert_sent"


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple, set, frozenset)):
        value = ",".join(str(item) for item in value)
    text = "" if value is None else str(value)
    if text == "" or any(char in text for char in ' "=\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def logfmt(event: Event | str, **fields: Any) -> str:
    """One logfmt line: ``event=<name>`` first, then the fields in the order given."""
    parts = [f"event={Event(event).value}"]
    parts.extend(f"{name}={_format_value(value)}" for name, value in fields.items())
    return " ".join(parts)


def log_event(logger: logging.Logger | Any, event: Event | str, level: int = logging.INFO, **fields: Any) -> str:
    """Emit the event through a stdlib or Dagster logger and return the line (for metadata)."""
    line = logfmt(event, **fields)
    if level >= logging.ERROR:
        logger.error(line)
    elif level >= logging.WARNING:
        logger.warning(line)
    else:
        logger.info(line)
    return line
