"""Timeframes: how long one candle lasts, and how hours become bars (DESIGN.md, manual §6.5.1).

A campaign trades one timeframe. Its horizons stay in hours (``H1`` = one hour, whatever the
bar), so they become a whole number of bars by timeframe — ``H1`` is 12 bars of 5 minutes and
1 bar of an hour; an horizon shorter than a bar, or not a whole number of bars, is refused.
The model's look-backs and the walk-forward floors (features.py, folds.py) are counted in bars.
"""

from __future__ import annotations

from typing import Literal, get_args

Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h"]
TIMEFRAMES: tuple[str, ...] = get_args(Timeframe)
DEFAULT_TIMEFRAME: Timeframe = "5m"
_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240}
MINUTE_MS = 60_000
DAY_MINUTES = 24 * 60


def bar_minutes(timeframe: str) -> int:
    """Minutes in one bar of ``timeframe``; a name outside ``TIMEFRAMES`` is refused by name."""
    if timeframe not in _MINUTES:
        raise ValueError(f"timeframe {timeframe!r} is invalid: expected one of {', '.join(TIMEFRAMES)}")
    return _MINUTES[timeframe]


def bar_ms(timeframe: str) -> int:
    """Milliseconds between the open times of two consecutive bars."""
    return bar_minutes(timeframe) * MINUTE_MS


def bars_per_day(timeframe: str) -> int:
    return DAY_MINUTES // bar_minutes(timeframe)


def hours_to_bars(hours: int, timeframe: str) -> int:
    """``hours`` as a whole number of bars of ``timeframe`` (ValueError naming both otherwise)."""
    minutes = bar_minutes(timeframe)
    if (hours * 60) % minutes:
        raise ValueError(f"horizon H{hours} is not a whole number of {timeframe} bars: expected a multiple of "
                         f"{minutes // 60 if minutes >= 60 else minutes / 60:g} hour(s)")
    return hours * 60 // minutes


def describe_spacing(ms: int) -> str:
    """A bar spacing as a person says it: ``60000 ms (1m)``, ``3600000 ms (1h)``, ``7000 ms``."""
    for name, minutes in _MINUTES.items():
        if ms == minutes * MINUTE_MS:
            return f"{ms} ms ({name})"
    if ms % MINUTE_MS == 0:
        return f"{ms} ms ({ms // MINUTE_MS} minutes)"
    return f"{ms} ms"
