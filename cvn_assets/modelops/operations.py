"""The five model operations of the manual's §10, as plain functions over the real stores.

Each takes an ``OpsContext`` (object store, diagnostics store, MLflow URI, a logger) and returns a
pydantic result; the Dagster jobs (``jobs.py``) and the ``cvn model`` commands call these, so the
UI and the command run the same code. Inputs are validated before the first write.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from cvn_assets.acquisition.folds import WARMUP_BARS
from cvn_assets.acquisition.pipeline import THREADS, _prepare
from cvn_assets.contracts.blob import Window
from cvn_assets.contracts.campaign import STORED, CampaignSpec
from cvn_assets.diagnostics.store import DiagnosticsStore
from cvn_assets.diagnostics.tables import crypto_signals, gate_verdicts
from cvn_assets.gate.model_registry import model_name
from cvn_assets.gate.signals import f1_precision_recall
from cvn_assets.models.contract import ORIGIN_RETRAIN, Action, Approval, Role, challenger_alias, validate_actor
from cvn_assets.models.lifecycle import Lifecycle
from cvn_assets.modelops.drift import Band, DriftKind, DriftMeasure, DriftThresholds, crypto_band, feature_drift, measure
from cvn_assets.modelops.evaluation import (
    VersionResult, backtest_blobs, judge, operation_run_id, operation_spec, per_window_signals, version_result,
    walkforward_blobs,
)
from cvn_assets.modelops.records import record_drift, record_results
from cvn_assets.modelops.registry import (
    RegisteredVersion, load_estimator, operated_versions, pte_tag, register_version,
    registered_versions, require_champion, set_version_tags,
)
from cvn_assets.modelops.windows import MarketWindow, latest_candles, training_candles, window_of, window_spec
from cvn_assets.storage.manifests import CampaignNotRegistered, read_manifest
from cvn_assets.storage.object_store import ObjectStore


# The window a version registered by a model operation was fitted on (a MarketWindow as JSON).
TRAIN_WINDOW_TAG = "train_window"


@dataclass
class OpsContext:
    """The real systems an operation reads and writes."""

    store: ObjectStore
    prefix: str
    diagnostics: DiagnosticsStore
    tracking_uri: str
    log: logging.Logger | Any
    origin: str = "cli"  # who runs it, in the audit rows: "cli" or "dagster run <id>"

    def lifecycle(self) -> Lifecycle:
        """The registry lifecycle on the same stores: registration and approvals, audited."""
        return Lifecycle(self.tracking_uri, self.diagnostics, origin=self.origin)


def origin_spec(ctx: OpsContext, campaign_id: str) -> CampaignSpec:
    """The spec of the campaign a version comes from: its manifest, else the gate's recorded spec.

    The manifest sits beside the blobs and leaves with them after the retention period; the gate's
    row in the diagnostics database keeps the spec for as long as the model lives.
    """
    try:
        return read_manifest(ctx.store, ctx.prefix, campaign_id).spec
    except CampaignNotRegistered:
        with ctx.diagnostics.engine.connect() as connection:
            text = connection.execute(sa.select(gate_verdicts.c.spec)
                                      .where(gate_verdicts.c.campaign_id == campaign_id)).scalar_one_or_none()
        if text is None:
            raise ValueError(f"campaign {campaign_id!r}: expected its manifest ({ctx.store.describe()}) or its gate row "
                             f"({ctx.diagnostics.describe()}), found neither") from None
        return CampaignSpec.model_validate_json(text, context=STORED)


def with_screening(ctx: OpsContext, version: RegisteredVersion) -> RegisteredVersion:
    """The version with its screening F1: its tag, else its origin gate's row for the crypto.

    Without it the gate cannot rule out SCREENING_OVERFIT and never qualifies the version.
    """
    if version.screening_f1_buy is not None:
        return version
    with ctx.diagnostics.engine.connect() as connection:
        found = connection.execute(sa.select(crypto_signals.c.screening_f1_buy).where(
            (crypto_signals.c.campaign_id == version.source_campaign_id) & (crypto_signals.c.crypto == version.crypto)
        )).scalar_one_or_none()
    return version.model_copy(update={"screening_f1_buy": found})


def _windows(ctx: OpsContext, version: RegisteredVersion, window: MarketWindow
             ) -> tuple[CampaignSpec, pd.DataFrame, pd.DataFrame]:
    origin = origin_spec(ctx, version.source_campaign_id)
    if version.tags.get(TRAIN_WINDOW_TAG):  # registered by a model operation: trained on a later window
        trained = latest_candles(origin, version.crypto, MarketWindow.model_validate_json(version.tags[TRAIN_WINDOW_TAG]))
    else:
        trained = training_candles(ctx.store, ctx.prefix, origin, version.crypto)
    latest = latest_candles(origin, version.crypto, window)
    return origin, trained, latest


# ----------------------------------------------------------------------------------- backtest


def plan_backtest(ctx: OpsContext, crypto: str, version: str | None, window: MarketWindow) -> list[tuple]:
    """Read and check everything a backtest needs, write nothing (the command calls it before the job).

    Raises ``ValueError`` (bad input: exit 2) for an unknown version, a crypto without versions, a
    latest window that is not after a version's training window.
    """
    versions = [with_screening(ctx, v) for v in operated_versions(ctx.tracking_uri, crypto, version)]
    prepared = []
    for chosen in versions:
        origin, trained, latest = _windows(ctx, chosen, window)
        training_window, latest_window = window_of(trained), window_of(latest)
        if latest_window.start_ms < training_window.end_ms:
            raise ValueError(
                f"backtest {model_name(crypto)} v{chosen.version}: the latest window starts "
                f"{_iso(latest_window.start_ms)}, before its training window ends {_iso(training_window.end_ms)}: "
                "an in-sample backtest says nothing — give a later window (newer files, --data-dir, "
                "or --synthetic-path N for a later synthetic stretch)")
        prepared.append((chosen, origin, latest, training_window, latest_window))
    return prepared


def backtest(ctx: OpsContext, crypto: str, version: str | None, window: MarketWindow,
             now: datetime | None = None) -> list[VersionResult]:
    """Each chosen version, unchanged, on the latest window: the gate's signals and ``qualifies``."""
    prepared = plan_backtest(ctx, crypto, version, window)  # everything checked before the first write
    results = []
    for chosen, origin, latest, training_window, latest_window in prepared:
        run_id = operation_run_id("backtest", crypto, chosen.version, now)
        spec = operation_spec(window_spec(origin, window), run_id, chosen, origin.folds,
                              window.days or origin.backtest_days)
        blobs = backtest_blobs(run_id, chosen, load_estimator(ctx.tracking_uri, chosen), spec, latest, training_window)
        report = judge(ctx.store, ctx.prefix, spec, blobs, ctx.log, now)
        result = version_result("backtest", chosen, report, latest_window, training_window)
        results.append(result)
        set_version_tags(ctx.tracking_uri, chosen, {
            "last_backtest_run": run_id, "last_backtest_diagnostic": result.diagnostic,
            "last_backtest_qualifies": str(result.qualifies).lower()})
    record_results(ctx.diagnostics, results)
    return results


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")


