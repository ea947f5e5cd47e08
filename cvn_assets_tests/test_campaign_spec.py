"""Launch parameters (manual §6.2): parsed the way operators type them, refused by field name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cvn_assets.contracts.campaign import STORED, CampaignManifest, CampaignSpec, load_universes


def launch(**parameters) -> CampaignSpec:
    return CampaignSpec(**{"campaign_id": "demo-001", "group": "defi", **parameters})


def test_the_manuals_launch_parameters_are_accepted_as_typed():
    spec = launch(horizons="H1,H2,H3,H4,H5,H6", sl_range="0.8,1.0,1.2,1.5", tp_range="1.5,2.0,2.5,3.0", hpo_trials=50, backtest_days=60)

    assert spec.horizons == [1, 2, 3, 4, 5, 6]
    assert spec.horizon_bars == [12, 24, 36, 48, 60, 72]
    assert spec.sl_range == [0.8, 1.0, 1.2, 1.5] and spec.tp_range == [1.5, 2.0, 2.5, 3.0]
    assert spec.cryptos == ["SOLUSDC", "ADAUSDC", "BONKUSDC", "XRPUSDC"]


def test_defaults_are_the_demo_campaign():
    spec = launch()

    assert (spec.folds, spec.backtest_days, spec.hpo_trials, spec.data_source) == (3, 60, 0, "synthetic")
    assert spec.families == ["naive", "logreg", "hgb"]
    assert len(spec.expected_cohort()) == 4 * 3 * 3


@pytest.mark.parametrize(
    ("parameters", "field", "message"),
    [
        ({"sl_range": "abc"}, "sl_range", "valid number"),
        ({"tp_range": "2.0,-1"}, "tp_range", "greater than 0"),
        ({"horizons": "H0"}, "horizons", "greater than or equal to 1"),
        ({"horizons": "4h"}, "horizons", "expected H<n> with n hours"),
        ({"group": "memecoins"}, "group", "unknown group 'memecoins': expected one of ['btc-core', 'defi']"),
        ({"backtest_days": 5}, "backtest_days", "too short for 3 folds of 5m bars with horizons up to H4: expected at least 13"),
        ({"folds": 1}, "folds", "greater than or equal to 2"),
        ({"families": "naive,xgb"}, "families", "unknown families ['xgb']: expected any of ['hgb', 'logreg', 'naive']"),
        ({"families": "hgb,hgb"}, "families", "duplicates"),
        ({"campaign_id": "../x"}, "campaign_id",
         "expected 3 to 63 characters: lowercase letters, digits and '-', starting with a letter or a digit"),
        ({"data_source": "files", "data_dir": "/tmp", "planted_signal": 0.6}, "planted_signal",
         "only for data_source 'synthetic'"),
        ({"data_source": "files"}, "data_dir", "data_dir is required when data_source is 'files'"),
        ({"data_source": "files", "data_dir": "/nonexistent/candles"}, "data_dir", "is not a directory"),
        ({"data_dir": "/tmp"}, "data_dir", "only allowed with data_source 'files'"),
        ({"data_source": "binance"}, "data_source", "'synthetic' or 'files'"),
        ({"hpo_trials": -1}, "hpo_trials", "greater than or equal to 0"),
        ({"color": "blue"}, "color", "Extra inputs are not permitted"),
    ],
)
def test_bad_launch_parameters_name_the_field(parameters, field, message):
    with pytest.raises(ValidationError) as caught:
        launch(**parameters)
    errors = caught.value.errors()
    assert errors[0]["loc"][0] == field, errors
    assert message in errors[0]["msg"]


def test_symbols_outside_the_group_are_refused_for_synthetic_data_only(tmp_path):
    with pytest.raises(ValidationError, match=r"symbols \['DOGEUSDC'\] are not in group 'defi'"):
        launch(symbols="SOLUSDC,DOGEUSDC")
    spec = launch(symbols="DOGEUSDC", data_source="files", data_dir=tmp_path)
    assert spec.cryptos == ["DOGEUSDC"]


def test_backtest_days_is_checked_against_the_folds_and_longest_horizon():
    launch(folds=5, horizons="H6", backtest_days=20)
    with pytest.raises(ValidationError) as caught:
        launch(folds=5, horizons="H6", backtest_days=19)
    assert caught.value.errors()[0]["loc"] == ("backtest_days",)


def test_users_can_replace_the_universes_file(tmp_path, monkeypatch):
    universes = tmp_path / "universes.yaml"
    universes.write_text("groups:\n  majors:\n    core: true\n    symbols: [BTCUSDT, ETHUSDT]\n")
    monkeypatch.setenv("CVN_UNIVERSES_FILE", str(universes))

    assert launch(group="majors").cryptos == ["BTCUSDT", "ETHUSDT"]
    assert load_universes()["majors"].core
    with pytest.raises(ValidationError, match="unknown group 'defi'"):
        launch()
    universes.write_text("groups: [defi]\n")
    with pytest.raises(ValueError, match=f"universes file {universes}: expected a mapping"):
        load_universes()


def test_a_stored_manifest_is_read_back_on_a_machine_without_the_data_dir(tmp_path):
    data_dir = tmp_path / "candles"
    data_dir.mkdir()
    spec = launch(data_source="files", data_dir=data_dir, symbols="SOLUSDC")
    stored = CampaignManifest.for_spec(spec).model_dump_json()
    data_dir.rmdir()

    manifest = CampaignManifest.model_validate_json(stored, context=STORED)
    assert manifest.spec == spec and len(manifest.expected) == 9
    with pytest.raises(ValidationError, match="data_dir"):
        CampaignManifest.model_validate_json(stored)


def test_horizons_stay_in_hours_and_become_bars_by_timeframe():
    assert launch(timeframe="1h", horizons="H1,H4", backtest_days=200).horizon_bars == [1, 4]
    assert launch(timeframe="30m", horizons="H1,H4", backtest_days=200).horizon_bars == [2, 8]
    assert launch(timeframe="1m", horizons="H1").horizon_bars == [60]
    assert launch().timeframe == "5m"  # the default, and what every stored manifest before it meant


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({"timeframe": "2h"}, "Input should be '1m', '5m', '15m', '30m', '1h' or '4h'"),
        ({"timeframe": "4h", "horizons": "H1,H4", "backtest_days": 900}, "horizon H1 is not a whole number of 4h bars"),
        # a floor of bars, not of days: 2 folds of hourly bars need ~104 days, not the 5-minute 9
        ({"timeframe": "1h", "folds": 2, "horizons": "H1", "backtest_days": 60},
         "too short for 2 folds of 1h bars with horizons up to H1: expected at least 104"),
    ],
)
def test_timeframes_are_refused_by_name(parameters, fragment):
    with pytest.raises(ValidationError) as caught:
        launch(**parameters)
    assert fragment in str(caught.value)
