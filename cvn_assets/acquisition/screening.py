"""PTE screening: which trade-execution parameters (stop-loss, take-profit, horizon) a fold uses.

For each PTE of the grid (``sl_range × tp_range × horizons``) and each fold, a quick screening
model (the ``logreg`` family with its defaults) is trained on the fold's core training slice
with that PTE's labels and scored on the fold's validation slice: ``f1_buy`` at its calibrated
threshold, against the naive always-BUY ``f1_buy`` of the same bars. The chosen PTE is the one
with the largest **lift** over naive (ADR-29: a metric means nothing without the baseline; the
raw f1_buy alone would pick the PTE with the most BUY labels). Ties keep the grid order.

Everything is inside the training window: screening never sees the test slice, so the
``screening_f1_buy`` of the chosen PTE can be compared with the test ``f1_buy`` of the same
fold (manual §6.3, ADR-28/29: same metric; the gate reads it on the last fold).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from cvn_assets.acquisition.calibration import calibrate_threshold, f1_buy
from cvn_assets.acquisition.families import get_family
from cvn_assets.acquisition.folds import Fold
from cvn_assets.acquisition.labels import BarrierOutcome
from cvn_assets.contracts.blob import Pte

SCREENING_FAMILY = "logreg"


def pte_grid(sl_range: Sequence[float], tp_range: Sequence[float], horizon_bars: Sequence[int]) -> list[Pte]:
    """The screening grid in a fixed order: horizon, then stop-loss, then take-profit."""
    return [Pte(sl=sl, tp=tp, horizon=h) for h, sl, tp in itertools.product(horizon_bars, sl_range, tp_range)]


class ScreenedPte(BaseModel):
    """One grid point on one fold's validation slice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pte: Pte
    f1_buy: float | None  # None: training labels hold a single class, nothing to learn
    baseline_f1_buy: float
    buy_rate: float

    @property
    def lift(self) -> float:
        return -np.inf if self.f1_buy is None else self.f1_buy - self.baseline_f1_buy


class Screening(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    chosen: ScreenedPte
    grid: list[ScreenedPte]


def screen(
    features: pd.DataFrame,
    outcomes: Mapping[Pte, BarrierOutcome],
    fold: Fold,
    seed: int,
    where: str,
) -> Screening:
    """Screen every PTE of ``outcomes`` on ``fold`` (module docstring)."""
    family = get_family(SCREENING_FAMILY)
    train_rows, validation_rows = fold.train.as_slice(), fold.validation.as_slice()
    x_train, x_validation = features.iloc[train_rows], features.iloc[validation_rows]
    results = []
    for pte, outcome in outcomes.items():
        y_train, y_validation = outcome.y[train_rows], outcome.y[validation_rows]
        baseline = f1_buy(y_validation, np.ones_like(y_validation))
        score = None
        if np.unique(y_train).size == 2:
            model = family.build(family.default_hyperparameters(), seed).fit(x_train, y_train)
            proba = model.predict_proba(x_validation)[:, 1]
            _, score = calibrate_threshold(y_validation, proba, f"{where} screening {pte}")
        results.append(
            ScreenedPte(pte=pte, f1_buy=score, baseline_f1_buy=baseline, buy_rate=float(np.mean(y_validation)))
        )
    learnable = [result for result in results if result.f1_buy is not None]
    if not learnable:
        raise ValueError(
            f"{where}: screening expected a PTE whose training labels hold both BUY and not-BUY, found none "
            f"among {len(results)} (buy rates {[round(r.buy_rate, 3) for r in results]}); widen sl_range/tp_range/horizons"
        )
    chosen = max(learnable, key=lambda result: result.lift)  # max keeps the first of equal lifts
    return Screening(chosen=chosen, grid=results)