# -------------------------------------------------------------------------------- walkforward


def walkforward(ctx: OpsContext, crypto: str, version: str, windows: int, window: MarketWindow,
                now: datetime | None = None) -> VersionResult:
    """The version's recipe fitted on ``windows`` rolling blocks, each tested on the next."""
    (chosen,) = [with_screening(ctx, v) for v in operated_versions(ctx.tracking_uri, crypto, version)]
    origin, trained, latest = _windows(ctx, chosen, window)
    run_id = operation_run_id("walkforward", crypto, chosen.version, now)
    spec = operation_spec(window_spec(origin, window), run_id, chosen, windows, window.days or origin.backtest_days)
    blobs = walkforward_blobs(run_id, chosen, load_estimator(ctx.tracking_uri, chosen), spec, latest, windows)
    report = judge(ctx.store, ctx.prefix, spec, blobs, ctx.log, now)

    result = version_result("walkforward", chosen, report, window_of(latest), window_of(trained),
                            lambda: per_window_signals(blobs))
    record_results(ctx.diagnostics, [result])
    return result


# ------------------------------------------------------------------------------------ retrain


class RetrainResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    model: str
    champion_version: str
    version: str = Field(description="the new challenger")
    alias: str
    run_id: str
    family: str
    pte: str
    training_window: Window
    trained_rows: int


