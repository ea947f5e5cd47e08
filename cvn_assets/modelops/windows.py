"""The windows model operations look at: where a registered model learned, and the latest market.

A registered version comes from a campaign (its ``campaign_id`` tag); that campaign's spec says
where its candles came from. The **training window** is those candles (read back from the object
store where the acquisition stored them, else reloaded from the same source). The **latest
window** is the last ``days`` days of the same market:

* ``files``: the last ``days`` days of the files in the data directory (the campaign's, unless
  another is given) — a production feed appends to them;
* ``synthetic``: a later stretch of the same synthetic market (same price level, volatility and
  volume scale, a new random path), placed right after the training window (``path`` 1, the next
  one 2, …). Two test knobs change it on purpose: ``planted_signal`` (0 removes the learnable
  signal) and ``regime_shift`` (multiplies every log move — returns, ranges — by that factor and
  volume by its square: a volatility regime the model never saw).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.acquisition.market_data import (
    BAR_MS, DAY_MS, SYNTHETIC_END_MS, check_candles, file_candles, load_candles, synthetic_candles,
)
from cvn_assets.contracts.blob import Window
from cvn_assets.contracts.campaign import CampaignSpec
from cvn_assets.storage.candles_io_manager import candles_key
from cvn_assets.storage.object_store import ObjectNotFound, ObjectStore


class MarketWindow(BaseModel):
    """Which latest window to read (module docstring). ``None`` = as the model's origin campaign."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int | None = Field(default=None, ge=1, le=3650, description="days of 5-minute bars; None = the campaign's")
    data_source: Literal["synthetic", "files"] | None = None
    data_dir: Path | None = Field(default=None, description="files: directory of OHLCV files")
    path: int = Field(default=1, ge=1, le=10_000, description="synthetic: which later stretch (1 = right after)")
    planted_signal: float | None = Field(default=None, ge=0, le=1, description="synthetic: signal strength")
    regime_shift: float = Field(default=1.0, gt=0, le=20, description="synthetic: volatility multiplier")


def window_spec(origin: CampaignSpec, window: MarketWindow) -> CampaignSpec:
    """The origin campaign's spec as it applies to the latest window (source, days, signal)."""
    source = window.data_source or origin.data_source
    if source == "files" and (window.data_dir or origin.data_dir) is None:
        raise ValueError("latest window: data_source 'files' needs a data directory (--data-dir)")
    if source == "synthetic" and window.data_dir is not None:
        raise ValueError("latest window: a data directory is only allowed with data_source 'files'")
    if source == "files" and (window.planted_signal is not None or window.regime_shift != 1.0):
        raise ValueError("latest window: planted_signal and regime_shift apply to synthetic data only")
    return origin.model_copy(update={
        "backtest_days": window.days or origin.backtest_days,
        "data_source": source,
        "data_dir": window.data_dir or (origin.data_dir if source == "files" else None),
        "planted_signal": origin.planted_signal if window.planted_signal is None else window.planted_signal,
    })


def shift_regime(candles: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Every log move of the prices times ``factor`` (OHLC order kept), volume times ``factor``²."""
    if factor == 1.0:
        return candles
    anchor = float(np.log(candles["close"].iloc[0]))
    shifted = candles.copy()
    for column in ("open", "high", "low", "close"):
        shifted[column] = np.exp(anchor + factor * (np.log(candles[column].to_numpy()) - anchor))
    shifted["volume"] = candles["volume"] * factor**2
    return shifted


def latest_candles(origin: CampaignSpec, crypto: str, window: MarketWindow) -> pd.DataFrame:
    """The latest window's candles of ``crypto``, checked like a campaign's (fail loud on bad bars)."""
    spec = window_spec(origin, window)
    if spec.data_source == "synthetic":
        end = SYNTHETIC_END_MS + window.path * spec.backtest_days * DAY_MS
        candles = synthetic_candles(crypto, seed=spec.seed, days=spec.backtest_days,
                                    planted_signal=spec.planted_signal, path=window.path, end_ms=end)
        candles = shift_regime(candles, window.regime_shift)
    else:
        candles = file_candles(Path(spec.data_dir), crypto, days=spec.backtest_days)
    report = check_candles(candles, spec)
    if not report.passed:
        raise ValueError(f"latest window {crypto}: expected usable 5-minute bars, found: {'; '.join(report.problems)}")
    return candles.reset_index(drop=True)


def training_candles(store: ObjectStore, prefix: str, origin: CampaignSpec, crypto: str) -> pd.DataFrame:
    """The candles the model learned on: as the acquisition stored them, else from the same source."""
    key = candles_key(prefix, origin.campaign_id, crypto)
    try:
        return pd.read_parquet(io.BytesIO(store.get(key)))
    except ObjectNotFound:
        if origin.data_source == "synthetic":  # swept by the retention rule: the generator gives the same bars
            return load_candles(origin, crypto)
        # Files move on: their last days today are not the window the model learned on.
        raise ValueError(f"training window of {origin.campaign_id}/{crypto}: expected its candles at "
                         f"{store.uri(key)}, found none (swept by retention?) and files cannot replay that window") from None


def window_of(candles: pd.DataFrame) -> Window:
    """The half-open time window the candles cover (first bar open → last bar close)."""
    ts = candles["timestamp"].to_numpy(dtype=np.int64)
    return Window(start_ms=int(ts[0]), end_ms=int(ts[-1]) + BAR_MS)
