"""Triple-barrier labels: would a trade opened at the close of bar ``t`` have won?

A trade is opened at the close of bar ``t`` (the bar whose features the model just read). Its
barriers are ATR-scaled (PTE, manual §9.1):

* take-profit at ``close[t] + tp × ATR[t]``, stop-loss at ``close[t] − sl × ATR[t]``;
* it watches bars ``t+1 … t+horizon``; the first bar whose high reaches the take-profit or whose
  low reaches the stop-loss closes it;
* **same-bar double touch**: when one bar reaches both barriers, 5-minute bars cannot tell which
  came first, so the stop-loss is assumed (conservative: never a win that might have been a loss);
* a stop-loss fills at the barrier, or at the bar's open if the market gapped through it;
  a take-profit fills at the barrier (never better);
* **timeout**: no barrier within the horizon → exit at the close of bar ``t+horizon``;
* **end of data**: when fewer than ``horizon`` bars follow ``t``, the trade is watched until the
  last bar and times out there (the walk-forward folds never test such bars, see folds.py).

``y`` (BUY) is 1 exactly when the take-profit is reached first. ``trade_return`` is the simple
return of the trade net of the round-trip fees (``fees_bps`` basis points).

The computation is vectorised with numpy over (bars × horizon) blocks; blocks of rows bound the
memory of long horizons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cvn_assets.contracts.blob import ExitReason, Pte

# Rows per block so that one (rows × horizon) boolean block stays around 4 M cells.
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class BarrierOutcome:
    """Per-bar outcome of the trade opened at that bar under one PTE (all arrays length n)."""

    y: np.ndarray  # int8: 1 = take-profit first (BUY)
    exit_reason: np.ndarray  # int8: ExitReason
    exit_offset: np.ndarray  # int64: bars held (0 for the last bar, which has no future)
    trade_return: np.ndarray  # float64: net simple return


def _first_true(block: np.ndarray) -> np.ndarray:
    """Column index of the first True per row, ``block.shape[1]`` when none."""
    first = np.argmax(block, axis=1)
    return np.where(block.any(axis=1), first, block.shape[1])


def triple_barrier(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    atr: np.ndarray,
    pte: Pte,
    fees_bps: float,
) -> BarrierOutcome:
    """Label every bar with the outcome of a trade opened at its close (module docstring)."""
    open_, high, low, close, atr = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close, atr))
    n = close.shape[0]
    if not all(a.shape == (n,) for a in (open_, high, low, atr)):
        raise ValueError("triple_barrier: open, high, low, close and atr expected equal 1-D lengths")
    horizon = pte.horizon
    take_profit = close + pte.tp * atr
    stop_loss = close - pte.sl * atr

    # Future bars t+1 … t+horizon of every t, padded past the end: NaN never touches a barrier.
    pad = np.full(horizon, np.nan)
    future_high = sliding_window_view(np.concatenate([high[1:], pad, [np.nan]]), horizon)[:n]
    future_low = sliding_window_view(np.concatenate([low[1:], pad, [np.nan]]), horizon)[:n]
    future_open = sliding_window_view(np.concatenate([open_[1:], pad, [np.nan]]), horizon)[:n]

    first_tp = np.empty(n, dtype=np.int64)
    first_sl = np.empty(n, dtype=np.int64)
    rows = max(1, _BLOCK_CELLS // horizon)
    for start in range(0, n, rows):
        block = slice(start, min(n, start + rows))
        first_tp[block] = _first_true(future_high[block] >= take_profit[block, None])
        first_sl[block] = _first_true(future_low[block] <= stop_loss[block, None])

    index = np.arange(n)
    # The last bar a trade can watch: t+horizon, or the end of data.
    last_offset = np.minimum(horizon, n - 1 - index)
    stopped = (first_sl < horizon) & (first_sl <= first_tp)  # same bar → stop-loss first
    took_profit = (first_tp < horizon) & ~stopped

    exit_reason = np.full(n, ExitReason.TIMEOUT, dtype=np.int8)
    exit_reason[stopped] = ExitReason.SL
    exit_reason[took_profit] = ExitReason.TP
    exit_offset = last_offset.copy()
    exit_offset[stopped] = first_sl[stopped] + 1
    exit_offset[took_profit] = first_tp[took_profit] + 1

    exit_price = close[index + last_offset]
    exit_price[took_profit] = take_profit[took_profit]
    gap_open = future_open[stopped, first_sl[stopped]]
    exit_price[stopped] = np.minimum(stop_loss[stopped], gap_open)

    trade_return = exit_price / close - 1.0 - fees_bps / 10_000.0
    return BarrierOutcome(
        y=took_profit.astype(np.int8),
        exit_reason=exit_reason,
        exit_offset=exit_offset,
        trade_return=trade_return,
    )
