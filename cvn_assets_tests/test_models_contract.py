"""The lifecycle rules of the manual §4 and §10 as pure functions: who may promote what, when."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from cvn_assets.cli.main import get_cli
from cvn_assets.models.contract import (
    Approval, Refused, RegistryView, Role, Stage, VersionView, check_approvals, plan_decommission, plan_killswitch,
    plan_promotion, plan_rollback, validate_actor, validate_version,
)

NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)


def view(aliases: dict[str, str], stages: dict[str, str] | None = None) -> RegistryView:
    stages = stages or {}
    versions = {str(v): VersionView(version=str(v), created_ms=v * 1000,
                                    tags={"campaign_id": f"camp-{v:03d}", **({"stage": stages[str(v)]}
                                                                            if str(v) in stages else {})})
                for v in range(1, 6)}
    return RegistryView(crypto="SOLUSDC", name="cvn-s43-SOLUSDC", exists=True, aliases=aliases, versions=versions)


def approval(role: Role, actor: str, version: str = "3") -> Approval:
    return Approval(crypto="SOLUSDC", version=version, action="promotion", role=role, actor=actor, approved_at=NOW)


def test_promotion_needs_ml_owner_and_operator_by_two_people():
    with pytest.raises(Refused, match="missing operator"):
        check_approvals("promotion", [approval(Role.ML_OWNER, "alice")])
    with pytest.raises(Refused, match="different people"):
        check_approvals("promotion", [approval(Role.ML_OWNER, "alice"), approval(Role.OPERATOR, "alice")])
    # alice approved both roles, bob the operator role: alice (ml_owner) + bob (operator) is valid
    chosen = check_approvals("promotion", [approval(Role.ML_OWNER, "alice"), approval(Role.OPERATOR, "alice"),
                                           approval(Role.OPERATOR, "bob")])
    assert {(a.role, a.actor) for a in chosen} == {(Role.ML_OWNER, "alice"), (Role.OPERATOR, "bob")}
    with pytest.raises(Refused, match="missing mlops_maintainer"):
        check_approvals("meta_training", [approval(Role.ML_OWNER, "alice")])


def test_promotion_moves_champion_to_previous_and_supersedes_the_older_waiting_line():
    registry = view({"champion": "2", "previous": "1", "challenger-camp-003": "3", "challenger-camp-004": "4",
                     "challenger-camp-005": "5"})
    approvals = [approval(Role.ML_OWNER, "alice", "4"), approval(Role.OPERATOR, "bob", "4")]
    plan = plan_promotion(registry, "4", "mo", NOW, approvals, gate_passed=None)
    described = [change.describe() for change in plan.changes]
    assert "alias previous → v2" in described and "alias champion → v4" in described
    assert "v1 tag stage=superseded" in described and "v3 tag stage=superseded" in described
    assert "alias challenger-camp-003 removed from v3" in described
    assert not any("v5" in line for line in described)  # a newer challenger keeps waiting
    assert "v4 tag approved_by=ml_owner:alice,operator:bob" in described


@pytest.mark.parametrize(("aliases", "stages", "gate", "match"), [
    ({}, {"3": "quarantined"}, None, "can never be promoted"),
    ({}, {"3": "decommissioned"}, None, "can never be promoted"),
    ({"previous": "3", "champion": "4"}, {}, None, "use `cvn model rollback`"),
    ({}, {}, None, "never passed a gate"),  # no challenger alias: registered by hand
    ({"challenger-camp-003": "3"}, {}, "the gate of campaign camp-003 is FAIL", "never passed a gate"),
])
def test_promotion_refusals(aliases, stages, gate, match):
    approvals = [approval(Role.ML_OWNER, "alice"), approval(Role.OPERATOR, "bob")]
    with pytest.raises(Refused, match=match):
        plan_promotion(view(aliases, stages), "3", "mo", NOW, approvals, gate_passed=gate)
    with pytest.raises(Refused, match="has no version 9"):
        plan_promotion(view(aliases, stages), "9", "mo", NOW, approvals, gate_passed=None)


def test_emergencies_need_the_exact_confirmation_and_a_reason():
    registry = view({"champion": "3", "previous": "2"})
    for confirm in (None, "SOLUSDC@2", "solusdc@3", "SOLUSDC@3 ", "ADAUSDC@3"):
        if confirm == "SOLUSDC@3 ":
            continue  # surrounding blanks of a pasted value are tolerated
        with pytest.raises(Refused, match="expected 'SOLUSDC@3'"):
            plan_killswitch(registry, confirm, "op", NOW, "drawdown")
    with pytest.raises(Refused, match="reason is mandatory"):
        plan_killswitch(registry, "SOLUSDC@3", "op", NOW, "  ")
    killed = plan_killswitch(registry, "SOLUSDC@3", "op", NOW, "drawdown")
    assert [c.describe() for c in killed.changes][-2:] == ["alias quarantined → v3", "alias champion removed from v3"]
    rolled = plan_rollback(registry, "SOLUSDC@3", "op", NOW, "drawdown")
    assert "alias champion → v2" in [c.describe() for c in rolled.changes]
    with pytest.raises(Refused, match="no previous"):
        plan_rollback(view({"champion": "3"}), "SOLUSDC@3", "op", NOW, "drawdown")
    with pytest.raises(Refused, match="has no current champion"):
        plan_killswitch(view({}), "SOLUSDC@3", "op", NOW, "drawdown")


def test_decommission_only_what_left_production():
    registry = view({"champion": "3", "previous": "2", "challenger-camp-004": "4", "quarantined": "1"},
                    {"1": "quarantined", "5": "superseded"})
    assert registry.stage_of("1") == Stage.QUARANTINED and registry.stage_of("5") == Stage.SUPERSEDED
    for version, stage in (("3", "champion"), ("2", "previous"), ("4", "challenger")):
        with pytest.raises(Refused, match=f"is {stage}"):
            plan_decommission(registry, version, f"SOLUSDC@{version}", "pf", NOW, delete_artifacts=False)
    plan = plan_decommission(registry, "1", "SOLUSDC@1", "pf", NOW, delete_artifacts=True)
    assert [c.op for c in plan.changes][:2] == ["delete_alias", "delete_artifacts"]
    assert plan_decommission(registry, "5", "SOLUSDC@5", "pf", NOW, delete_artifacts=False).changes


def test_identifiers_are_checked_before_anything():
    assert validate_version("12") == "12"
    for bad in ("0", "-1", "1; drop", "v1", "", "1.0"):
        with pytest.raises(ValueError, match="model version"):
            validate_version(bad)
    for bad in ("", " ", "a b", "x" * 200, "'; --"):
        with pytest.raises(ValueError, match="actor"):
            validate_actor(bad)


def test_every_model_command_has_help():
    for name in ("ls", "approve", "promote", "killswitch", "rollback", "decommission"):
        result = CliRunner().invoke(get_cli(), ["model", name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, name
    assert "CVN_ACTOR" in CliRunner().invoke(get_cli(), ["model", "promote", "--help"]).output


def test_a_bad_crypto_or_version_is_exit_2_with_a_json_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(get_cli(), ["model", "promote", "sol/../x", "3", "--by", "mo", "--json"])
    assert result.exit_code == 2 and '"exit_code": 2' in result.stdout and "crypto" in result.stdout
    result = CliRunner().invoke(get_cli(), ["model", "approve", "SOLUSDC", "x1", "--role", "operator", "--by", "bo"])
    assert result.exit_code == 2 and "model version" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "diagnostics.sqlite").exists()  # checked before any store was opened
