"""Golden signals of one crypto, computed on constructed blobs whose every number is known."""

from __future__ import annotations

import numpy as np
import pytest

from cvn_assets.contracts.blob import SCHEMA_VERSION, BlobMeta, ExitReason, Pte, Window, make_blob
from cvn_assets.gate.signals import SORTINO_CAP, always_buy_f1, choose_family, compute_crypto_signals

TP, SL, TIMEOUT = ExitReason.TP, ExitReason.SL, ExitReason.TIMEOUT
BAR_MS = 300_000


def blob(family: str, fold: int, y_true, y_pred, exits=None, returns=None, validation_f1: float | None = 0.5,
         screening_f1: float | None = 0.9, crypto: str = "SOLUSDC"):
    rows = len(y_true)
    start = 1_700_000_000_000 + fold * 10_000_000
    meta = BlobMeta(schema_version=SCHEMA_VERSION, campaign_id="sig-001", crypto=crypto, fold=fold, family=family,
                    pte=Pte(sl=1.0, tp=2.0, horizon=12), timeframe="5m", threshold=0.5,
                    train=Window(start_ms=start - 3_000_000, end_ms=start - 2_000_000),
                    validation=Window(start_ms=start - 2_000_000, end_ms=start - 1_000_000),
                    test=Window(start_ms=start, end_ms=start + rows * BAR_MS),
                    screening_f1_buy=screening_f1, validation_f1_buy=validation_f1, fees_bps=10.0,
                    producer_version="test")
    return make_blob(meta, ts=start + np.arange(rows) * BAR_MS, y_true=np.array(y_true), y_pred=np.array(y_pred),
                     proba_buy=np.array(y_pred, dtype=float) * 0.9,
                     exit_reason=np.array(exits if exits is not None else [TIMEOUT] * rows),
                     trade_return=np.array(returns if returns is not None else [0.0] * rows))


def test_ml_signals_pool_the_test_folds_of_the_family_chosen_on_validation():
    blobs = [
        blob("naive", 0, [1, 0, 1, 0], [1, 1, 1, 1], validation_f1=0.9),  # the baseline is never a candidate
        blob("naive", 1, [1, 0, 0, 0], [1, 1, 1, 1], validation_f1=0.9),
        # logreg wins on validation although its test F1 is worse than hgb's: the choice never looks at test
        blob("logreg", 0, [1, 0, 1, 0], [1, 0, 0, 0], validation_f1=0.7),
        blob("logreg", 1, [1, 0, 0, 0], [0, 1, 0, 0], validation_f1=0.7),
        blob("hgb", 0, [1, 0, 1, 0], [1, 0, 1, 0], validation_f1=0.6),
        blob("hgb", 1, [1, 0, 0, 0], [1, 0, 0, 0], validation_f1=0.6),
    ]
    signals = compute_crypto_signals(blobs)
    assert signals.crypto == "SOLUSDC" and signals.family == "logreg" and signals.folds == 2
    # pooled y_true 1,0,1,0,1,0,0,0 and y_pred 1,0,0,0,0,1,0,0: 1 true positive, 2 predicted, 3 actual
    assert signals.precision_buy == pytest.approx(1 / 2) and signals.recall_buy == pytest.approx(1 / 3)
    assert signals.f1_buy == pytest.approx(0.4)
    assert signals.buy_rate == pytest.approx(3 / 8) and signals.test_rows == 8
    # always-BUY on the same rows: precision 3/8, recall 1
    assert signals.baseline_f1_buy == pytest.approx(2 * (3 / 8) / (1 + 3 / 8))
    assert signals.f1_buy_delta == pytest.approx((0.4 - signals.baseline_f1_buy) * 100)  # F1 points


def test_always_buy_baseline_is_what_predicting_buy_everywhere_scores():
    y_true = np.array([1, 0, 0, 1, 0, 0, 0, 0, 1, 0])
    blobs = [blob("naive", 0, y_true, np.ones(10, dtype=int))]
    assert compute_crypto_signals(blobs).f1_buy == pytest.approx(always_buy_f1(y_true))
    assert always_buy_f1(np.zeros(5)) == 0.0


