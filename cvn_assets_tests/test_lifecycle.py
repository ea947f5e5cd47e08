"""`cvn lifecycle` (runbook scenario D): our 7-day rule merged into the bucket's one configuration.

Against a moto server over HTTP: the bucket already holds other teams' ``xcom/`` and ``l2_events/``
rules, which every apply must keep byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvn_assets.cli.lifecycle import lifecycle_group
from cvn_assets.contracts.keys import DEFAULT_PREFIX
from cvn_assets.operations.lifecycle import desired_rules, plan_lifecycle

REPO_ROOT = Path(__file__).resolve().parents[1]
RULES_FILE = REPO_ROOT / "deploy" / "s3" / "s3-lifecycle-s43-predictions.json"

XCOM_RULE = {"ID": "xcom-expiry", "Filter": {"Prefix": "xcom/"}, "Status": "Enabled", "Expiration": {"Days": 3}}
# The legacy rule shape (top-level Prefix) some buckets still carry: it must survive untouched too.
L2_RULE = {"ID": "l2-events-30d", "Prefix": "l2_events/", "Status": "Enabled", "Expiration": {"Days": 30},
           "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}
OUR_ID = "s43-predictions-retention"


def cvn(*args: str):
    return CliRunner().invoke(lifecycle_group, list(args))


def cvn_json(*args: str) -> tuple[int, dict]:
    result = cvn(*args, "--json")
    assert result.stdout.strip(), f"no JSON (exit {result.exit_code}): {result.output}"
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def bucket(s3_bucket, moto_server):
    """The shared moto bucket with the other teams' rules already in place."""
    client = moto_server.client()
    client.put_bucket_lifecycle_configuration(Bucket=s3_bucket, LifecycleConfiguration={"Rules": [XCOM_RULE, L2_RULE]})
    return s3_bucket


def bucket_rules(moto_server, bucket_name: str) -> list[dict]:
    return moto_server.client().get_bucket_lifecycle_configuration(Bucket=bucket_name)["Rules"]


def by_id(rules: list[dict]) -> dict[str, dict]:
    return {rule["ID"]: rule for rule in rules}


def put_rules(moto_server, bucket_name: str, rules: list[dict]) -> None:
    moto_server.client().put_bucket_lifecycle_configuration(Bucket=bucket_name, LifecycleConfiguration={"Rules": rules})


