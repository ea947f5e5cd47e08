"""Market candles: synthetic bars that look like crypto, real files in the formats traders have."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from cvn_assets.acquisition.market_data import BAR_MS, check_candles, load_candles, synthetic_candles
from cvn_assets.contracts.campaign import BARS_PER_DAY, CampaignSpec

COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


def spec(**overrides) -> CampaignSpec:
    return CampaignSpec(**{"campaign_id": "data-001", "group": "defi", **overrides})


# ----------------------------------------------------------------------------------- synthetic


def test_synthetic_candles_are_deterministic_per_seed_and_symbol():
    first = load_candles(spec(seed=3, backtest_days=15), "SOLUSDC")
    again = load_candles(spec(seed=3, backtest_days=15), "SOLUSDC")
    other_symbol = load_candles(spec(seed=3, backtest_days=15), "ADAUSDC")
    other_seed = load_candles(spec(seed=4, backtest_days=15), "SOLUSDC")

    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert not np.allclose(first["close"], other_symbol["close"])
    assert not np.allclose(first["close"], other_seed["close"])
    assert list(first.columns) == COLUMNS
    assert first["timestamp"].dtype == np.int64 and all(first[c].dtype == np.float64 for c in COLUMNS[1:])
    assert len(first) == 15 * BARS_PER_DAY
    assert (np.diff(first["timestamp"]) == BAR_MS).all()


def test_synthetic_candles_have_the_properties_of_crypto_bars():
    candles = synthetic_candles("BONKUSDC", seed=7, days=60)
    returns = np.diff(np.log(candles["close"].to_numpy()))
    absolute = np.abs(returns - returns.mean())
    standardised = (returns - returns.mean()) / returns.std()

    assert (standardised**4).mean() > 5.0, "heavy tails: kurtosis well above the normal's 3"
    lagged = [np.corrcoef(absolute[:-lag], absolute[lag:])[0, 1] for lag in (1, 12, 48)]
    assert min(lagged) > 0.1, f"volatility clustering: |r| autocorrelation {lagged}"
    daily_vol = pd.Series(returns).groupby(np.arange(returns.size) // BARS_PER_DAY).std()
    assert daily_vol.max() / daily_vol.min() > 2.0, "calm and turbulent regimes"
    bar_range = np.log(candles["high"] / candles["low"]).to_numpy()
    assert np.corrcoef(np.log(candles["volume"]), bar_range)[0, 1] > 0.3, "volume rises with volatility"
    assert check_candles(candles, spec()).passed
    levels = {symbol: synthetic_candles(symbol, seed=7, days=14)["close"].median() for symbol in ("SOLUSDC", "XRPUSDC", "ADAUSDC")}
    assert max(levels.values()) / min(levels.values()) > 10, f"per-symbol price levels {levels}"


# ---------------------------------------------------------------------------------------- files


def binance_rows(candles: pd.DataFrame, microseconds: bool = False) -> str:
    """Candles in Binance's headerless 12-column kline layout."""
    open_time = candles["timestamp"] * (1000 if microseconds else 1)
    close_time = open_time + (BAR_MS * (1000 if microseconds else 1)) - 1
    table = pd.DataFrame(
        {
            0: open_time, 1: candles["open"], 2: candles["high"], 3: candles["low"], 4: candles["close"],
            5: candles["volume"], 6: close_time, 7: candles["volume"] * candles["close"], 8: 100,
            9: candles["volume"] / 2, 10: candles["volume"] * candles["close"] / 2, 11: 0,
        }
    )  # fmt: skip
    return table.to_csv(header=False, index=False, float_format="%.10g")


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    return synthetic_candles("SOLUSDC", seed=1, days=20)


