"""Model operations as Dagster jobs (manual §10), launchable from the UI with typed config.

One job per pipeline, each a single op over the shared resources (``object_store``,
``diagnostics``, ``model_registry``). Runs carry the campaign tags (``cvn/stage`` = the pipeline,
``cvn/crypto``, and ``cvn/campaign`` = the operation's run id once known), and the job names are in
``runs.OUR_JOBS``, so ``pipeline_success_rate``, the failure alerts and the stuck-run (§9.5) sensor
count them like the discovery's. The op's result is its output's ``result`` metadata (JSON): the
`cvn model` commands print exactly that.
"""


import logging
from collections.abc import Callable, Iterator
from typing import Any

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import BaseModel, Field

from cvn_assets.contracts.campaign import load_universes
from cvn_assets.contracts.identifiers import validate_crypto
from cvn_assets.diagnostics.resources import DiagnosticsResource
from cvn_assets.gate.resources import ModelRegistryResource
from cvn_assets.modelops.windows import MarketWindow
from cvn_assets.runs import (
    BACKTEST_JOB, CAMPAIGN_TAG, CRYPTO_TAG, META_TRAINING_JOB, MONITORING_JOB, RETRAIN_JOB, STAGE_TAG, WALKFORWARD_JOB,
)
from cvn_assets.storage.resources import ObjectStoreResource

if TYPE_CHECKING:  # the operations load scikit-learn and the trainer: imported by the steps that run them
    from cvn_assets.modelops.operations import OpsContext


def _operations():
    """The operations module, imported by the step that runs one (it loads scikit-learn and the
    trainer, which the definitions — loaded by every process — must not pay for)."""
    from cvn_assets.modelops import operations

    return operations

RESULT = "result"


class WindowConfig(dg.Config):
    """The latest window (empty = as the version's origin campaign)."""

    backtest_days: int | None = Field(default=None, description="days of 5-minute bars; empty = the campaign's")
    data_source: str | None = Field(default=None, description="synthetic | files; empty = the campaign's")
    data_dir: str | None = Field(default=None, description="files: directory of OHLCV files")
    path: int = Field(default=1, description="synthetic: which later stretch of the market (1 = right after)")
    planted_signal: float | None = Field(default=None, description="synthetic (tests): signal strength, 0 removes it")
    regime_shift: float = Field(default=1.0, description="synthetic (tests): volatility multiplier of the window")

    def window(self) -> MarketWindow:
        return MarketWindow(days=self.backtest_days, data_source=self.data_source or None,
                            data_dir=self.data_dir or None, path=self.path, planted_signal=self.planted_signal,
                            regime_shift=self.regime_shift)


class BacktestConfig(WindowConfig):
    crypto: str = Field(description="the crypto whose registered versions are backtested")
    version: str | None = Field(default=None, description="one version; empty = the champion and every challenger")


class WalkforwardConfig(WindowConfig):
    crypto: str
    version: str = Field(description="the version whose recipe (family, PTE, hyperparameters) is walked forward")
    windows: int = Field(default=3, description="rolling windows K (fit on each, test on the next)")


class RetrainConfig(WindowConfig):
    crypto: str | None = Field(default=None, description="one crypto; empty = every champion of `group`")
    group: str | None = Field(default=None, description="crypto group (manual §11) when no crypto is given")


class MonitoringConfig(WindowConfig):
    crypto: str | None = Field(default=None, description="one crypto; empty = every champion of every group")


class MetaTrainingConfig(WindowConfig):
    crypto: str
    by: str = Field(description="who runs it (the approval must be by someone else, role mlops_maintainer)")


def _context(context: dg.OpExecutionContext, object_store: ObjectStoreResource, diagnostics: DiagnosticsResource,
             model_registry: ModelRegistryResource) -> "OpsContext":
    return _operations().OpsContext(store=object_store.store(), prefix=object_store.prefix, diagnostics=diagnostics.store(),
                      tracking_uri=model_registry.tracking_uri, log=context.log,
                      origin=f"dagster run {context.run_id}")


def _payload(result: BaseModel | list[BaseModel]) -> Any:
    if isinstance(result, list):
        return [item.model_dump(mode="json") for item in result]
    return result.model_dump(mode="json")


