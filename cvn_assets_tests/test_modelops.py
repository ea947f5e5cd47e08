"""Model operations end to end (manual §10): a real discovery PASS, then every pipeline through `cvn model`.

Real parts only: the acquisition and gate jobs on a temporary Dagster instance, MLflow on a SQLite
store, the diagnostics database, the local object store; the model operations run as their Dagster
jobs through the command an operator types.
"""

from __future__ import annotations

import json

import dagster as dg
import mlflow
import numpy as np
import pytest
from click.testing import CliRunner

from cvn_assets.cli.main import get_cli
from cvn_assets.contracts.blob import Window
from cvn_assets.diagnostics.resources import diagnostics_url_from_env, migrated_store
from cvn_assets.gate.model_registry import model_name, tracking_uri_from_env
from cvn_assets.campaigns.runner import read_report
from cvn_assets.gate.report import Verdict
from cvn_assets.models.audit import ModelAudit
from cvn_assets.models.lifecycle import backtest_qualified_reason
from cvn_assets.modelops.drift import Band, DriftKind, DriftThresholds, crypto_band, measure, psi
from cvn_assets.modelops.records import backtest_rows, latest_drift
from cvn_assets.modelops.registry import champion, registered_versions
from cvn_assets.runs import BACKTEST_JOB, CAMPAIGN_TAG, STAGE_TAG
from cvn_assets_tests.fixtures.campaigns import small_spec

CRYPTO = "ADAUSDC"


def cvn(*args: str):
    return CliRunner().invoke(get_cli(), ["model", *args])


def cvn_json(*args: str) -> tuple[int, dict]:
    result = cvn(*args, "--json")
    assert result.stdout.strip(), (result.exit_code, result.output, result.exception)
    return result.exit_code, json.loads(result.stdout)


def promote(version: str) -> dict:
    """The lifecycle's promotion: approvals by the ml_owner and an operator (two people), then promote."""
    for role, person in (("ml_owner", "olga"), ("operator", "omar")):
        code, approved = cvn_json("approve", CRYPTO, version, "--role", role, "--by", person)
        assert code == 0, approved
    code, promoted = cvn_json("promote", CRYPTO, version, "--by", "mo")
    assert code == 0 and promoted["outcome"] == "done", promoted
    return promoted


@pytest.fixture
def champion_of_a_pass(pass_harness):
    """Discovery PASS on a planted signal (ADAUSDC, hgb), its challenger promoted through the lifecycle."""
    spec = small_spec("ops-pass-001", symbols=[CRYPTO], backtest_days=20, planted_signal=1.0,
                      families=["naive", "logreg", "hgb"])
    pass_harness.launch(spec)
    assert pass_harness.gate(spec.campaign_id).success
    report = pass_harness.report(spec.campaign_id)
    assert report.verdict == Verdict.PASS and report.cryptos[CRYPTO].candidate, report.summary
    code, listed = cvn_json("ls", "--crypto", CRYPTO)
    assert code == 0, listed
    ((challenger,),) = [model["challengers"] for model in listed["models"]]
    version = challenger["version"]
    assert promote(version)["after"]["champion"] == version
    return tracking_uri_from_env(), version