def test_apply_adds_our_rule_and_keeps_the_xcom_and_l2_events_rules(bucket, moto_server):
    before = bucket_rules(moto_server, bucket)
    result = cvn("apply")
    assert result.exit_code == 0, result.output
    rules = by_id(bucket_rules(moto_server, bucket))
    assert set(rules) == {"xcom-expiry", "l2-events-30d", OUR_ID}
    assert rules["xcom-expiry"] == by_id(before)["xcom-expiry"]
    assert rules["l2-events-30d"] == by_id(before)["l2-events-30d"]
    assert rules[OUR_ID] == {
        "ID": OUR_ID, "Filter": {"Prefix": "s43-predictions/"}, "Status": "Enabled",
        "Expiration": {"Days": 7}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def test_a_second_apply_changes_nothing(bucket, moto_server):
    assert cvn("apply").exit_code == 0
    after_first = bucket_rules(moto_server, bucket)
    code, second = cvn_json("apply")
    assert code == 0
    assert (second["written"], second["changed"]) == (False, False)
    assert {c["action"] for c in second["changes"]} == {"keep", "unchanged"}
    assert bucket_rules(moto_server, bucket) == after_first
    assert "already up to date, nothing written" in cvn("apply").output


def test_plan_shows_the_diff_and_writes_nothing(bucket, moto_server):
    result = cvn("plan")
    assert result.exit_code == 0, result.output
    assert f"+ add        {OUR_ID}" in result.output
    assert "Expiration.Days: (absent) → 7" in result.output
    assert any(line.split()[:2] == ["keep", "xcom-expiry"] and line.endswith("xcom/ (not ours)")
               for line in result.output.splitlines())
    assert set(by_id(bucket_rules(moto_server, bucket))) == {"xcom-expiry", "l2-events-30d"}


def test_apply_replaces_an_edited_rule_of_ours_and_shows_the_field_diff(bucket, moto_server):
    edited = {**desired_rules(DEFAULT_PREFIX)[0], "Expiration": {"Days": 30}}
    put_rules(moto_server, bucket, [XCOM_RULE, edited, L2_RULE])
    code, plan = cvn_json("plan")
    assert code == 0
    [update] = [c for c in plan["changes"] if c["action"] == "update"]
    assert update["differences"] == ["Expiration.Days: 30 → 7"]
    assert cvn("apply").exit_code == 0
    rules = bucket_rules(moto_server, bucket)
    assert [r["ID"] for r in rules] == ["xcom-expiry", OUR_ID, "l2-events-30d"]  # replaced in place
    assert by_id(rules)[OUR_ID]["Expiration"] == {"Days": 7}


def test_verify_passes_after_apply_and_detects_a_removed_rule(bucket, moto_server):
    assert cvn("apply").exit_code == 0
    assert cvn("verify", "--expect-prefix", "xcom/", "--expect-prefix", "l2_events/").exit_code == 0
    put_rules(moto_server, bucket, [XCOM_RULE, L2_RULE])  # someone re-applied the other teams' file alone
    code, report = cvn_json("verify")
    assert (code, report["in_sync"]) == (1, False)
    assert report["drift"] == [f"rule '{OUR_ID}' (prefix 's43-predictions/') is missing from the bucket"]


def test_verify_detects_an_edited_rule(bucket, moto_server):
    assert cvn("apply").exit_code == 0
    edited = {**desired_rules(DEFAULT_PREFIX)[0], "Status": "Disabled"}
    put_rules(moto_server, bucket, [XCOM_RULE, L2_RULE, edited])
    result = cvn("verify")
    assert result.exit_code == 1
    assert f"rule '{OUR_ID}' was edited: Status: Disabled → Enabled" in result.output


def test_verify_detects_foreign_rules_dropped_by_a_whole_configuration_replace(bucket, moto_server):
    # The runbook's warning: put-bucket-lifecycle-configuration with our file alone drops xcom/ and l2_events/.
    put_rules(moto_server, bucket, json.loads(RULES_FILE.read_text())["Rules"])
    assert cvn("verify").exit_code == 0  # our rule is fine…
    result = cvn("verify", "--expect-prefix", "xcom/", "--expect-prefix", "l2_events/")
    assert result.exit_code == 1  # …but the other teams' rules are gone
    assert "no rule for prefix 'xcom/'" in result.output and "no rule for prefix 'l2_events/'" in result.output


def test_a_plan_that_would_alter_a_foreign_rule_is_refused(bucket, moto_server):
    squatter = {"ID": OUR_ID, "Filter": {"Prefix": "xcom/"}, "Status": "Enabled", "Expiration": {"Days": 1}}
    put_rules(moto_server, bucket, [squatter, L2_RULE])
    before = bucket_rules(moto_server, bucket)
    plan = cvn("plan")
    assert plan.exit_code == 1
    assert "REFUSED" in plan.output and "does not own" in plan.output
    applied = cvn("apply")
    assert applied.exit_code == 1
    assert "nothing was written" in applied.output
    assert bucket_rules(moto_server, bucket) == before


def test_a_rules_file_aimed_at_another_prefix_is_refused(bucket, moto_server, tmp_path):
    rogue = tmp_path / "rules.json"
    rogue.write_text(json.dumps({"Rules": [
        {"ID": "l2-events-30d", "Filter": {"Prefix": "l2_events/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
    ]}))
    before = bucket_rules(moto_server, bucket)
    code, plan = cvn_json("apply", "--rules", str(rogue))
    assert (code, plan["refused"], plan["written"]) == (1, True, False)
    assert any("outside 's43-predictions/'" in c for c in plan["conflicts"])
    assert bucket_rules(moto_server, bucket) == before


def test_the_deploy_rules_file_is_the_generated_rule_and_applies_identically(bucket, moto_server):
    assert json.loads(RULES_FILE.read_text()) == {"Rules": desired_rules(DEFAULT_PREFIX)}
    assert cvn("apply", "--rules", str(RULES_FILE)).exit_code == 0
    code, second = cvn_json("apply")  # the generated rule finds the file's rule already there
    assert (code, second["written"]) == (0, False)


def test_show_lists_every_rule_with_its_owner(bucket):
    assert cvn("apply").exit_code == 0
    result = cvn("show")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.strip().startswith("foreign xcom-expiry") and "expire after 3 d" in line for line in lines)
    assert any(line.strip().startswith(f"ours    {OUR_ID}") and "abort multipart uploads after 1 d" in line
               for line in lines)


def test_a_bucket_without_any_configuration_gets_our_rule(s3_bucket, moto_server):
    assert cvn("apply").exit_code == 0
    assert [r["ID"] for r in bucket_rules(moto_server, s3_bucket)] == [OUR_ID]


def test_lifecycle_on_the_local_backend_points_to_the_sweep(storage_root):
    result = cvn("apply")
    assert result.exit_code == 2
    assert "cvn lifecycle sweep" in result.output


# ---------------------------------------------------------------------------------------------
# the merge as a pure function


def test_an_old_rule_of_ours_under_another_id_is_replaced_by_prefix():
    old = {"ID": "s43-7d", "Filter": {"Prefix": "s43-predictions/"}, "Status": "Enabled", "Expiration": {"Days": 7}}
    plan = plan_lifecycle([XCOM_RULE, old], desired_rules(DEFAULT_PREFIX), DEFAULT_PREFIX)
    assert not plan.refused
    assert [r["ID"] for r in plan.merged] == ["xcom-expiry", OUR_ID]
    [update] = [c for c in plan.changes if c.action == "update"]
    assert "ID: s43-7d → s43-predictions-retention" in update.differences


def test_rules_inside_our_prefix_we_do_not_manage_are_kept_and_bucket_wide_rules_noted():
    sub = {"ID": "tmp-1d", "Filter": {"Prefix": "s43-predictions/tmp/"}, "Status": "Enabled", "Expiration": {"Days": 1}}
    everywhere = {"ID": "abort-all", "Filter": {}, "Status": "Enabled",
                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
    plan = plan_lifecycle([sub, everywhere], desired_rules(DEFAULT_PREFIX), DEFAULT_PREFIX)
    assert not plan.refused
    assert [r["ID"] for r in plan.merged] == ["tmp-1d", "abort-all", OUR_ID]
    assert any("'tmp-1d'" in note and "not managed" in note for note in plan.notes)
    assert any("'abort-all'" in note and "anywhere in the bucket" in note for note in plan.notes)
