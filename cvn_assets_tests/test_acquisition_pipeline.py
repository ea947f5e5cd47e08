"""Acquisition end to end: candles → walk-forward blobs that are honest, reproducible and complete."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from cvn_assets.acquisition.calibration import f1_buy
from cvn_assets.acquisition.families import get_family
from cvn_assets.acquisition.features import FEATURE_NAMES, average_true_range, build_features
from cvn_assets.acquisition.folds import WARMUP_BARS, build_folds
from cvn_assets.acquisition.labels import triple_barrier
from cvn_assets.acquisition.market_data import BAR_MS, load_candles, synthetic_candles
from cvn_assets.acquisition.pipeline import acquire, train_full_window
from cvn_assets.contracts.blob import SCHEMA_VERSION, decode_blob, encode_blob
from cvn_assets.contracts.campaign import CampaignSpec, producer_version


def campaign(**overrides) -> CampaignSpec:
    return CampaignSpec(**{"campaign_id": "acq-001", "group": "defi", **overrides})


def random_walk(seed: int, n: int = 17_280) -> pd.DataFrame:
    """A pure random walk: nothing about the future is knowable, so no model may beat always-BUY."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame(
        {
            "timestamp": 1_700_000_000_000 + np.arange(n, dtype=np.int64) * BAR_MS,
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.001, n))),
            "low": np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.001, n))),
            "close": close,
            "volume": rng.lognormal(10.0, 0.5, n),
        }
    )


def by_fold(blobs, family: str) -> dict[int, float]:
    return {blob.meta.fold: f1_buy(blob.y_true, blob.y_pred) for blob in blobs if blob.meta.family == family}


@pytest.fixture(scope="module")
def default_run():
    """The default campaign (60 days, 3 folds, naive/logreg/hgb, 12 PTEs) on one synthetic crypto."""
    spec = campaign()
    candles = load_candles(spec, "SOLUSDC")
    messages: list[str] = []
    return spec, candles, acquire(spec, "SOLUSDC", candles, progress=messages.append), messages


@pytest.mark.parametrize("symbol", ["SOLUSDC", "ADAUSDC"])
def test_hgb_finds_a_planted_signal_on_every_fold(symbol):
    spec = campaign(planted_signal=1.0)
    blobs = acquire(spec, symbol, load_candles(spec, symbol))
    hgb, naive = by_fold(blobs, "hgb"), by_fold(blobs, "naive")

    lifts = {fold: hgb[fold] - naive[fold] for fold in naive}
    assert min(lifts.values()) >= 0.10, f"hgb f1_buy lift over always-BUY per fold: {lifts}"


@pytest.mark.parametrize("seed", [0, 1])
def test_no_family_beats_always_buy_on_a_random_walk(seed):
    """The leakage test: any look-ahead in features, labels, folds or calibration would show here."""
    blobs = acquire(campaign(), "SOLUSDC", random_walk(seed))
    pooled = {}
    for blob in blobs:
        truth, predicted = pooled.setdefault(blob.meta.family, ([], []))
        truth.append(blob.y_true)
        predicted.append(blob.y_pred)
    f1 = {family: f1_buy(np.concatenate(t), np.concatenate(p)) for family, (t, p) in pooled.items()}

    for family in ("logreg", "hgb"):
        assert f1[family] - f1["naive"] <= 0.02, f"pooled f1_buy {f1}"


def test_one_complete_blob_per_fold_and_family(default_run):
    spec, candles, blobs, messages = default_run
    ts = candles["timestamp"].to_numpy()
    folds = build_folds(len(candles), spec.folds, max(spec.horizon_bars))

    assert [(b.meta.fold, b.meta.family) for b in blobs] == [(f, fam) for f in range(3) for fam in spec.families]
    assert [b.meta.ref for b in blobs] == sorted(
        [ref for ref in spec.expected_cohort() if ref.crypto == "SOLUSDC"], key=lambda r: (r.fold, spec.families.index(r.family))
    )
    atr = average_true_range(candles)
    prices = [candles[c].to_numpy() for c in ("open", "high", "low", "close")]
    for blob in blobs:
        meta, fold = blob.meta, folds[blob.meta.fold]
        assert meta.schema_version == SCHEMA_VERSION and meta.producer_version == producer_version()
        assert (meta.campaign_id, meta.crypto, meta.fees_bps) == ("acq-001", "SOLUSDC", 10.0)
        assert meta.pte.horizon in spec.horizon_bars and meta.pte.sl in spec.sl_range and meta.pte.tp in spec.tp_range
        assert meta.train.end_ms <= meta.validation.start_ms and meta.validation.end_ms <= meta.test.start_ms
        # Arrays are exactly the fold's test slice …
        np.testing.assert_array_equal(blob.ts, ts[fold.test.as_slice()])
        assert blob.ts[0] == meta.test.start_ms and blob.ts[-1] + BAR_MS == meta.test.end_ms
        # … decisions follow the calibrated threshold …
        np.testing.assert_array_equal(blob.y_pred, (blob.proba_buy >= np.float32(meta.threshold)).astype(np.int8))
        # … and labels, exits and net returns are those of the chosen PTE.
        outcome = triple_barrier(*prices, atr, meta.pte, spec.fees_bps)
        np.testing.assert_array_equal(blob.y_true, outcome.y[fold.test.as_slice()])
        np.testing.assert_array_equal(blob.exit_reason, outcome.exit_reason[fold.test.as_slice()])
        np.testing.assert_array_equal(blob.trade_return, outcome.trade_return[fold.test.as_slice()].astype(np.float32))
        assert 0.0 <= meta.screening_f1_buy <= 1.0 and 0.0 <= meta.validation_f1_buy <= 1.0
        assert meta.hyperparameters == get_family(meta.family).default_hyperparameters()
        decoded = decode_blob(encode_blob(blob), key="roundtrip", expected=meta.ref)
        assert decoded.meta == meta
    for fold in range(3):  # one PTE per fold, shared by its families so they compare on the same labels
        assert len({(b.meta.pte, b.meta.screening_f1_buy) for b in blobs if b.meta.fold == fold}) == 1
    naive = [b for b in blobs if b.meta.family == "naive"]
    assert all((b.y_pred == 1).all() and (b.proba_buy == 1.0).all() for b in naive)
    assert any("screened 12 PTEs" in message for message in messages)
    assert any("SOLUSDC/fold-02/hgb: validation f1_buy" in message for message in messages)


