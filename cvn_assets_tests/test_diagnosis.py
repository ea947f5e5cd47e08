"""The §7 decision tree and §9 playbook: every code reachable, every boundary pinned to its reading.

The readings (docs/diagnostics.md): deltas in F1 points; a band "+a à +b" is (a, b]; the manual's
">" and "<" are strict; precedence ML_USELESS > ML_UNSTABLE > SCREENING_OVERFIT > exit codes /
EXECUTION_MISMATCH > ML level.
"""

from __future__ import annotations

import shlex

import numpy as np
import pytest

from cvn_assets.cli.campaign import launch_command
from cvn_assets.contracts.blob import SCHEMA_VERSION, BlobMeta, Pte, Window, make_blob
from cvn_assets.contracts.campaign import CampaignSpec
from cvn_assets.gate.diagnosis import (
    CRYPTO_CODES, diagnose, evaluate_cryptos, fired_codes, ml_level, run_level_codes, run_level_relaunch,
)
from cvn_assets.gate.playbook import ACTIONS, REJECTED_ACTIONS
from cvn_assets.gate.settings import GateSettings
from cvn_assets.gate.signals import CryptoSignals

SETTINGS = GateSettings()
SPEC = CampaignSpec(campaign_id="diag-001", group="defi", symbols=["SOLUSDC", "ADAUSDC"])


def signals(**overrides) -> CryptoSignals:
    """A healthy candidate (ML_SOLID, positive Sortino), then whatever the test changes."""
    values = dict(crypto="SOLUSDC", family="hgb", folds=3, test_rows=3000, f1_buy=0.62, precision_buy=0.6,
                  recall_buy=0.64, buy_rate=0.35, baseline_f1_buy=0.50, f1_buy_delta=12.0, std_f1_buy=0.03,
                  screening_f1_buy=0.63, last_fold_f1_buy=0.61, screening_testing_gap=0.02, n_trades=400,
                  sortino=0.8, tp_pct=0.45, sl_pct=0.30, timeout_pct=0.25, expectancy=0.002, max_drawdown=0.05)
    values.update(overrides)
    return CryptoSignals(**values)


def parsed_launch(command: str) -> CampaignSpec:
    """What the real `cvn campaign launch` parser and validator make of a printed relaunch."""
    argv = shlex.split(command)
    assert argv[:3] == ["cvn", "campaign", "launch"]
    params = launch_command.make_context("launch", argv[3:]).params
    options = {name: value for name, value in params.items()
               if value is not None and name not in {"group", "campaign_id", "workers", "as_json"}}
    return CampaignSpec(campaign_id="relaunch-001", group=params["group"], **options)


@pytest.mark.parametrize(
    ("delta", "level"),
    [(-3.0, "ML_USELESS"), (0.0, "ML_USELESS"), (0.01, "ML_MARGINAL"), (5.0, "ML_MARGINAL"),
     (5.01, "ML_EXPLOITABLE"), (10.0, "ML_EXPLOITABLE"), (10.01, "ML_SOLID")],
)
def test_ml_level_bands_are_half_open_in_points(delta, level):
    assert ml_level(delta, SETTINGS) == level
    assert diagnose(signals(f1_buy_delta=delta, sortino=0.8), SPEC).diagnostic == level


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
def test_every_code_is_reachable_as_the_principal_diagnostic(overrides, principal):
    verdict = diagnose(signals(**overrides), SPEC)
    assert verdict.diagnostic == principal == verdict.codes[0]
    assert verdict.candidate is (principal in {"ML_EXPLOITABLE", "ML_SOLID"})


def test_the_reachability_table_covers_every_crypto_code():
    assert set(CRYPTO_CODES) == set(ACTIONS) - {"NO_CANDIDATES"}


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
        ({"sortino": -1.0, "f1_buy_delta": 5.0001}, "EXECUTION_MISMATCH", True),
    ],
)
def test_boundaries_are_strict_as_documented(overrides, code, fires):
    assert (code in fired_codes(signals(**overrides), SETTINGS)) is fires


