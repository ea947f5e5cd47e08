"""`cvn campaign launch`: register a discovery campaign and run it through Dagster (manual §6.2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from cvn_assets.campaigns.preflight import PreflightFailed, preflight_candles
from cvn_assets.campaigns.registration import register_campaign
from cvn_assets.campaigns.runner import RunOutcome, default_workers, run_acquisitions
from cvn_assets.cli.common import (
    EXIT_USAGE,
    emit_json,
    exit_codes,
    fail,
    heartbeat,
    progress,
    require_dagster_home,
    storage,
    validation_message,
    verbose,
)
from cvn_assets.cli.gate import gate_and_report, render_report
from cvn_assets.contracts.campaign import CampaignSpec, new_campaign_id
from cvn_assets.contracts.timeframes import DEFAULT_TIMEFRAME, TIMEFRAMES

if TYPE_CHECKING:
    import dagster as dg


def check_configuration() -> None:
    """Every setting valid and every backend reachable, before the first write (exit 2 otherwise)."""
    from cvn_assets.settings import SettingsError, load_settings, preflight

    try:
        preflight(load_settings())
    except SettingsError as exc:
        fail(str(exc), EXIT_USAGE)


@click.group("campaign")
def campaign_group() -> None:
    """Discovery campaigns (manual §6.2)."""


@campaign_group.command("launch")
@click.option("--group", required=True, help="crypto group (cvn universes show): defi, btc-core, …")
@click.option("--symbols", help="comma-separated subset of the group (default: the whole group)")
@click.option("--folds", type=int, help="walk-forward folds, >= 2 (default 3)")
@click.option("--families", help="model families, e.g. naive,logreg,hgb (default)")
@click.option("--timeframe", type=click.Choice(TIMEFRAMES),
              help=f"bar length of the candles (default {DEFAULT_TIMEFRAME}); horizons stay in hours")
@click.option("--horizons", help="horizons H<n> = n hours, as bars of the timeframe, e.g. H1,H2,H4 (default)")
@click.option("--sl-range", help="stop-loss ATR multiples to screen, e.g. 1.0,1.5 (default)")
@click.option("--tp-range", help="take-profit ATR multiples to screen, e.g. 1.5,2.0 (default)")
@click.option("--hpo-trials", type=int, help="random-search trials per fold; 0 = family defaults (default)")
@click.option("--backtest-days", type=int, help="days of bars in the window (default 60)")
@click.option("--data-source", type=click.Choice(["synthetic", "files"]), help="synthetic (default) or files")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="directory of OHLCV files, one or more per symbol (with --data-source files); every "
                   "symbol's candles are read and checked before anything is registered")
@click.option("--campaign-id", help="default: <group>-<UTC timestamp>")
@click.option("--seed", type=int, help="campaign seed (default 7)")
@click.option("--planted-signal", type=float,
              help="synthetic data only: strength 0..1 of a known predictive signal (demos, tests); default 0")
@click.option("--workers", type=int,
              help="acquisitions run in parallel processes (default: chosen from the machine — one per core "
                   "beyond the first, at least 4 acquisitions each; 1 = one after another in this process)")
@click.option("--json", "as_json", is_flag=True, help="print the gate report as one JSON object")
@exit_codes
def launch_command(group: str, campaign_id: str | None, workers: int | None, as_json: bool, **options: object) -> None:
    """Validate, register and run a campaign: acquisitions, then the gate; print the verdict.

    Before anything is written, every setting is checked and every backend (object store,
    diagnostics database, MLflow, Dagster's PostgreSQL storage) is reached once: a bad one
    exits 2 naming the variable.

    With --data-source files, every symbol's candles are read and checked first (pre-flight):
    a missing, empty, too short or wrongly spaced file is refused with exit 2 naming the symbol,
    the file, what was expected and what was found; gaps are printed as warnings.

    Every run goes through Dagster on the instance in DAGSTER_HOME, tagged cvn/campaign=ID, so
    `make dev` shows the partitions, the gate and its checks. Nothing is written for bad input
    (exit 2). Exit 0 whatever the verdict; 1 if the gate fails loud on a malformed blob.
    """
    check_configuration()  # every setting and backend first: the spec itself reads the groups' table
    values = {name: value for name, value in options.items() if value is not None}
    try:
        spec = CampaignSpec(campaign_id=campaign_id or new_campaign_id(group), group=group, **values)
    except ValidationError as exc:
        fail(validation_message(exc, "campaign"), EXIT_USAGE)
    if workers is not None and workers < 1:
        fail(f"--workers {workers} is invalid: expected at least 1", EXIT_USAGE)
    if spec.data_source == "files":
        progress(f"pre-flight: reading the {spec.timeframe} candles of {', '.join(spec.cryptos)} in {spec.data_dir} …")
    checked = preflight_candles(spec)
    for warning in checked.warnings:
        progress(f"warning: {warning}")
    try:
        checked.raise_for_problems()
    except PreflightFailed as exc:
        fail(str(exc), EXIT_USAGE)
    store, settings = storage()
    require_dagster_home()
    import dagster as dg

    # One instance for the whole campaign (registration, in-process acquisitions, gate), closed with the command
    instance = click.get_current_context().with_resource(dg.DagsterInstance.get())
    manifest = register_campaign(instance, store, settings.prefix, spec)
    cryptos = manifest.spec.cryptos
    workers = min(workers, len(cryptos)) if workers is not None else default_workers(len(cryptos))
    progress(f"campaign {spec.campaign_id}: {len(manifest.expected)} blobs expected "
             f"({len(cryptos)} cryptos × {spec.folds} folds × {len(spec.families)} families) on {store.describe()}, "
             f"{workers} acquisition worker{'s' if workers > 1 else ''}")
    acquire_then_gate(spec.campaign_id, cryptos, workers, as_json, instance, extra={"acquisition_workers": workers})


def acquire_then_gate(campaign_id: str, cryptos: list[str], workers: int, as_json: bool,
                      instance: dg.DagsterInstance | None = None, extra: dict[str, object] | None = None) -> None:
    """Run the acquisitions of ``cryptos`` through Dagster (on ``instance`` when the caller has one
    open), then the gate; print the verdict (launch, rerun)."""
    started = time.monotonic()
    done = 0

    def on_done(outcome: RunOutcome) -> None:
        nonlocal done
        done += 1
        state = "ok" if outcome.success else "FAILED — " + "; ".join(outcome.errors)
        progress(f"  [{done}/{len(cryptos)}] acquisition {outcome.label}: {state} ({outcome.seconds:.1f} s, run {outcome.run_id[:8]})")

    if workers > 1:
        progress(f"  starting {workers} acquisition workers (each loads the Dagster definitions) …")
    with heartbeat(f"acquisitions running, {len(cryptos)} crypto(s)"):
        acquisitions = run_acquisitions(campaign_id, cryptos, workers, on_done, instance, verbose())
    progress(f"acquisitions finished in {time.monotonic() - started:.1f} s; gating …")
    gate_outcome, report = gate_and_report(campaign_id, instance)
    progress(f"campaign finished in {time.monotonic() - started:.1f} s")
    if as_json:
        emit_json({**report.model_dump(mode="json"), **(extra or {}), "gate_run_id": gate_outcome.run_id,
                   "acquisition_runs": {o.label: {"run_id": o.run_id, "success": o.success, "errors": o.errors}
                                        for o in acquisitions}})
    else:
        click.echo(render_report(report))
