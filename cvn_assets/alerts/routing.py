"""Who is paged, and on which channels: severity (manual §8) × family → role (§4) and channels.

The default table is the manual's escalation: P0 → platform owner, P1 → MLOps maintainer,
P2 → ML owner, P3 → the digest only (the log and the state history, read at the morning check,
nobody is paged). Infrastructure alerts (§9.4 INFRA_SATURATED) go to the platform owner at any
paging severity. SMS is for P0/P1 only: a table that sends a P2 or P3 by SMS is refused.

A deployment replaces the table with a YAML or JSON file (``AlertChannelsResource.routing_file``)
of the same shape: ``routes: [{severity, family, role, channels}]``, first match wins, ``family``
omitted = any family. Every alert gets exactly one decision; a severity without a route is refused
when the table is loaded, never at 3 a.m.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cvn_assets.alerts.alert import Alert, Severity

ROUTING_FILE_ENV = "CVN_ALERT_ROUTING_FILE"
KNOWN_CHANNELS = ("log", "webhook", "slack", "sms", "alertmanager")
PAGING = ("log", "webhook", "slack", "alertmanager")


class RoutingConfigError(ValueError):
    """The routing file is unreadable or invalid (the message names the file and the field)."""


class Family(StrEnum):
    """What an alert is about, for routing: the platform, a pipeline run, the ML results, the model lifecycle."""

    INFRA = "infra"
    PIPELINE = "pipeline"
    ML = "ml"
    LIFECYCLE = "lifecycle"


class Role(StrEnum):
    """The manual's §4 roles, plus the digest (nobody paged)."""

    PLATFORM_OWNER = "platform_owner"
    MLOPS_MAINTAINER = "mlops_maintainer"
    ML_OWNER = "ml_owner"
    OPERATOR = "operator"
    DIGEST = "digest"


class Route(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    family: Family | None = Field(default=None, description="None: any family")
    role: Role
    channels: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _channels(self) -> Route:
        unknown = sorted(set(self.channels) - set(KNOWN_CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}: expected some of {list(KNOWN_CHANNELS)}")
        if "sms" in self.channels and not self.severity.at_least(Severity.P1):
            raise ValueError(f"sms is for P0/P1 only (manual §8), found it on a {self.severity.value} route")
        return self


class RoutingDecision(BaseModel):
    """The route an alert took: its family, the role paged and the channels it is sent to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    family: Family
    role: Role
    channels: list[str]


def _default_routes() -> list[Route]:
    return [
        Route(severity=Severity.P0, role=Role.PLATFORM_OWNER, channels=[*PAGING, "sms"]),
        Route(severity=Severity.P1, family=Family.INFRA, role=Role.PLATFORM_OWNER, channels=[*PAGING, "sms"]),
        Route(severity=Severity.P1, role=Role.MLOPS_MAINTAINER, channels=[*PAGING, "sms"]),
        Route(severity=Severity.P2, family=Family.INFRA, role=Role.PLATFORM_OWNER, channels=list(PAGING)),
        Route(severity=Severity.P2, role=Role.ML_OWNER, channels=list(PAGING)),
        Route(severity=Severity.P3, role=Role.DIGEST, channels=["log"]),
    ]


class RoutingTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    routes: list[Route] = Field(default_factory=_default_routes)

    @model_validator(mode="after")
    def _every_severity(self) -> RoutingTable:
        missing = [s.value for s in Severity if not any(r.severity == s and r.family is None for r in self.routes)]
        if missing:
            raise ValueError(f"routes: every severity needs a route for any family (family omitted); "
                             f"missing for {missing}")
        return self

    def decide(self, severity: Severity, family: Family) -> RoutingDecision:
        route = next(r for r in self.routes if r.severity == severity and r.family in (None, family))
        return RoutingDecision(severity=severity, family=family, role=route.role, channels=list(route.channels))

    def rows(self) -> list[dict[str, str]]:
        """The table as documented (docs/operations.md) and printed."""
        return [{"severity": r.severity.value, "family": r.family.value if r.family else "any",
                 "role": r.role.value, "channels": ", ".join(r.channels)} for r in self.routes]


def load_routing(path: str | Path) -> RoutingTable:
    """A routing table from a YAML/JSON file; errors name the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RoutingConfigError(f"alert routing file {path}: cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise RoutingConfigError(f"alert routing file {path}: not YAML/JSON ({str(exc).splitlines()[0]})") from None
    try:
        return RoutingTable.model_validate(data)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'table'}: {e['msg']}" for e in exc.errors())
        raise RoutingConfigError(f"alert routing file {path}: {fields}") from None


# Families of the global state's rules (state/rules.py ids, before the ':' scope).
RULE_FAMILIES = {
    "infra_critical": Family.INFRA, "success_rate": Family.PIPELINE, "signals_unknown": Family.PIPELINE,
    "zero_pass_gates": Family.ML, "no_candidates": Family.ML, "negative_sortino": Family.ML,
    "core_model_stale": Family.LIFECYCLE, "noncore_model_stale": Family.LIFECYCLE,
}
KIND_FAMILIES = {"run_failure": Family.PIPELINE, "check_failure": Family.PIPELINE, "stuck_run": Family.PIPELINE,
                 "long_run": Family.PIPELINE, "model_lifecycle": Family.LIFECYCLE}


def rule_family(rule_id: str) -> Family:
    return RULE_FAMILIES.get(rule_id.partition(":")[0], Family.PIPELINE)


def family_of(alert: Alert) -> Family:
    """The alert's own family if it names one; a state alert: its highest rule; a run or check: pipeline."""
    if alert.family is not None:
        return Family(alert.family)
    if alert.key == "global_state":
        rules = str(alert.facts.get("rules") or "").split(", ")
        return rule_family(rules[0]) if rules[0] else Family.PIPELINE
    return KIND_FAMILIES.get(alert.kind, Family.PIPELINE)

