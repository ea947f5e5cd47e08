"""Walk-forward folds: where each fold trains, calibrates and is tested, with no look-ahead.

The window's usable bars (after the feature warm-up, before the last ``max horizon`` bars whose
labels would run past the end of data) are cut into ``K + 1`` equal blocks. Fold ``k`` is tested
on block ``k + 1`` and trains on everything before it (an anchored, expanding window), so every
test slice is strictly later than the data its model saw.

Inside a training window, the last part is the **validation slice**: it is where the BUY
threshold is calibrated (manual §17.3: never on training data, never on the test slice) and
where HPO scores its trials. Between each pair of consecutive parts there is a gap:

* **purge** = the longest label horizon of the PTE grid: a label at bar ``t`` looks at bars
  ``t+1 … t+H``; dropping the last ``H`` bars before a slice guarantees that no earlier label
  "sees" a bar of that slice;
* **embargo** (before the test slice only) = 12 more bars (an hour of 5-minute bars), because features and
  volatility are serially correlated: the test slice should not start right where training ended.

::

    |warm-up| core training |purge| validation |purge+embargo| test k | … |max horizon|
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cvn_assets.contracts.campaign import BARS_PER_DAY, BARS_PER_HOUR
from cvn_assets.contracts.timeframes import DEFAULT_TIMEFRAME, bars_per_day

if TYPE_CHECKING:
    from cvn_assets.contracts.campaign import CampaignSpec

# Bars of history the feature set needs before its first complete row (see features.py,
# whose longest look-back is 288 bars, one day of 5-minute bars); labels' ATR needs far less.
# Every floor here is a number of bars whatever the timeframe: the models see bars, not hours.
WARMUP_BARS = BARS_PER_DAY
EMBARGO_BARS = BARS_PER_HOUR
MIN_TRAIN_BARS = 2 * BARS_PER_DAY
MIN_VALIDATION_BARS = BARS_PER_DAY // 2
MIN_TEST_BARS = BARS_PER_DAY
VALIDATION_FRACTION = 0.25


class Slice(BaseModel):
    """Half-open range of bar positions ``[start, stop)`` in the candle frame."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = Field(ge=0)
    stop: int = Field(ge=1)

    @model_validator(mode="after")
    def _non_empty(self) -> Slice:
        if self.stop <= self.start:
            raise ValueError(f"slice [{self.start}, {self.stop}) is empty")
        return self

    def __len__(self) -> int:
        return self.stop - self.start

    def as_slice(self) -> slice:
        return slice(self.start, self.stop)


class Fold(BaseModel):
    """One walk-forward fold: core training, validation (calibration, HPO) and test slices."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    train: Slice
    validation: Slice
    test: Slice

    @property
    def training_window(self) -> Slice:
        """The whole window the fold may learn from (core training + validation)."""
        return Slice(start=self.train.start, stop=self.validation.stop)


def purge_bars(max_horizon_bars: int) -> int:
    return max_horizon_bars


def _minimum_block(max_horizon_bars: int) -> int:
    """Smallest block so that fold 0 still has core training, purge, validation, gap and test."""
    purge = purge_bars(max_horizon_bars)
    first_window = MIN_TRAIN_BARS + purge + MIN_VALIDATION_BARS
    return max(MIN_TEST_BARS, first_window + purge + EMBARGO_BARS)


def minimum_bars(folds: int, max_horizon_bars: int) -> int:
    """Fewest bars a window needs for ``folds`` folds with labels up to ``max_horizon_bars``."""
    return WARMUP_BARS + (folds + 1) * _minimum_block(max_horizon_bars) + max_horizon_bars


def minimum_days(folds: int, max_horizon_bars: int, timeframe: str = DEFAULT_TIMEFRAME) -> int:
    """Fewest days of ``timeframe`` bars for ``folds`` folds and labels up to ``max_horizon_bars``."""
    return math.ceil(minimum_bars(folds, max_horizon_bars) / bars_per_day(timeframe))


def minimum_backtest_days(spec: CampaignSpec) -> int:
    """The ``backtest_days`` floor of a campaign: its folds, its longest horizon and its timeframe."""
    return minimum_days(spec.folds, max(spec.horizon_bars), spec.timeframe)


def build_folds(n_bars: int, folds: int, max_horizon_bars: int) -> list[Fold]:
    """Anchored walk-forward folds over ``n_bars`` bars, purged and embargoed (module docstring).

    Raises ``ValueError`` naming what was expected and found when the window is too short.
    """
    if folds < 2:
        raise ValueError(f"folds expected >= 2, found {folds}")
    if max_horizon_bars < 1:
        raise ValueError(f"max_horizon_bars expected >= 1, found {max_horizon_bars}")
    needed = minimum_bars(folds, max_horizon_bars)
    if n_bars < needed:
        raise ValueError(
            f"candles: {folds} folds with a {max_horizon_bars}-bar horizon need at least {needed} bars, "
            f"found {n_bars}"
        )
    purge = purge_bars(max_horizon_bars)
    usable_stop = n_bars - max_horizon_bars
    block = (usable_stop - WARMUP_BARS) // (folds + 1)
    # The remainder goes to the first training block so that every test slice has the same size.
    first_test = usable_stop - folds * block
    plan: list[Fold] = []
    for k in range(folds):
        test = Slice(start=first_test + k * block, stop=first_test + (k + 1) * block)
        window_stop = test.start - purge - EMBARGO_BARS
        window = window_stop - WARMUP_BARS
        # A quarter of the window, but never squeezing core training below its minimum.
        validation_len = max(MIN_VALIDATION_BARS, min(int(window * VALIDATION_FRACTION), window - purge - MIN_TRAIN_BARS))
        validation = Slice(start=window_stop - validation_len, stop=window_stop)
        train = Slice(start=WARMUP_BARS, stop=validation.start - purge)
        plan.append(Fold(index=k, train=train, validation=validation, test=test))
    return plan
