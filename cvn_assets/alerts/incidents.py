"""One incident, one page: check and run-failure alerts grouped by (campaign, check / job) — pure functions.

A malformed blob fails ``cohort_intact`` on every gate run until the producer is fixed: five gate
runs were five identical P1 pages. Here the first failure of a (check, campaign) — or of a
(job, campaign) for failed runs — opens an incident and pages; later failures of the same
incident are counted, and re-page only once the severity's repeat interval has passed (the alert
policy's, as for the global state); the incident resolves, with one *resolved* message, when the
check passes again on every partition that failed (or a run of that job and campaign succeeds
for every crypto that failed) after its last failure.

Times are the events' own (the failure's, the pass's), not the sensor tick's, so a pass recorded
after a failure resolves it even when both are read in the same tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.alerts.alert import Alert

INCIDENT_TTL_SECONDS = 7 * 24 * 3600  # an incident with no failure nor pass for a week is dropped


class Incident(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    alert: Alert = Field(description="the alert that opened it (what the resolve message refers to)")
    opened_at: float
    last_failure_at: float
    notified_at: float
    occurrences: int = 1
    failing: list[str] = Field(default_factory=list, description="partitions (checks) or cryptos (runs) failing")


def incident_key(alert: Alert) -> str | None:
    """(campaign, check) for check alerts, (job, campaign) for run failures; None: not grouped."""
    campaign = alert.facts.get("campaign")
    if alert.kind == "check_failure":
        check = alert.facts.get("check") or ("transport" if alert.key.startswith("transport:") else None)
        return f"incident:check:{check}:{campaign}" if check and campaign else None
    if alert.kind == "run_failure":
        job = alert.facts.get("job")
        return f"incident:run:{job}:{campaign or '-'}" if job else None
    return None


def _tagged(alert: Alert, key: str, occurrences: int, **updates) -> Alert:
    facts = {**alert.facts, "incident": key, "incident_kind": alert.kind, "occurrences": occurrences}
    return alert.model_copy(update={"key": key, "facts": facts, **updates})


def admit(incidents: dict[str, Incident], alert: Alert, scopes: Sequence[str], now: float,
          repeat_seconds: float) -> tuple[Alert | None, dict[str, Incident]]:
    """The alert to send for this failure of ``scopes`` (None: part of an open incident, not due again)."""
    key = incident_key(alert)
    if key is None:
        return alert, incidents
    at = alert.created_at.timestamp()
    incidents = dict(incidents)
    current = incidents.get(key)
    if current is None:
        incidents[key] = Incident(key=key, alert=alert, opened_at=at, last_failure_at=at, notified_at=now,
                                  failing=sorted({scope for scope in scopes if scope}))
        return _tagged(alert, key, 1), incidents
    occurrences = current.occurrences + 1
    update = {"occurrences": occurrences, "last_failure_at": max(at, current.last_failure_at),
              "failing": sorted(set(current.failing) | {scope for scope in scopes if scope})}
    if now - current.notified_at < repeat_seconds:
        incidents[key] = current.model_copy(update=update)
        return None, incidents
    incidents[key] = current.model_copy(update={**update, "notified_at": now})
    since = datetime.fromtimestamp(current.opened_at, UTC)
    title = f"still failing ({occurrences} times since {since:%Y-%m-%d %H:%M}Z): {alert.title}"[:300]
    return _tagged(alert, key, occurrences, kind=alert.kind, title=title), incidents


def clear(incidents: dict[str, Incident], key: str, scope: str, at: float,
          created_at: datetime) -> tuple[Alert | None, dict[str, Incident]]:
    """A pass (check) or a success (run) of ``scope`` at ``at``: the resolve message once nothing fails."""
    current = incidents.get(key)
    if current is None or at <= current.last_failure_at:
        return None, incidents
    incidents = dict(incidents)
    failing = [item for item in current.failing if item != scope]
    if failing:
        incidents[key] = current.model_copy(update={"failing": failing})
        return None, incidents
    del incidents[key]
    first = current.alert
    what = first.facts.get("check") or first.facts.get("job") or "it"
    resolved = Alert(
        key=key, kind="resolved", severity=first.severity,
        title=f"RESOLVED: {what} passes again — {first.title}"[:300],
        text=(f"{current.occurrences} failure(s) since {datetime.fromtimestamp(current.opened_at, UTC):%Y-%m-%d %H:%M}Z; "
              f"the last failing {'partition' if first.kind == 'check_failure' else 'run'} now succeeds."),
        scenario=first.scenario, next_steps=["close the incident; note it in the incident log (§17)"],
        facts={**first.facts, "incident": key, "incident_kind": first.kind, "occurrences": current.occurrences},
        created_at=created_at, family=first.family,
    )
    return resolved, incidents


def prune(incidents: dict[str, Incident], now: float) -> dict[str, Incident]:
    return {key: incident for key, incident in incidents.items()
            if now - incident.last_failure_at < INCIDENT_TTL_SECONDS}