def test_precedence_when_several_codes_fire():
    assert fired_codes(signals(f1_buy_delta=-2.0, std_f1_buy=0.2, sl_pct=0.7), SETTINGS) == \
        ["ML_USELESS", "ML_UNSTABLE", "SL_TOO_TIGHT"]
    assert fired_codes(signals(std_f1_buy=0.2, screening_testing_gap=0.5, sortino=-0.1, sl_pct=0.6, tp_pct=0.1),
                       SETTINGS) == ["ML_UNSTABLE", "SCREENING_OVERFIT", "SL_TOO_TIGHT", "TP_TOO_AMBITIOUS",
                                     "EXECUTION_MISMATCH", "ML_SOLID"]
    # exit shares alone (Sortino positive) are listed after the level, never the principal
    assert fired_codes(signals(sl_pct=0.6), SETTINGS) == ["ML_SOLID", "SL_TOO_TIGHT"]
    # with a marginal model, a losing backtest is not EXECUTION_MISMATCH (§7: "ML exploitable")
    assert fired_codes(signals(f1_buy_delta=3.0, sortino=-0.5, timeout_pct=0.5), SETTINGS) == \
        ["ML_MARGINAL", "HORIZON_TOO_SHORT"]


def test_every_threshold_comes_from_the_settings():
    strict = GateSettings(unstable_std_f1=0.02, sl_too_tight_pct=0.25, candidate_min_trades=500)
    verdict = diagnose(signals(), SPEC, strict)
    assert verdict.codes == ["ML_UNSTABLE", "ML_SOLID", "SL_TOO_TIGHT"] and not verdict.candidate


def test_candidate_needs_every_condition_and_says_why_not():
    passed = diagnose(signals(), SPEC)
    assert passed.candidate and passed.relaunch is None and "+12.0 pts" in passed.reasons[0]
    rejected = diagnose(signals(f1_buy_delta=4.0, n_trades=10, sortino=-0.1), SPEC)
    assert not rejected.candidate
    text = " | ".join(rejected.reasons)
    assert "+4.0 pts" in text and "10 trades" in text and "Sortino -0.100" in text


@pytest.mark.parametrize(
    ("overrides", "rejection", "change"),
    [
        ({"n_trades": 29}, "n_trades", {"backtest_days": 120}),  # §9.3 too conservative: longer window
        ({"sortino": 0.0}, "sortino", {"sl_range": [1.2, 1.5, 1.8, 2.0]}),
        ({"n_trades": 0, "sortino": None}, "n_trades", {"backtest_days": 120}),
        ({"screening_f1_buy": None, "screening_testing_gap": None}, "screening", None),
    ],
)
def test_a_rejected_solid_model_gets_the_action_of_its_rejection(overrides, rejection, change):
    verdict = diagnose(signals(**overrides), SPEC)
    assert verdict.diagnostic == "ML_SOLID" and not verdict.candidate
    assert verdict.action == REJECTED_ACTIONS[rejection]
    if change is None:
        assert verdict.relaunch is None
    else:
        relaunched = parsed_launch(verdict.relaunch)
        assert relaunched.symbols == ["SOLUSDC"]
        assert {name: getattr(relaunched, name) for name in change} == change


@pytest.mark.parametrize(
    ("overrides", "changed"),
    [
        ({"sortino": -0.2, "sl_pct": 0.6}, {"sl_range": [1.2, 1.5, 1.8, 2.0]}),
        ({"sortino": -0.2}, {"sl_range": [1.2, 1.5, 1.8, 2.0]}),
        ({"sortino": -0.2, "tp_pct": 0.1}, {"tp_range": [1.5, 2.0, 2.5]}),
        ({"sortino": -0.2, "timeout_pct": 0.5}, {"horizons": [2, 4, 6, 8]}),  # H1,H2,H4 doubled, plus max + 2
        ({"f1_buy_delta": -1.0}, {"horizons": [2, 4, 6, 8]}),  # §9.2 step 2: another horizon
        ({"f1_buy_delta": 2.0}, {"hpo_trials": 50}),
        ({"std_f1_buy": 0.2}, {"folds": 5, "backtest_days": 90}),
        ({"screening_testing_gap": 0.4}, {"backtest_days": 120}),
    ],
)
def test_relaunch_commands_change_only_what_the_playbook_says_and_parse_with_the_real_cli(overrides, changed):
    verdict = diagnose(signals(**overrides), SPEC)
    assert verdict.relaunch.startswith("cvn campaign launch --group defi --symbols SOLUSDC ")
    relaunched = parsed_launch(verdict.relaunch)
    expected = SPEC.model_dump(exclude={"campaign_id"}) | {"symbols": ["SOLUSDC"]} | changed
    assert relaunched.model_dump(exclude={"campaign_id"}) == expected


