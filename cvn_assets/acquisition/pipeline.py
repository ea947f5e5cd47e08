"""One acquisition step: a crypto's candles → one prediction blob per (fold, family).

``acquire`` is what the ``s43_predictions`` asset runs for one (campaign, crypto) partition:

1. check the candles (fail loud, never a partial campaign on bad data);
2. causal features (features.py) and, for every PTE of the grid, triple-barrier labels
   (labels.py) with ATR-scaled barriers;
3. anchored walk-forward folds, purged and embargoed (folds.py);
4. per fold: screen the PTE grid on the training window (screening.py); per family, search
   hyperparameters and calibrate the BUY threshold on the validation slice (hpo.py); predict
   the test slice;
5. a ``PredictionBlob`` per (fold, family) holding the test slice: labels, probabilities,
   decisions, and the exit reason and net return of the trade each bar would have opened.

Everything is deterministic for a given spec and candles (seeded models, single-threaded
numerical libraries, fixed iteration orders): the same inputs give bit-identical blobs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from cvn_assets.acquisition.calibration import f1_buy
from cvn_assets.acquisition.families import Hyperparameter, get_family
from cvn_assets.acquisition.features import assert_complete, average_true_range, build_features
from cvn_assets.acquisition.folds import WARMUP_BARS, Slice, build_folds
from cvn_assets.acquisition.hpo import derive_seed, search
from cvn_assets.acquisition.labels import BarrierOutcome, triple_barrier
from cvn_assets.acquisition.market_data import check_candles
from cvn_assets.acquisition.screening import pte_grid, screen
from cvn_assets.contracts.blob import SCHEMA_VERSION, BlobMeta, PredictionBlob, Pte, Window, make_blob
from cvn_assets.contracts.campaign import CampaignSpec, producer_version
from cvn_assets.contracts.timeframes import bar_ms

Progress = Callable[[str], None]

# Other steps of a campaign run in parallel on the same cores: numerical libraries get one
# thread each (also what makes HistGradientBoosting's floating-point sums reproducible).
THREADS = 1


@dataclass(frozen=True)
class _Market:
    """The candles of one crypto as the models see them."""

    ts: np.ndarray
    features: pd.DataFrame
    outcomes: dict[Pte, BarrierOutcome]


def _prepare(spec: CampaignSpec, symbol: str, candles: pd.DataFrame, ptes: list[Pte]) -> _Market:
    report = check_candles(candles, spec)
    if not report.passed:
        raise ValueError(f"candles {symbol}: expected usable {spec.timeframe} bars, found: {'; '.join(report.problems)}")
    candles = candles.reset_index(drop=True)
    features = build_features(candles)
    assert_complete(features, slice(WARMUP_BARS, len(candles)), f"features {symbol}")
    atr = average_true_range(candles)
    prices = [candles[column].to_numpy(dtype=np.float64) for column in ("open", "high", "low", "close")]
    outcomes = {pte: triple_barrier(*prices, atr, pte, spec.fees_bps) for pte in ptes}
    return _Market(ts=candles["timestamp"].to_numpy(dtype=np.int64), features=features, outcomes=outcomes)


def _window(ts: np.ndarray, rows: Slice, timeframe: str) -> Window:
    """The bars of ``rows`` as a half-open time window: first bar open → last bar close."""
    return Window(start_ms=int(ts[rows.start]), end_ms=int(ts[rows.stop - 1]) + bar_ms(timeframe))


def acquire(
    spec: CampaignSpec,
    symbol: str,
    candles: pd.DataFrame,
    progress: Progress | None = None,
) -> list[PredictionBlob]:
    """Walk-forward predictions of ``symbol``: one blob per (fold, family), in fold then family order."""
    say = progress or (lambda _message: None)
    grid = pte_grid(spec.sl_range, spec.tp_range, spec.horizon_bars)
    with threadpool_limits(limits=THREADS):
        market = _prepare(spec, symbol, candles, grid)
        folds = build_folds(len(market.ts), spec.folds, max(spec.horizon_bars))
        say(f"{symbol}: {len(market.ts)} bars, {len(folds)} folds, {len(grid)} PTEs, families {list(spec.families)}")
        version = producer_version()
        blobs: list[PredictionBlob] = []
        for fold in folds:
            where = f"{spec.campaign_id}/{symbol}/fold-{fold.index:02d}"
            screening = screen(
                market.features, market.outcomes, fold, derive_seed(spec.seed, symbol, fold.index, "screening"), where
            )
            chosen = screening.chosen
            pte = chosen.pte
            say(
                f"{where}: screened {len(grid)} PTEs → sl={pte.sl} tp={pte.tp} horizon={pte.horizon} bars "
                f"(screening f1_buy {chosen.f1_buy:.3f} vs naive {chosen.baseline_f1_buy:.3f})"
            )
            outcome = market.outcomes[pte]
            train, validation, test = fold.train.as_slice(), fold.validation.as_slice(), fold.test.as_slice()
            x_train, x_validation, x_test = (market.features.iloc[rows] for rows in (train, validation, test))
            for family_name in spec.families:
                family = get_family(family_name)
                result = search(
                    family,
                    spec.hpo_trials,
                    search_seed=derive_seed(spec.seed, symbol, fold.index, family_name, "hpo"),
                    model_seed=derive_seed(spec.seed, symbol, fold.index, family_name, "model"),
                    x_train=x_train,
                    y_train=outcome.y[train],
                    x_validation=x_validation,
                    y_validation=outcome.y[validation],
                    where=f"{where}/{family_name}",
                )
                proba = np.clip(result.model.predict_proba(x_test)[:, 1], 0.0, 1.0).astype(np.float32)
                y_pred = (proba >= np.float32(result.best.threshold)).astype(np.int8)
                meta = BlobMeta(
                    schema_version=SCHEMA_VERSION,
                    campaign_id=spec.campaign_id,
                    crypto=symbol,
                    fold=fold.index,
                    family=family_name,
                    pte=pte,
                    threshold=result.best.threshold,
                    timeframe=spec.timeframe,
                    train=_window(market.ts, fold.train, spec.timeframe),
                    validation=_window(market.ts, fold.validation, spec.timeframe),
                    test=_window(market.ts, fold.test, spec.timeframe),
                    screening_f1_buy=chosen.f1_buy,
                    validation_f1_buy=result.best.validation_f1_buy,
                    fees_bps=spec.fees_bps,
                    hyperparameters=result.best.hyperparameters,
                    producer_version=version,
                )
                blob = make_blob(
                    meta,
                    ts=market.ts[test],
                    y_true=outcome.y[test],
                    proba_buy=proba,
                    y_pred=y_pred,
                    exit_reason=outcome.exit_reason[test],
                    trade_return=outcome.trade_return[test],
                )
                blobs.append(blob)
                say(
                    f"{where}/{family_name}: validation f1_buy {result.best.validation_f1_buy:.3f}, "
                    f"test f1_buy {f1_buy(blob.y_true, blob.y_pred):.3f} ({len(result.trials)} trial(s))"
                )
    return blobs


def train_full_window(
    spec: CampaignSpec,
    symbol: str,
    candles: pd.DataFrame,
    family: str,
    pte: Pte,
    hyperparameters: Mapping[str, Hyperparameter],
) -> Pipeline:
    """A model of ``family`` trained on the whole window with ``pte``'s labels (the challenger).

    Every bar from the feature warm-up to the last one with a complete horizon is used. The
    model reads ``build_features(candles)`` rows (columns ``FEATURE_NAMES``); its BUY threshold
    is the one calibrated on the validation slices (blob meta), not re-fitted here.
    """
    model_family = get_family(family)
    with threadpool_limits(limits=THREADS):
        market = _prepare(spec, symbol, candles, [pte])
        rows = slice(WARMUP_BARS, len(market.ts) - pte.horizon)
        y = market.outcomes[pte].y[rows]
        if np.unique(y).size != 2 and model_family.calibrated:
            raise ValueError(
                f"{spec.campaign_id}/{symbol}/{family}: training labels expected both BUY and not-BUY "
                f"under {pte}, found only {np.unique(y).tolist()}"
            )
        return model_family.build(hyperparameters, derive_seed(spec.seed, symbol, "full", family, "model")).fit(
            market.features.iloc[rows], y
        )
