"""What an alert is: a severity (manual §8), what happened, and the exact next step."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """§8: P0 critical (escalate now), P1 urgent (within the hour), P2 warning (within the day), P3 info."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"

    @property
    def urgency(self) -> int:
        """Higher is more urgent (P0 = 3)."""
        return 3 - int(self.value[1])

    def at_least(self, other: Severity) -> bool:
        return self.urgency >= other.urgency


class Alert(BaseModel):
    """One notification, as every channel receives it (each renders it its own way)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(description="what the alert is about, e.g. global_state or run_failure:<run id>")
    kind: str = Field(description="firing, changed, updated, repeat, resolved, run_failure, check_failure, stuck_run")
    severity: Severity
    title: str = Field(description="one line: what an operator reads on a phone")
    text: str = Field(description="what happened, with the values")
    scenario: str | None = Field(default=None, description="runbook scenario (A–D) or manual section")
    next_steps: list[str] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list, description="exact commands to run, in order")
    facts: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    created_at: datetime
    family: Literal["infra", "pipeline", "ml", "lifecycle"] | None = Field(
        default=None, description="routing family (alerts/routing.py); None: derived from the kind or the rules")

    def render_text(self) -> str:
        """Plain text: title, text, next steps and commands (log, Slack, webhook ``text``)."""
        lines = [f"[{self.severity.value}] {self.title}", self.text]
        if self.scenario:
            lines.append(f"runbook: {self.scenario}")
        lines += [f"next: {step}" for step in self.next_steps]
        lines += [f"$ {command}" for command in self.commands]
        return "\n".join(line for line in lines if line)
