"""MLflow on a SQLite tracking store: gate runs found again, PASS candidates registered as challengers."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pytest

from cvn_assets.acquisition.features import build_features
from cvn_assets.acquisition.market_data import load_candles
from cvn_assets.diagnostics.resources import diagnostics_url_from_env, migrated_store
from cvn_assets.gate.model_registry import (
    EXPERIMENT, artifact_location, challenger_requirements, log_gate_evaluation, register_challengers,
    tracking_uri_from_env,
)
from cvn_assets.models.lifecycle import Lifecycle
from cvn_assets.models.registry import model_name
from cvn_assets.state.sources import MlflowRegistry


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    """The tracking store of the test environment, run from an empty working directory.

    The working directory is where MLflow would drop ``./mlruns`` if we let it choose.
    """
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return tracking_uri_from_env()


def lifecycle(tracking_uri: str) -> Lifecycle:
    return Lifecycle(tracking_uri, migrated_store(diagnostics_url_from_env()), origin="test")


def test_a_gate_run_is_found_again_with_its_spec_metrics_and_tags(real_gates, tracking_uri):
    report = real_gates["pass"].report
    run = mlflow.MlflowClient(tracking_uri=tracking_uri).get_run(log_gate_evaluation(report, tracking_uri))
    assert run.info.status == "FINISHED" and run.info.run_name == f"gate-{report.campaign_id}"
    assert run.data.params["campaign_id"] == report.campaign_id and run.data.params["symbols"] == "SOLUSDC,ADAUSDC"
    assert run.data.params["families"] == "naive,logreg,hgb" and run.data.params["folds"] == "2"
    assert run.data.tags["verdict"] == "PASS" and run.data.tags["codes"] == "none"
    for crypto, verdict in report.cryptos.items():
        assert run.data.tags[f"{crypto}.diagnostic"] == verdict.diagnostic
        assert run.data.tags[f"{crypto}.candidate"] == str(verdict.candidate).lower()
        assert run.data.metrics[f"{crypto}.f1_buy_delta"] == pytest.approx(verdict.signals["f1_buy_delta"])
        assert run.data.metrics[f"{crypto}.n_trades"] == verdict.signals["n_trades"]
    assert "SOLUSDC.family" not in run.data.metrics  # strings are tags or nothing, never metrics

    failed = mlflow.MlflowClient(tracking_uri=tracking_uri).get_run(log_gate_evaluation(real_gates["fail"].report,
                                                                                         tracking_uri))
    assert failed.data.tags["verdict"] == "FAIL" and failed.data.tags["codes"] == "NO_CANDIDATES"


def test_an_inconclusive_gate_logs_its_verdict_and_no_metric(real_gates, tracking_uri):
    report = real_gates["inconclusive"].report
    run = mlflow.MlflowClient(tracking_uri=tracking_uri).get_run(log_gate_evaluation(report, tracking_uri))
    assert run.data.tags["verdict"] == "INCONCLUSIVE_TOOLING" and run.data.tags["absent_blobs"] == "1"
    assert run.data.metrics == {}


def test_a_pass_registers_challengers_that_load_back_without_pickle_and_predict(real_gates, tracking_uri, tmp_path):
    case = real_gates["pass"]
    report = case.report
    candidates = sorted(crypto for crypto, verdict in report.cryptos.items() if verdict.candidate)
    assert candidates, "the planted-signal campaign has candidates"

    def candles(crypto: str):
        return load_candles(report.spec, crypto)

    registered = register_challengers(report, lifecycle(tracking_uri), case.pooled, candles)
    assert [entry["crypto"] for entry in registered] == candidates
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    crypto = candidates[0]
    alias = f"challenger-{report.campaign_id}"  # one challenger alias per version, named by its origin campaign
    version = client.get_model_version_by_alias(model_name(crypto), alias)
    assert version.tags["campaign_id"] == report.campaign_id and version.tags["origin"] == "gate"
    assert version.tags["stage"] == "challenger"
    assert version.tags["diagnostic"] == report.cryptos[crypto].diagnostic
    assert version.tags["family"] == report.cryptos[crypto].signals["family"]
    assert json.loads(version.tags["signals"])["f1_buy_delta"] == pytest.approx(
        report.cryptos[crypto].signals["f1_buy_delta"], abs=1e-6)

    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.sklearn.load_model(f"models:/{model_name(crypto)}@{alias}")
    features = build_features(candles(crypto)).iloc[400:420]
    probabilities = model.predict_proba(features)
    assert probabilities.shape == (20, 2) and ((0 <= probabilities) & (probabilities <= 1)).all()

    # Saved with skops beside the SQLite store, never pickled, never in the working directory.
    artifacts = Path(artifact_location(tracking_uri).removeprefix("file://"))
    saved = {path.name for path in artifacts.rglob("*") if path.is_file()}
    assert "model.skops" in saved and not any(name.endswith((".pkl", ".pickle")) for name in saved)
    requirements = next(artifacts.rglob("requirements.txt")).read_text().split()
    assert set(challenger_requirements()) <= set(requirements)  # pinned from this environment, not guessed
    assert os.listdir(Path.cwd()) == []
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.artifact_location == artifact_location(tracking_uri)

    registry = MlflowRegistry(tracking_uri)
    assert registry.challengers().value == len(candidates)
    freshness = registry.freshness_days(crypto, datetime.now(UTC))  # no champion ever: the newest challenger
    assert freshness.value < 0.01 and "no champion ever promoted: newest challenger" in freshness.detail
    assert not registry.freshness_days("BONKUSDC", datetime.now(UTC)).known

    again = register_challengers(report, lifecycle(tracking_uri), case.pooled, candles)  # the challengers step re-ran
    assert [entry["version"] for entry in again] == [entry["version"] for entry in registered]
    assert len(client.search_model_versions(f"name='{model_name(crypto)}'")) == 1
    assert registry.challengers().value == len(candidates)


def test_only_a_pass_registers_anything(real_gates, tracking_uri):
    def no_candles(crypto: str):
        raise AssertionError(f"no model is trained for a gate without PASS ({crypto})")

    assert register_challengers(real_gates["fail"].report, lifecycle(tracking_uri), real_gates["fail"].pooled,
                                no_candles) == []
    assert register_challengers(real_gates["inconclusive"].report, lifecycle(tracking_uri), {}, no_candles) == []
    assert MlflowRegistry(tracking_uri).challengers().value == 0


def test_tracking_store_location():
    assert tracking_uri_from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000"}) == "http://mlflow:5000"
    assert tracking_uri_from_env({"DAGSTER_HOME": "/data/home"}) == "sqlite:////data/home/mlflow.sqlite"
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI"):
        tracking_uri_from_env({})
    assert artifact_location("http://mlflow:5000") is None  # a tracking server chooses its own root
    assert artifact_location("sqlite:////data/home/mlflow.sqlite") == "file:///data/home/mlflow-artifacts"
    with pytest.raises(ValueError, match="in-memory"):
        artifact_location("sqlite:///:memory:")


CI_MARKERS = ("PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "CI", "CIRCLECI", "GITLAB_CI", "JENKINS_URL", "TRAVIS",
              "TF_BUILD", "BITBUCKET_BUILD_NUMBER", "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION",
              "CLOUD_RUN_EXECUTION", "RUNBOT_HOST_URL", "RUNBOT_BUILD_NAME", "RUNBOT_WORKER_ID")


@pytest.mark.parametrize(("setting", "client_started"), [(None, False), ("false", True)])
def test_mlflow_telemetry_is_off_unless_the_user_turns_it_on(setting, client_started, tmp_path):
    import subprocess
    import sys

    # A fresh process as a user's or a pod's, without the CI markers that already silence MLflow:
    # importing our package first leaves no telemetry client (nothing of ours calls out); an
    # explicit MLFLOW_DISABLE_TELEMETRY=false is the user's choice and is kept.
    env = {name: value for name, value in os.environ.items()
           if name not in CI_MARKERS and name not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    env["HOME"] = str(tmp_path)  # where an enabled client would keep its installation id
    if setting is not None:
        env["MLFLOW_DISABLE_TELEMETRY"] = setting
    probe = ("import cvn_assets.definitions, mlflow; from mlflow.telemetry.client import get_telemetry_client; "
             "client = get_telemetry_client(); print(client is not None)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == str(client_started)


GATE_PROCESS = r"""
import sys, time
from pathlib import Path
from cvn_assets.contracts.campaign import STORED
from cvn_assets.gate.model_registry import log_gate_evaluation
from cvn_assets.models.registry import mlflow_client
from cvn_assets.models.supervision import challenger_total
from cvn_assets.gate.report import GateReport

