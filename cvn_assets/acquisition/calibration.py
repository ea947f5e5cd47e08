"""The BUY metric and the BUY threshold.

``f1_buy`` is the F1 score of the BUY class, the manual's headline ML metric, always read
against the naive always-BUY baseline (ADR-29). The BUY threshold is calibrated on the
validation slice of a fold — never on training data (in-sample, optimistic) nor on the test
slice (look-ahead) — manual §17.3 and ADR-15 ("theta calibré OOS").
"""

from __future__ import annotations

import numpy as np


def f1_buy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 of the BUY class; 0 when there is no BUY to find and none predicted."""
    y_true = np.asarray(y_true).astype(bool)
    y_pred = np.asarray(y_pred).astype(bool)
    true_positive = int((y_true & y_pred).sum())
    denominator = int(y_true.sum()) + int(y_pred.sum())
    return 2.0 * true_positive / denominator if denominator else 0.0


def assert_discrete_targets(y: np.ndarray, where: str) -> None:
    """Calibration needs hard 0/1 labels (manual §17.3: soft labels crashed calibration in production)."""
    values = np.unique(np.asarray(y))
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"{where}: calibration targets expected discrete values in {{0, 1}}, found {values[:5].tolist()}")


def calibrate_threshold(y_true: np.ndarray, proba_buy: np.ndarray, where: str) -> tuple[float, float]:
    """The threshold maximising ``f1_buy`` of ``proba_buy >= threshold``, and that f1_buy.

    Every distinct probability is a candidate (an exact search, vectorised over the sorted
    probabilities). Probabilities are compared in float32, the precision the blob stores them
    in, so ``y_pred`` recomputed from a blob equals the one written. Ties keep the highest
    threshold (the fewest BUY signals for the same f1).
    """
    assert_discrete_targets(y_true, where)
    proba = np.asarray(proba_buy, dtype=np.float32)
    if proba.size == 0:
        raise ValueError(f"{where}: calibration expected at least one validation bar, found none")
    order = np.argsort(-proba, kind="stable")
    sorted_proba = proba[order]
    sorted_true = np.asarray(y_true, dtype=np.int64)[order]
    true_positive = np.cumsum(sorted_true)
    predicted = np.arange(1, proba.size + 1)
    # A threshold can only cut at the end of a run of equal probabilities.
    cut = np.append(sorted_proba[1:] != sorted_proba[:-1], True)
    f1 = np.where(cut, 2.0 * true_positive / (predicted + sorted_true.sum()), -1.0)
    best = int(np.argmax(f1))
    return float(sorted_proba[best]), float(max(f1[best], 0.0))
