"""Backtest and walk-forward of a registered version, through the discovery's own contracts.

Both produce ordinary prediction blobs — one per (crypto, fold, family) under their own run id,
with a manifest written first — persist them with the IO manager's ``persist_blobs``, read the
cohort back with the gate's ``load_cohort`` and judge it with the gate's ``evaluate_gate``. So the
golden signals, the §7 diagnostic and the candidacy (``qualifies``) are computed by exactly the
code that judged the discovery; ``cvn blob ls --campaign <run id>`` lists them and the gate report
sits beside them (``_gate_report.json``). The run id is not a campaign partition: ``cvn gate`` would
re-register challengers from a backtest, which only the discovery does.

* **backtest** (§10 "Test → WFRB from existing candidates"): the registered estimator as it is —
  no screening, no fitting, its PTE and BUY threshold — predicts every usable bar of the latest
  window; the window is cut into ``folds`` equal consecutive test slices, so ``std_f1_buy`` and the
  last-fold F1 mean what they mean at the gate. The screening F1 compared with the last fold is the
  version's own (tag), so SCREENING_OVERFIT still reads "does it hold out of sample".
* **walk-forward**: the version's recipe (``sklearn.base.clone`` of its estimator: family and
  hyperparameters; its PTE and threshold) is fitted on each of ``windows`` rolling training blocks
  and tested on the block that follows, after a purge of one horizon and an embargo.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from cvn_assets.acquisition.folds import EMBARGO_BARS, WARMUP_BARS, Slice
from cvn_assets.acquisition.pipeline import THREADS, _prepare, _window
from cvn_assets.contracts.blob import SCHEMA_VERSION, BlobMeta, PredictionBlob, Window, make_blob
from cvn_assets.contracts.campaign import CampaignManifest, CampaignSpec, producer_version
from cvn_assets.contracts.identifiers import validate_campaign_id
from cvn_assets.gate.cohort import load_cohort
from cvn_assets.gate.report import GateReport, report_key
from cvn_assets.gate.signals import compute_crypto_signals
from cvn_assets.gate.verdict import evaluate_gate
from cvn_assets.modelops.registry import RegisteredVersion
from cvn_assets.storage.io_manager import persist_blobs
from cvn_assets.storage.manifests import write_manifest
from cvn_assets.storage.object_store import ObjectStore

MIN_SLICE_BARS = 12  # one hour: a test slice shorter than this says nothing about a model


def operation_run_id(kind: str, crypto: str, version: str, now: datetime | None = None) -> str:
    """A campaign-shaped id for one operation on one version, e.g. ``backtest-solusdc-v3-20261205-061500``."""
    now = now or datetime.now(UTC)
    return validate_campaign_id(f"{kind}-{crypto.lower()}-v{version}-{now:%Y%m%d-%H%M%S}"[:63])


class VersionResult(BaseModel):
    """What a backtest or walk-forward concluded for one version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(description="backtest or walkforward")
    run_id: str
    crypto: str
    version: str
    role: str
    family: str
    window: Window = Field(description="the latest window the version was tested on")
    training_window: Window
    signals: dict[str, Any] = Field(description="the gate's golden signals on the window")
    diagnostic: str
    codes: list[str]
    qualifies: bool = Field(description="the gate's candidacy on the new window: still a strategy worth running")
    reasons: list[str]
    action: str
    windows: list[dict[str, Any]] = Field(default_factory=list, description="walk-forward: signals per window")
    evaluated_at: datetime


def _equal_slices(start: int, stop: int, count: int, where: str) -> list[Slice]:
    size = (stop - start) // count
    if size < MIN_SLICE_BARS:
        raise ValueError(f"{where}: {stop - start} usable bars cannot make {count} slices of at least "
                         f"{MIN_SLICE_BARS} bars: expected a longer window (--backtest-days) or fewer folds")
    first = stop - count * size  # the remainder goes before the first slice, as in build_folds
    return [Slice(start=first + k * size, stop=first + (k + 1) * size) for k in range(count)]


def _meta(run_id: str, version: RegisteredVersion, spec: CampaignSpec, fold: int, train: Window,
          test: Window) -> BlobMeta:
    # The version learned on its training window and calibrated its threshold inside it: both
    # windows of the meta name it (the discovery's validation slices are not re-read here).
    return BlobMeta(
        schema_version=SCHEMA_VERSION, campaign_id=run_id, crypto=version.crypto, fold=fold, family=version.family,
        pte=version.pte, timeframe=spec.timeframe, threshold=version.threshold, train=train, validation=train, test=test,
        screening_f1_buy=version.screening_f1_buy, validation_f1_buy=None, fees_bps=spec.fees_bps,
        hyperparameters={}, producer_version=producer_version(),
    )


def _blob(meta: BlobMeta, market: Any, rows: slice, proba: np.ndarray) -> PredictionBlob:
    outcome = market.outcomes[meta.pte]
    proba = np.clip(proba, 0.0, 1.0).astype(np.float32)
    return make_blob(meta, ts=market.ts[rows], y_true=outcome.y[rows], proba_buy=proba,
                     y_pred=(proba >= np.float32(meta.threshold)).astype(np.int8),
                     exit_reason=outcome.exit_reason[rows], trade_return=outcome.trade_return[rows])


