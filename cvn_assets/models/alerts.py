"""Lifecycle notifications (manual §8): P3 info for a promotion or a decommission, P1 for a
killswitch or a rollback — a model was pulled from production, someone must look within the hour."""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from cvn_assets.alerts.alert import Alert, Severity
from cvn_assets.models.contract import Action

SEVERITY = {Action.PROMOTION: Severity.P3, Action.DECOMMISSION: Severity.P3,
            Action.KILLSWITCH: Severity.P1, Action.ROLLBACK: Severity.P1}
NOTIFIED_ACTIONS = tuple(SEVERITY)


def lifecycle_alert(event: dict[str, Any], created_at: datetime) -> Alert:
    """One alert for one done ``cvn_model_events`` row (its id is the alert's identity)."""
    action = Action(event["action"])
    crypto, version = event["crypto"], event["version"]
    before, after = event["before_aliases"] or {}, event["after_aliases"] or {}
    champion = after.get("champion")
    title = {
        Action.PROMOTION: f"{crypto}: v{version} promoted to champion",
        Action.DECOMMISSION: f"{crypto}: v{version} decommissioned",
        Action.KILLSWITCH: f"{crypto}: champion v{version} killed — no champion in production",
        Action.ROLLBACK: f"{crypto}: champion v{version} rolled back to v{champion}",
    }[action]
    text = (f"{event['detail']}. By {event['actor']} ({event['role']})"
            + (f", reason: {event['reason']}" if event["reason"] else "") + ". "
            f"Aliases before: {before or 'none'}; after: {after or 'none'}.")
    next_steps = {
        Action.KILLSWITCH: ["qualify the problem (manual §7) before any promotion",
                            "promote a validated challenger (two approvals) or roll back"],
        Action.ROLLBACK: ["qualify the problem of the quarantined version (manual §7)"],
    }.get(action, [])
    return Alert(
        key=f"model_event:{event['id']}", kind="model_lifecycle", severity=SEVERITY[action], title=title, text=text,
        scenario="manual §4 / §10 model lifecycle", next_steps=next_steps,
        commands=[f"cvn model ls --crypto {shlex.quote(crypto)}"],
        facts={"action": action.value, "crypto": crypto, "version": version, "actor": event["actor"],
               "event_id": event["id"], "champion": champion},
        created_at=created_at,
    )