def test_stability_and_screening_gap_read_folds_in_fold_order():
    # Given out of order: the last fold is fold 2 whatever the list order.
    blobs = [
        blob("logreg", 2, [1, 1, 0, 0], [0, 0, 1, 1], screening_f1=0.8),  # F1 0 on the last fold
        blob("logreg", 0, [1, 1, 0, 0], [1, 1, 0, 0], screening_f1=0.1),  # F1 1
        blob("logreg", 1, [1, 1, 0, 0], [1, 0, 0, 0], screening_f1=0.1),  # F1 2/3
    ]
    signals = compute_crypto_signals(blobs)
    assert signals.std_f1_buy == pytest.approx(np.std([1.0, 2 / 3, 0.0]))  # population std across folds
    assert signals.last_fold_f1_buy == 0.0
    assert signals.screening_f1_buy == 0.8  # the last fold's screening, same metric and period (ADR-28/29)
    assert signals.screening_testing_gap == pytest.approx(0.8)


def test_absent_screening_score_leaves_the_gap_unknown_not_zero():
    signals = compute_crypto_signals([blob("logreg", 0, [1, 0], [1, 0], screening_f1=None)])
    assert signals.screening_f1_buy is None and signals.screening_testing_gap is None


def test_backtest_trades_every_predicted_buy_in_time_order_with_its_pte_exit():
    blobs = [
        # fold 1 comes later in time but first in the list: the equity curve follows time
        blob("logreg", 1, [1, 0, 1, 0], [1, 1, 0, 1], [TP, SL, TP, TIMEOUT], [0.03, -0.02, 0.05, -0.01]),
        blob("logreg", 0, [1, 0, 0, 0], [1, 1, 1, 0], [TP, SL, SL, TP], [0.04, -0.01, -0.02, 0.05]),
    ]
    signals = compute_crypto_signals(blobs)
    returns = np.array([0.04, -0.01, -0.02, 0.03, -0.02, -0.01])  # predicted BUYs only, fold 0 then fold 1
    assert signals.n_trades == 6
    assert (signals.tp_pct, signals.sl_pct, signals.timeout_pct) == pytest.approx((2 / 6, 3 / 6, 1 / 6))
    assert signals.expectancy == pytest.approx(returns.mean(), abs=1e-7)
    downside = np.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert signals.sortino == pytest.approx(returns.mean() / downside, rel=1e-5)
    # cumulative 0.04, 0.03, 0.01, 0.04, 0.02, 0.01: peak 0.04 → trough 0.01
    assert signals.max_drawdown == pytest.approx(0.03, abs=1e-7)


def test_backtest_edges_no_trade_and_no_losing_trade():
    idle = compute_crypto_signals([blob("logreg", 0, [1, 0, 1], [0, 0, 0])])
    assert idle.n_trades == 0
    assert (idle.sortino, idle.tp_pct, idle.sl_pct, idle.timeout_pct, idle.expectancy, idle.max_drawdown) == (None,) * 6
    winner = compute_crypto_signals([blob("logreg", 0, [1, 1], [1, 1], [TP, TP], [0.01, 0.02])])
    assert winner.sortino == SORTINO_CAP and winner.max_drawdown == 0.0  # finite, so JSON and SQL keep it
    flat = compute_crypto_signals([blob("logreg", 0, [1, 1], [1, 1], [TIMEOUT, TIMEOUT], [0.0, 0.0])])
    assert flat.sortino == 0.0


def test_family_choice_ties_and_baseline_only():
    tie = [blob("hgb", 0, [1, 0], [1, 0], validation_f1=0.6), blob("logreg", 0, [1, 0], [1, 0], validation_f1=0.6)]
    assert choose_family(tie) == "hgb"  # the campaign's family order breaks ties
    assert choose_family([blob("naive", 0, [1, 0], [1, 1], validation_f1=None)]) == "naive"
    assert choose_family([blob("naive", 0, [1, 0], [1, 1]), blob("logreg", 0, [1, 0], [1, 0], validation_f1=None)]) \
        == "logreg"  # the only candidate needs no ranking


def test_a_candidate_family_without_validation_score_fails_loud():
    blobs = [blob("logreg", 0, [1, 0], [1, 0], validation_f1=0.6), blob("hgb", 0, [1, 0], [1, 0], validation_f1=None)]
    with pytest.raises(ValueError, match=r"validation_f1_buy .* hgb/fold-00"):
        compute_crypto_signals(blobs)


def test_signals_never_mix_cryptos():
    with pytest.raises(ValueError, match="one crypto"):
        compute_crypto_signals([blob("logreg", 0, [1, 0], [1, 0]), blob("logreg", 0, [1, 0], [1, 0], crypto="ADAUSDC")])
    with pytest.raises(ValueError, match="found none"):
        compute_crypto_signals([])