def test_the_test_slice_never_influences_training_screening_or_calibration(default_run):
    spec, candles, blobs, _ = default_run
    last = build_folds(len(candles), spec.folds, max(spec.horizon_bars))[-1]
    other = synthetic_candles("XRPUSDC", seed=99, days=spec.backtest_days)
    changed = candles.copy()
    scale = candles["close"].iloc[last.test.start - 1] / other["close"].iloc[last.test.start - 1]
    for column in ("open", "high", "low", "close"):
        changed.loc[last.test.start :, column] = other[column].iloc[last.test.start :].to_numpy() * scale
    changed.loc[last.test.start :, "volume"] = other["volume"].iloc[last.test.start :].to_numpy()

    again = acquire(spec, "SOLUSDC", changed)

    # Every fold made the same choices: PTE, screening, hyperparameters, threshold, validation score.
    assert [b.meta for b in again] == [b.meta for b in blobs]
    last_hgb = [(a, b) for a, b in zip(blobs, again, strict=True) if a.meta.fold == last.index and a.meta.family == "hgb"]
    assert not np.array_equal(last_hgb[0][0].proba_buy, last_hgb[0][1].proba_buy), "the test data did change"


def test_the_same_spec_on_the_same_data_gives_bit_identical_blobs():
    spec = campaign(backtest_days=14, horizons="H1", folds=2, hpo_trials=2, symbols="BONKUSDC")
    candles = load_candles(spec, "BONKUSDC")
    first = [encode_blob(blob) for blob in acquire(spec, "BONKUSDC", candles)]
    second = [encode_blob(blob) for blob in acquire(spec, "BONKUSDC", load_candles(spec, "BONKUSDC"))]

    assert first == second


def test_hpo_never_does_worse_than_the_defaults_on_validation():
    base = dict(backtest_days=14, horizons="H1", folds=2, planted_signal=0.5)
    defaults = acquire(campaign(**base), "ADAUSDC", load_candles(campaign(**base), "ADAUSDC"))
    searched = acquire(campaign(**base, hpo_trials=3), "ADAUSDC", load_candles(campaign(**base), "ADAUSDC"))

    for plain, tuned in zip(defaults, searched, strict=True):
        assert tuned.meta.validation_f1_buy >= plain.meta.validation_f1_buy
    tuned_hgb = [b.meta.hyperparameters for b in searched if b.meta.family == "hgb"]
    assert set(tuned_hgb[0]) == set(get_family("hgb").default_hyperparameters())


def test_unusable_candles_fail_loud_before_any_blob(default_run):
    spec, candles, _, _ = default_run
    broken = candles.copy()
    broken.loc[5000, "low"] = broken.loc[5000, "high"] * 1.5

    with pytest.raises(ValueError, match=r"candles SOLUSDC: expected usable 5m bars, found: ohlc: .*found 1 bar"):
        acquire(spec, "SOLUSDC", broken)


@pytest.mark.parametrize("layout", ["binance", "plain"])
def test_a_campaign_runs_from_a_directory_of_files(tmp_path, layout):
    symbol_candles = {symbol: synthetic_candles(symbol, seed=5, days=14) for symbol in ("SOLUSDC", "DOGEUSDC")}
    for symbol, candles in symbol_candles.items():
        if layout == "binance":
            rows = candles.assign(close_time=candles["timestamp"] + BAR_MS - 1, q=1.0, n=10, tb=1.0, tq=1.0, ignore=0)
            rows.to_csv(tmp_path / f"{symbol}-5m-2026-03.csv", header=False, index=False)
        else:
            candles.to_csv(tmp_path / f"{symbol}.csv", index=False)
    spec = campaign(data_source="files", data_dir=tmp_path, symbols="SOLUSDC,DOGEUSDC", backtest_days=14, horizons="H1", folds=2)

    for symbol in spec.cryptos:
        blobs = acquire(spec, symbol, load_candles(spec, symbol))
        assert len(blobs) == 2 * 3 and {b.meta.crypto for b in blobs} == {symbol}
        assert set(blobs[-1].ts) <= set(symbol_candles[symbol]["timestamp"])


def test_a_challenger_is_trained_on_the_full_window_and_reads_new_candles(default_run):
    spec, candles, blobs, _ = default_run
    chosen = next(b.meta for b in blobs if b.meta.fold == 2 and b.meta.family == "hgb")

    model = train_full_window(spec, "SOLUSDC", candles, "hgb", chosen.pte, chosen.hyperparameters)
    again = train_full_window(spec, "SOLUSDC", candles, "hgb", chosen.pte, chosen.hyperparameters)

    assert isinstance(model, Pipeline)
    assert list(model.feature_names_in_) == list(FEATURE_NAMES)
    new_candles = synthetic_candles("SOLUSDC", seed=123, days=2)
    rows = build_features(new_candles).iloc[WARMUP_BARS:]
    proba = model.predict_proba(rows)[:, 1]
    assert proba.shape == (len(new_candles) - WARMUP_BARS,) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(proba, again.predict_proba(rows)[:, 1])
