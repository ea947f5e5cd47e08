"""`cvn gate --campaign ID`: re-run a campaign's gate through Dagster (runbook scenario A)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cvn_assets.alerts.messages import rerun_command
from cvn_assets.campaigns.runner import RunOutcome, read_report, run_gate
from cvn_assets.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    emit_json,
    exit_codes,
    fail,
    heartbeat,
    progress,
    require_dagster_home,
    storage,
    verbose,
)
from cvn_assets.contracts.identifiers import validate_campaign_id
from cvn_assets.gate.report import GateReport
from cvn_assets.storage.manifests import read_manifest

if TYPE_CHECKING:
    import dagster as dg


def render_report(report: GateReport) -> str:
    lines = [report.summary, f"campaign {report.campaign_id} (group {report.group}) — verdict {report.verdict.value}"]
    present = sum(1 for entry in report.cohort if entry.status == "present")
    lines.append(f"cohort: {present}/{len(report.cohort)} blobs present")
    if report.transport_suspect:
        lines.append("transport suspect: every blob is absent and no acquisition failure explains it — "
                     "run `cvn s3 check` (runbook scenario C)")
    elif report.absence_causes:
        lines.append(f"every acquisition failed ({', '.join(report.absence_causes)}); next: {report.next_step}")
    for entry in report.cohort:
        if entry.status == "absent":
            lines.append(f"  absent {entry.key}" + (f" — {entry.reason}" if entry.reason else ""))
    if any(entry.status == "absent" for entry in report.cohort) and not report.transport_suspect:
        lines.append(f"re-run the absent acquisitions, then the gate (runbook scenario A): "
                     f"{rerun_command(report.campaign_id)}")
    for crypto, verdict in sorted((report.cryptos or {}).items()):
        mark = "candidate" if verdict.candidate else "rejected"
        signals = verdict.signals
        lines.append(
            f"  {crypto:<10} {verdict.diagnostic:<18} {mark:<9} family={signals.get('family')} "
            f"f1_buy={_num(signals.get('f1_buy'))} baseline={_num(signals.get('baseline_f1_buy'))} "
            f"sortino={_num(signals.get('sortino'))}"
        )
        lines.append(f"  {'':<10} next: {verdict.action}")
        if verdict.relaunch:
            lines.append(f"  {'':<10} relaunch: {verdict.relaunch}")
    return "\n".join(lines)


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def gate_and_report(campaign_id: str, instance: dg.DagsterInstance | None = None) -> tuple[RunOutcome, GateReport]:
    """Run the gate job (on ``instance``, a DagsterInstance, when the caller has one open); fail loud
    (exit 1) with the root cause when the gate run fails."""
    with heartbeat("gating: reading the cohort, scoring, recording"):
        outcome = run_gate(campaign_id, instance, verbose())
    if not outcome.success:
        malformed = any("s43 npz" in error for error in outcome.errors)
        scenario = (f"runbook scenario B: `cvn blob inspect KEY`, fix the producer, then "
                    f"`{rerun_command(campaign_id, ['CRYPTO'])}`" if malformed
                    else f"runbook scenario C: `cvn s3 check`, then `cvn gate --campaign {campaign_id}`")
        fail(f"gate run {outcome.run_id} of campaign {campaign_id} failed:\n  " + "\n  ".join(outcome.errors)
             + f"\n  ({scenario}; the run's full logs: `cvn -v gate --campaign {campaign_id}` or the Dagster UI, "
             f"run {outcome.run_id})", EXIT_ERROR)
    store, settings = storage()
    return outcome, read_report(store, settings.prefix, campaign_id)


@click.command("gate")
@click.option("--campaign", "campaign_id", required=True, help="campaign id, e.g. defi-20261123-031500")
@click.option("--json", "as_json", is_flag=True, help="print the report as one JSON object")
@exit_codes
def gate_command(campaign_id: str, as_json: bool) -> None:
    """Re-read the expected cohort of a campaign and print its verdict.

    Runs the s43_gate job on the current Dagster instance (it shows in the UI). An absent blob
    gives INCONCLUSIVE_TOOLING (exit 0); a malformed blob fails the gate (exit 1).
    """
    try:
        validate_campaign_id(campaign_id)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    store, settings = storage()
    read_manifest(store, settings.prefix, campaign_id)  # exit 2 when the campaign is unknown
    require_dagster_home()  # checked before anything is written, the instance's directory included
    progress(f"gating campaign {campaign_id} on {store.describe()} …")
    outcome, report = gate_and_report(campaign_id)
    if as_json:
        emit_json({**report.model_dump(mode="json"), "gate_run_id": outcome.run_id})
    else:
        click.echo(render_report(report))
