"""Golden signals of one crypto from its pooled test folds (manual §2, §6.3; ADR-27/28/29).

The crypto's model family is chosen without looking at test results: the non-naive family with
the best mean ``validation_f1_buy`` (blob meta), ties broken by the campaign's family order; a
candidate family without a validation score cannot be ranked and fails loud.
Its test rows of every fold are pooled for the ML signals; the baseline is the naive always-BUY
classifier on exactly the same rows (ADR-29). The backtest opens one trade at every predicted
BUY and closes it by the PTE's barriers (``exit_reason``, ``trade_return`` net of fees), so the
trading signals are per trade: Sortino = mean return / downside deviation, not annualised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from cvn_assets.contracts.blob import ExitReason, PredictionBlob

BASELINE_FAMILY = "naive"
SORTINO_CAP = 99.0  # no losing trade: the ratio is unbounded; a finite cap survives JSON and SQL


class CryptoSignals(BaseModel):
    """The golden signals of one crypto (every ratio in [0, 1], deltas in F1 points)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    family: str
    folds: int
    test_rows: int
    f1_buy: float
    precision_buy: float
    recall_buy: float
    buy_rate: float
    baseline_f1_buy: float
    f1_buy_delta: float
    std_f1_buy: float
    screening_f1_buy: float | None
    last_fold_f1_buy: float
    screening_testing_gap: float | None
    n_trades: int
    sortino: float | None
    tp_pct: float | None
    sl_pct: float | None
    timeout_pct: float | None
    expectancy: float | None
    max_drawdown: float | None


def f1_precision_recall(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float, float]:
    true_positive = float(np.sum((y_true == 1) & (y_pred == 1)))
    predicted = float(np.sum(y_pred == 1))
    actual = float(np.sum(y_true == 1))
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return f1, precision, recall


def always_buy_f1(y_true: np.ndarray) -> float:
    """F1 of predicting BUY everywhere: precision = buy rate, recall = 1."""
    rate = float(np.mean(y_true == 1)) if len(y_true) else 0.0
    return 2 * rate / (1 + rate) if rate else 0.0


def choose_family(blobs: Sequence[PredictionBlob]) -> str:
    """Non-naive family with the best mean validation F1; the baseline only if it is alone."""
    order: list[str] = []
    for blob in blobs:
        if blob.meta.family not in order:
            order.append(blob.meta.family)
    candidates = [family for family in order if family != BASELINE_FAMILY] or order
    if len(candidates) == 1:
        return candidates[0]
    scores: dict[str, list[float]] = {}
    for blob in blobs:
        if blob.meta.family not in candidates:
            continue
        if blob.meta.validation_f1_buy is None:
            # Ranking it anyway would mean either guessing or peeking at test results.
            raise ValueError(
                f"choose_family {blob.meta.crypto}: expected validation_f1_buy in the meta of every candidate "
                f"family's blob, found none in {blob.meta.family}/fold-{blob.meta.fold:02d}"
            )
        scores.setdefault(blob.meta.family, []).append(blob.meta.validation_f1_buy)
    return max(candidates, key=lambda family: (float(np.mean(scores[family])), -order.index(family)))


def _backtest(returns: np.ndarray, exits: np.ndarray) -> dict[str, float | int | None]:
    trades = int(returns.size)
    if trades == 0:
        return {"n_trades": 0, "sortino": None, "tp_pct": None, "sl_pct": None, "timeout_pct": None,
                "expectancy": None, "max_drawdown": None}
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    mean = float(np.mean(returns))
    equity = np.cumsum(returns)
    drawdown = float(np.max(np.maximum.accumulate(np.concatenate([[0.0], equity]))[1:] - equity))
    return {
        "n_trades": trades,
        "sortino": min(mean / downside, SORTINO_CAP) if downside > 0 else (SORTINO_CAP if mean > 0 else 0.0),
        "tp_pct": float(np.mean(exits == ExitReason.TP)),
        "sl_pct": float(np.mean(exits == ExitReason.SL)),
        "timeout_pct": float(np.mean(exits == ExitReason.TIMEOUT)),
        "expectancy": mean,
        "max_drawdown": drawdown,
    }


def compute_crypto_signals(blobs: Sequence[PredictionBlob]) -> CryptoSignals:
    """Signals of ONE crypto from all its (fold, family) blobs of a complete cohort."""
    if not blobs:
        raise ValueError("compute_crypto_signals: expected the blobs of one crypto, found none")
    cryptos = {blob.meta.crypto for blob in blobs}
    if len(cryptos) != 1:
        raise ValueError(f"compute_crypto_signals: expected one crypto (ADR-27), found {sorted(cryptos)}")
    family = choose_family(blobs)
    chosen = sorted((blob for blob in blobs if blob.meta.family == family), key=lambda blob: blob.meta.fold)
    y_true = np.concatenate([blob.y_true for blob in chosen])
    y_pred = np.concatenate([blob.y_pred for blob in chosen])
    f1, precision, recall = f1_precision_recall(y_true, y_pred)
    baseline = always_buy_f1(y_true)
    per_fold = [f1_precision_recall(blob.y_true, blob.y_pred)[0] for blob in chosen]
    last = chosen[-1]
    screening = last.meta.screening_f1_buy
    order = np.argsort(np.concatenate([blob.ts for blob in chosen]), kind="stable")
    bought = y_pred[order] == 1
    returns = np.concatenate([blob.trade_return for blob in chosen])[order][bought].astype(np.float64)
    exits = np.concatenate([blob.exit_reason for blob in chosen])[order][bought]
    return CryptoSignals(
        crypto=next(iter(cryptos)),
        family=family,
        folds=len(chosen),
        test_rows=int(y_true.size),
        f1_buy=f1,
        precision_buy=precision,
        recall_buy=recall,
        buy_rate=float(np.mean(y_true == 1)),
        baseline_f1_buy=baseline,
        f1_buy_delta=(f1 - baseline) * 100.0,
        std_f1_buy=float(np.std(per_fold)),
        screening_f1_buy=screening,
        last_fold_f1_buy=per_fold[-1],
        screening_testing_gap=None if screening is None else screening - per_fold[-1],
        **_backtest(returns, exits),
    )
