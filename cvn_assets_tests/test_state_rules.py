"""The manual's §0 rules: every state reachable, every boundary pinned, hysteresis, unknown ≠ healthy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cvn_assets.state.rules import State, evaluate_state
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import (
    CryptoSignals, GateHistory, GateRecord, GoldenSignals, InfraHealth, Measure, gate_history,
    negative_sortino_streak,
)
from cvn_assets.state.table import Level, signal_table

NOW = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)


def crypto(symbol: str, group: str, core: bool, **overrides: Measure) -> CryptoSignals:
    values = dict(
        f1_buy_delta_vs_baseline=Measure.of(0.2), screening_testing_gap=Measure.of(0.05),
        std_f1_buy=Measure.of(0.02), sortino=Measure.of(1.1), sl_pct=Measure.of(20.0),
        timeout_pct=Measure.of(10.0), negative_sortino_streak=Measure.of(0), model_freshness_days=Measure.of(1.0),
    )
    values.update(overrides)
    return CryptoSignals(crypto=symbol, group=group, core=core, **values)


def healthy(**overrides) -> GoldenSignals:
    """Every §0 input known and healthy."""
    values = dict(
        evaluated_at=NOW,
        infra_health=InfraHealth(mode="local", disks={"object store": Measure.of(40.0)},
                                 memory_percent=Measure.of(30.0), cpu_percent=Measure.of(10.0)),
        pipeline_success_rate=Measure.of(100.0, "10 of 10"),
        gates=GateHistory(zero_pass_streak=Measure.of(0), days_without_candidate=Measure.of(0.5)),
        cryptos={"BTCUSDC": crypto("BTCUSDC", "btc-core", True), "SOLUSDC": crypto("SOLUSDC", "defi", False)},
        challenger_count=Measure.of(1),
    )
    values.update(overrides)
    return GoldenSignals(**values)


def with_crypto(signals: GoldenSignals, symbol: str, **overrides: Measure) -> GoldenSignals:
    row = signals.cryptos[symbol].model_copy(update=overrides)
    return signals.model_copy(update={"cryptos": {**signals.cryptos, symbol: row}})


def state_of(signals: GoldenSignals, previous=None, settings=None) -> State:
    return evaluate_state(signals, settings, previous).state


def test_all_healthy_and_known_is_green_with_no_rule():
    evaluation = evaluate_state(healthy())
    assert evaluation.state == State.GREEN
    assert evaluation.rules == [] and evaluation.unknown == []


@pytest.mark.parametrize("rate, expected", [
    (69.99, State.ORANGE), (70.0, State.YELLOW), (89.99, State.YELLOW), (90.0, State.GREEN), (100.0, State.GREEN),
])
def test_success_rate_boundaries(rate, expected):
    """§0: < 70 % ORANGE; 70–90 % YELLOW, read as 70 <= rate < 90."""
    evaluation = evaluate_state(healthy(pipeline_success_rate=Measure.of(rate)))
    assert evaluation.state == expected
    if expected != State.GREEN:
        rule = evaluation.rules[0]
        assert rule.id == "success_rate" and rule.values["success_rate"] == pytest.approx(rate)


def test_infra_critical_is_red_and_outranks_everything():
    signals = healthy(
        infra_health=InfraHealth(mode="local", disks={"object store": Measure.of(85.5)}),
        pipeline_success_rate=Measure.of(10.0),
    )
    evaluation = evaluate_state(signals)
    assert evaluation.state == State.RED
    assert [rule.id for rule in evaluation.rules] == ["infra_critical", "success_rate"]
    assert evaluation.rules[0].values["disk_percent[object store]"] == 85.5


@pytest.mark.parametrize("disk, expected", [(85.0, State.GREEN), (85.01, State.RED)])
def test_volume_boundary_is_strictly_above_85(disk, expected):
    assert state_of(healthy(infra_health=InfraHealth(mode="local", disks={"v": Measure.of(disk)}))) == expected


@pytest.mark.parametrize("oom, down, expected", [(2, 0, State.GREEN), (3, 0, State.RED), (0, 1, State.RED)])
def test_kubernetes_oom_loop_and_pod_down_are_red(oom, down, expected):
    infra = InfraHealth(mode="kubernetes", disks={}, oom_kills=Measure.of(oom), pods_down=Measure.of(down, "p"),
                        restarts=Measure.of(0))
    assert state_of(healthy(infra_health=infra)) == expected


@pytest.mark.parametrize("streak, expected", [(2, State.GREEN), (3, State.ORANGE), (4, State.ORANGE)])
def test_zero_pass_on_three_consecutive_gates_is_orange(streak, expected):
    gates = GateHistory(zero_pass_streak=Measure.of(streak), days_without_candidate=Measure.of(1.0))
    assert state_of(healthy(gates=gates)) == expected


@pytest.mark.parametrize("days, expected", [(3.0, State.GREEN), (3.01, State.ORANGE)])
def test_no_candidate_for_more_than_three_days_is_orange(days, expected):
    gates = GateHistory(zero_pass_streak=Measure.of(0), days_without_candidate=Measure.of(days))
    assert state_of(healthy(gates=gates)) == expected


@pytest.mark.parametrize("age, expected", [(14.0, State.GREEN), (14.01, State.ORANGE)])
def test_core_model_stale_over_14_days_is_orange(age, expected):
    signals = with_crypto(healthy(), "BTCUSDC", model_freshness_days=Measure.of(age))
    evaluation = evaluate_state(signals)
    assert evaluation.state == expected
    if expected == State.ORANGE:
        assert evaluation.rules[0].id == "core_model_stale:BTCUSDC"


def test_core_model_between_7_and_14_days_fires_no_rule():
    """§0 names only > 14 days for core cryptos (the table still marks > 7 days as a warning)."""
    signals = with_crypto(healthy(), "BTCUSDC", model_freshness_days=Measure.of(10.0))
    assert state_of(signals) == State.GREEN
    row = next(r for r in signal_table(signals) if r.signal == "model_freshness" and r.scope.startswith("BTC"))
    assert row.level == Level.WARNING


@pytest.mark.parametrize("age, expected", [(7.0, State.GREEN), (7.01, State.YELLOW), (30.0, State.YELLOW)])
def test_non_core_model_stale_over_7_days_is_yellow(age, expected):
    assert state_of(with_crypto(healthy(), "SOLUSDC", model_freshness_days=Measure.of(age))) == expected


@pytest.mark.parametrize("streak, expected", [(2, State.GREEN), (3, State.YELLOW)])
def test_recurrent_negative_sortino_is_yellow(streak, expected):
    assert state_of(with_crypto(healthy(), "SOLUSDC", negative_sortino_streak=Measure.of(streak))) == expected


def test_every_rule_that_fires_is_listed_highest_first_with_values():
    signals = with_crypto(healthy(pipeline_success_rate=Measure.of(80.0)), "SOLUSDC",
                          model_freshness_days=Measure.of(9.0))
    signals = with_crypto(signals, "BTCUSDC", model_freshness_days=Measure.of(20.0))
    evaluation = evaluate_state(signals)
    assert evaluation.state == State.ORANGE
    assert [(r.id, r.state) for r in evaluation.rules] == [
        ("core_model_stale:BTCUSDC", State.ORANGE),
        ("noncore_model_stale:SOLUSDC", State.YELLOW),
        ("success_rate", State.YELLOW),
    ]
    assert evaluation.rules[0].values["age_days"] == 20.0


def test_unknown_input_never_counts_as_healthy():
    signals = healthy(pipeline_success_rate=Measure.missing("0 run(s) finished in the last 7 days"))
    evaluation = evaluate_state(signals)
    assert evaluation.state == State.YELLOW
    assert evaluation.rules[0].id == "signals_unknown"
    assert evaluation.unknown[0].signal == "pipeline_success_rate"
    assert "0 run(s) finished" in evaluation.unknown[0].reason


def test_unknown_does_not_hide_a_worse_known_rule():
    signals = healthy(pipeline_success_rate=Measure.of(50.0),
                      gates=GateHistory(zero_pass_streak=Measure.missing("no gate"),
                                        days_without_candidate=Measure.missing("no gate")))
    evaluation = evaluate_state(signals)
    assert evaluation.state == State.ORANGE
    assert {r.id for r in evaluation.rules} == {"success_rate", "signals_unknown"}


def test_a_crypto_outside_the_universes_is_shown_but_is_not_a_rule_input():
    outsider = crypto("DOGEUSDC", None, False, model_freshness_days=Measure.missing("no model"))  # type: ignore[arg-type]
    signals = healthy(cryptos={**healthy().cryptos, "DOGEUSDC": outsider})
    assert state_of(signals) == State.GREEN


# Hysteresis: a value sitting on a threshold does not flap the state


def test_success_rate_hysteresis_holds_orange_until_two_points_above():
    previous = {"success_rate": State.ORANGE}
    assert state_of(healthy(pipeline_success_rate=Measure.of(70.5)), previous) == State.ORANGE
    assert state_of(healthy(pipeline_success_rate=Measure.of(71.99)), previous) == State.ORANGE
    assert state_of(healthy(pipeline_success_rate=Measure.of(72.0)), previous) == State.YELLOW
    # without that history the same value is YELLOW: the margin applies only to leaving
    assert state_of(healthy(pipeline_success_rate=Measure.of(70.5))) == State.YELLOW


def test_success_rate_hysteresis_holds_yellow_until_92():
    previous = {"success_rate": State.YELLOW}
    assert state_of(healthy(pipeline_success_rate=Measure.of(91.0)), previous) == State.YELLOW
    assert state_of(healthy(pipeline_success_rate=Measure.of(92.0)), previous) == State.GREEN
    assert state_of(healthy(pipeline_success_rate=Measure.of(91.0)), {"success_rate": State.ORANGE}) == State.YELLOW


def test_a_rate_oscillating_around_70_percent_does_not_flap():
    previous: dict = {}
    states = []
    for rate in (69.0, 70.5, 69.8, 71.0, 69.9, 71.5):
        evaluation = evaluate_state(healthy(pipeline_success_rate=Measure.of(rate)), previous=previous)
        previous = evaluation.rule_states
        states.append(evaluation.state)
    assert states == [State.ORANGE] * 6


def test_volume_hysteresis_holds_red_until_five_points_below():
    def disk(value):
        return healthy(infra_health=InfraHealth(mode="local", disks={"v": Measure.of(value)}))

    previous = {"infra_critical": State.RED}
    assert state_of(disk(84.0), previous) == State.RED
    assert state_of(disk(80.0), previous) == State.GREEN


def test_day_thresholds_hysteresis_half_a_day():
    gates = GateHistory(zero_pass_streak=Measure.of(0), days_without_candidate=Measure.of(2.8))
    assert state_of(healthy(gates=gates), {"no_candidates": State.ORANGE}) == State.ORANGE
    assert state_of(healthy(gates=gates)) == State.GREEN


def test_thresholds_come_from_the_settings_model():
    settings = StateSettings(success_rate_orange_below=50.0, success_rate_yellow_below=60.0)
    assert state_of(healthy(pipeline_success_rate=Measure.of(55.0)), settings=settings) == State.YELLOW
    with pytest.raises(ValueError, match="success_rate_orange_below"):
        StateSettings(success_rate_orange_below=95.0)


# Signals computed from gate history


def gate(days_ago: float, verdict: str, candidates: int | None, **sortinos: float) -> GateRecord:
    return GateRecord(campaign_id=f"c-{days_ago:g}", evaluated_at=NOW - timedelta(days=days_ago), verdict=verdict,
                      candidates=candidates, sortinos=sortinos)


def test_zero_pass_streak_counts_conclusive_gates_from_the_latest():
    history = [gate(0.1, "FAIL", 0), gate(0.2, "INCONCLUSIVE_TOOLING", None), gate(0.3, "FAIL", 0),
               gate(0.5, "FAIL", 0), gate(1.0, "PASS", 2)]
    result = gate_history(history, StateSettings(), NOW)
    assert result.zero_pass_streak.value == 3
    assert result.days_without_candidate.value == pytest.approx(1.0)
    assert state_of(healthy(gates=result)) == State.ORANGE


def test_no_candidate_ever_counts_from_the_oldest_gate():
    result = gate_history([gate(4.0, "FAIL", 0), gate(1.0, "FAIL", 0)], StateSettings(), NOW)
    assert result.days_without_candidate.value == pytest.approx(4.0)
    assert "no candidate in any of the 2" in result.days_without_candidate.detail


def test_an_empty_gate_history_is_unknown_not_healthy():
    result = gate_history([], StateSettings(), NOW)
    assert not result.zero_pass_streak.known and not result.days_without_candidate.known
    assert "no gate recorded" in result.days_without_candidate.unknown


def test_negative_sortino_streak_per_crypto():
    history = [gate(0.1, "FAIL", 0, SOLUSDC=-0.2), gate(0.2, "FAIL", 0, SOLUSDC=-0.1, ADAUSDC=0.3),
               gate(0.3, "PASS", 1, SOLUSDC=-0.4), gate(0.4, "PASS", 1, SOLUSDC=0.6)]
    assert negative_sortino_streak("SOLUSDC", history).value == 3
    assert negative_sortino_streak("ADAUSDC", history).value == 0
    assert not negative_sortino_streak("BTCUSDC", history).known


def test_measure_is_value_xor_unknown():
    with pytest.raises(ValueError, match="exactly one"):
        Measure()
    with pytest.raises(ValueError, match="exactly one"):
        Measure(value=1.0, unknown="both")
