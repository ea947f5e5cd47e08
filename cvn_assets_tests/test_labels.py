"""Triple-barrier labels: the vectorised product code equals a plain per-bar reference."""

from __future__ import annotations

import numpy as np
import pytest

from cvn_assets.acquisition.labels import triple_barrier
from cvn_assets.contracts.blob import ExitReason, Pte


def reference_triple_barrier(open_, high, low, close, atr, pte, fees_bps):
    """The rule of labels.py written the obvious way: one trade at a time, one bar at a time."""
    n = len(close)
    y = np.zeros(n, dtype=np.int8)
    reason = np.zeros(n, dtype=np.int8)
    offset = np.zeros(n, dtype=np.int64)
    ret = np.zeros(n)
    for t in range(n):
        take_profit = close[t] + pte.tp * atr[t]
        stop_loss = close[t] - pte.sl * atr[t]
        last = min(t + pte.horizon, n - 1)
        exit_price, exit_reason, held = close[last], ExitReason.TIMEOUT, last - t
        for j in range(t + 1, last + 1):
            if low[j] <= stop_loss:  # checked first: a bar touching both is a stop-loss
                exit_price, exit_reason, held = min(stop_loss, open_[j]), ExitReason.SL, j - t
                break
            if high[j] >= take_profit:
                exit_price, exit_reason, held = take_profit, ExitReason.TP, j - t
                break
        y[t] = exit_reason == ExitReason.TP
        reason[t], offset[t] = exit_reason, held
        ret[t] = exit_price / close[t] - 1.0 - fees_bps / 10_000.0
    return y, reason, offset, ret


def random_bars(seed: int, n: int):
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    # Jumpy opens: some bars gap through a barrier.
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, 0.002, n))
    spread = np.abs(rng.normal(0.0, 0.003, (2, n)))
    # One bar in ten is very wide, so both barriers are often touched within it.
    spread[:, rng.random(n) < 0.1] *= 8.0
    high = np.maximum(open_, close) * np.exp(spread[0])
    low = np.minimum(open_, close) * np.exp(-spread[1])
    atr = np.abs(rng.normal(0.4, 0.15, n)) + 0.05
    return open_, high, low, close, atr


@pytest.mark.parametrize(
    ("seed", "pte"),
    [
        (1, Pte(sl=1.0, tp=1.5, horizon=12)),
        (2, Pte(sl=0.5, tp=0.5, horizon=3)),
        (3, Pte(sl=2.0, tp=3.0, horizon=48)),
        (4, Pte(sl=1.5, tp=2.0, horizon=1)),
    ],
)
def test_labels_equal_the_per_bar_reference(seed, pte):
    bars = random_bars(seed, 700)
    product = triple_barrier(*bars, pte, fees_bps=10.0)
    y, reason, offset, ret = reference_triple_barrier(*bars, pte, fees_bps=10.0)

    np.testing.assert_array_equal(product.y, y)
    np.testing.assert_array_equal(product.exit_reason, reason)
    np.testing.assert_array_equal(product.exit_offset, offset)
    np.testing.assert_allclose(product.trade_return, ret, rtol=0, atol=1e-15)
    # The random data really exercise every branch, including the end of data.
    assert set(np.unique(reason)) == {ExitReason.TP, ExitReason.SL, ExitReason.TIMEOUT}
    assert product.exit_offset[-1] == 0 and product.exit_reason[-1] == ExitReason.TIMEOUT


def test_a_bar_touching_both_barriers_is_a_stop_loss():
    close = np.array([100.0, 100.0, 100.0])
    open_ = close.copy()
    high = np.array([100.0, 103.0, 100.0])  # bar 1 reaches the take-profit (102) ...
    low = np.array([100.0, 98.0, 100.0])  # ... and the stop-loss (99) in the same bar
    atr = np.ones(3)
    outcome = triple_barrier(open_, high, low, close, atr, Pte(sl=1.0, tp=2.0, horizon=2), fees_bps=0.0)

    assert outcome.exit_reason[0] == ExitReason.SL
    assert outcome.y[0] == 0
    assert outcome.trade_return[0] == pytest.approx(-0.01)


def test_a_stop_loss_gapped_through_fills_at_the_open_and_fees_are_charged():
    close = np.array([100.0, 95.0])
    open_ = np.array([100.0, 96.0])  # opened below the 99 stop: the fill is 96, not 99
    high = np.array([100.0, 96.5])
    low = np.array([100.0, 94.0])
    outcome = triple_barrier(open_, high, low, close, np.ones(2), Pte(sl=1.0, tp=2.0, horizon=5), fees_bps=25.0)

    assert outcome.exit_reason[0] == ExitReason.SL
    assert outcome.trade_return[0] == pytest.approx(96.0 / 100.0 - 1.0 - 0.0025)


def test_end_of_data_times_out_at_the_last_close():
    close = np.array([100.0, 100.5, 101.0])
    outcome = triple_barrier(close, close + 0.1, close - 0.1, close, np.full(3, 5.0), Pte(sl=1.0, tp=1.0, horizon=10), 0.0)

    np.testing.assert_array_equal(outcome.exit_reason, [ExitReason.TIMEOUT] * 3)
    np.testing.assert_array_equal(outcome.exit_offset, [2, 1, 0])
    assert outcome.trade_return[0] == pytest.approx(0.01)
    assert outcome.trade_return[2] == 0.0


def test_long_horizons_are_computed_in_blocks_with_the_same_result():
    bars = random_bars(9, 3000)
    pte = Pte(sl=3.0, tp=3.0, horizon=576)  # 48 hours: computed block by block
    product = triple_barrier(*bars, pte, fees_bps=0.0)
    y, reason, _, _ = reference_triple_barrier(*bars, pte, fees_bps=0.0)

    np.testing.assert_array_equal(product.y, y)
    np.testing.assert_array_equal(product.exit_reason, reason)
