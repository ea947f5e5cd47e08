"""The feature set is causal: what a model reads at bar t depends on bars 0 … t only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvn_assets.acquisition.features import FEATURE_NAMES, average_true_range, build_features
from cvn_assets.acquisition.folds import WARMUP_BARS
from cvn_assets.acquisition.market_data import synthetic_candles


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return synthetic_candles("SOLUSDC", seed=3, days=5)


def _with_new_future(candles: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """Same bars up to ``t``; every bar after ``t`` replaced by a different market."""
    other = synthetic_candles("ADAUSDC", seed=seed, days=5)
    changed = candles.copy()
    scale = candles["close"].iloc[t] / other["close"].iloc[t]
    for column in ("open", "high", "low", "close"):
        changed.loc[t + 1 :, column] = other[column].iloc[t + 1 :].to_numpy() * scale
    changed.loc[t + 1 :, "volume"] = other["volume"].iloc[t + 1 :].to_numpy() * 7.0
    return changed


@pytest.mark.parametrize("t", [WARMUP_BARS, WARMUP_BARS + 1, 700, 1200, 1438])
def test_no_feature_at_bar_t_changes_when_later_bars_change(candles, t):
    before = build_features(candles)
    after = build_features(_with_new_future(candles, t, seed=t))

    pd.testing.assert_frame_equal(before.iloc[: t + 1], after.iloc[: t + 1], check_exact=True)
    # The future really changed, and features after t see it.
    assert not before.iloc[t + 1 :].equals(after.iloc[t + 1 :])
    np.testing.assert_array_equal(average_true_range(candles)[: t + 1], average_true_range(_with_new_future(candles, t, t))[: t + 1])


def test_features_are_complete_after_the_warm_up_and_absent_before(candles):
    """The folds start training at WARMUP_BARS: every look-back must fit in it."""
    features = build_features(candles)

    assert tuple(features.columns) == FEATURE_NAMES
    assert features.index.equals(candles.index)
    assert features.iloc[:WARMUP_BARS].isna().all().all()
    assert np.isfinite(features.iloc[WARMUP_BARS:].to_numpy()).all()


def test_features_do_not_depend_on_the_price_level(candles):
    """A coin at 2e-5 and one at 60,000 with the same moves give the same features."""
    scaled = candles.copy()
    scaled[["open", "high", "low", "close"]] *= 1e-6

    np.testing.assert_allclose(
        build_features(candles).iloc[WARMUP_BARS:].to_numpy(),
        build_features(scaled).iloc[WARMUP_BARS:].to_numpy(),
        rtol=1e-6,
        atol=1e-9,
    )


def test_a_flat_market_gives_finite_features():
    """Zero volatility or zero volume must not produce infinities that crash a linear model."""
    n = WARMUP_BARS + 50
    flat = pd.DataFrame(
        {
            "timestamp": 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 300_000,
            "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0,
        }
    )  # fmt: skip
    assert np.isfinite(build_features(flat).iloc[WARMUP_BARS:].to_numpy()).all()


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"missing \['volume'\]"):
        build_features(pd.DataFrame({"timestamp": [1], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0]}))
