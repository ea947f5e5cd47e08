"""The gate over real materializations: complete, incomplete, malformed and isolated cohorts.

Every test runs real Dagster runs on a real instance, on both backends (local directory and S3
over HTTP to a moto server), as the runbook's scenarios A–C describe them.
"""

from __future__ import annotations


import zipfile

import numpy as np

from cvn_assets.acquisition.assets import BLOBS_INTACT
from cvn_assets.gate.assets import COHORT_COMPLETE, COHORT_INTACT, ML_BEATS_BASELINE
from cvn_assets.contracts.campaign import CampaignManifest
from cvn_assets.gate.report import Verdict
from cvn_assets.runs import root_cause
from cvn_assets_tests.fixtures.blobs import rewrite_npz
from cvn_assets_tests.fixtures.malformed_blobs import lying_bomb, members_of, zip_members
from cvn_assets_tests.fixtures.campaigns import check_evaluations, logged_lines, small_spec
from cvn_assets_tests.fixtures.stores import corrupt_object


def test_complete_cohort_gives_a_verdict_with_every_blob_recorded(harness):
    manifest = harness.register(small_spec("complete-001"))
    acquisition = harness.acquire("complete-001", "SOLUSDC")
    assert acquisition.success
    materialization = acquisition.asset_materializations_for_node("s43_predictions")[0]
    table = materialization.metadata["blobs"].value
    assert len(table.records) == 4  # 2 folds × 2 families
    record = table.records[0].data
    assert set(record) == {"key", "uri", "bytes", "sha256", "schema_version", "rows"}
    assert record["uri"] == harness.store.uri(record["key"]) and record["schema_version"] == 2
    assert check_evaluations(acquisition)[BLOBS_INTACT].passed
    assert harness.acquire("complete-001", "ADAUSDC").success

    result = harness.gate("complete-001")
    assert result.success
    report = harness.report("complete-001")
    assert report.verdict in {Verdict.PASS, Verdict.FAIL}
    assert report.missing == [] and not report.transport_suspect
    assert [entry.key for entry in report.cohort] == harness.blob_keys(manifest)
    assert set(report.cryptos) == {"SOLUSDC", "ADAUSDC"}
    checks = check_evaluations(result)
    assert checks[COHORT_COMPLETE].passed and checks[COHORT_INTACT].passed
    beats = checks[ML_BEATS_BASELINE]
    behind = [crypto for crypto, verdict in report.cryptos.items() if verdict.signals["f1_buy_delta"] <= 0]
    assert beats.severity.value == "WARN" and beats.passed is (not behind)
    assert sorted(beats.metadata["not_beating_baseline"].value) == sorted(behind)
    assert any("event=s43_gate_verdict" in line for line in logged_lines(harness.instance, result.run_id))


def test_one_absent_blob_degrades_to_inconclusive_naming_exactly_it(harness):
    manifest = harness.launch(small_spec("absent-001"))
    gone = harness.blob_keys(manifest)[1]
    harness.store.delete(gone)

    result = harness.gate("absent-001")
    assert result.success  # an absent blob is tolerated: the verdict degrades, nothing crashes
    report = harness.report("absent-001")
    assert report.verdict == Verdict.INCONCLUSIVE_TOOLING
    assert report.missing == [gone]
    assert report.cryptos is None  # no pooled metric at all, never a partial pool
    assert not report.transport_suspect
    assert [entry.key for entry in report.cohort if entry.status == "absent"] == [gone]
    complete = check_evaluations(result)[COHORT_COMPLETE]
    assert not complete.passed and complete.severity.value == "WARN"
    beats = check_evaluations(result)[ML_BEATS_BASELINE]
    assert not beats.passed and beats.metadata["evaluated"].value is False  # no evidence is not a pass
    materialization = result.asset_materializations_for_node("s43_gate")[0]
    assert materialization.metadata["verdict"].value == "INCONCLUSIVE_TOOLING"
    assert not any("/" in name for name in materialization.metadata)  # no per-crypto metric


def test_every_blob_absent_is_a_transport_suspect(harness):
    manifest = harness.launch(small_spec("allgone-001"))
    for key in harness.blob_keys(manifest):
        harness.store.delete(key)
    assert harness.gate("allgone-001").success
    report = harness.report("allgone-001")
    assert report.verdict == Verdict.INCONCLUSIVE_TOOLING and report.transport_suspect
    assert sorted(report.missing) == sorted(harness.blob_keys(manifest))
    assert "scenario C" in report.summary


def _bump_schema(meta: np.ndarray) -> np.ndarray:
    import json

    document = json.loads(str(meta))
    document["schema_version"] += 1
    return np.array(json.dumps(document))