def retrain(ctx: OpsContext, crypto: str, window: MarketWindow, now: datetime | None = None) -> RetrainResult:
    """The champion's recipe fitted on the latest window, registered as a challenger (origin ``retrain``)."""
    champion = with_screening(ctx, require_champion(ctx.tracking_uri, crypto))
    origin = origin_spec(ctx, champion.source_campaign_id)
    latest = latest_candles(origin, crypto, window)
    spec = window_spec(origin, window)
    estimator = load_estimator(ctx.tracking_uri, champion)
    run_id = operation_run_id("retrain", crypto, champion.version, now)
    with threadpool_limits(limits=THREADS):
        market = _prepare(spec, crypto, latest, [champion.pte])
        rows = slice(WARMUP_BARS, len(market.ts) - champion.pte.horizon)
        y = market.outcomes[champion.pte].y[rows]
        if np.unique(y).size != 2:
            raise ValueError(f"retrain {crypto}: training labels expected both BUY and not-BUY under "
                             f"{champion.pte}, found only {np.unique(y).tolist()}")
        from sklearn.base import clone  # the trainer loads with the step, not with the definitions

        model = clone(estimator).fit(market.features.iloc[rows], y)
    trained_window = window_of(latest)
    tags = {"source_campaign_id": champion.source_campaign_id,
            "retrained_from": champion.version, "family": champion.family, "pte": pte_tag(champion.pte),
            "threshold": f"{champion.threshold:.6f}",
            "train_start_ms": str(trained_window.start_ms), "train_end_ms": str(trained_window.end_ms),
            TRAIN_WINDOW_TAG: window.model_dump_json(),
            **({"screening_f1_buy": f"{champion.screening_f1_buy:.6f}"} if champion.screening_f1_buy is not None else {})}
    # The recipe's tags with the version; its role (alias challenger-<run id>, tags campaign_id,
    # origin retrain, stage) from the lifecycle, audited like a gate's challenger.
    version = register_version(ctx.tracking_uri, model_name(crypto), model, f"retrain-{run_id}", tags, None)
    ctx.lifecycle().register_challenger(crypto, version, run_id, origin=ORIGIN_RETRAIN, tags=tags,
                                        actor=ORIGIN_RETRAIN)
    alias = challenger_alias(run_id)
    return RetrainResult(crypto=crypto, model=model_name(crypto), champion_version=champion.version, version=version,
                         alias=alias, run_id=run_id, family=champion.family, pte=pte_tag(champion.pte),
                         training_window=trained_window, trained_rows=int(rows.stop - rows.start))


# --------------------------------------------------------------------------------- monitoring


