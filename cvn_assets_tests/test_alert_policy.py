"""Alert policy: notify on change, no repeat before the interval, one resolve, §8 severities, routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cvn_assets.alerts.alert import Severity
from cvn_assets.alerts.messages import (
    SCENARIO_B, incomplete_cohort_alert, malformed_blob_alert, rerun_command, run_failure_alert, state_alert,
    transport_suspect_alert,
)
from cvn_assets.alerts.policy import (
    AlertMemory, AlertPolicy, NotificationKind, decide, newest, remember_evaluation, remember_notification, route,
)
from cvn_assets.state.rules import FiredRule, State, StateEvaluation

T0 = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
POLICY = AlertPolicy()


def evaluation(state: State, *rule_ids: str) -> StateEvaluation:
    rules = [FiredRule(id=rule_id, state=state, rule="r", reason=f"{rule_id} holds") for rule_id in rule_ids]
    return StateEvaluation(state=state, evaluated_at=T0, rules=rules, unknown=[])


def step(memory: AlertMemory, current: StateEvaluation, now: datetime):
    """One evaluation as the sensor does it: decide, and remember what was told."""
    decision = decide(current, memory, POLICY, now)
    memory = remember_evaluation(memory, current, now)
    if decision.kind is not None:
        memory = remember_notification(memory, current, decision, now, ["log"], [], POLICY)
    return decision, memory


def test_severity_follows_section_8():
    assert [State(s).severity for s in ("RED", "ORANGE", "YELLOW", "GREEN")] == ["P0", "P1", "P2", None]


def test_first_non_green_fires_once_then_stays_quiet_until_the_repeat_interval():
    memory = AlertMemory()
    orange = evaluation(State.ORANGE, "success_rate")
    decision, memory = step(memory, orange, T0)
    assert decision.kind == NotificationKind.FIRING and decision.severity == Severity.P1
    for minutes in (5, 60, 239):
        decision, memory = step(memory, orange, T0 + timedelta(minutes=minutes))
        assert decision.kind is None, minutes
    decision, memory = step(memory, orange, T0 + timedelta(minutes=240))
    assert decision.kind == NotificationKind.REPEAT


def test_green_from_the_start_sends_nothing():
    decision, memory = step(AlertMemory(), evaluation(State.GREEN), T0)
    assert decision.kind is None


def test_change_between_non_green_states_is_notified_with_the_new_severity():
    _, memory = step(AlertMemory(), evaluation(State.YELLOW, "success_rate"), T0)
    decision, memory = step(memory, evaluation(State.RED, "infra_critical"), T0 + timedelta(minutes=5))
    assert decision.kind == NotificationKind.CHANGED and decision.severity == Severity.P0
    assert decision.previous_state == State.YELLOW


def test_new_rule_in_the_same_state_is_an_update_but_a_rule_leaving_is_quiet():
    _, memory = step(AlertMemory(), evaluation(State.ORANGE, "success_rate"), T0)
    decision, memory = step(memory, evaluation(State.ORANGE, "success_rate", "no_candidates"), T0 + timedelta(minutes=5))
    assert decision.kind == NotificationKind.UPDATED
    decision, memory = step(memory, evaluation(State.ORANGE, "no_candidates"), T0 + timedelta(minutes=10))
    assert decision.kind is None


def test_return_to_green_sends_one_resolve_routed_like_the_resolved_state():
    _, memory = step(AlertMemory(), evaluation(State.ORANGE, "success_rate"), T0)
    decision, memory = step(memory, evaluation(State.GREEN), T0 + timedelta(minutes=5))
    assert decision.kind == NotificationKind.RESOLVED and decision.severity == Severity.P1
    decision, memory = step(memory, evaluation(State.GREEN), T0 + timedelta(minutes=10))
    assert decision.kind is None


def test_memory_survives_serialisation_and_the_newest_copy_wins():
    _, memory = step(AlertMemory(), evaluation(State.ORANGE, "success_rate"), T0)
    restored = AlertMemory.model_validate_json(memory.model_dump_json())
    assert restored == memory
    older = AlertMemory(updated_at=T0 - timedelta(hours=1), notified_state=State.GREEN)
    assert newest(older, restored, None) == restored
    assert newest(None, None) == AlertMemory()
    decision, _ = step(restored, evaluation(State.ORANGE, "success_rate"), T0 + timedelta(minutes=5))
    assert decision.kind is None


def test_notification_log_is_bounded():
    policy = AlertPolicy(log_size=3)
    memory = AlertMemory()
    for index, state in enumerate([State.YELLOW, State.ORANGE, State.YELLOW, State.ORANGE, State.RED]):
        current = evaluation(state, "x")
        decision = decide(current, memory, policy, T0 + timedelta(minutes=index))
        memory = remember_notification(memory, current, decision, T0 + timedelta(minutes=index), ["log"], [], policy)
    assert [record.state for record in memory.log] == ["YELLOW", "ORANGE", "RED"]


def test_failed_channels_are_remembered_for_a_retry():
    current = evaluation(State.RED, "infra_critical")
    decision = decide(current, AlertMemory(), POLICY, T0)
    memory = remember_notification(AlertMemory(), current, decision, T0, ["log", "slack"], ["sms"], POLICY)
    assert memory.pending_channels == ["sms"]
    assert memory.log[-1].failed == ["sms"]


def test_routing_by_minimum_severity():
    minimums = {"log": Severity.P3, "slack": Severity.P3, "sms": Severity.P1}
    assert route(Severity.P0, minimums) == ["log", "slack", "sms"]
    assert route(Severity.P1, minimums) == ["log", "slack", "sms"]
    assert route(Severity.P2, minimums) == ["log", "slack"]


# Messages: runbook scenarios with the exact commands


def test_state_alert_carries_rules_and_next_steps():
    current = StateEvaluation(state=State.ORANGE, evaluated_at=T0, unknown=[], rules=[
        FiredRule(id="success_rate", state=State.ORANGE, rule="r", reason="pipeline success rate 60 % < 70 %"),
        FiredRule(id="core_model_stale:BTCUSDC", state=State.ORANGE, rule="r", reason="BTCUSDC model 20 days old"),
    ])
    decision = decide(current, AlertMemory(), POLICY, T0)
    alert = state_alert(current, decision, T0)
    assert alert.severity == Severity.P1 and alert.kind == "firing"
    assert "pipeline success rate 60 % < 70 %" in alert.text
    assert "cvn campaign launch --group btc-core --symbols BTCUSDC" in alert.commands


def test_resolve_message():
    memory = AlertMemory(notified_state=State.RED, notified_at=T0, updated_at=T0)
    green = evaluation(State.GREEN)
    alert = state_alert(green, decide(green, memory, POLICY, T0), T0)
    assert alert.kind == "resolved" and alert.title.startswith("RESOLVED") and "was RED" in alert.title


def test_malformed_blob_is_scenario_b_p1_with_inspect_and_rerun():
    key = "s43-predictions/defi-20260504-070000/SOLUSDC/hgb/fold-01.npz"
    alert = malformed_blob_alert(key=key, check="cohort_intact", campaign_id="defi-20260504-070000",
                                 crypto="SOLUSDC", run_id="r1", error="s43 npz shape mismatch: …", created_at=T0)
    assert alert.severity == Severity.P1 and alert.scenario.startswith("runbook scenario B")
    assert SCENARIO_B.text in alert.text
    assert alert.commands == [
        f"cvn blob inspect {key}",
        "cvn campaign rerun defi-20260504-070000 --cryptos SOLUSDC",  # re-runs, then re-gates
    ]


def test_rerun_command_names_the_cryptos_or_the_failed_ones():
    assert rerun_command("defi-x1", ["SOLUSDC", "ADAUSDC"]) == "cvn campaign rerun defi-x1 --cryptos SOLUSDC,ADAUSDC"
    assert rerun_command("defi-x1") == "cvn campaign rerun defi-x1 --failed"


def test_incomplete_cohort_is_scenario_a_and_all_absent_is_scenario_c():
    missing = ["s43-predictions/defi-abc/ADAUSDC/hgb/fold-00.npz", "s43-predictions/defi-abc/ADAUSDC/hgb/fold-01.npz"]
    alert_a = incomplete_cohort_alert(campaign_id="defi-abc", missing=missing, run_id="r", created_at=T0)
    assert alert_a.scenario.startswith("runbook scenario A") and alert_a.severity == Severity.P2
    assert alert_a.commands[-1] == "cvn campaign rerun defi-abc --cryptos ADAUSDC"
    alert_c = transport_suspect_alert(campaign_id="defi-abc", absent=36, run_id="r", created_at=T0)
    assert alert_c.scenario.startswith("runbook scenario C") and alert_c.commands[0] == "cvn s3 check"


def test_run_failure_with_an_npz_error_is_scenario_b():
    key = "s43-predictions/defi-abc/SOLUSDC/hgb/fold-01.npz"
    alert = run_failure_alert(job="s43_gate_job", run_id="abcdef123456", campaign_id="defi-abc", crypto=None,
                              stage="gate", errors=[f"ValueError: s43 npz schema mismatch: {key}: expected 1, found 9"],
                              created_at=T0)
    assert alert.severity == Severity.P1 and "scenario B" in alert.scenario
    assert f"cvn blob inspect {key}" in alert.commands
    plain = run_failure_alert(job="s43_acquire_job", run_id="abcdef123456", campaign_id="defi-abc",
                              crypto="ADAUSDC", stage="acquire", errors=["RuntimeError: boom"], created_at=T0)
    assert plain.severity == Severity.P2 and "scenario A" in plain.scenario
    assert "cvn campaign rerun defi-abc --cryptos ADAUSDC" in plain.commands
    # the malformed gate: re-run the campaign's failed acquisitions (the rerun re-gates)
    assert alert.commands[-1] == "cvn campaign rerun defi-abc --failed"
