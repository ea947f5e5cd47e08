"""Market candles: where a campaign's OHLCV bars come from, and whether they are usable.

Bars have the campaign's ``timeframe`` (5 minutes by default; contracts/timeframes.py).

Two sources (``CampaignSpec.data_source``):

* ``synthetic`` (default) — bars generated deterministically from (campaign seed, symbol) with
  the properties real crypto bars have: heavy-tailed returns (Student-t), volatility
  clustering (GARCH(1,1)), calm/turbulent regime switches with their own drift, a per-symbol
  price level and volatility, intrabar highs and lows, and volume that rises with volatility.
  Volatility per bar grows with the square root of the bar's length; regimes last days whatever
  the timeframe. ``planted_signal`` > 0 adds trend spells (about 96 bars each, alternating up and down) whose
  drift is a fraction of the volatility: momentum features see a spell a few bars after it
  starts, so a model can learn it — a known, learnable signal for tests. The window ends at a fixed date so that the same spec gives the same bars.
* ``files`` — a directory (``data_dir``) with the symbol's files, named ``<SYMBOL>.<ext>`` or
  ``<SYMBOL>-….<ext>`` (Binance's monthly ``SOLUSDC-5m-2024-01.zip``):

  - Binance kline CSV, headerless 12 columns (open_time, open, high, low, close, volume,
    close_time, quote_volume, trades, taker_buy_base, taker_buy_quote, ignore), plain or inside
    a ``.zip``; open_time in epoch ms (or µs, Binance spot files since 2025);
  - plain CSV or Parquet with a header: ``timestamp`` (epoch ms or ISO 8601; naive = UTC) and
    ``open, high, low, close, volume``.

  Files are ordered by their first timestamp; rows are kept in file order so that disorder or
  duplicates stay visible to ``check_candles``.

Both sources return the last ``backtest_days`` days as a frame with ``timestamp`` (int64 epoch
ms, bar open time) and ``open, high, low, close, volume`` (float64).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.acquisition.folds import minimum_bars
from cvn_assets.contracts.timeframes import DEFAULT_TIMEFRAME, bar_minutes, bar_ms, bars_per_day, describe_spacing

if TYPE_CHECKING:
    from cvn_assets.contracts.campaign import CampaignSpec

BAR_MS = bar_ms(DEFAULT_TIMEFRAME)  # the default timeframe's spacing
DAY_MS = 86_400_000
OHLCV = ("open", "high", "low", "close", "volume")
CANDLE_COLUMNS = ("timestamp", *OHLCV)
BINANCE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore",
)  # fmt: skip
FILE_SUFFIXES = (".csv", ".zip", ".parquet")
# The synthetic window ends here (bar open times before it), whatever day the campaign runs.
SYNTHETIC_END_MS = int(datetime(2026, 3, 28, tzinfo=UTC).timestamp() * 1000)
# Plausible epoch-ms range (2001 … 2286): smaller integers are seconds, larger are µs or ns.
_MIN_EPOCH_MS = 10**12
_MAX_EPOCH_MS = 10**13


def load_candles(spec: CampaignSpec, symbol: str) -> pd.DataFrame:
    """The last ``spec.backtest_days`` days of ``spec.timeframe`` bars of ``symbol`` (module docstring)."""
    if spec.data_source == "synthetic":
        return synthetic_candles(symbol, seed=spec.seed, days=spec.backtest_days, planted_signal=spec.planted_signal,
                                 timeframe=spec.timeframe)
    if spec.data_dir is None:
        raise ValueError("data_dir is required when data_source is 'files'")
    return file_candles(Path(spec.data_dir), symbol, days=spec.backtest_days, timeframe=spec.timeframe)


# ----------------------------------------------------------------------------------- synthetic


def _symbol_rng(seed: int, symbol: str, *path: int) -> np.random.Generator:
    # hashlib, not hash(): Python's str hash changes with every process.
    digest = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big")
    return np.random.default_rng(np.random.SeedSequence([seed, digest, *path]))


def synthetic_candles(symbol: str, seed: int, days: int, planted_signal: float = 0.0,
                      timeframe: str = DEFAULT_TIMEFRAME, path: int = 0, end_ms: int = SYNTHETIC_END_MS) -> pd.DataFrame:
    """Deterministic ``timeframe`` bars for (seed, symbol) over ``days`` days ending at ``end_ms`` (module docstring).

    ``path`` > 0 draws another stretch of the same market (same price level, volatility and volume
    scale, new random path): the later windows that model operations test a model on.
    """
    rng = _symbol_rng(seed, symbol)
    per_day = bars_per_day(timeframe)
    burn_in = 2 * per_day
    n = days * per_day
    total = n + burn_in

    level = 10 ** rng.uniform(-4.5, 4.5)
    # Drawn as a 5-minute volatility, then scaled to the bar: variance adds up over time.
    base_sigma = rng.uniform(0.0012, 0.0040) * np.sqrt(bar_minutes(timeframe) / bar_minutes(DEFAULT_TIMEFRAME))
    base_volume = 10 ** rng.uniform(3.0, 7.0)
    if path:
        rng = _symbol_rng(seed, symbol, path)

    # Regimes: geometric spells, calm (mean 2 days) and turbulent (mean half a day), each spell
    # with its own small drift; turbulence doubles volatility.
    regime_sigma = np.empty(total)
    regime_drift = np.empty(total)
    position, turbulent = 0, False
    while position < total:
        mean_bars = max(1, per_day // 2) if turbulent else 2 * per_day
        length = int(rng.geometric(1.0 / mean_bars))
        stop = min(total, position + length)
        regime_sigma[position:stop] = 2.2 if turbulent else 1.0
        regime_drift[position:stop] = rng.normal(0.0, 0.05 if turbulent else 0.02) * base_sigma
        position, turbulent = stop, not turbulent

    # The planted signal: trend spells (mean 96 bars) whose direction flips at random; while a
    # spell lasts, the drift is a fraction of the bar's volatility in its direction, so momentum
    # features reveal it a few bars after it starts.
    trend = np.empty(total)
    position, direction = 0, 1.0 if rng.random() < 0.5 else -1.0
    while position < total:
        stop = min(total, position + int(rng.geometric(1.0 / 96)))
        trend[position:stop] = direction
        position, direction = stop, -direction
    trend *= 0.5 * planted_signal

    # GARCH(1,1) volatility with Student-t(4) shocks scaled to unit variance: clustering and fat tails.
    df_t = 4.0
    shocks = rng.standard_t(df_t, size=total) / np.sqrt(df_t / (df_t - 2.0))
    alpha, beta = 0.08, 0.90
    omega = (1.0 - alpha - beta) * base_sigma**2
    sigma = np.empty(total)
    variance, previous_shock = base_sigma**2, 0.0
    # A recursion over bars (each depends on the previous one): one pass, no horizon inside.
    for t in range(total):
        variance = omega + alpha * previous_shock**2 + beta * variance
        previous_shock = np.sqrt(variance) * shocks[t]
        sigma[t] = np.sqrt(variance)
    sigma *= regime_sigma
    log_return = regime_drift + sigma * (shocks + trend)
    log_price = np.log(level) + np.cumsum(log_return)

    log_price, sigma, log_return = log_price[burn_in:], sigma[burn_in:], log_return[burn_in:]
    close = np.exp(log_price)
    open_ = np.concatenate([[np.exp(log_price[0] - log_return[0])], close[:-1]])
    # Intrabar excursions beyond the body, of the order of the bar's volatility.
    high = np.maximum(open_, close) * np.exp(0.6 * sigma * np.abs(rng.standard_normal(n)))
    low = np.minimum(open_, close) * np.exp(-0.6 * sigma * np.abs(rng.standard_normal(n)))
    bar_move = np.abs(np.diff(log_price, prepend=log_price[0] - log_return[0])) / sigma
    volume = base_volume * np.exp(
        np.log(sigma / base_sigma) + 0.4 * (bar_move - 0.8) + 0.35 * rng.standard_normal(n)
    )
    timestamp = end_ms - (n - np.arange(n, dtype=np.int64)) * bar_ms(timeframe)
    return pd.DataFrame(
        {"timestamp": timestamp, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )


# --------------------------------------------------------------------------------------- files


def symbol_files(data_dir: Path, symbol: str) -> list[Path]:
    """Files of ``data_dir`` that belong to ``symbol``: ``SYMBOL.ext`` or ``SYMBOL-….ext`` / ``SYMBOL_….ext``."""
    if not data_dir.is_dir():
        raise ValueError(f"data_dir {str(data_dir)!r}: expected a directory of OHLCV files, found none")
    upper = symbol.upper()
    found = []
    for path in sorted(data_dir.iterdir()):
        name = path.name.upper()
        if not path.is_file() or path.suffix.lower() not in FILE_SUFFIXES:
            continue
        stem = name[: -len(path.suffix)]
        if stem == upper or name.startswith((f"{upper}-", f"{upper}_")):
            found.append(path)
    return found


def file_candles(data_dir: Path, symbol: str, days: int, timeframe: str = DEFAULT_TIMEFRAME) -> pd.DataFrame:
    """Read and concatenate the symbol's files; keep the last ``days`` days of ``timeframe`` bars."""
    paths = symbol_files(data_dir, symbol)
    if not paths:
        raise ValueError(
            f"data_dir {str(data_dir)!r}: expected files for {symbol} named {symbol}.csv, {symbol}.parquet "
            f"or {symbol}-*.csv / {symbol}-*.zip, found none"
        )
    frames = []
    for path in paths:
        frames.extend(_read_path(path))
    frames = [frame for _, frame in sorted(frames, key=lambda item: (int(item[1]["timestamp"].iloc[0]), item[0]))]
    candles = pd.concat(frames, ignore_index=True)
    problem = spacing_problem(candles["timestamp"].to_numpy(), timeframe)
    if problem:
        raise ValueError(f"data_dir {str(data_dir)!r} ({symbol}): {problem} in {[p.name for p in paths]}")
    cut = int(candles["timestamp"].max()) - days * DAY_MS
    return candles[candles["timestamp"] > cut].reset_index(drop=True)


