"""The lifecycle from the Dagster UI: promotion and killswitch launched over GraphQL on the real
webserver (what the launchpad posts), run by the instance's run launcher, audited with their run."""

from __future__ import annotations

import json
import time
import urllib.request

import dagster as dg
import pytest

from cvn_assets.diagnostics.resources import diagnostics_url_from_env, migrated_store
from cvn_assets.gate.model_registry import tracking_uri_from_env
from cvn_assets.models.lifecycle import Lifecycle
from cvn_assets.models.registry import mlflow_client, model_name
from cvn_assets_tests.test_models_lifecycle import pass_campaign
from cvn_assets_tests.test_ui import webserver  # noqa: F401 — the real webserver fixture

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on PipelineNotFoundError { message }
  }
}"""
STATUS = """query Status($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"""


def post(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     data=json.dumps({"query": query, "variables": variables}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.load(response)
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def aliases(client, crypto: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(model_name(crypto)).aliases.items()}


def errors(instance, run_id: str) -> list[str]:
    return [str(record.dagster_event.step_failure_data.error.message)
            for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]


def launch(port: int, job: str, config: dict) -> tuple[str, str]:
    """Launch ``job`` with the op config as the launchpad would; wait for its end; (run id, status)."""
    op = job.removesuffix("_job")
    data = post(port, LAUNCH, {"params": {
        "selector": {"repositoryLocationName": "cvn_assets", "repositoryName": "__repository__", "jobName": job},
        "runConfigData": {"ops": {op: {"config": config}}}}})["launchRun"]
    assert data["__typename"] == "LaunchRunSuccess", data
    run_id = data["run"]["runId"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = post(port, STATUS, {"runId": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return run_id, status
        time.sleep(1)
    raise AssertionError(f"run {run_id} of {job} did not finish within 300 s")


@pytest.fixture
def launch_at_once(dagster_home):
    """Runs launched from the UI start at once (the default queue needs the daemon, not running here)."""
    with (dagster_home / "dagster.yaml").open("a") as config:
        config.write("run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n")


def test_promotion_and_killswitch_from_the_launchpad(launch_at_once, instance, webserver):  # noqa: F811
    crypto = "SOLUSDC"
    version = pass_campaign("ui-pass-001", crypto)
    lifecycle = Lifecycle(tracking_uri_from_env(), migrated_store(diagnostics_url_from_env()), origin="test")
    lifecycle.approve(crypto, version, "ml_owner", "alice")
    lifecycle.approve(crypto, version, "operator", "bob")

    promoted, status = launch(webserver, "model_promotion_job", {"crypto": crypto, "version": version, "by": "mo"})
    assert status == "SUCCESS", errors(instance, promoted)
    client = mlflow_client(tracking_uri_from_env())
    assert aliases(client, crypto) == {"champion": version}

    wrong, status = launch(webserver, "model_killswitch_job", {
        "crypto": crypto, "confirm": f"{crypto}@{int(version) + 1}", "reason": "live drawdown", "by": "op"})
    assert status == "FAILURE"  # refused: the confirmation does not name the champion
    assert aliases(client, crypto) == {"champion": version}

    killed, status = launch(webserver, "model_killswitch_job", {
        "crypto": crypto, "confirm": f"{crypto}@{version}", "reason": "live drawdown", "by": "op"})
    assert status == "SUCCESS", errors(instance, killed)
    assert aliases(client, crypto) == {"quarantined": version}

    events = [(e["action"], e["outcome"], e["origin"]) for e in lifecycle.audit.events(crypto)
              if e["action"] in ("promotion", "killswitch")]
    assert events == [("promotion", "done", f"dagster run {promoted}"),
                      ("killswitch", "refused", f"dagster run {wrong}"),
                      ("killswitch", "done", f"dagster run {killed}")]