def _run(context: dg.OpExecutionContext, tags: dict[str, str], work: Callable[[], Any]) -> Iterator[dg.Output]:
    context.instance.add_run_tags(context.run_id, tags)
    result = work()
    payload = _payload(result)
    runs = sorted({item["run_id"] for item in (payload if isinstance(payload, list) else [payload]) if "run_id" in item})
    if len(runs) == 1:  # the operation's own id, as a campaign's: `cvn gate --campaign` / `cvn blob ls` read it
        context.instance.add_run_tags(context.run_id, {CAMPAIGN_TAG: runs[0]})
    yield dg.Output(None, metadata={RESULT: dg.MetadataValue.json(payload)})


@dg.op(name="backtest", out=dg.Out(dg.Nothing), description="Registered versions on the latest window: golden "
       "signals, diagnostic and `qualifies` per version, without re-screening or re-fitting.")
def backtest_op(context: dg.OpExecutionContext, config: BacktestConfig, object_store: ObjectStoreResource,
                diagnostics: DiagnosticsResource, model_registry: ModelRegistryResource) -> Iterator[dg.Output]:
    ctx = _context(context, object_store, diagnostics, model_registry)
    crypto = validate_crypto(config.crypto)
    yield from _run(context, {STAGE_TAG: "backtest", CRYPTO_TAG: crypto},
                    lambda: _operations().backtest(ctx, crypto, config.version, config.window()))


@dg.op(name="walkforward", out=dg.Out(dg.Nothing), description="A version's recipe over K rolling windows: "
       "per-window signals, std_f1_buy, ML_UNSTABLE when it exceeds 0.10.")
def walkforward_op(context: dg.OpExecutionContext, config: WalkforwardConfig, object_store: ObjectStoreResource,
                   diagnostics: DiagnosticsResource, model_registry: ModelRegistryResource) -> Iterator[dg.Output]:
    ctx = _context(context, object_store, diagnostics, model_registry)
    crypto = validate_crypto(config.crypto)
    yield from _run(context, {STAGE_TAG: "walkforward", CRYPTO_TAG: crypto},
                    lambda: _operations().walkforward(ctx, crypto, config.version, config.windows, config.window()))


def retrain_targets(ctx: "OpsContext", crypto: str | None, group: str | None) -> list[str]:
    if bool(crypto) == bool(group):
        raise ValueError(f"retrain: expected exactly one of crypto or group, found crypto={crypto!r} group={group!r}")
    if crypto:
        return [validate_crypto(crypto)]
    universes = load_universes()
    if group not in universes:
        raise ValueError(f"retrain: unknown group {group!r}: expected one of {sorted(universes)}")
    return _operations().champion_cryptos(ctx, list(universes[group].symbols))


@dg.op(name="retrain", out=dg.Out(dg.Nothing), description="Each champion's recipe fitted on the latest window "
       "and registered as a challenger (origin retrain).")
def retrain_op(context: dg.OpExecutionContext, config: RetrainConfig, object_store: ObjectStoreResource,
               diagnostics: DiagnosticsResource, model_registry: ModelRegistryResource) -> Iterator[dg.Output]:
    ctx = _context(context, object_store, diagnostics, model_registry)
    cryptos = retrain_targets(ctx, config.crypto, config.group)
    if not cryptos:
        context.log.info(f"retrain: no champion in group {config.group!r}: nothing to retrain")
    tags = {STAGE_TAG: "retrain", **({CRYPTO_TAG: cryptos[0]} if config.crypto else {})}
    yield from _run(context, tags, lambda: [_operations().retrain(ctx, crypto, config.window()) for crypto in cryptos])


@dg.op(name="monitoring", out=dg.Out(dg.Nothing), description="Drift of each champion (inputs, proba_buy, "
       "buy_rate; PSI decides) written per (crypto, feature) to the diagnostics database.")