def _read_path(path: Path) -> list[tuple[str, pd.DataFrame]]:
    """(source name, candles) for every CSV in ``path`` (a zip may hold several)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            table = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: expected a Parquet file, found unreadable bytes ({exc})") from None
        return [(path.name, _plain_candles(table, str(path)))]
    if suffix == ".csv":
        return [(path.name, _csv_candles(path.read_bytes(), str(path)))]
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(name for name in archive.namelist() if name.lower().endswith(".csv"))
            if not members:
                raise ValueError(f"{path}: expected a zip holding Binance kline .csv files, found {archive.namelist()}")
            return [(f"{path.name}:{name}", _csv_candles(archive.read(name), f"{path}:{name}")) for name in members]
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path}: expected a zip archive, found unreadable bytes ({exc})") from None


def _csv_candles(data: bytes, where: str) -> pd.DataFrame:
    first_line = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    if not first_line:
        raise ValueError(f"{where}: expected CSV rows, found an empty file")
    fields = [field.strip().strip('"').lower() for field in first_line.split(",")]
    try:
        if fields[0] == "open_time":  # Binance files with a header row (futures archives)
            return _binance_candles(pd.read_csv(io.BytesIO(data), header=0, dtype=str), where)
        if fields[0].lstrip("-").isdigit():  # headerless: Binance kline layout
            return _binance_candles(pd.read_csv(io.BytesIO(data), header=None, dtype=str), where)
        return _plain_candles(pd.read_csv(io.BytesIO(data)), where)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: expected a CSV file, found unparsable text ({exc})") from None


def _binance_candles(table: pd.DataFrame, where: str) -> pd.DataFrame:
    if table.shape[1] != len(BINANCE_COLUMNS):
        raise ValueError(
            f"{where}: expected the Binance kline layout of {len(BINANCE_COLUMNS)} columns "
            f"({', '.join(BINANCE_COLUMNS)}), found {table.shape[1]} columns"
        )
    table.columns = list(BINANCE_COLUMNS)
    open_time = _numeric(table["open_time"], "open_time", where)
    if (open_time % 1 != 0).any():
        raise ValueError(f"{where}: column 'open_time' expected integer epoch ms, found fractions")
    open_time = open_time.astype(np.int64)
    # Binance spot archives switched open_time to microseconds on 2025-01-01.
    open_time = open_time.where(open_time < _MAX_EPOCH_MS, open_time // 1000)
    frame = pd.DataFrame({"timestamp": open_time})
    for column in OHLCV:
        frame[column] = _numeric(table[column], column, where)
    return _finish(frame, where)


def _plain_candles(table: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [column for column in CANDLE_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(
            f"{where}: expected columns {list(CANDLE_COLUMNS)} (or the headerless Binance kline layout), "
            f"missing {missing}; found {[str(c) for c in table.columns]}"
        )
    frame = pd.DataFrame({"timestamp": _timestamps_ms(table["timestamp"], where)})
    for column in OHLCV:
        frame[column] = _numeric(table[column], column, where)
    return _finish(frame, where)


def _numeric(column: pd.Series, name: str, where: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{where}: column {name!r} expected numbers, found {column.iloc[row]!r} at row {row}")
    return values.astype(np.float64).reset_index(drop=True)


def _timestamps_ms(column: pd.Series, where: str) -> pd.Series:
    """Epoch ms from integers (ms) or ISO 8601 text / datetimes (naive = UTC)."""
    if column.isna().any():
        raise ValueError(f"{where}: column 'timestamp' expected a value on every row, found {int(column.isna().sum())} empty")
    if pd.api.types.is_integer_dtype(column) or pd.api.types.is_float_dtype(column):
        if (column % 1 != 0).any():
            raise ValueError(f"{where}: column 'timestamp' expected integer epoch ms, found fractions")
        values = column.astype(np.int64)
        if values.min() < _MIN_EPOCH_MS or values.max() >= _MAX_EPOCH_MS:
            raise ValueError(
                f"{where}: column 'timestamp' expected epoch milliseconds (13 digits), "
                f"found values from {values.min()} to {values.max()} (seconds? microseconds?)"
            )
        return values.reset_index(drop=True)
    try:
        parsed = pd.to_datetime(column, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: column 'timestamp' expected epoch ms or ISO 8601, found {column.iloc[0]!r} ({exc})") from None
    return pd.Series(parsed.dt.as_unit("ms").astype("int64").to_numpy(), dtype=np.int64)


def _finish(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    if frame.empty:
        raise ValueError(f"{where}: expected candle rows, found none")
    return frame.astype({"timestamp": np.int64, **dict.fromkeys(OHLCV, np.float64)})


# -------------------------------------------------------------------------------------- checks


class CandleReport(BaseModel):
    """What the candle checks found; ``passed`` is False when any ``problems`` were found.

    Gaps (missing bars, e.g. an exchange maintenance) are reported in ``warnings``: the models
    treat bars as consecutive, which a few gaps do not invalidate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_bars: int
    first_timestamp_ms: int | None
    last_timestamp_ms: int | None
    strictly_increasing: bool
    duplicate_timestamps: int = Field(description="rows whose timestamp repeats an earlier one")
    out_of_order: int = Field(description="steps back in time between consecutive rows")
    timeframe: str = Field(description="the bar length the campaign declared (5m, 1h, …)")
    irregular_steps: int = Field(description="steps that are not a multiple of the bar length")
    gaps: int = Field(description="places where one or more bars are missing")
    missing_bars: int
    ohlc_violations: int = Field(description="bars with high < max(open, close) or low > min(open, close)")
    non_positive: int = Field(description="prices <= 0 or negative volumes")
    nan_count: int
    bars_needed: int = Field(description="bars the campaign's folds and horizons need")
    enough_bars: bool
    passed: bool
    problems: list[str]
    warnings: list[str]


