"""The causal feature set: what a model may know about the market at the close of bar ``t``.

Every feature at bar ``t`` is computed from bars ``0 … t`` only (trailing rolling windows,
recursive averages, the bar's own timestamp), so a model never sees the future it is asked to
predict; ``cvn_assets_tests/test_features.py`` proves it by changing every bar after ``t``.
Prices enter through log returns and ratios, never through their level, so one model family
behaves the same on BONK at 2e-5 and BTC at 60,000.

The longest look-back is one day (288 bars): rows before ``WARMUP_BARS`` are incomplete (NaN)
and the walk-forward folds never use them.

=====================  =========================================================================
feature                meaning at the close of bar t
=====================  =========================================================================
ret_1 … ret_288        log return over the last 1, 3, 12, 48, 288 bars (momentum, 5 min … 1 day)
mom_12_vol             ret_12 divided by the volatility expected over 12 bars (trend strength)
vol_12, vol_48,        standard deviation of 1-bar log returns over 12, 48, 288 bars
vol_288
vol_ratio              vol_12 / vol_288: is volatility expanding or contracting (regime)
atr_pct                Wilder ATR(14) as a fraction of the close (the unit of the PTE barriers)
range_pct              (high − low) / close of the bar
range_mean_12          mean of range_pct over 12 bars
body_atr               (close − open) / ATR: direction and size of the bar's body
upper_wick_atr,        wick lengths / ATR (rejection of higher / lower prices)
lower_wick_atr
band_z_48, band_z_288  (close − SMA) / rolling std of the close over 48 and 288 bars (band position)
rsi_14                 Wilder RSI over 14 bars, scaled to [0, 1]
dist_high_48_atr,      distance of the close to the 48-bar high / low, in ATRs
dist_low_48_atr
volume_z_288           z-score of log(1 + volume) against the last 288 bars
volume_ratio_12        mean log(1 + volume) over 12 bars minus over 288 bars (activity burst)
hour_sin, hour_cos     UTC time of day on the unit circle (intraday seasonality)
=====================  =========================================================================

A ratio whose denominator is zero (a flat, volume-less market) is 0, not infinity: the bar
carries no information in that direction, and NaN would stop linear models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cvn_assets.acquisition.folds import WARMUP_BARS

ATR_BARS = 14
RETURN_LAGS = (1, 3, 12, 48, 288)
VOLATILITY_WINDOWS = (12, 48, 288)
DAY_MS = 86_400_000

FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{lag}" for lag in RETURN_LAGS),
    "mom_12_vol",
    *(f"vol_{window}" for window in VOLATILITY_WINDOWS),
    "vol_ratio",
    "atr_pct",
    "range_pct",
    "range_mean_12",
    "body_atr",
    "upper_wick_atr",
    "lower_wick_atr",
    "band_z_48",
    "band_z_288",
    "rsi_14",
    "dist_high_48_atr",
    "dist_low_48_atr",
    "volume_z_288",
    "volume_ratio_12",
    "hour_sin",
    "hour_cos",
)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, 0 where the denominator is 0 (see module docstring), NaN kept."""
    safe = denominator.where(denominator != 0)
    return (numerator / safe).where(denominator != 0, numerator * 0.0)


def average_true_range(candles: pd.DataFrame, bars: int = ATR_BARS) -> np.ndarray:
    """Wilder's ATR at each bar, causal: the unit of the stop-loss and take-profit barriers."""
    high, low, close = candles["high"], candles["low"], candles["close"]
    previous_close = close.shift(1)
    true_range = pd.concat([high - low, (high - previous_close).abs(), (low - previous_close).abs()], axis=1).max(axis=1)
    return true_range.ewm(alpha=1.0 / bars, adjust=False).mean().to_numpy(dtype=np.float64)


def build_features(candles: pd.DataFrame) -> pd.DataFrame:
    """The feature matrix (columns ``FEATURE_NAMES``, one row per candle, same index).

    This is also what a registered model expects on new candles: pass at least
    ``WARMUP_BARS + 1`` bars and use the rows from ``WARMUP_BARS`` on.
    """
    missing = [column for column in ("timestamp", "open", "high", "low", "close", "volume") if column not in candles]
    if missing:
        raise ValueError(f"candles: expected columns timestamp, open, high, low, close, volume; missing {missing}")
    open_, high, low, close = (candles[name].astype(np.float64) for name in ("open", "high", "low", "close"))
    log_close = np.log(close)
    log_return = log_close.diff()
    atr = pd.Series(average_true_range(candles), index=candles.index)
    features: dict[str, pd.Series] = {}

    for lag in RETURN_LAGS:
        features[f"ret_{lag}"] = log_close - log_close.shift(lag)
    for window in VOLATILITY_WINDOWS:
        features[f"vol_{window}"] = log_return.rolling(window).std()
    features["mom_12_vol"] = _ratio(features["ret_12"], features["vol_48"] * np.sqrt(12.0))
    features["vol_ratio"] = _ratio(features["vol_12"], features["vol_288"])
    features["atr_pct"] = atr / close
    range_pct = (high - low) / close
    features["range_pct"] = range_pct
    features["range_mean_12"] = range_pct.rolling(12).mean()
    features["body_atr"] = _ratio(close - open_, atr)
    features["upper_wick_atr"] = _ratio(high - np.maximum(open_, close), atr)
    features["lower_wick_atr"] = _ratio(np.minimum(open_, close) - low, atr)
    for window in (48, 288):
        features[f"band_z_{window}"] = _ratio(close - close.rolling(window).mean(), close.rolling(window).std())

    gain = log_return.clip(lower=0.0).ewm(alpha=1.0 / 14, adjust=False).mean()
    loss = (-log_return).clip(lower=0.0).ewm(alpha=1.0 / 14, adjust=False).mean()
    rsi = _ratio(gain, gain + loss)
    features["rsi_14"] = rsi.where(gain + loss != 0, 0.5)
    features["dist_high_48_atr"] = _ratio(high.rolling(48).max() - close, atr)
    features["dist_low_48_atr"] = _ratio(close - low.rolling(48).min(), atr)

    log_volume = np.log1p(candles["volume"].astype(np.float64))
    features["volume_z_288"] = _ratio(log_volume - log_volume.rolling(288).mean(), log_volume.rolling(288).std())
    features["volume_ratio_12"] = log_volume.rolling(12).mean() - log_volume.rolling(288).mean()

    angle = (candles["timestamp"].to_numpy(dtype=np.int64) % DAY_MS) / DAY_MS * 2.0 * np.pi
    features["hour_sin"] = pd.Series(np.sin(angle), index=candles.index)
    features["hour_cos"] = pd.Series(np.cos(angle), index=candles.index)

    frame = pd.DataFrame({name: features[name] for name in FEATURE_NAMES}, index=candles.index)
    # Rows before the longest look-back are incomplete even where pandas produced a number.
    frame.iloc[: min(WARMUP_BARS, len(frame))] = np.nan
    return frame.astype(np.float64)


def assert_complete(features: pd.DataFrame, rows: slice, where: str) -> None:
    """Fail loud if a feature the models will read is NaN or infinite (manual §17.1/§17.2 lesson)."""
    block = features.iloc[rows].to_numpy()
    bad = ~np.isfinite(block)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(
            f"{where}: feature {features.columns[column]!r} expected finite values, found "
            f"{block[row, column]} at bar {rows.start + row} ({int(bad.sum())} bad values)"
        )