def test_relaunch_prints_the_manuals_ranges_and_a_window_long_enough():
    tight = diagnose(signals(sortino=-0.2, sl_pct=0.6), SPEC).relaunch
    assert "--sl-range 1.2,1.5,1.8,2.0" in tight
    assert "--tp-range 1.5,2.0,2.5" in diagnose(signals(sortino=-0.2, tp_pct=0.1), SPEC).relaunch
    short = CampaignSpec(campaign_id="diag-002", group="defi", symbols=["SOLUSDC"], horizons=[24], backtest_days=21,
                         seed=11, planted_signal=0.5)
    relaunch = diagnose(signals(sortino=-0.2, timeout_pct=0.5), short).relaunch
    relaunched = parsed_launch(relaunch)  # H48 needs 30 days for 3 folds: raised to the floor
    assert relaunched.horizons == [26, 48] and relaunched.backtest_days == 30
    assert (relaunched.seed, relaunched.planted_signal) == (11, 0.5)  # the rest of the spec is kept


def test_run_level_no_candidates_with_a_wider_grid():
    good = diagnose(signals(), SPEC)
    bad = diagnose(signals(crypto="ADAUSDC", f1_buy_delta=-1), SPEC)
    assert run_level_codes({"SOLUSDC": good, "ADAUSDC": bad}) == []
    assert run_level_codes({"ADAUSDC": bad}) == ["NO_CANDIDATES"]
    wider = parsed_launch(run_level_relaunch(SPEC))
    assert wider.symbols == ["SOLUSDC", "ADAUSDC"] and wider.horizons == [2, 4, 6, 8]
    assert wider.sl_range == [1.0, 1.2, 1.5, 1.8, 2.0] and wider.tp_range == [1.5, 2.0, 2.5]


def _blob(crypto: str, fold: int, family: str, y_true, y_pred):
    start = 1_700_000_000_000 + fold * 10_000_000
    rows = len(y_true)
    meta = BlobMeta(schema_version=SCHEMA_VERSION, campaign_id="diag-001", crypto=crypto, fold=fold, family=family,
                    pte=Pte(sl=1.0, tp=2.0, horizon=12), timeframe="5m", threshold=0.5,
                    train=Window(start_ms=start - 3_000_000, end_ms=start - 2_000_000),
                    validation=Window(start_ms=start - 2_000_000, end_ms=start - 1_000_000),
                    test=Window(start_ms=start, end_ms=start + rows * 300_000),
                    screening_f1_buy=0.5, validation_f1_buy=0.5, fees_bps=10.0, producer_version="test")
    return make_blob(meta, ts=start + np.arange(rows) * 300_000, y_true=np.array(y_true), y_pred=np.array(y_pred),
                     proba_buy=np.array(y_pred, dtype=float), exit_reason=np.zeros(rows),
                     trade_return=np.full(rows, 0.01))


def test_evaluate_cryptos_diagnoses_each_crypto_within_itself():
    sol = [_blob("SOLUSDC", fold, "logreg", [1, 0] * 20, [1, 0] * 20) for fold in (0, 1)]
    ada = [_blob("ADAUSDC", fold, "logreg", [1, 0] * 20, [1, 1] * 20) for fold in (0, 1)]
    verdicts = evaluate_cryptos({"SOLUSDC": sol, "ADAUSDC": ada}, SPEC)
    assert list(verdicts) == ["ADAUSDC", "SOLUSDC"]
    assert verdicts["SOLUSDC"].candidate and verdicts["SOLUSDC"].signals["crypto"] == "SOLUSDC"
    assert verdicts["ADAUSDC"].diagnostic == "ML_USELESS"  # predicting BUY everywhere is the baseline itself
    with pytest.raises(ValueError, match="pool 'SOLUSDC' holds the blobs of 'ADAUSDC'"):
        evaluate_cryptos({"SOLUSDC": ada}, SPEC)


def test_relaunches_keep_the_campaigns_timeframe_and_whole_bar_horizons():
    four_hours = CampaignSpec(campaign_id="diag-4h", group="btc-core", symbols=["BTCUSDC"], timeframe="4h",
                              horizons=[4, 8], folds=2, backtest_days=1000)
    longer = parsed_launch(diagnose(signals(crypto="BTCUSDC", sortino=-0.2, timeout_pct=0.5), four_hours).relaunch)
    assert longer.timeframe == "4h" and longer.horizons == [8, 12, 16]  # doubled, plus max + one 4h bar
    wider = parsed_launch(run_level_relaunch(four_hours))
    assert (wider.group, wider.symbols, wider.timeframe) == ("btc-core", ["BTCUSDC"], "4h")
