"""Walk-forward folds: every test slice is later than everything its model learnt from."""

from __future__ import annotations

import pytest

from cvn_assets.acquisition.folds import (
    EMBARGO_BARS,
    MIN_TEST_BARS,
    MIN_TRAIN_BARS,
    MIN_VALIDATION_BARS,
    WARMUP_BARS,
    build_folds,
    minimum_backtest_days,
    minimum_bars,
)
from cvn_assets.contracts.campaign import BARS_PER_DAY, CampaignSpec


@pytest.mark.parametrize(
    ("n_bars", "folds", "horizon"),
    [(17_280, 3, 48), (17_280, 5, 72), (60_000, 10, 576), (minimum_bars(2, 12), 2, 12), (minimum_bars(4, 48) + 17, 4, 48)],
)
def test_no_label_horizon_reaches_the_next_slice(n_bars, folds, horizon):
    plan = build_folds(n_bars, folds, horizon)

    assert [fold.index for fold in plan] == list(range(folds))
    for fold in plan:
        # A label at bar t watches bars t+1 … t+horizon.
        last_train_label_end = fold.train.stop - 1 + horizon
        last_validation_label_end = fold.validation.stop - 1 + horizon
        assert fold.train.start >= WARMUP_BARS
        assert last_train_label_end < fold.validation.start, "training labels see the validation slice"
        assert last_validation_label_end + EMBARGO_BARS < fold.test.start, "validation labels see the test slice"
        assert fold.test.stop + horizon <= n_bars, "test labels would run past the end of data"
        assert len(fold.train) >= MIN_TRAIN_BARS and len(fold.validation) >= MIN_VALIDATION_BARS
        assert len(fold.test) >= MIN_TEST_BARS
    # Anchored walk-forward: consecutive, equal, non-overlapping test slices; growing training.
    for earlier, later in zip(plan, plan[1:], strict=False):
        assert earlier.test.stop == later.test.start
        assert len(earlier.test) == len(later.test)
        assert later.training_window.stop > earlier.training_window.stop
        assert later.train.start == earlier.train.start


def test_too_few_bars_are_refused_with_the_numbers():
    needed = minimum_bars(3, 48)
    build_folds(needed, 3, 48)
    with pytest.raises(ValueError, match=rf"need at least {needed} bars, found {needed - 1}"):
        build_folds(needed - 1, 3, 48)
    with pytest.raises(ValueError, match="folds expected >= 2, found 1"):
        build_folds(20_000, 1, 48)


@pytest.mark.parametrize(("folds", "horizons"), [(2, "H1"), (3, "H1,H2,H4"), (5, "H6"), (8, "H2,H12")])
def test_minimum_backtest_days_is_exactly_what_the_folds_need(folds, horizons):
    spec = CampaignSpec(campaign_id="folds-001", group="defi", folds=folds, horizons=horizons, backtest_days=400)
    days = minimum_backtest_days(spec)
    max_horizon = max(spec.horizon_bars)

    build_folds(days * BARS_PER_DAY, folds, max_horizon)
    assert (days - 1) * BARS_PER_DAY < minimum_bars(folds, max_horizon)
    CampaignSpec(campaign_id="folds-001", group="defi", folds=folds, horizons=horizons, backtest_days=days)
