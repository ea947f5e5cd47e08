"""The §7 decision tree: every code reachable, every boundary pinned to its documented reading."""

from __future__ import annotations

import numpy as np
import pytest

from cvn_assets.contracts.blob import SCHEMA_VERSION, BlobMeta, ExitReason, Pte, Window, make_blob
from cvn_assets.contracts.campaign import CampaignSpec
from cvn_assets.gate.diagnosis import diagnose, evaluate_cryptos, fired_codes, ml_level, run_level_codes
from cvn_assets.gate.settings import GateSettings
from cvn_assets.gate.signals import CryptoSignals, always_buy_f1, compute_crypto_signals

SETTINGS = GateSettings()
SPEC = CampaignSpec(campaign_id="diag-001", group="defi", symbols=["SOLUSDC"])


def signals(**overrides) -> CryptoSignals:
    """A healthy candidate (ML_SOLID, positive Sortino), then whatever the test changes."""
    values = dict(family="hgb", folds=3, test_rows=3000, f1_buy=0.62, precision_buy=0.6, recall_buy=0.64,
                  buy_rate=0.35, baseline_f1_buy=0.50, f1_buy_delta=12.0, std_f1_buy=0.03,
                  screening_f1_buy=0.63, last_fold_f1_buy=0.61, screening_testing_gap=0.02, n_trades=400,
                  sortino=0.8, tp_pct=0.45, sl_pct=0.30, timeout_pct=0.25, expectancy=0.002, max_drawdown=0.05)
    values.update(overrides)
    return CryptoSignals(**values)


@pytest.mark.parametrize(
    ("delta", "level"),
    [(-3.0, "ML_USELESS"), (0.0, "ML_USELESS"), (0.01, "ML_MARGINAL"), (5.0, "ML_MARGINAL"),
     (5.01, "ML_EXPLOITABLE"), (10.0, "ML_EXPLOITABLE"), (10.01, "ML_SOLID")],
)
def test_ml_level_bands_are_half_open_in_points(delta, level):
    assert ml_level(delta, SETTINGS) == level


@pytest.mark.parametrize(
    ("overrides", "principal"),
    [
        ({"f1_buy_delta": -1.0}, "ML_USELESS"),
        ({"f1_buy_delta": 3.0}, "ML_MARGINAL"),
        ({"f1_buy_delta": 7.0}, "ML_EXPLOITABLE"),
        ({}, "ML_SOLID"),
        ({"std_f1_buy": 0.11}, "ML_UNSTABLE"),
        ({"screening_testing_gap": 0.31}, "SCREENING_OVERFIT"),
        ({"sortino": -0.2}, "EXECUTION_MISMATCH"),
        ({"sortino": -0.2, "sl_pct": 0.55}, "SL_TOO_TIGHT"),
        ({"sortino": -0.2, "tp_pct": 0.15}, "TP_TOO_AMBITIOUS"),
        ({"sortino": -0.2, "timeout_pct": 0.45}, "HORIZON_TOO_SHORT"),
    ],
)
def test_every_code_is_reachable(overrides, principal):
    verdict = diagnose(signals(**overrides), SPEC, "SOLUSDC")
    assert verdict.diagnostic == principal
    assert verdict.codes[0] == principal


@pytest.mark.parametrize(
    ("overrides", "code", "fires"),
    [
        ({"std_f1_buy": 0.10}, "ML_UNSTABLE", False),
        ({"std_f1_buy": 0.1001}, "ML_UNSTABLE", True),
        ({"sl_pct": 0.50}, "SL_TOO_TIGHT", False),
        ({"sl_pct": 0.5001}, "SL_TOO_TIGHT", True),
        ({"tp_pct": 0.20}, "TP_TOO_AMBITIOUS", False),
        ({"tp_pct": 0.1999}, "TP_TOO_AMBITIOUS", True),
        ({"timeout_pct": 0.40}, "HORIZON_TOO_SHORT", False),
        ({"timeout_pct": 0.4001}, "HORIZON_TOO_SHORT", True),
        ({"screening_testing_gap": 0.30}, "SCREENING_OVERFIT", False),
        ({"screening_testing_gap": 0.3001}, "SCREENING_OVERFIT", True),
        ({"sortino": 0.0}, "EXECUTION_MISMATCH", False),
        ({"sortino": -0.0001}, "EXECUTION_MISMATCH", True),
        ({"sortino": -1.0, "f1_buy_delta": 5.0}, "EXECUTION_MISMATCH", False),  # needs delta > +5 pts
    ],
)
def test_boundaries_are_strict_as_documented(overrides, code, fires):
    assert (code in fired_codes(signals(**overrides), SETTINGS)) is fires


def test_useless_model_outranks_everything_else():
    codes = fired_codes(signals(f1_buy_delta=-2.0, std_f1_buy=0.2, sl_pct=0.7), SETTINGS)
    assert codes == ["ML_USELESS", "ML_UNSTABLE", "SL_TOO_TIGHT"]


def test_candidate_needs_every_condition_and_says_why_not():
    assert diagnose(signals(), SPEC, "SOLUSDC").candidate
    rejected = diagnose(signals(f1_buy_delta=4.0, n_trades=10, sortino=-0.1), SPEC, "SOLUSDC")
    assert not rejected.candidate
    text = " | ".join(rejected.reasons)
    assert "+4.0 pts" in text and "10 trades" in text and "Sortino -0.100" in text


