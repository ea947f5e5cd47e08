"""The lifecycle's audit trail in the diagnostics database: events, approvals, the roles Grafana shows.

``cvn_model_events`` holds one row per action, refused or done: the row is written (``started``,
with the plan and the aliases before) before the first registry change and closed afterwards
(``done`` with the aliases after, or ``failed`` with how many changes were applied and the error).
A row left ``started`` or ``failed`` is an unfinished action: the next action on that crypto must
be the same one, re-run, which completes it. ``cvn_model_approvals`` holds approvals until the
action they approve consumes them; ``cvn_model_roles`` mirrors each version's stage for Grafana.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from cvn_assets.diagnostics.store import DiagnosticsStore
from cvn_assets.diagnostics.tables import model_approvals, model_events, model_roles
from cvn_assets.models.contract import (
    TAG_CAMPAIGN, TAG_DIAGNOSTIC, TAG_ORIGIN, Action, Approval, Outcome, Plan, RegistryView, Role,
)

LIFECYCLE_ACTIONS = (Action.PROMOTION, Action.KILLSWITCH, Action.ROLLBACK, Action.DECOMMISSION)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _event(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for key in ("occurred_at", "finished_at"):
        data[key] = _utc(data[key])
    for key in ("approvals", "before_aliases", "after_aliases", "plan"):
        data[key] = json.loads(data[key]) if data[key] is not None else None
    return data


class ModelAudit:
    """Read and write the lifecycle tables of one diagnostics store (migrated by the caller)."""

    def __init__(self, store: DiagnosticsStore):
        self.store = store

    # events -------------------------------------------------------------------------------------

    def start(self, *, action: Action, crypto: str, version: str | None, actor: str, role: str | None,
              reason: str, approvals: Sequence[dict[str, Any]], before: dict[str, str], plan: Plan | None,
              origin: str, now: datetime, outcome: Outcome = Outcome.STARTED, detail: str = "",
              resumes: int | None = None) -> int:
        row = {
            "occurred_at": now, "finished_at": now if outcome != Outcome.STARTED else None,
            "action": action.value, "crypto": crypto, "version": version, "actor": actor, "role": role,
            "reason": reason, "approvals": json.dumps(list(approvals)), "before_aliases": json.dumps(before),
            "after_aliases": json.dumps(before) if outcome == Outcome.REFUSED else None,
            "plan": plan.model_dump_json() if plan is not None else "null", "applied": 0,
            "outcome": outcome.value, "detail": detail, "origin": origin[:128], "resumes": resumes,
        }
        with self.store.engine.begin() as connection:
            return int(connection.execute(sa.insert(model_events).returning(model_events.c.id), [row]).scalar_one())

    def finish(self, event_id: int, *, outcome: Outcome, applied: int, after: dict[str, str] | None,
               detail: str, now: datetime, consume: Sequence[int] = ()) -> None:
        """Close an event; the approvals it used are consumed in the same transaction."""
        with self.store.engine.begin() as connection:
            connection.execute(sa.update(model_events).where(model_events.c.id == event_id).values(
                outcome=outcome.value, applied=applied, detail=detail, finished_at=now,
                after_aliases=json.dumps(after) if after is not None else None))
            if consume:
                connection.execute(sa.update(model_approvals).where(model_approvals.c.id.in_(list(consume)))
                                   .values(consumed_event_id=event_id))

    def events(self, crypto: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = sa.select(model_events).order_by(model_events.c.id).limit(limit)
        if crypto is not None:
            query = query.where(model_events.c.crypto == crypto)
        with self.store.engine.connect() as connection:
            return [_event(row) for row in connection.execute(query)]

    def events_after(self, finished_after: datetime, actions: Sequence[Action]) -> list[dict[str, Any]]:
        """Done events of ``actions`` finished after the instant (what the alert sensor tells)."""
        query = (sa.select(model_events).where(model_events.c.outcome == Outcome.DONE.value,
                                               model_events.c.action.in_([a.value for a in actions]),
                                               model_events.c.finished_at >= finished_after)
                 .order_by(model_events.c.id))
        with self.store.engine.connect() as connection:
            return [_event(row) for row in connection.execute(query)]

    def unfinished(self, crypto: str) -> dict[str, Any] | None:
        """The crypto's last lifecycle action when it was left started or failed; None otherwise."""
        query = (sa.select(model_events)
                 .where(model_events.c.crypto == crypto,
                        model_events.c.action.in_([a.value for a in LIFECYCLE_ACTIONS]),
                        model_events.c.outcome != Outcome.REFUSED.value)
                 .order_by(model_events.c.id.desc()).limit(1))
        with self.store.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.outcome == Outcome.DONE.value:
            return None
        return _event(row)

    # approvals ----------------------------------------------------------------------------------

    def add_approval(self, approval: Approval, event_id: int) -> int:
        with self.store.engine.begin() as connection:
            return int(connection.execute(sa.insert(model_approvals).returning(model_approvals.c.id), [{
                "crypto": approval.crypto, "version": approval.version, "action": approval.action,
                "role": approval.role.value, "actor": approval.actor, "reason": approval.reason,
                "approved_at": approval.approved_at, "event_id": event_id,
            }]).scalar_one())

    def pending_approvals(self, crypto: str | None = None, version: str | None = None,
                          action: str | None = None) -> list[tuple[int, Approval]]:
        """Approvals not yet consumed by the action they approve, oldest first, with their ids."""
        query = sa.select(model_approvals).where(model_approvals.c.consumed_event_id.is_(None))
        for column, value in (("crypto", crypto), ("version", version), ("action", action)):
            if value is not None:
                query = query.where(model_approvals.c[column] == value)
        with self.store.engine.connect() as connection:
            rows = connection.execute(query.order_by(model_approvals.c.id)).all()
        return [(row.id, Approval(crypto=row.crypto, version=row.version, action=row.action, role=Role(row.role),
                                  actor=row.actor, reason=row.reason, approved_at=_utc(row.approved_at)))
                for row in rows]

    # roles mirror -------------------------------------------------------------------------------

    def sync_roles(self, view: RegistryView, now: datetime) -> None:
        """Replace the crypto's rows of ``cvn_model_roles`` with what the registry holds now."""
        rows = []
        for version, found in view.versions.items():
            stage = view.stage_of(version)
            tags = found.tags
            by = next((tags.get(f"{verb}_by") for verb in ("decommissioned", "quarantined", "restored", "promoted")
                       if tags.get(f"{verb}_by")), None)
            rows.append({
                "crypto": view.crypto, "version": version, "stage": stage.value,
                "campaign_id": tags.get(TAG_CAMPAIGN), "origin": tags.get(TAG_ORIGIN),
                "diagnostic": tags.get(TAG_DIAGNOSTIC),
                "registered_at": datetime.fromtimestamp(found.created_ms / 1000, UTC),
                "stage_by": by, "stage_reason": tags.get("quarantine_reason"), "synced_at": now,
            })
        with self.store.engine.begin() as connection:
            connection.execute(sa.delete(model_roles).where(model_roles.c.crypto == view.crypto))
            if rows:
                connection.execute(sa.insert(model_roles), rows)