report_file, uri, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
report = GateReport.model_validate_json(Path(report_file).read_text(), context=STORED)
while not go.exists():
    time.sleep(0.002)
print(log_gate_evaluation(report, uri), challenger_total(mlflow_client(uri)))
"""


def test_concurrent_gates_on_a_fresh_home_create_the_registry_once(tmp_path):
    """Three gate processes log to a registry that does not exist yet, released together."""
    import subprocess
    import sys

    from cvn_assets_tests.fixtures.gate_reports import gate_spec, run_gate

    report_file = tmp_path / "report.json"
    report_file.write_text(run_gate(gate_spec("race-gate-001", ["XRPUSDC"])).report.model_dump_json())
    home = tmp_path / "fresh_home"
    home.mkdir()
    uri = f"sqlite:///{home / 'mlflow.sqlite'}"
    go = tmp_path / "go"
    gates = [subprocess.Popen([sys.executable, "-c", GATE_PROCESS, str(report_file), uri, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for _ in range(3)]
    import time

    time.sleep(8)  # every process has imported MLflow and waits at the barrier
    go.touch()
    outcomes = [gate.communicate(timeout=300) + (gate.returncode,) for gate in gates]
    assert [code for _, _, code in outcomes] == [0, 0, 0], [err[-800:] for _, err, _ in outcomes]
    runs = mlflow.MlflowClient(tracking_uri=uri).search_runs(
        [mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(runs) == 3 and {run.data.tags["campaign_id"] for run in runs} == {"race-gate-001"}


def test_challengers_are_counted_over_every_page_of_the_registry(tracking_uri):
    """MLflow lists 100 registered models per page: 105 challengers are 105, not 100."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    for index in range(105):
        name = model_name(f"C{index:03d}USDC")
        client.create_registered_model(name)
        version = client.create_model_version(name, source=f"file:///nowhere/{index}")
        client.set_registered_model_alias(name, f"challenger-paging-{index:03d}", version.version)
    assert len(client.search_registered_models()) == 100  # one page: what the old count read
    assert MlflowRegistry(tracking_uri).challengers().value == 105