def test_playbook_gives_the_manuals_relaunch_commands():
    tight = diagnose(signals(sortino=-0.2, sl_pct=0.6), SPEC, "SOLUSDC")
    assert "--sl-range 1.2,1.5,1.8,2" in tight.relaunch and "--symbols SOLUSDC" in tight.relaunch
    assert tight.relaunch.startswith("cvn campaign launch --group defi")
    ambitious = diagnose(signals(sortino=-0.2, tp_pct=0.1), SPEC, "SOLUSDC")
    assert "--tp-range 1.5,2,2.5" in ambitious.relaunch
    short = diagnose(signals(sortino=-0.2, timeout_pct=0.5), SPEC, "SOLUSDC")
    assert "--horizons H2,H4,H6,H8" in short.relaunch  # default H1,H2,H4 doubled, plus max + 2
    assert diagnose(signals(), SPEC, "SOLUSDC").relaunch is None  # a candidate needs no relaunch


def test_run_level_no_candidates():
    good, bad = diagnose(signals(), SPEC, "SOLUSDC"), diagnose(signals(f1_buy_delta=-1), SPEC, "ADAUSDC")
    assert run_level_codes({"SOLUSDC": good, "ADAUSDC": bad}) == []
    assert run_level_codes({"ADAUSDC": bad}) == ["NO_CANDIDATES"]


def _blob(family: str, fold: int, y_true, y_pred, exits, returns, validation_f1: float, crypto: str = "SOLUSDC"):
    rows = len(y_true)
    start = 1_700_000_000_000 + fold * 10_000_000
    meta = BlobMeta(schema_version=SCHEMA_VERSION, campaign_id="diag-001", crypto=crypto, fold=fold, family=family,
                    pte=Pte(sl=1.0, tp=2.0, horizon=12), threshold=0.5,
                    train=Window(start_ms=start - 3_000_000, end_ms=start - 2_000_000),
                    validation=Window(start_ms=start - 2_000_000, end_ms=start - 1_000_000),
                    test=Window(start_ms=start, end_ms=start + rows * 300_000),
                    screening_f1_buy=0.9, validation_f1_buy=validation_f1, fees_bps=10.0, producer_version="test")
    return make_blob(meta, ts=start + np.arange(rows) * 300_000, y_true=np.array(y_true), y_pred=np.array(y_pred),
                     proba_buy=np.array(y_pred, dtype=float) * 0.9, exit_reason=np.array(exits),
                     trade_return=np.array(returns))


def test_signals_are_computed_on_pooled_folds_of_the_family_chosen_by_validation():
    tp, sl = ExitReason.TP, ExitReason.SL
    blobs = [
        _blob("naive", 0, [1, 0, 1, 0], [1, 1, 1, 1], [tp, sl, tp, sl], [0.02, -0.01, 0.02, -0.01], 0.5),
        _blob("naive", 1, [1, 0, 0, 0], [1, 1, 1, 1], [tp, sl, sl, sl], [0.02, -0.01, -0.01, -0.01], 0.5),
        # logreg wins on validation even though its test F1 is worse: the choice never looks at test
        _blob("logreg", 0, [1, 0, 1, 0], [1, 0, 0, 0], [tp, sl, tp, sl], [0.02, -0.01, 0.02, -0.01], 0.7),
        _blob("logreg", 1, [1, 0, 0, 0], [0, 1, 0, 0], [tp, sl, sl, sl], [0.02, -0.01, -0.01, -0.01], 0.7),
    ]
    result = compute_crypto_signals(blobs)
    assert result.family == "logreg"
    # pooled: y_true 1,0,1,0,1,0,0,0 ; y_pred 1,0,0,0,0,1,0,0 → tp=1, predicted=2, actual=3
    assert result.precision_buy == pytest.approx(0.5) and result.recall_buy == pytest.approx(1 / 3)
    assert result.f1_buy == pytest.approx(0.4)
    assert result.buy_rate == pytest.approx(3 / 8)
    assert result.baseline_f1_buy == pytest.approx(always_buy_f1(np.array([1, 0, 1, 0, 1, 0, 0, 0])))
    assert result.f1_buy_delta == pytest.approx((0.4 - result.baseline_f1_buy) * 100)
    assert result.last_fold_f1_buy == 0.0 and result.std_f1_buy == pytest.approx(np.std([2 / 3, 0.0]))
    assert result.screening_testing_gap == pytest.approx(0.9)
    assert result.n_trades == 2 and result.tp_pct == 0.5 and result.sl_pct == 0.5
    assert result.expectancy == pytest.approx(0.005, abs=1e-6)
    assert result.max_drawdown == pytest.approx(0.01, abs=1e-6)


def test_signals_never_mix_cryptos():
    sol = _blob("logreg", 0, [1, 0] * 20, [1, 0] * 20, [0, 1] * 20, [0.01, -0.01] * 20, 0.5)
    ada = _blob("logreg", 0, [1, 0] * 20, [1, 0] * 20, [0, 1] * 20, [0.01, -0.01] * 20, 0.5, crypto="ADAUSDC")
    with pytest.raises(ValueError, match="one crypto"):
        compute_crypto_signals([sol, ada])
    assert set(evaluate_cryptos({"SOLUSDC": [sol], "ADAUSDC": [ada]}, SPEC)) == {"ADAUSDC", "SOLUSDC"}