def test_a_directory_of_binance_kline_csvs_loads_the_last_days(tmp_path, market):
    halves = (market.iloc[: len(market) // 2], market.iloc[len(market) // 2 :])
    (tmp_path / "SOLUSDC-5m-2026-02.csv").write_text(binance_rows(halves[1]))
    (tmp_path / "SOLUSDC-5m-2026-01.csv").write_text(binance_rows(halves[0], microseconds=True))
    (tmp_path / "SOLUSDCX.csv").write_text("garbage that belongs to another symbol")

    candles = load_candles(spec(data_source="files", data_dir=tmp_path, backtest_days=15), "SOLUSDC")

    expected = market.iloc[-15 * BARS_PER_DAY :].reset_index(drop=True)
    assert list(candles.columns) == COLUMNS
    np.testing.assert_array_equal(candles["timestamp"], expected["timestamp"])
    np.testing.assert_allclose(candles[COLUMNS[1:]].to_numpy(), expected[COLUMNS[1:]].to_numpy(), rtol=1e-9)
    assert check_candles(candles, spec(backtest_days=15)).passed


def test_monthly_binance_zips_load_like_csvs(tmp_path, market):
    third = len(market) // 3
    for month in (1, 2, 3):
        part = market.iloc[(month - 1) * third : month * third]
        with zipfile.ZipFile(tmp_path / f"SOLUSDC-5m-2026-0{month}.zip", "w") as archive:
            archive.writestr(f"SOLUSDC-5m-2026-0{month}.csv", binance_rows(part))

    candles = load_candles(spec(data_source="files", data_dir=tmp_path, backtest_days=20), "SOLUSDC")

    np.testing.assert_array_equal(candles["timestamp"], market["timestamp"])
    np.testing.assert_allclose(candles["close"], market["close"], rtol=1e-9)


def test_plain_csv_with_iso_or_epoch_timestamps_and_parquet_load(tmp_path, market):
    iso = market.assign(timestamp=pd.to_datetime(market["timestamp"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    iso.to_csv(tmp_path / "SOLUSDC.csv", index=False)
    market.to_csv(tmp_path / "ADAUSDC.csv", index=False)
    market.to_parquet(tmp_path / "XRPUSDC.parquet", index=False)
    files = spec(data_source="files", data_dir=tmp_path, backtest_days=20)

    for symbol in ("SOLUSDC", "ADAUSDC", "XRPUSDC"):
        candles = load_candles(files, symbol)
        np.testing.assert_array_equal(candles["timestamp"], market["timestamp"])
        np.testing.assert_allclose(candles[COLUMNS[1:]].to_numpy(), market[COLUMNS[1:]].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("SOLUSDC-5m-2026-01.csv", "1769472000000,1,2,0.5,1.5,10,1769472299999,10,5\n", r"SOLUSDC-5m-2026-01\.csv: expected the Binance kline layout of 12 columns .* found 9"),
        ("SOLUSDC-5m-2026-01.csv", "1769472000000,1,2,abc,1.5,10,1769472299999,10,5,1,1,0\n", r"SOLUSDC-5m-2026-01\.csv: column 'low' expected numbers, found 'abc' at row 0"),
        ("SOLUSDC.csv", "time,open,high,low,close,volume\n1,1,1,1,1,1\n", r"SOLUSDC\.csv: expected columns .* missing \['timestamp'\]"),
        ("SOLUSDC.csv", "timestamp,open,high,low,close,volume\n1769472000,1,1,1,1,1\n", r"SOLUSDC\.csv: column 'timestamp' expected epoch milliseconds .*seconds"),
        ("SOLUSDC.csv", "timestamp,open,high,low,close,volume\nyesterday,1,1,1,1,1\n", r"SOLUSDC\.csv: column 'timestamp' expected epoch ms or ISO 8601, found 'yesterday'"),
        ("SOLUSDC.csv", "", r"SOLUSDC\.csv: expected CSV rows, found an empty file"),
        ("SOLUSDC-5m-2026-01.zip", "not a zip", r"SOLUSDC-5m-2026-01\.zip: expected a zip archive"),
        ("SOLUSDC.parquet", "not parquet", r"SOLUSDC\.parquet: expected a Parquet file"),
    ],
)
def test_bad_files_fail_with_a_message_naming_the_file(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        load_candles(spec(data_source="files", data_dir=tmp_path), "SOLUSDC")


def test_a_zip_without_csv_and_a_missing_symbol_are_named(tmp_path):
    with zipfile.ZipFile(tmp_path / "SOLUSDC-5m-2026-01.zip", "w") as archive:
        archive.writestr("README.txt", "nothing")
    files = spec(data_source="files", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"SOLUSDC-5m-2026-01\.zip: expected a zip holding Binance kline \.csv files"):
        load_candles(files, "SOLUSDC")
    with pytest.raises(ValueError, match=r"expected files for ADAUSDC named ADAUSDC\.csv.*found none"):
        load_candles(files, "ADAUSDC")


def test_one_minute_bars_are_refused(tmp_path, market):
    one_minute = market.iloc[:500].assign(timestamp=market["timestamp"].iloc[0] + np.arange(500) * 60_000)
    buffer = io.StringIO()
    one_minute.to_csv(buffer, index=False)
    (tmp_path / "SOLUSDC.csv").write_text(buffer.getvalue())
    with pytest.raises(ValueError, match=r"expected 5m bars \(300000 ms apart\), found a median spacing of 60000 ms \(1m\) in \['SOLUSDC\.csv'\]"):
        load_candles(spec(data_source="files", data_dir=tmp_path), "SOLUSDC")


# --------------------------------------------------------------------------------------- checks


def test_checks_pass_on_clean_bars_and_report_gaps_as_warnings(market):
    gapped = market.drop(index=[100, 101, 102, 5000]).reset_index(drop=True)
    report = check_candles(gapped, spec())

    assert report.passed and report.problems == []
    assert (report.gaps, report.missing_bars) == (2, 4)
    assert report.warnings == ["timestamp: 2 gap(s), 4 missing 5m bar(s)"]
    assert report.n_bars == len(gapped) and report.strictly_increasing
    assert report.first_timestamp_ms == market["timestamp"].iloc[0]


def test_checks_name_every_problem(market):
    bad = market.copy()
    bad.loc[10, "timestamp"] = bad.loc[9, "timestamp"]  # duplicate
    bad.loc[20, "high"] = bad.loc[20, "close"] * 0.9  # high below the close
    bad.loc[30, "volume"] = np.nan
    bad.loc[40, "timestamp"] += 7_000  # not on the 5-minute grid
    report = check_candles(bad, spec())

    assert not report.passed
    assert report.duplicate_timestamps == 1 and report.ohlc_violations == 1 and report.nan_count == 1
    assert report.irregular_steps == 2
    text = " | ".join(report.problems)
    assert "1 duplicated bar(s)" in text
    assert "expected high >= max(open, close) and low <= min(open, close), found 1 bar(s)" in text
    assert "expected no NaN, found 1" in text
    assert "not a multiple of 5m" in text


def test_checks_refuse_disorder_and_too_few_bars_for_the_folds(market):
    shuffled = market.iloc[:3000].iloc[::-1].reset_index(drop=True)
    report = check_candles(shuffled, spec(folds=3))

    assert not report.passed and not report.strictly_increasing and not report.enough_bars
    assert report.out_of_order == 2999
    assert any("expected strictly increasing" in problem for problem in report.problems)
    assert any(f"need at least {report.bars_needed} bars, found 3000" in problem for problem in report.problems)


@pytest.mark.parametrize(("timeframe", "step_ms", "per_day"), [("30m", 1_800_000, 48), ("1h", 3_600_000, 24)])
def test_synthetic_candles_honour_the_campaign_timeframe(timeframe, step_ms, per_day):
    candles = load_candles(spec(timeframe=timeframe, folds=2, horizons="H1", backtest_days=110), "SOLUSDC")
    assert len(candles) == 110 * per_day
    assert (np.diff(candles["timestamp"]) == step_ms).all()
    assert check_candles(candles, spec(timeframe=timeframe, folds=2, horizons="H1", backtest_days=110)).passed
    # a bar of an hour moves more than a bar of five minutes (variance adds up over time)
    five = load_candles(spec(backtest_days=15), "SOLUSDC")
    assert np.log(candles["close"]).diff().std() > 2 * np.log(five["close"]).diff().std()


def test_hourly_bars_declared_as_five_minutes_fail_the_check_naming_the_spacing_found():
    hourly = synthetic_candles("SOLUSDC", seed=1, days=120, timeframe="1h")
    report = check_candles(hourly, spec(backtest_days=60))
    assert not report.passed and report.gaps == 0  # one spacing problem, not thousands of gaps
    assert report.problems[0] == ("timestamp: expected 5m bars (300000 ms apart), "
                                  "found a median spacing of 3600000 ms (1h)")