def spacing_problem(ts: np.ndarray, timeframe: str) -> str | None:
    """Why bars do not have ``timeframe``'s spacing (median step between distinct open times), or None."""
    steps = np.diff(np.unique(ts))
    expected = bar_ms(timeframe)
    if not steps.size or int(np.median(steps)) == expected:
        return None
    return (f"expected {timeframe} bars ({expected} ms apart), found a median spacing of "
            f"{describe_spacing(int(np.median(steps)))}")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_candles(candles: pd.DataFrame, spec: CampaignSpec) -> CandleReport:
    """Check that ``candles`` are usable for ``spec``'s walk-forward (see ``CandleReport``)."""
    problems: list[str] = []
    warnings: list[str] = []
    missing = [column for column in CANDLE_COLUMNS if column not in candles.columns]
    if missing:
        problems.append(f"columns: expected {list(CANDLE_COLUMNS)}, missing {missing}")
    n = len(candles)
    ts = candles["timestamp"].to_numpy() if "timestamp" in candles else np.zeros(0, dtype=np.int64)
    if ts.size and ts.dtype != np.int64:
        problems.append(f"timestamp: expected int64 epoch ms, found dtype {ts.dtype}")
        ts = ts.astype(np.int64)
    steps = np.diff(ts)
    step_ms = bar_ms(spec.timeframe)
    spacing = spacing_problem(ts, spec.timeframe)
    if spacing:
        problems.append(f"timestamp: {spacing}")
    duplicates = int(n - np.unique(ts).size) if ts.size else 0
    out_of_order = int((steps < 0).sum())
    irregular = int(((steps > 0) & (steps % step_ms != 0)).sum())
    # Bars of another timeframe are one spacing problem, not thousands of gaps.
    gap_steps = steps[(steps > step_ms) & (steps % step_ms == 0)] if not spacing else steps[:0]
    gaps = int(gap_steps.size)
    missing_bars = int((gap_steps // step_ms - 1).sum())
    if duplicates:
        first = int(ts[1:][steps == 0][0]) if (steps == 0).any() else int(ts[0])
        problems.append(f"timestamp: {duplicates} duplicated bar(s), e.g. {_when(first)}")
    if out_of_order:
        first = int(ts[1:][steps < 0][0])
        problems.append(f"timestamp: expected strictly increasing, found {out_of_order} step(s) back, e.g. at {_when(first)}")
    if irregular and not spacing:
        problems.append(f"timestamp: expected {spec.timeframe} steps, found {irregular} step(s) that are not "
                        f"a multiple of {spec.timeframe}")
    if gaps:
        warnings.append(f"timestamp: {gaps} gap(s), {missing_bars} missing {spec.timeframe} bar(s)")

    present = [column for column in OHLCV if column in candles.columns]
    values = candles[present].to_numpy(dtype=np.float64) if present else np.zeros((n, 0))
    nan_count = int(np.isnan(values).sum()) + (int(candles["timestamp"].isna().sum()) if "timestamp" in candles else 0)
    if nan_count:
        problems.append(f"values: expected no NaN, found {nan_count}")
    ohlc_violations = non_positive = 0
    if not missing:
        open_, high, low, close, volume = (candles[c].to_numpy(dtype=np.float64) for c in OHLCV)
        bad_high = high < np.maximum(open_, close)
        bad_low = low > np.minimum(open_, close)
        ohlc_violations = int((bad_high | bad_low).sum())
        if ohlc_violations:
            row = int(np.flatnonzero(bad_high | bad_low)[0])
            problems.append(
                f"ohlc: expected high >= max(open, close) and low <= min(open, close), found {ohlc_violations} "
                f"bar(s), e.g. {_when(int(ts[row]))} open={open_[row]} high={high[row]} low={low[row]} close={close[row]}"
            )
        non_positive = int((np.stack([open_, high, low, close]) <= 0).any(axis=0).sum() + (volume < 0).sum())
        if non_positive:
            problems.append(f"values: expected prices > 0 and volumes >= 0, found {non_positive} bad bar(s)")

    needed = minimum_bars(spec.folds, max(spec.horizon_bars))
    enough = n >= needed
    if not enough:
        problems.append(
            f"bars: {spec.folds} folds with horizons {spec.horizons}h need at least {needed} bars, found {n} "
            f"{spec.timeframe} bars"
        )
    return CandleReport(
        n_bars=n,
        timeframe=spec.timeframe,
        first_timestamp_ms=int(ts[0]) if ts.size else None,
        last_timestamp_ms=int(ts[-1]) if ts.size else None,
        strictly_increasing=bool(ts.size and (steps > 0).all()),
        duplicate_timestamps=duplicates,
        out_of_order=out_of_order,
        irregular_steps=irregular,
        gaps=gaps,
        missing_bars=missing_bars,
        ohlc_violations=ohlc_violations,
        non_positive=non_positive,
        nan_count=nan_count,
        bars_needed=needed,
        enough_bars=enough,
        passed=not problems,
        problems=problems,
        warnings=warnings,
    )