class DriftReport(BaseModel):
    """Drift of one champion: each model input, its predictions and its labels (PSI decides)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    version: str
    run_id: str
    band: Band = Field(description="the crypto's drift: critical when the prediction or the label drifted "
                                   "critically, or a quarter of the inputs did (drift.py)")
    decided_by: str = "psi"
    critical: list[str] = Field(description="what made the drift critical")
    features: list[DriftMeasure]
    prediction: DriftMeasure
    label: DriftMeasure
    window: Window
    training_window: Window
    next_step: str | None = Field(description="§9-style next step, ready to paste")
    evaluated_at: datetime


def next_step(crypto: str, band: Band, critical: list[str]) -> str | None:
    if band == Band.CRITICAL:
        return (f"drift critical on {', '.join(critical[:5])}{'…' if len(critical) > 5 else ''}: the champion no longer "
                f"sees the market it learned — retrain it on the latest window, then backtest the new challenger: "
                f"cvn model retrain --crypto {crypto} && cvn model backtest --crypto {crypto}")
    if band == Band.WARNING:
        return (f"drift warning: check that the champion still qualifies on the latest window: "
                f"cvn model backtest --crypto {crypto}")
    return None


def _inputs(estimator: Any, features: pd.DataFrame) -> list[str]:
    names = getattr(estimator, "feature_names_in_", None)
    return [str(name) for name in names] if names is not None else list(features.columns)


def drift_report(crypto: str, version: RegisteredVersion, estimator: Any, origin: CampaignSpec, window: MarketWindow,
                 trained: pd.DataFrame, latest: pd.DataFrame, thresholds: DriftThresholds | None = None,
                 now: datetime | None = None) -> DriftReport:
    """Drift of one model: each input, its ``proba_buy`` and its labels, latest window vs training window."""
    with threadpool_limits(limits=THREADS):
        before = _prepare(origin, crypto, trained, [version.pte])
        after = _prepare(window_spec(origin, window), crypto, latest, [version.pte])
        rows_before = slice(WARMUP_BARS, len(before.ts) - version.pte.horizon)
        rows_after = slice(WARMUP_BARS, len(after.ts) - version.pte.horizon)
        x_before, x_after = before.features.iloc[rows_before], after.features.iloc[rows_after]
        inputs = _inputs(estimator, x_before)
        features = feature_drift({n: x_before[n].to_numpy() for n in inputs},
                                 {n: x_after[n].to_numpy() for n in inputs}, thresholds)
        prediction = measure("proba_buy", DriftKind.PREDICTION, estimator.predict_proba(x_before)[:, 1],
                             estimator.predict_proba(x_after)[:, 1], thresholds)
    label = measure("buy_rate", DriftKind.LABEL, before.outcomes[version.pte].y[rows_before],
                    after.outcomes[version.pte].y[rows_after], thresholds)
    band, critical = crypto_band(features, prediction, label)
    moment = now or datetime.now(UTC)
    return DriftReport(crypto=crypto, version=version.version,
                       run_id=operation_run_id("monitor", crypto, version.version, moment),
                       band=band, critical=critical, features=features, prediction=prediction, label=label,
                       window=window_of(latest), training_window=window_of(trained),
                       next_step=next_step(crypto, band, critical), evaluated_at=moment)


def monitor_crypto(ctx: OpsContext, crypto: str, window: MarketWindow, thresholds: DriftThresholds | None = None,
                   now: datetime | None = None) -> DriftReport:
    champion = require_champion(ctx.tracking_uri, crypto)
    origin, trained, latest = _windows(ctx, champion, window)
    return drift_report(crypto, champion, load_estimator(ctx.tracking_uri, champion), origin, window, trained, latest,
                        thresholds, now)


def drift_rows(report: DriftReport) -> list[dict[str, Any]]:
    def moment(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    return [{"run_id": report.run_id, "crypto": report.crypto, "feature": m.name, "version": report.version,
             "kind": m.kind.value, "statistic": m.statistic, "value": m.value, "band": m.band.value,
             "ks_statistic": m.ks_statistic, "ks_pvalue": m.ks_pvalue, "wasserstein": m.wasserstein,
             "reference_rows": m.reference_rows, "current_rows": m.current_rows,
             "reference_mean": m.reference_mean, "current_mean": m.current_mean,
             "window_start": moment(report.window.start_ms), "window_end": moment(report.window.end_ms),
             "training_start": moment(report.training_window.start_ms),
             "training_end": moment(report.training_window.end_ms), "evaluated_at": report.evaluated_at}
            for m in (*report.features, report.prediction, report.label)]


def champion_cryptos(ctx: OpsContext, cryptos: list[str]) -> list[str]:
    """Of ``cryptos``, those whose model has a champion (monitoring watches champions only)."""
    return [crypto for crypto in cryptos
            if any(v.role == "champion" for v in registered_versions(ctx.tracking_uri, crypto))]


def monitor(ctx: OpsContext, cryptos: list[str], window: MarketWindow, now: datetime | None = None
            ) -> list[DriftReport]:
    reports = [monitor_crypto(ctx, crypto, window, now=now) for crypto in cryptos]
    record_drift(ctx.diagnostics, [row for report in reports for row in drift_rows(report)])
    return reports


# ------------------------------------------------------------------------------ meta-training


class MetaResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    model: str
    version: str
    primary_model: str
    primary_version: str
    run_id: str
    approval: Approval
    trained_by: str
    primary_buys: int = Field(description="bars the champion predicted BUY: the meta-label's training rows")
    meta_rows_holdout: int
    primary_precision_holdout: float = Field(description="share of the champion's BUYs that hit take-profit (holdout)")
    meta_precision_holdout: float = Field(description="same share among the BUYs the meta-label keeps (holdout)")
    audit_event: int | None = Field(default=None, description="its meta_training row of cvn_model_events")


META_SUFFIX = "-meta"
META_ALIAS = "meta"  # the newest meta-label of a crypto ("latest" is reserved by MLflow)
META_FEATURE = "primary_proba_buy"
HOLDOUT_FRACTION = 0.3


def meta_model_name(crypto: str) -> str:
    return f"{model_name(crypto)}{META_SUFFIX}"


def meta_train(ctx: OpsContext, crypto: str, by: str, window: MarketWindow, now: datetime | None = None) -> MetaResult:
    """A meta-label on the champion's BUYs: does this BUY reach take-profit first?

    Needs an ``mlops_maintainer`` approval of the champion version by someone other than ``by``,
    checked and consumed by the lifecycle; the attempt is a ``meta_training`` row of
    ``cvn_model_events`` (refused, failed or done).
    """
    actor = validate_actor(by)
    champion = require_champion(ctx.tracking_uri, crypto)

    def work(approvals: list[Approval]) -> tuple[MetaResult, str]:
        approval = next(a for a in approvals if a.role == Role.MLOPS_MAINTAINER)
        result = _meta_train(ctx, crypto, champion, actor, approval, window, now)
        return result, f"meta-label {result.model} v{result.version} registered (run {result.run_id})"

    result, event_id = ctx.lifecycle().run_approved(Action.META_TRAINING, crypto, champion.version, actor, work)
    return result.model_copy(update={"audit_event": event_id})


def _meta_train(ctx: OpsContext, crypto: str, champion: RegisteredVersion, actor: str, approval: Approval,
                window: MarketWindow, now: datetime | None) -> MetaResult:
    origin = origin_spec(ctx, champion.source_campaign_id)
    latest = latest_candles(origin, crypto, window)
    estimator = load_estimator(ctx.tracking_uri, champion)
    run_id = operation_run_id("meta", crypto, champion.version, now)
    with threadpool_limits(limits=THREADS):
        market = _prepare(window_spec(origin, window), crypto, latest, [champion.pte])
        rows = slice(WARMUP_BARS, len(market.ts) - champion.pte.horizon)
        x = market.features.iloc[rows]
        proba = estimator.predict_proba(x)[:, 1]
        bought = proba >= champion.threshold
        meta_x = x[bought].assign(**{META_FEATURE: proba[bought]})
        meta_y = market.outcomes[champion.pte].y[rows][bought]
        cut = int(len(meta_y) * (1 - HOLDOUT_FRACTION))
        if cut < 20 or np.unique(meta_y[:cut]).size != 2 or len(meta_y) - cut < 10:
            raise ValueError(f"meta-training {crypto}: the champion's BUYs on the window expected at least 30 with both "
                             f"outcomes, found {len(meta_y)} ({int(meta_y.sum())} reached take-profit)")
        from cvn_assets.acquisition.families import get_family  # scikit-learn loads with the step

        model = get_family("logreg").build({}, seed=origin.seed).fit(meta_x.iloc[:cut], meta_y[:cut])
        kept = model.predict(meta_x.iloc[cut:]) == 1
    holdout = meta_y[cut:]
    tags = {"campaign_id": run_id, "source_campaign_id": champion.source_campaign_id, "origin": "meta_training",
            "primary_model": champion.name, "primary_version": champion.version, "trained_by": actor,
            "approved_by": f"{approval.role}:{approval.actor}", "family": "logreg", "pte": pte_tag(champion.pte),
            "threshold": "0.5", "inputs": json.dumps([*x.columns, META_FEATURE])}
    version = register_version(ctx.tracking_uri, meta_model_name(crypto), model, f"meta-{run_id}", tags, META_ALIAS)
    return MetaResult(
        crypto=crypto, model=meta_model_name(crypto), version=version, primary_model=champion.name,
        primary_version=champion.version, run_id=run_id, approval=approval, trained_by=actor,
        primary_buys=int(len(meta_y)), meta_rows_holdout=int(len(holdout)),
        primary_precision_holdout=float(holdout.mean()),
        meta_precision_holdout=f1_precision_recall(holdout, kept.astype(np.int8))[1] if kept.any() else 0.0,
    )