def test_model_operations_end_to_end(champion_of_a_pass, instance):
    uri, version = champion_of_a_pass
    diagnostics = migrated_store(diagnostics_url_from_env())

    # Backtest on the next stretch of the same market: the champion keeps qualifying, unchanged.
    code, later = cvn_json("backtest", "--crypto", CRYPTO)
    assert code == 0, later
    (kept,) = later["versions"]
    assert (kept["version"], kept["role"], kept["qualifies"]) == (version, "champion", True), kept
    assert kept["signals"]["f1_buy_delta"] > 5 and kept["diagnostic"] in ("ML_EXPLOITABLE", "ML_SOLID")
    assert Window(**kept["window"]).start_ms >= Window(**kept["training_window"]).end_ms  # out of sample
    # through the discovery's contracts: a manifest, blobs and a gate report under its run id
    listed = blob_ls(kept["run_id"])
    assert listed["present"] == listed["expected"] == 2  # one blob per fold of the campaign's 2 folds
    report = read_report(pass_harness_store(), "s43-predictions", kept["run_id"])
    assert report.cryptos[CRYPTO].candidate is True and report.cryptos[CRYPTO].signals == kept["signals"]
    (row,) = backtest_rows(diagnostics, kept["run_id"])
    assert row["qualifies"] is True and row["kind"] == "backtest" and row["f1_buy_delta"] == pytest.approx(
        kept["signals"]["f1_buy_delta"])
    runs = instance.get_run_records(dg.RunsFilter(job_name=BACKTEST_JOB))
    assert runs and runs[0].dagster_run.tags[STAGE_TAG] == "backtest"
    assert runs[0].dagster_run.tags[CAMPAIGN_TAG] == kept["run_id"]

    # The same market without the planted signal: it stops qualifying, ML_USELESS.
    code, plain = cvn_json("backtest", "--crypto", CRYPTO, "--version", version, "--planted-signal", "0")
    assert code == 0, plain
    (lost,) = plain["versions"]
    assert lost["qualifies"] is False and lost["diagnostic"] == "ML_USELESS", lost
    assert lost["signals"]["f1_buy_delta"] <= 0

    # Walk-forward of the recipe: per-window signals and std_f1_buy across them.
    code, walked = cvn_json("walkforward", "--crypto", CRYPTO, "--version", version, "--windows", "2")
    assert code == 0, walked
    assert len(walked["windows"]) == 2 and walked["signals"]["folds"] == 2
    deltas = [w["f1_buy"] for w in walked["windows"]]
    assert walked["signals"]["std_f1_buy"] == pytest.approx(float(np.std(deltas)))
    assert ("ML_UNSTABLE" in walked["codes"]) == (walked["signals"]["std_f1_buy"] > 0.10)

    # Monitoring: quiet on an unshifted continuation, critical drift on a regime shift.
    code, quiet = cvn_json("monitor", "--crypto", CRYPTO)
    assert code == 0, quiet
    (calm,) = quiet["cryptos"]
    assert calm["band"] != "critical" and "retrain" not in (calm["next_step"] or "")
    assert {m["name"] for m in calm["features"]} >= {"ret_1", "vol_288", "atr_pct"}
    assert calm["prediction"]["name"] == "proba_buy" and calm["label"]["name"] == "buy_rate"
    state = state_json()
    assert not any(rule["id"].startswith("champion_drift") for rule in state["rules"])
    (drift_row,) = [row for row in state["signals"] if row["signal"] == "drift"]
    assert drift_row["level"] != "critical"

    code, shifted = cvn_json("monitor", "--crypto", CRYPTO, "--regime-shift", "3")
    assert code == 0, shifted
    (moved,) = shifted["cryptos"]
    assert moved["band"] == "critical" and "proba_buy" in moved["critical"], moved["critical"]
    assert moved["next_step"].endswith(f"cvn model retrain --crypto {CRYPTO} && cvn model backtest --crypto {CRYPTO}")
    rows = latest_drift(diagnostics)[CRYPTO]
    assert len(rows) == len(moved["features"]) + 2 and {r["statistic"] for r in rows} == {"psi"}
    state = state_json()
    (fired,) = [rule for rule in state["rules"] if rule["id"] == f"champion_drift:{CRYPTO}"]
    assert fired["state"] == "YELLOW" and "our rule" in fired["rule"] and "proba_buy" in fired["reason"]

    # Retrain: the champion's recipe on the latest window, made a challenger by the lifecycle (audited).
    before = freshness()
    assert before["detail"].startswith(f"champion v{version} ")
    code, retrained = cvn_json("retrain", "--crypto", CRYPTO)
    assert code == 0, retrained
    new = retrained["version"]
    assert int(new) > int(version) and retrained["champion_version"] == version
    versions = {v.version: v for v in registered_versions(uri, CRYPTO)}
    assert versions[new].role == "challenger" and versions[new].origin == "retrain"
    assert versions[new].family == versions[version].family and versions[new].pte == versions[version].pte
    assert champion(uri, CRYPTO).version == version  # a challenger, never promoted by itself
    (registered,) = [e for e in ModelAudit(diagnostics).events(CRYPTO) if e["action"] == "register" and e["version"] == new]
    assert registered["outcome"] == "done" and registered["actor"] == "retrain" and "retrain" in registered["detail"]
    code, listed = cvn_json("ls", "--crypto", CRYPTO)
    ((model,),) = [listed["models"]]
    assert model["champion"]["version"] == version
    assert [(c["version"], c["origin"]) for c in model["challengers"]] == [(new, "retrain")]
    assert state_signal("challenger_count")["value"] == 1
    assert freshness()["detail"].startswith(f"champion v{version} ")  # still the champion's age until promoted

    # Its gate is a backtest: promotion without one is refused (exit 2, audited), approvals or not.
    for role, person in (("ml_owner", "olga"), ("operator", "omar")):
        assert cvn_json("approve", CRYPTO, new, "--role", role, "--by", person)[0] == 0
    code, refused = cvn_json("promote", CRYPTO, new, "--by", "mo")
    assert code == 2 and "qualifying backtest" in refused["error"] and "has no backtest" in refused["error"]
    last = ModelAudit(diagnostics).events(CRYPTO)[-1]
    assert (last["action"], last["version"], last["outcome"]) == ("promotion", new, "refused")
    assert champion(uri, CRYPTO).version == version
    # The backtest must be on a window after the one it was fitted on (the same one is refused).
    code, in_sample = cvn_json("backtest", "--crypto", CRYPTO, "--version", new)
    assert code == 2 and "in-sample" in in_sample["error"]
    code, tested = cvn_json("backtest", "--crypto", CRYPTO, "--version", new, "--synthetic-path", "2")
    assert code == 0, tested
    (fresh,) = tested["versions"]
    assert fresh["role"] == "challenger" and fresh["qualifies"] is True, fresh
    assert backtest_qualified_reason(diagnostics, CRYPTO, new) is None
    assert backtest_qualified_reason(diagnostics, CRYPTO, version).startswith(f"{CRYPTO} v{version} did not qualify")

    # Promoted with the approvals kept from the refusal: the retrained champion resets freshness.
    code, promoted = cvn_json("promote", CRYPTO, new, "--by", "mo")
    assert code == 0 and promoted["after"]["champion"] == new and promoted["after"]["previous"] == version, promoted
    after = freshness()
    assert after["detail"].startswith(f"champion v{new} ") and after["value"] < before["value"]
    assert state_signal("challenger_count")["value"] == 0
    code, listed = cvn_json("ls", "--crypto", CRYPTO)
    ((model,),) = [listed["models"]]
    assert model["champion"]["version"] == new and model["champion"]["origin"] == "retrain"
    assert model["previous"]["version"] == version and model["challengers"] == [] and model["approvals"] == []
    # model operations read the same stages: the backtest's default is the champion (and challengers)
    assert {v.version: v.role for v in registered_versions(uri, CRYPTO)} == {version: "previous", new: "champion"}

    # Meta-training: refused without the mlops_maintainer approval (nothing registered, a refused row),
    # refused when its approver runs it, then registered — the approval consumed by its audit row.
    meta_window = ("--synthetic-path", "2")  # out of the retrained champion's training window
    code, refused = cvn_json("meta-train", "--crypto", CRYPTO, "--by", "paul", *meta_window)
    assert code == 2 and "mlops_maintainer" in refused["error"] and refused["exit_code"] == 2
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert not client.search_registered_models(f"name='{model_name(CRYPTO)}-meta'")
    code, approved = cvn_json("approve", CRYPTO, new, "--role", "mlops_maintainer", "--by", "maria",
                              "--reason", "labels reviewed", "--for", "meta_training")
    assert code == 0, approved
    code, same_person = cvn_json("meta-train", "--crypto", CRYPTO, "--by", "maria", *meta_window)
    assert code == 2 and "another person" in same_person["error"]
    code, meta = cvn_json("meta-train", "--crypto", CRYPTO, "--by", "paul", *meta_window)
    assert code == 0, meta
    assert meta["model"] == f"{model_name(CRYPTO)}-meta" and meta["primary_version"] == new
    assert meta["approval"]["actor"] == "maria" and meta["primary_buys"] > 30
    tags = client.get_model_version(meta["model"], meta["version"]).tags
    assert tags["origin"] == "meta_training" and tags["approved_by"] == "mlops_maintainer:maria"
    metas = [e for e in ModelAudit(diagnostics).events(CRYPTO) if e["action"] == "meta_training"]
    assert [(e["actor"], e["outcome"]) for e in metas] == [("paul", "refused"), ("maria", "refused"), ("paul", "done")]
    assert metas[-1]["id"] == meta["audit_event"] and metas[-1]["approvals"][0]["actor"] == "maria"
    assert "another person" in metas[1]["detail"] and metas[-1]["origin"].startswith("dagster run ")
    # consumed: the next meta-training needs a new approval
    code, again = cvn_json("meta-train", "--crypto", CRYPTO, "--by", "paul", *meta_window)
    assert code == 2 and "mlops_maintainer" in again["error"]


