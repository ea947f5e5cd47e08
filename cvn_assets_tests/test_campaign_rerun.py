"""Runbook scenario A end to end: a deleted blob, the gate INCONCLUSIVE, `cvn campaign rerun`, a verdict.

Real campaign, real Dagster runs on the instance in DAGSTER_HOME; the `cvn` command runs in this
process (click's runner: the subprocess form is test_cli.py's, here the runs are the point). And the same from the asset page:
a rerun launched as ``__ASSET_JOB`` is recognised as the campaign's by its partition keys,
supervised and re-gated by ``campaign_sensor``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg

from cvn_assets.campaigns.sensors import campaign_sensor
from cvn_assets.definitions import build_defs
from cvn_assets.partitions import acquisition_partition_key
from cvn_assets.runs import ASSET_JOB, CAMPAIGN_TAG, CRYPTO_TAG, GATE_JOB, RERUN_TAG, STAGE_TAG
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import pipeline_success_rate
from cvn_assets.storage.factory import build_object_store
from cvn_assets.storage.settings import StorageSettings
from cvn_assets_tests.fixtures.campaigns import CampaignHarness, small_spec
from cvn_assets_tests.test_cli import SMALL


class Result:
    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.stderr


def cvn(*args: str) -> Result:
    from click.testing import CliRunner

    from cvn_assets.cli.main import get_cli

    return Result(CliRunner().invoke(get_cli(), list(args), catch_exceptions=False))


def test_rerun_after_a_deleted_blob_turns_inconclusive_into_a_verdict_and_counts(dagster_home, storage_root):
    launched = cvn("campaign", "launch", "--group", "defi", "--symbols", "SOLUSDC", *SMALL[2:],
                   "--campaign-id", "rerun-001", "--workers", "1", "--json")
    assert launched.returncode == 0, launched.stderr
    key = next(entry["key"] for entry in json.loads(launched.stdout)["cohort"] if entry["crypto"] == "SOLUSDC")
    build_object_store(StorageSettings.from_env()).delete(key)  # a lost blob

    gated = cvn("gate", "--campaign", "rerun-001")
    assert gated.returncode == 0, gated.stderr
    assert "INCONCLUSIVE_TOOLING" in gated.stdout
    assert "cvn campaign rerun rerun-001 --failed" in gated.stdout  # the gate prints the next command
    assert "cvn campaign rerun rerun-001 --cryptos SOLUSDC" in gated.stdout

    rerun = cvn("campaign", "rerun", "rerun-001", "--json", "--workers", "1")
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["rerun"] == {"SOLUSDC": f"blob absent: {key}"}  # only what was missing
    assert set(report["acquisition_runs"]) == {"SOLUSDC"}
    assert report["verdict"] in {"PASS", "FAIL"} and report["missing"] == []

    with dg.DagsterInstance.get() as instance:
        rerun_run = instance.get_run_by_id(report["acquisition_runs"]["SOLUSDC"]["run_id"])
        assert rerun_run.tags[CAMPAIGN_TAG] == "rerun-001" and rerun_run.tags[STAGE_TAG] == "acquire"
        rate = pipeline_success_rate(instance, StateSettings(), datetime.now(UTC))
    # launch: acquisition + gate; cvn gate; rerun: acquisition + gate — every one counted
    assert rate.value == 100.0 and rate.detail.startswith("5 of 5 finished runs succeeded")


def test_rerun_refuses_bad_input_with_exit_2(dagster_home, storage_root):
    assert cvn("campaign", "rerun", "never-launched").returncode == 2
    assert cvn("campaign", "rerun", "Bad_Id!").returncode == 2
    from cvn_assets.campaigns.registration import register_campaign

    settings = StorageSettings.from_env()
    with dg.DagsterInstance.get() as instance:  # registered, never run: enough to name its cryptos
        register_campaign(instance, build_object_store(settings), settings.prefix,
                          small_spec("rerun-002", symbols=["SOLUSDC"]))
    unknown = cvn("campaign", "rerun", "rerun-002", "--cryptos", "XRPUSDC")
    assert unknown.returncode == 2 and "XRPUSDC: not in campaign rerun-002" in unknown.stderr
    both = cvn("campaign", "rerun", "rerun-002", "--failed", "--cryptos", "SOLUSDC")
    assert both.returncode == 2 and "exclusive" in both.stderr
    assert cvn("campaign", "rerun", "--help").returncode == 0


def test_a_rerun_from_the_asset_page_is_the_campaigns_supervised_and_regated(instance, storage_root):
    defs = build_defs()
    harness = CampaignHarness(instance=instance, defs=defs, store=defs.resources["object_store"].store(),
                              prefix="s43-predictions")
    manifest = harness.launch(small_spec("uirerun-001", symbols=["SOLUSDC"]))
    harness.store.delete(harness.blob_keys(manifest)[0])
    assert harness.gate("uirerun-001").success
    assert harness.report("uirerun-001").verdict.value == "INCONCLUSIVE_TOOLING"

    # "Materialize" on the asset page for partition uirerun-001|SOLUSDC: the implicit asset job, no campaign tag
    asset_job = defs.resolve_implicit_global_asset_job_def()
    assert asset_job.name == ASSET_JOB
    result = asset_job.execute_in_process(
        instance=instance, partition_key=acquisition_partition_key("uirerun-001", "SOLUSDC"),
        asset_selection=[dg.AssetKey("market_candles"), dg.AssetKey("s43_predictions")])
    assert result.success
    assert CAMPAIGN_TAG not in instance.get_run_by_id(result.run_id).tags

    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        requests = campaign_sensor(context)
    tags = instance.get_run_by_id(result.run_id).tags  # recognised by its partition keys
    assert tags[CAMPAIGN_TAG] == "uirerun-001" and tags[CRYPTO_TAG] == "SOLUSDC" and tags[STAGE_TAG] == "acquire"
    assert tags[RERUN_TAG] == "ui"
    assert [(r.job_name, r.partition_key) for r in requests] == [(GATE_JOB, "uirerun-001")]  # re-gated

    assert harness.gate("uirerun-001").success
    assert harness.report("uirerun-001").verdict.value in {"PASS", "FAIL"}
    rate = pipeline_success_rate(instance, StateSettings(), datetime.now(UTC))
    assert rate.detail.startswith("4 of 4 finished runs succeeded")  # the asset-page rerun counted
