"""`cvn model backtest|walkforward|retrain|monitor|meta-train`: the model operations of the manual's §10.

Each command checks its input against the registry first (an unknown version, a crypto without a
champion, a missing approval: exit 2, nothing run), then runs the pipeline's Dagster job on the
instance in DAGSTER_HOME — the same job the UI launches, tagged like a campaign — and prints what
the job recorded. Exit codes: 0 done (whatever the verdict or drift), 1 the run failed (the error
names the step and the cause), 2 bad input or refused. ``--json``: one object on stdout, on error
too (``{"error": …, "exit_code": …}``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from cvn_assets.cli.common import (
    EXIT_ERROR, EXIT_USAGE, CommandFailed, emit_json, exit_codes, progress, require_dagster_home, validation_message,
)

F = TypeVar("F", bound=Callable[..., Any])


def _errors(command: F) -> F:
    """Bad input, registry refusals → exit 2; a failed run or an unreachable registry → exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        from sqlalchemy.exc import SQLAlchemyError

        from cvn_assets.models.contract import Refused
        from cvn_assets.state.sources import describe_error

        try:
            return command(*args, **kwargs)
        except CommandFailed as exc:
            message, code = str(exc), exc.code
        except ValidationError as exc:
            message, code = validation_message(exc, "input"), EXIT_USAGE
        except (Refused, ValueError) as exc:  # RegistryError is a ValueError: an unknown version, no champion
            message, code = str(exc), EXIT_USAGE
        except (MlflowException, OSError) as exc:
            message, code = f"model registry unreachable — {describe_error(exc)}", EXIT_ERROR
        except SQLAlchemyError as exc:
            message, code = f"diagnostics database unreachable — {describe_error(exc)}", EXIT_ERROR
        if kwargs.get("as_json"):
            emit_json({"error": message, "exit_code": code})
        raise CommandFailed(message, code)

    return exit_codes(wrapper)  # type: ignore[return-value]


def _window_options(command: F) -> F:
    options = [
        click.option("--backtest-days", type=click.IntRange(1, 3650),
                     help="days of 5-minute bars of the latest window (default: as the version's campaign)"),
        click.option("--data-source", type=click.Choice(["synthetic", "files"]),
                     help="where the latest window comes from (default: as the version's campaign)"),
        click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
                     help="files: directory of OHLCV files holding the latest bars"),
        click.option("--synthetic-path", type=click.IntRange(1, 10_000), default=1, show_default=True,
                     help="synthetic: which later stretch of the market (1 = right after the training window)"),
        click.option("--planted-signal", type=click.FloatRange(0, 1),
                     help="synthetic (demos, tests): signal strength of the window; 0 removes it"),
        click.option("--regime-shift", type=click.FloatRange(0, 20, min_open=True), default=1.0, show_default=True,
                     help="synthetic (demos, tests): volatility multiplier of the window (drift on purpose)"),
        click.option("--json", "as_json", is_flag=True, help="print the result as one JSON object"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _window_config(options: dict[str, Any]) -> dict[str, Any]:
    """The job's window config from the options, validated as the job will read it."""
    window = {"backtest_days": options.get("backtest_days"), "data_source": options.get("data_source"),
              "data_dir": str(options["data_dir"]) if options.get("data_dir") else None,
              "path": options.get("synthetic_path", 1), "planted_signal": options.get("planted_signal"),
              "regime_shift": options.get("regime_shift", 1.0)}
    _market_window(window)
    return window


def _market_window(window: dict[str, Any]):
    from cvn_assets.modelops.jobs import WindowConfig

    return WindowConfig(**window).window()


def _tracking_uri() -> str:
    from cvn_assets.gate.model_registry import tracking_uri_from_env

    return tracking_uri_from_env()


def _ops_context():
    """The stores a command reads to check its input before launching the job (no write)."""
    import logging

    from cvn_assets.cli.common import storage
    from cvn_assets.diagnostics.resources import diagnostics_url_from_env, migrated_store
    from cvn_assets.modelops.operations import OpsContext

    store, settings = storage()
    return OpsContext(store=store, prefix=settings.prefix, diagnostics=migrated_store(diagnostics_url_from_env()),
                      tracking_uri=_tracking_uri(), log=logging.getLogger("cvn.model"), origin="cli")


def _crypto(value: str) -> str:
    from cvn_assets.contracts.identifiers import validate_crypto

    return validate_crypto(value)


def run_job(job_name: str, op_name: str, config: dict[str, Any], tags: dict[str, str]) -> tuple[str, Any]:
    """Run one model-operations job on the DAGSTER_HOME instance; (run id, the op's JSON result)."""
    import dagster as dg

    from cvn_assets.campaigns.runner import QUIET_RUN_CONFIG, VERBOSE_RUN_CONFIG, without_library_chatter
    from cvn_assets.cli.common import verbose
    from cvn_assets.definitions import build_defs
    from cvn_assets.modelops.jobs import result_of
    from cvn_assets.runs import step_failures

    require_dagster_home()
    job = build_defs().resolve_job_def(job_name)
    loud = verbose()
    with dg.DagsterInstance.get() as instance, without_library_chatter(loud):
        result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, run_config={
            **(VERBOSE_RUN_CONFIG if loud else QUIET_RUN_CONFIG), "ops": {op_name: {"config": config}}})
    if not result.success:
        raise CommandFailed(f"{job_name} run {result.run_id} failed: {'; '.join(step_failures(result)) or 'see its logs'}",
                            EXIT_ERROR)
    return result.run_id, result_of(result, op_name)


