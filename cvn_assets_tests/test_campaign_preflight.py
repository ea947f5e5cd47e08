"""Pre-flight of `cvn campaign launch --data-source files`: real files in both layouts, refused before
anything is registered (the gate then does not know the campaign), gaps printed as warnings; and
campaigns on 30-minute and 1-hour bars run end to end to a verdict."""

from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner

from cvn_assets.acquisition.folds import minimum_bars
from cvn_assets.acquisition.market_data import synthetic_candles
from cvn_assets.cli.main import get_cli
from cvn_assets.contracts.blob import decode_blob
from cvn_assets_tests.test_campaign_runs import write_ohlcv_csv
from cvn_assets_tests.test_market_data import binance_rows

SMALL = ["--folds", "2", "--families", "naive", "--horizons", "H1", "--sl-range", "1.0", "--tp-range", "2.0",
         "--workers", "1"]


def cvn(*args: str):
    return CliRunner().invoke(get_cli(), list(args))


def assert_not_registered(campaign_id: str) -> None:
    gate = cvn("gate", "--campaign", campaign_id)
    assert gate.exit_code == 2, gate.output
    assert f"campaign {campaign_id!r} is not registered" in gate.output


@pytest.fixture
def data_dir(tmp_path, dagster_home, storage_root):
    path = tmp_path / "candles"
    path.mkdir()
    return path


def test_plain_csvs_too_short_empty_or_missing_are_refused_naming_symbol_file_expected_and_found(data_dir, storage_root):
    write_ohlcv_csv(data_dir / "SOLUSDC.csv", bars=500)
    (data_dir / "XRPUSDC.csv").write_text("timestamp,open,high,low,close,volume\n")
    result = cvn("campaign", "launch", "--group", "defi", "--symbols", "SOLUSDC,ADAUSDC,XRPUSDC",
                 "--data-source", "files", "--data-dir", str(data_dir), "--backtest-days", "10",
                 "--campaign-id", "preflight-csv", *SMALL)

    assert result.exit_code == 2, result.output
    out = result.output
    assert "nothing was registered" in out and "Traceback" not in out
    needed = minimum_bars(2, 12)
    assert f"SOLUSDC ({data_dir / 'SOLUSDC.csv'}): bars: 2 folds with horizons [1]h need at least {needed} bars, found 500 5m bars" in out
    assert f"ADAUSDC: data_dir '{data_dir}': expected files for ADAUSDC named ADAUSDC.csv" in out and "found none" in out
    assert f"XRPUSDC: {data_dir / 'XRPUSDC.csv'}: expected candle rows, found none" in out
    assert_not_registered("preflight-csv")
    assert not storage_root.exists() or not any(path.is_file() for path in storage_root.rglob("*"))


def test_hourly_binance_kline_zips_declared_as_five_minutes_are_refused_naming_the_spacing(data_dir):
    hourly = synthetic_candles("SOLUSDC", seed=3, days=120, timeframe="1h")
    with zipfile.ZipFile(data_dir / "SOLUSDC-1h-2026-01.zip", "w") as archive:
        archive.writestr("SOLUSDC-1h-2026-01.csv", binance_rows(hourly))
    result = cvn("campaign", "launch", "--group", "defi", "--symbols", "SOLUSDC", "--data-source", "files",
                 "--data-dir", str(data_dir), "--backtest-days", "10", "--campaign-id", "preflight-zip", *SMALL)

    assert result.exit_code == 2, result.output
    assert ("SOLUSDC: data_dir '" + str(data_dir) + "' (SOLUSDC): expected 5m bars (300000 ms apart), found a median "
            "spacing of 3600000 ms (1h) in ['SOLUSDC-1h-2026-01.zip']") in result.output
    assert_not_registered("preflight-zip")


def test_gaps_are_printed_as_warnings_and_do_not_refuse(data_dir):
    five = synthetic_candles("SOLUSDC", seed=3, days=12)
    gappy = five.drop(index=[2000, 2001, 2002]).reset_index(drop=True)  # a 15-minute exchange outage
    with zipfile.ZipFile(data_dir / "SOLUSDC-5m-2026-03.zip", "w") as archive:
        archive.writestr("SOLUSDC-5m-2026-03.csv", binance_rows(gappy))
    (data_dir / "ADAUSDC.csv").write_text("timestamp,open,high,low,close,volume\n")  # refuses the launch
    result = cvn("campaign", "launch", "--group", "defi", "--symbols", "SOLUSDC,ADAUSDC", "--data-source", "files",
                 "--data-dir", str(data_dir), "--backtest-days", "12", "--campaign-id", "preflight-gaps", *SMALL)

    assert result.exit_code == 2, result.output
    assert (f"warning: SOLUSDC ({data_dir / 'SOLUSDC-5m-2026-03.zip'}): timestamp: 1 gap(s), 3 missing 5m bar(s)"
            in result.output)
    assert "SOLUSDC (" not in result.output.split("nothing was registered")[1]  # a warning, not a problem
    assert_not_registered("preflight-gaps")


def test_a_campaign_on_hourly_files_runs_end_to_end_to_a_verdict(data_dir, storage_root):
    write_ohlcv_csv(data_dir / "BTCUSDC.csv", bars=2600, step_ms=3_600_000)
    result = cvn("campaign", "launch", "--group", "btc-core", "--symbols", "BTCUSDC", "--timeframe", "1h",
                 "--data-source", "files", "--data-dir", str(data_dir), "--backtest-days", "105",
                 "--campaign-id", "hourly-001", "--json", *SMALL)

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] in ("PASS", "FAIL") and report["spec"]["timeframe"] == "1h"
    key = report["cohort"][0]["key"]
    blob = decode_blob((storage_root / key).read_bytes(), key)
    assert blob.meta.timeframe == "1h" and blob.meta.pte.horizon == 1  # H1 = one bar of an hour
    assert set((blob.ts[1:] - blob.ts[:-1]).tolist()) == {3_600_000}


def test_a_campaign_on_thirty_minute_synthetic_bars_runs_end_to_end_to_a_verdict(dagster_home, storage_root):
    result = cvn("campaign", "launch", "--group", "defi", "--symbols", "SOLUSDC", "--timeframe", "30m",
                 "--planted-signal", "0.6", "--backtest-days", "55", "--campaign-id", "halfhour-001", "--json", *SMALL)

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] in ("PASS", "FAIL") and report["spec"]["timeframe"] == "30m"
    key = report["cohort"][0]["key"]
    blob = decode_blob((storage_root / key).read_bytes(), key)
    assert blob.meta.timeframe == "30m" and blob.meta.pte.horizon == 2  # H1 = two bars of 30 minutes
    assert set((blob.ts[1:] - blob.ts[:-1]).tolist()) == {1_800_000}