def state_signal(signal: str, scope_prefix: str = "") -> dict:
    (row,) = [r for r in state_json()["signals"] if r["signal"] == signal and r["scope"].startswith(scope_prefix)]
    return row


def freshness() -> dict:
    return state_signal("model_freshness", CRYPTO)


def state_json() -> dict:
    result = CliRunner().invoke(get_cli(), ["state", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def pass_harness_store():
    from cvn_assets.storage.factory import build_object_store
    from cvn_assets.storage.settings import StorageSettings

    return build_object_store(StorageSettings.from_env())


def blob_ls(run_id: str) -> dict:
    result = CliRunner().invoke(get_cli(), ["blob", "ls", "--campaign", run_id, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_bad_input_is_refused_before_anything_runs(instance, storage_root):
    code, payload = cvn_json("backtest", "--crypto", "ada/../x")
    assert code == 2 and "crypto" in payload["error"]
    code, payload = cvn_json("backtest", "--crypto", CRYPTO)
    assert code == 2 and "no champion and no challenger" in payload["error"]
    code, payload = cvn_json("walkforward", "--crypto", CRYPTO, "--version", "0")
    assert code == 2 and "positive integer" in payload["error"]
    code, payload = cvn_json("retrain", "--crypto", CRYPTO)
    assert code == 2 and "no champion" in payload["error"]
    code, payload = cvn_json("monitor", "--crypto", CRYPTO, "--data-dir", str(storage_root))
    assert code == 2
    assert cvn("walkforward", "--crypto", CRYPTO, "--version", "1", "--windows", "1").exit_code == 2
    assert not instance.get_run_records()  # nothing was launched


# ---------------------------------------------------------------------------------- drift (pure)


def test_psi_bands_and_the_statistic_that_decides():
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 17_000)
    assert psi(reference, rng.normal(0, 1, 17_000)) < 0.01
    assert 0.10 <= psi(reference, rng.normal(0.35, 1, 17_000)) < 0.25
    assert psi(reference, rng.normal(0, 3, 17_000)) >= 0.25
    # A tiny shift: KS calls it significant on 17k bars, PSI (which decides) calls it stable.
    small = measure("x", DriftKind.FEATURE, reference, rng.normal(0.06, 1, 17_000))
    assert small.ks_pvalue < 0.01 and small.band == Band.OK
    assert small.wasserstein == pytest.approx(0.06, abs=0.03)
    labels = measure("buy_rate", DriftKind.LABEL, (rng.random(5000) < 0.3).astype(float),
                     (rng.random(5000) < 0.6).astype(float))
    assert labels.band == Band.CRITICAL and labels.reference_mean == pytest.approx(0.3, abs=0.02)
    assert DriftThresholds().band(0.0999) == Band.OK and DriftThresholds().band(0.25) == Band.CRITICAL
    with pytest.raises(ValueError, match="NaN"):
        measure("x", DriftKind.FEATURE, reference, np.array([0.0, np.nan]))


def test_ks_and_wasserstein_are_scipys_from_one_shared_sort():
    from scipy import stats

    rng = np.random.default_rng(11)
    cases = [(rng.normal(0, 1, 3000), rng.normal(0.2, 1.3, 2500)),
             (rng.integers(0, 5, 900).astype(float), rng.integers(0, 7, 700).astype(float)),  # ties
             ((rng.random(400) < 0.3).astype(float), (rng.random(600) < 0.5).astype(float))]
    for reference, current in cases:
        ours = measure("x", DriftKind.FEATURE, reference, current)
        theirs = stats.ks_2samp(reference, current, method="asymp")
        assert ours.ks_statistic == pytest.approx(theirs.statistic, abs=1e-12)
        assert ours.ks_pvalue == pytest.approx(theirs.pvalue, abs=5e-3)  # limiting vs finite-n distribution
        assert ours.wasserstein == pytest.approx(stats.wasserstein_distance(reference, current), abs=1e-12)
        assert ours.value == pytest.approx(psi(reference, current))


def test_one_slow_input_alone_is_not_critical_drift():
    rng = np.random.default_rng(5)
    same = rng.normal(0, 1, 4000)
    inputs = [measure(f"f{i}", DriftKind.FEATURE, same, rng.normal(0, 1, 4000)) for i in range(7)]
    slow = measure("vol_288", DriftKind.FEATURE, same, rng.normal(0, 2, 4000))
    prediction = measure("proba_buy", DriftKind.PREDICTION, same, rng.normal(0, 1, 4000))
    label = measure("buy_rate", DriftKind.LABEL, (same > 0).astype(float), (rng.normal(0, 1, 4000) > 0).astype(float))
    assert crypto_band([*inputs, slow], prediction, label) == (Band.WARNING, [])
    moved = measure("proba_buy", DriftKind.PREDICTION, same, rng.normal(1, 1, 4000))
    assert crypto_band([*inputs, slow], moved, label) == (Band.CRITICAL, ["proba_buy"])
    broad = [measure(f"g{i}", DriftKind.FEATURE, same, rng.normal(0, 2, 4000)) for i in range(2)]
    band, what = crypto_band([*inputs[:5], slow, *broad], prediction, label)
    assert band == Band.CRITICAL and set(what) == {"vol_288", "g0", "g1"}


def test_the_pipelines_are_jobs_with_typed_config_and_schedules_in_the_code_location(storage_root):
    from cvn_assets.definitions import build_defs
    from cvn_assets.modelops.jobs import backtest_op, meta_training_op, retrain_op
    from cvn_assets.runs import MODEL_OPS_JOBS, OUR_JOBS
    from cvn_assets.state.settings import StateSettings

    defs = build_defs()
    assert set(MODEL_OPS_JOBS) <= {job.name for job in defs.resolve_all_job_defs()}
    assert set(MODEL_OPS_JOBS) <= set(OUR_JOBS) <= set(StateSettings().jobs)  # counted by the sensors
    schedules = {schedule.name: schedule for schedule in defs.schedules}
    assert {"retrain_defi_schedule", "retrain_btc_core_schedule", "monitoring_schedule"} <= set(schedules)
    weekly = schedules["retrain_defi_schedule"]
    assert weekly.cron_schedule == "0 3 * * 1" and weekly.job.name == "retrain_job"
    assert weekly.default_status == dg.DefaultScheduleStatus.RUNNING
    assert set(backtest_op.config_schema.config_type.fields) >= {"crypto", "version", "backtest_days", "data_dir"}
    assert set(retrain_op.config_schema.config_type.fields) >= {"crypto", "group"}
    assert set(meta_training_op.config_schema.config_type.fields) >= {"crypto", "by"}