def _signal(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _render_result(item: dict[str, Any]) -> None:
    s = item["signals"]
    click.echo(f"{item['crypto']} v{item['version']} ({item['role']}, {item['family']}) {item['kind']} {item['run_id']}: "
               f"{item['diagnostic']} — {'QUALIFIES' if item['qualifies'] else 'no longer qualifies'}")
    click.echo(f"  f1_buy {_signal(s['f1_buy'])} vs always-BUY {_signal(s['baseline_f1_buy'])} "
               f"({s['f1_buy_delta']:+.1f} pts), std_f1_buy {_signal(s['std_f1_buy'])}, Sortino {_signal(s['sortino'])}, "
               f"tp/sl/timeout {_signal(s['tp_pct'], 2)}/{_signal(s['sl_pct'], 2)}/{_signal(s['timeout_pct'], 2)} "
               f"over {s['n_trades']} trades")
    for reason in item["reasons"]:
        click.echo(f"  - {reason}")
    click.echo(f"  next step: {item['action']}")


@click.command("backtest")
@click.option("--crypto", required=True, help="the crypto, e.g. SOLUSDC")
@click.option("--version", help="one registered version (default: the champion and every challenger)")
@_window_options
@_errors
def backtest_command(crypto: str, version: str | None, as_json: bool, **options: Any) -> None:
    """Backtest registered versions on the latest window, without re-screening or re-fitting.

    Per version: the gate's golden signals on the window, its §7 diagnostic and whether it still
    qualifies; rows in cvn_model_backtests. Exit 0 whatever the outcome.
    """
    from cvn_assets.modelops.operations import plan_backtest
    from cvn_assets.models.contract import validate_version
    from cvn_assets.runs import BACKTEST_JOB, CRYPTO_TAG, STAGE_TAG

    crypto = _crypto(crypto)
    version = validate_version(version) if version is not None else None
    window = _window_config(options)
    chosen = [entry[0] for entry in plan_backtest(_ops_context(), crypto, version, _market_window(window))]
    progress(f"backtest {crypto}: versions {', '.join(f'v{v.version} ({v.role})' for v in chosen)}")
    run_id, results = run_job(BACKTEST_JOB, "backtest", {"crypto": crypto, "version": version, **window},
                              {STAGE_TAG: "backtest", CRYPTO_TAG: crypto})
    if as_json:
        emit_json({"crypto": crypto, "dagster_run_id": run_id, "versions": results})
        return
    for item in results:
        _render_result(item)


@click.command("walkforward")
@click.option("--crypto", required=True, help="the crypto, e.g. SOLUSDC")
@click.option("--version", required=True, help="the registered version whose recipe is walked forward")
@click.option("--windows", type=click.IntRange(2, 20), default=3, show_default=True,
              help="rolling windows K: fit on each, test on the next")
@_window_options
@_errors
def walkforward_command(crypto: str, version: str, windows: int, as_json: bool, **options: Any) -> None:
    """Walk-forward validation of a version's recipe (family, PTE, hyperparameters) over K windows.

    Per window: the signals of the model fitted on the block before it; across windows
    std_f1_buy, and ML_UNSTABLE when it exceeds 0.10 (manual §7).
    """
    from cvn_assets.models.contract import validate_version
    from cvn_assets.modelops.registry import operated_versions
    from cvn_assets.runs import CRYPTO_TAG, STAGE_TAG, WALKFORWARD_JOB

    crypto, version = _crypto(crypto), validate_version(version)
    window = _window_config(options)
    operated_versions(_tracking_uri(), crypto, version)
    run_id, result = run_job(WALKFORWARD_JOB, "walkforward",
                             {"crypto": crypto, "version": version, "windows": windows, **window},
                             {STAGE_TAG: "walkforward", CRYPTO_TAG: crypto})
    if as_json:
        emit_json({**result, "dagster_run_id": run_id})
        return
    _render_result(result)
    for entry in result["windows"]:
        click.echo(f"  window {entry['window']}: f1_buy {_signal(entry['f1_buy'])} ({entry['f1_buy_delta']:+.1f} pts), "
                   f"Sortino {_signal(entry['sortino'])}, {entry['n_trades']} trades")


@click.command("retrain")
@click.option("--crypto", required=True, help="the crypto whose champion is retrained, e.g. SOLUSDC")
@_window_options
@_errors
def retrain_command(crypto: str, as_json: bool, **options: Any) -> None:
    """Fit the champion's recipe on the latest window and register it as a challenger (origin retrain).

    Prints the new version; promote it with the lifecycle commands once backtested and approved.
    """
    from cvn_assets.modelops.registry import require_champion
    from cvn_assets.runs import CRYPTO_TAG, RETRAIN_JOB, STAGE_TAG

    crypto = _crypto(crypto)
    window = _window_config(options)
    require_champion(_tracking_uri(), crypto)
    run_id, results = run_job(RETRAIN_JOB, "retrain", {"crypto": crypto, **window},
                              {STAGE_TAG: "retrain", CRYPTO_TAG: crypto})
    (result,) = results
    if as_json:
        emit_json({**result, "dagster_run_id": run_id})
        return
    click.echo(f"{result['model']} v{result['version']} registered as challenger ({result['alias']}), retrained from "
               f"champion v{result['champion_version']} on {result['trained_rows']} bars; next: "
               f"cvn model backtest --crypto {crypto} --version {result['version']}")


@click.command("monitor")
@click.option("--crypto", help="one crypto (default: every crypto with a champion)")
@_window_options
@_errors
def monitor_command(crypto: str | None, as_json: bool, **options: Any) -> None:
    """Drift of the champions: each model input, proba_buy and buy_rate, latest window vs training window.

    PSI decides the band (0.10 warning, 0.25 critical); KS and Wasserstein are reported. Rows per
    (crypto, feature) in cvn_model_drift; the `drift` golden signal of `cvn state` reads them.
    """
    from cvn_assets.modelops.registry import require_champion
    from cvn_assets.runs import CRYPTO_TAG, MONITORING_JOB, STAGE_TAG

    crypto = _crypto(crypto) if crypto else None
    window = _window_config(options)
    if crypto:
        require_champion(_tracking_uri(), crypto)
    run_id, reports = run_job(MONITORING_JOB, "monitoring", {"crypto": crypto, **window},
                              {STAGE_TAG: "monitoring", **({CRYPTO_TAG: crypto} if crypto else {})})
    if as_json:
        emit_json({"dagster_run_id": run_id, "cryptos": reports})
        return
    if not reports:
        click.echo("no champion to monitor")
    for report in reports:
        click.echo(f"{report['crypto']} v{report['version']}: drift {report['band'].upper()} (decided by PSI)")
        measures = [*report["features"], report["prediction"], report["label"]]
        for m in sorted(measures, key=lambda m: -m["value"])[:8]:
            click.echo(f"  {m['name']:<18} {m['kind']:<10} PSI {m['value']:.3f} {m['band']:<8} "
                       f"KS {m['ks_statistic']:.3f} Wasserstein {m['wasserstein']:.4g}")
        if report["next_step"]:
            click.echo(f"  next step: {report['next_step']}")


@click.command("meta-train")
@click.option("--crypto", required=True, help="the crypto whose champion's BUYs are meta-labelled")
@click.option("--by", "by", required=True, help="who runs it (the mlops_maintainer approval must be someone else's)")
@_window_options
@_errors
def meta_train_command(crypto: str, by: str, as_json: bool, **options: Any) -> None:
    """Train a meta-label on the champion's BUYs (take-profit first?) and register it as its own model.

    Refused (exit 2, nothing run, a refused row in cvn_model_events) without an mlops_maintainer
    approval of the champion version by someone else (manual §4, §10):
    `cvn model approve CRYPTO VERSION --role mlops_maintainer --for meta_training --by NAME`.
    The run consumes the approval: the next meta-training needs a new one.
    """
    from cvn_assets.models.contract import Action, validate_actor
    from cvn_assets.modelops.registry import require_champion
    from cvn_assets.runs import CRYPTO_TAG, META_TRAINING_JOB, STAGE_TAG

    crypto, actor = _crypto(crypto), validate_actor(by)
    window = _window_config(options)
    champion = require_champion(_tracking_uri(), crypto)
    _ops_context().lifecycle().check_approved(Action.META_TRAINING, crypto, champion.version, actor)
    run_id, result = run_job(META_TRAINING_JOB, "meta_training", {"crypto": crypto, "by": actor, **window},
                             {STAGE_TAG: "meta_training", CRYPTO_TAG: crypto})
    if as_json:
        emit_json({**result, "dagster_run_id": run_id})
        return
    click.echo(f"{result['model']} v{result['version']} registered: meta-label of {result['primary_model']} "
               f"v{result['primary_version']} (approved by {result['approval']['actor']}, audit event "
               f"#{result['audit_event']}); on the holdout, take-profit rate {result['primary_precision_holdout']:.3f} of the champion's BUYs → "
               f"{result['meta_precision_holdout']:.3f} of those the meta-label keeps")


def add_model_ops_commands(group: click.Group) -> None:
    """Register the §10 model operations under the `cvn model` group."""
    for command in (backtest_command, walkforward_command, retrain_command, monitor_command, meta_train_command):
        group.add_command(command)