def monitoring_op(context: dg.OpExecutionContext, config: MonitoringConfig, object_store: ObjectStoreResource,
                  diagnostics: DiagnosticsResource, model_registry: ModelRegistryResource) -> Iterator[dg.Output]:
    ctx = _context(context, object_store, diagnostics, model_registry)
    if config.crypto:
        cryptos = [validate_crypto(config.crypto)]
    else:
        cryptos = _operations().champion_cryptos(ctx, sorted({s for u in load_universes().values() for s in u.symbols}))
    tags = {STAGE_TAG: "monitoring", **({CRYPTO_TAG: cryptos[0]} if config.crypto else {})}

    def work() -> list[Any]:
        reports = _operations().monitor(ctx, cryptos, config.window())
        for report in reports:
            level = logging.WARNING if report.band != "ok" else logging.INFO
            context.log.log(level, f"drift {report.crypto} v{report.version}: {report.band.value}"
                                   + (f" — {report.next_step}" if report.next_step else ""))
        return reports

    yield from _run(context, tags, work)


@dg.op(name="meta_training", out=dg.Out(dg.Nothing), description="A meta-label on the champion's BUYs, registered "
       "as its own model; refused without an mlops_maintainer approval.")
def meta_training_op(context: dg.OpExecutionContext, config: MetaTrainingConfig, object_store: ObjectStoreResource,
                     diagnostics: DiagnosticsResource, model_registry: ModelRegistryResource) -> Iterator[dg.Output]:
    ctx = _context(context, object_store, diagnostics, model_registry)
    crypto = validate_crypto(config.crypto)
    yield from _run(context, {STAGE_TAG: "meta_training", CRYPTO_TAG: crypto},
                    lambda: _operations().meta_train(ctx, crypto, config.by, config.window()))


@dg.job(name=BACKTEST_JOB, description="§10 backtesting: Test → WFRB from existing candidates (registered versions).")
def backtest_job() -> None:
    backtest_op()


@dg.job(name=WALKFORWARD_JOB, description="§10 walk-forward validation of a registered version's recipe.")
def walkforward_job() -> None:
    walkforward_op()


@dg.job(name=RETRAIN_JOB, description="§10 retrain + register: champions refitted on the latest window.")
def retrain_job() -> None:
    retrain_op()


@dg.job(name=MONITORING_JOB, description="§10 monitoring: drift and health of every champion.")
def monitoring_job() -> None:
    monitoring_op()


@dg.job(name=META_TRAINING_JOB, description="§10 meta-label training (needs an mlops_maintainer approval).")
def meta_training_job() -> None:
    meta_training_op()


def schedule_name(group: str) -> str:
    return f"retrain_{group.replace('-', '_')}_schedule"


def build_retrain_schedules(cron_schedule: str = "0 3 * * 1", execution_timezone: str = "Europe/Paris",
                            default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
                            ) -> list[dg.ScheduleDefinition]:
    """One weekly retrain per crypto group: freshness stays below the §0 thresholds (7 / 14 days)."""
    return [
        dg.ScheduleDefinition(
            name=schedule_name(group), job=retrain_job, cron_schedule=cron_schedule,
            execution_timezone=execution_timezone, default_status=default_status,
            run_config={"ops": {"retrain": {"config": {"group": group}}}},
            tags={STAGE_TAG: "retrain"},
            description=f"Every week: the champions of group {group} retrained on the latest window (challengers).",
        )
        for group in sorted(load_universes())
    ]


def build_monitoring_schedule(cron_schedule: str = "0 6 * * *", execution_timezone: str = "Europe/Paris",
                              default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
                              ) -> dg.ScheduleDefinition:
    """Daily, before the morning check (07:30): the drift signal is fresh when the state is read."""
    return dg.ScheduleDefinition(
        name="monitoring_schedule", job=monitoring_job, cron_schedule=cron_schedule,
        execution_timezone=execution_timezone, default_status=default_status, tags={STAGE_TAG: "monitoring"},
        description="Every morning: drift of every champion, before the §6.1 morning check.",
    )


def result_of(result: dg.ExecuteInProcessResult, op_name: str) -> Any:
    """The JSON result an op of this module recorded (None when the op did not finish)."""
    for event in result.all_events:
        if event.is_successful_output and event.step_key == op_name:
            value = event.step_output_data.metadata.get(RESULT)
            return None if value is None else value.data
    return None