def backtest_blobs(run_id: str, version: RegisteredVersion, estimator: Any, spec: CampaignSpec,
                   candles: pd.DataFrame, training_window: Window) -> list[PredictionBlob]:
    """The registered estimator, unchanged, on every usable bar of the window (module docstring)."""
    with threadpool_limits(limits=THREADS):
        market = _prepare(spec, version.crypto, candles, [version.pte])
        usable = slice(WARMUP_BARS, len(market.ts) - version.pte.horizon)
        proba = estimator.predict_proba(market.features.iloc[usable])[:, 1]
    slices = _equal_slices(usable.start, usable.stop, spec.folds, f"backtest {run_id}")
    blobs = []
    for fold, part in enumerate(slices):
        meta = _meta(run_id, version, spec, fold, training_window, _window(market.ts, part, spec.timeframe))
        blobs.append(_blob(meta, market, part.as_slice(), proba[part.start - usable.start:part.stop - usable.start]))
    return blobs


def walkforward_blobs(run_id: str, version: RegisteredVersion, estimator: Any, spec: CampaignSpec,
                      candles: pd.DataFrame, windows: int) -> list[PredictionBlob]:
    """Fit the recipe on each rolling block, test it on the next (module docstring)."""
    if windows < 2:
        raise ValueError(f"walkforward {run_id}: expected at least 2 windows (std_f1_buy needs two), found {windows}")
    with threadpool_limits(limits=THREADS):
        market = _prepare(spec, version.crypto, candles, [version.pte])
        horizon = version.pte.horizon
        blocks = _equal_slices(WARMUP_BARS, len(market.ts) - horizon, windows + 1, f"walkforward {run_id}")
        outcome = market.outcomes[version.pte]
        blobs = []
        for k in range(windows):
            train = Slice(start=blocks[k].start, stop=blocks[k].stop - horizon)  # purge: labels stay before the gap
            test = Slice(start=blocks[k + 1].start + EMBARGO_BARS, stop=blocks[k + 1].stop)
            y = outcome.y[train.as_slice()]
            if np.unique(y).size != 2:
                raise ValueError(f"walkforward {run_id} window {k}: training labels expected both BUY and not-BUY "
                                 f"under {version.pte}, found only {np.unique(y).tolist()}")
            model = clone(estimator).fit(market.features.iloc[train.as_slice()], y)
            proba = model.predict_proba(market.features.iloc[test.as_slice()])[:, 1]
            meta = _meta(run_id, version, spec, k, _window(market.ts, train, spec.timeframe), _window(market.ts, test, spec.timeframe))
            blobs.append(_blob(meta, market, test.as_slice(), proba))
    return blobs


def operation_spec(origin: CampaignSpec, run_id: str, version: RegisteredVersion, folds: int,
                   window_days: int) -> CampaignSpec:
    """The origin campaign's spec narrowed to this operation: one crypto, one family, its folds."""
    return origin.model_copy(update={
        "campaign_id": run_id, "symbols": [version.crypto], "families": [version.family], "folds": folds,
        "horizons": [max(1, version.pte.horizon // 12)], "backtest_days": window_days,
    })


def judge(store: ObjectStore, prefix: str, spec: CampaignSpec, blobs: list[PredictionBlob],
          logger: logging.Logger | Any, now: datetime | None = None) -> GateReport:
    """Manifest, blobs, read-back, gate: the discovery's path from predictions to a verdict."""
    manifest = CampaignManifest.for_spec(spec)
    write_manifest(store, prefix, manifest)
    crypto = spec.symbols[0]
    expected = [(ref.fold, ref.family) for ref in manifest.expected if ref.crypto == crypto]
    persist_blobs(store, prefix, spec.campaign_id, crypto, blobs, expected, max_workers=4, logger=logger)
    cohort = load_cohort(store, prefix, spec.campaign_id)
    report = evaluate_gate(cohort, now=now)
    store.put(report_key(prefix, spec.campaign_id), report.model_dump_json(indent=2).encode(),
              content_type="application/json")
    return report


def per_window_signals(blobs: list[PredictionBlob]) -> list[dict[str, Any]]:
    """Walk-forward: the gate's signals of each window on its own."""
    return [{"window": blob.meta.fold, "train_start_ms": blob.meta.train.start_ms,
             "test_start_ms": blob.meta.test.start_ms, "test_end_ms": blob.meta.test.end_ms,
             **compute_crypto_signals([blob]).model_dump(include={"f1_buy", "baseline_f1_buy", "f1_buy_delta",
                                                                  "n_trades", "sortino"})}
            for blob in blobs]


def version_result(kind: str, version: RegisteredVersion, report: GateReport, window: Window,
                   training_window: Window, per_window: Callable[[], list[dict[str, Any]]] | None = None) -> VersionResult:
    verdict = (report.cryptos or {}).get(version.crypto)
    if verdict is None:
        raise ValueError(f"{kind} {report.campaign_id}: the gate gave no verdict for {version.crypto} "
                         f"({report.verdict.value}: {report.summary})")
    return VersionResult(
        kind=kind, run_id=report.campaign_id, crypto=version.crypto, version=version.version, role=version.role,
        family=version.family, window=window, training_window=training_window, signals=dict(verdict.signals),
        diagnostic=verdict.diagnostic, codes=list(verdict.codes), qualifies=verdict.candidate,
        reasons=list(verdict.reasons), action=verdict.action, windows=per_window() if per_window else [],
        evaluated_at=report.evaluated_at,
    )