MALFORMATIONS = {
    # name: (how the stored object changes, expected error prefix, through the store API or behind it)
    "truncated": (lambda data: data[: len(data) // 3], "s43 npz corrupt", "rewrite"),
    "flipped-byte": (lambda data: data[:200] + bytes([data[200] ^ 0xFF]) + data[201:], "s43 npz corrupt", "behind"),
    "dropped-array": (lambda data: rewrite_npz(data, exit_reason=None), "s43 npz missing array", "rewrite"),
    "changed-shape": (lambda data: rewrite_npz(data, y_pred=lambda a: a[:-1]), "s43 npz shape mismatch", "rewrite"),
    "raised-schema-version": (lambda data: rewrite_npz(data, meta=_bump_schema), "s43 npz schema mismatch", "rewrite"),
    "pickled-object-array": (
        lambda data: rewrite_npz(data, trade_return=lambda a: a.astype(object)), "s43 npz corrupt", "rewrite"),
    # Findings of the adversarial review (issue #12): each crashed the decoder or was accepted.
    "bzip2-bomb": (lambda data: lying_bomb(zipfile.ZIP_BZIP2, 16 * 1024 * 1024), "s43 npz corrupt", "rewrite"),
    "duplicate-member": (lambda data: zip_members([*members_of(data), ("ts", dict(members_of(data))["ts.npy"])]),
                         "s43 npz corrupt", "rewrite"),
    "schema-version-true": (lambda data: rewrite_npz(data, meta=_schema_version_true), "s43 npz schema mismatch",
                            "rewrite"),
}


def _schema_version_true(meta: np.ndarray) -> np.ndarray:
    import json

    return np.array(json.dumps({**json.loads(str(meta)), "schema_version": True}))


def test_malformed_present_blob_fails_the_gate_loudly(harness):
    """Each malformation raises its `s43 npz …` ValueError naming the key; cohort_intact fails ERROR."""
    manifest = harness.launch(small_spec("malformed-001"))
    key = harness.blob_keys(manifest)[2]
    original = harness.store.get(key)
    report_before = harness.report("malformed-001") if harness.gate("malformed-001").success else None
    assert report_before is not None

    for name, (mutate, prefix, how) in MALFORMATIONS.items():
        if how == "rewrite":
            harness.store.put(key, mutate(original))  # a bad producer: checksum matches the bad bytes
        else:
            corrupt_object(harness.store, key, mutate)  # bit rot: bytes no longer match their checksum
        result = harness.gate("malformed-001")
        assert not result.success, name
        failure = next(event for event in result.all_events if event.is_step_failure)
        assert failure.step_key == "s43_gate", name
        assert root_cause(failure.step_failure_data.error).startswith(f"{prefix}: key={key}: "), name
        intact = check_evaluations(result)[COHORT_INTACT]
        assert not intact.passed and intact.severity.value == "ERROR", name
        assert key in intact.metadata["error"].value
        assert intact.metadata["next_step"].value.startswith(f"runbook scenario B: cvn blob inspect {key}"), name
        assert not result.asset_materializations_for_node("s43_gate"), name  # nothing pooled
        assert harness.report("malformed-001").evaluated_at == report_before.evaluated_at, name
        assert any("event=s43_pred_load_failed" in line for line in logged_lines(harness.instance, result.run_id))
        harness.store.put(key, original)

    assert harness.gate("malformed-001").success  # restored: the cohort pools again


def test_two_campaigns_never_see_each_others_blobs(harness):
    first = harness.launch(small_spec("isolated-a01", symbols=["SOLUSDC"]))
    harness.launch(small_spec("isolated-b01", symbols=["SOLUSDC"]))
    for key in harness.blob_keys(first):
        harness.store.delete(key)
    assert harness.gate("isolated-b01").success
    report = harness.report("isolated-b01")
    assert report.missing == [] and report.verdict != Verdict.INCONCLUSIVE_TOOLING
    assert all(entry.key.startswith("s43-predictions/isolated-b01/") for entry in report.cohort)


def test_rerunning_an_acquisition_partition_replaces_its_blobs(harness):
    manifest = harness.launch(small_spec("rerun-001", symbols=["SOLUSDC"]))
    key = harness.blob_keys(manifest)[0]
    harness.store.put(key, b"stale garbage")
    assert not harness.gate("rerun-001").success
    assert harness.acquire("rerun-001", "SOLUSDC").success  # clear + rerun, as the runbook says
    assert harness.gate("rerun-001").success
    assert harness.report("rerun-001").missing == []


def test_absences_explained_only_by_transport_or_nothing_stay_transport_suspect():
    from cvn_assets.gate.cohort import Cohort, CohortEntry
    from cvn_assets.runs import failure_cause
    from cvn_assets_tests.fixtures.gate_reports import gate_spec

    manifest = CampaignManifest.for_spec(gate_spec("suspect-001", ["SOLUSDC", "ADAUSDC"]))

    def cohort(causes: dict[str, str | None]) -> Cohort:
        return Cohort(manifest=manifest, entries=[
            CohortEntry(ref=ref, key=ref.key("p"), blob=None, reason="failed", cause=causes[ref.crypto])
            for ref in manifest.expected])

    assert failure_cause("s43_predictions", "StorageError") == "transport"
    assert failure_cause("market_candles", "ValueError") == "data"
    assert failure_cause("market_candles", "DagsterAssetCheckFailedError") == "data"  # candles_valid blocked it
    assert failure_cause("s43_predictions", "KeyError") == "code"
    assert failure_cause("s43_predictions", "CampaignNotRegistered") == "configuration"
    assert cohort({"SOLUSDC": "transport", "ADAUSDC": "transport"}).transport_suspect
    assert cohort({"SOLUSDC": "data", "ADAUSDC": None}).transport_suspect  # ADAUSDC: nothing explains it
    explained = cohort({"SOLUSDC": "data", "ADAUSDC": "code"})
    assert not explained.transport_suspect and explained.absence_causes == ["code", "data"]
