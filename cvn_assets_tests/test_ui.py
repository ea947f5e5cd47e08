"""What `make dev` shows: the real Dagster webserver on the repository's workspace, over HTTP.

A campaign runs on a DAGSTER_HOME; the webserver started on that home and `workspace.yaml`
must list the campaign's partitions, the gate's materialization and its check results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cvn_assets.definitions import build_defs
from cvn_assets_tests.fixtures.campaigns import CampaignHarness, small_spec
from cvn_assets_tests.fixtures.s3 import free_port

ROOT = Path(__file__).resolve().parents[1]
WEBSERVER_START_SECONDS = 300  # a loaded CI machine takes minutes to load the code location


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        payload = json.load(response)
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


@pytest.fixture
def webserver(dagster_home, storage_root):
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + WEBSERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        raise RuntimeError(f"dagster-webserver did not answer within {WEBSERVER_START_SECONDS} s")
    yield port
    process.terminate()
    process.wait(timeout=30)


def test_ui_shows_partitions_gate_and_check_results(instance, storage_root, webserver):
    defs = build_defs()
    harness = CampaignHarness(instance=instance, defs=defs, store=defs.resources["object_store"].store(),
                              prefix="s43-predictions")
    manifest = harness.launch(small_spec("ui-001"))
    harness.store.delete(harness.blob_keys(manifest)[0])
    assert harness.gate("ui-001").success

    nodes = graphql(webserver, """{
      predictions: assetNodes(assetKeys: [{path: ["s43_predictions"]}]) {
        partitionKeysByDimension { name partitionKeys } }
      gate: assetNodes(assetKeys: [{path: ["s43_gate"]}]) {
        partitionKeys
        assetChecksOrError { ... on AssetChecks { checks { name } } } }
    }""")
    dimensions = {d["name"]: d["partitionKeys"] for d in nodes["predictions"][0]["partitionKeysByDimension"]}
    assert dimensions == {"campaign": ["ui-001"], "crypto": ["SOLUSDC", "ADAUSDC"]}
    gate = nodes["gate"][0]
    assert gate["partitionKeys"] == ["ui-001"]
    assert {check["name"] for check in gate["assetChecksOrError"]["checks"]} == {"cohort_complete", "cohort_intact", "ml_beats_baseline"}

    data = graphql(webserver, """{
      asset: assetOrError(assetKey: {path: ["s43_gate"]}) {
        ... on Asset { assetMaterializations(limit: 5) { partition
          metadataEntries { label ... on TextMetadataEntry { text } } } } }
      complete: assetCheckExecutions(assetKey: {path: ["s43_gate"]}, checkName: "cohort_complete", limit: 5) {
        status partition }
      intact: assetCheckExecutions(assetKey: {path: ["s43_gate"]}, checkName: "cohort_intact", limit: 5) {
        status partition }
    }""")
    materialization = data["asset"]["assetMaterializations"][0]
    assert materialization["partition"] == "ui-001"
    verdict = next(e for e in materialization["metadataEntries"] if e["label"] == "verdict")
    assert verdict["text"] == "INCONCLUSIVE_TOOLING"
    assert [(e["status"], e["partition"]) for e in data["complete"]] == [("FAILED", "ui-001")]
    assert [(e["status"], e["partition"]) for e in data["intact"]] == [("SUCCEEDED", "ui-001")]
