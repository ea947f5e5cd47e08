"""The morning check as text and as JSON (manual §6.1): state, fired rules, unknown signals, signal table."""

from __future__ import annotations

from typing import Any

from cvn_assets.state.check import CheckOutcome
from cvn_assets.state.rules import REACTION, State
from cvn_assets.state.table import render_table


def render_report(outcome: CheckOutcome) -> str:
    evaluation = outcome.evaluation
    lines = [f"global state: {evaluation.state.value} — {REACTION[evaluation.state]}"]
    if evaluation.state != State.GREEN and evaluation.unknown and \
            all(rule.id == "signals_unknown" for rule in evaluation.rules):
        lines.append("GREEN cannot be claimed: some signals the §0 rules need are unknown")
    lines.append(f"evaluated at {evaluation.evaluated_at:%Y-%m-%d %H:%M:%S}Z")
    if evaluation.rules:
        lines.append("rules fired:")
        lines += [f"  [{rule.state.value:<6}] {rule.reason}" for rule in evaluation.rules]
    else:
        lines.append("rules fired: none")
    if evaluation.unknown:
        lines.append("unknown (never counted as healthy):")
        grouped: dict[tuple[str, str], list[str]] = {}
        for u in evaluation.unknown:
            grouped.setdefault((u.signal, u.reason), []).append(u.scope)
        for (signal, reason), scopes in grouped.items():
            where = "" if scopes in (["platform"], ["universe"]) else f"[{', '.join(scopes)}]"
            lines.append(f"  {signal}{where}: {reason}")
    if evaluation.state in (State.RED, State.ORANGE):
        lines.append("→ manual §9: go straight to the incident playbooks")
    lines.append("")
    lines.append("golden signals ('!!' critical, '!' warning, '?' unknown):")
    lines.append(render_table(outcome.table))
    if outcome.alert_routing is not None:
        route = outcome.alert_routing
        lines.append(f"routing: {route['severity']} {route['family']} → {route['role']} "
                     f"via {', '.join(route['channels'])}")
    decision = outcome.decision
    if decision is not None:
        lines.append("")
        if decision.kind is not None:
            lines.append(f"notification: {decision.kind.value} ({decision.severity.value if decision.severity else '-'}) "
                         f"delivered to {', '.join(outcome.delivered) or 'no channel'}"
                         + (f"; FAILED: {'; '.join(outcome.failed.values())}" if outcome.failed else ""))
        else:
            lines.append(f"notification: none ({decision.reason})")
    return "\n".join(lines)


def report_json(outcome: CheckOutcome) -> dict[str, Any]:
    evaluation = outcome.evaluation
    decision = outcome.decision
    return {
        "state": evaluation.state.value,
        "green_claimed": evaluation.state == State.GREEN,
        "evaluated_at": evaluation.evaluated_at.isoformat(),
        "previous_state": outcome.previous_state,
        "summary": evaluation.summary(),
        "rules": [rule.model_dump(mode="json") for rule in evaluation.rules],
        "unknown": [u.model_dump(mode="json") for u in evaluation.unknown],
        "signals": [row.model_dump(mode="json") for row in outcome.table],
        "pipeline_latency": {
            job: {"seconds": latency.seconds, "p95_seconds": latency.p95_seconds, "ratio": latency.ratio.value,
                  "unknown": latency.ratio.unknown, "detail": latency.ratio.detail}
            for job, latency in sorted(outcome.signals.pipeline_latency.items())},
        "routing": {"alert": outcome.alert_routing, "rules": outcome.routing},
        "diagnostics": outcome.diagnostics,
        "notification": None if decision is None else {
            "kind": decision.kind.value if decision.kind else None,
            "severity": decision.severity.value if decision.severity else None,
            "reason": decision.reason,
            "delivered": outcome.delivered,
            "failed": outcome.failed,
        },
    }
