"""Registering a campaign is atomic: two launches racing on one id never both believe they own it.

The race is run with two real processes on both backends (local directory, S3 = moto over HTTP),
released together by a file barrier, over several ids in a row; before the fix both processes
saw the manifest absent and both wrote it, and the loser went on with the winner's cohort.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from cvn_assets.campaigns.registration import CampaignConflict, register_campaign
from cvn_assets.cli.main import get_cli
from cvn_assets.storage.factory import build_object_store
from cvn_assets.storage.manifests import read_manifest
from cvn_assets.storage.object_store import ObjectExists
from cvn_assets.storage.settings import StorageSettings
from cvn_assets_tests.fixtures.campaigns import small_spec

ROUNDS = 6

RACER = r"""
import json, sys, time
from pathlib import Path
import dagster as dg
from cvn_assets.campaigns.registration import CampaignConflict, register_campaign
from cvn_assets.storage.factory import build_object_store
from cvn_assets.storage.settings import StorageSettings
from cvn_assets_tests.fixtures.campaigns import small_spec

barrier, name, family, rounds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
settings = StorageSettings.from_env()
store = build_object_store(settings)
outcomes = []
with dg.DagsterInstance.ephemeral() as instance:
    for round_ in range(rounds):
        (barrier / f"{name}.{round_}.ready").touch()
        while not (barrier / f"go.{round_}").exists():
            time.sleep(0.002)
        try:
            manifest = register_campaign(instance, store, settings.prefix, small_spec(f"race-{round_:02d}", families=[family]))
            outcomes.append({"registered": manifest.spec.families, "created_at": manifest.created_at.isoformat()})
        except CampaignConflict as exc:
            outcomes.append({"refused": str(exc)})
print(json.dumps(outcomes))
"""


def _race(tmp_path: Path, families: tuple[str, str]) -> list[list[dict]]:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(barrier), f"p{index}", family, str(ROUNDS)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
              for index, family in enumerate(families)]
    for round_ in range(ROUNDS):
        deadline = time.monotonic() + 300  # process start-up (imports) on a loaded machine
        while not all((barrier / f"p{index}.{round_}.ready").exists() for index in range(len(racers))):
            assert time.monotonic() < deadline, "racers did not reach the barrier"
            assert all(racer.poll() is None for racer in racers), [racer.stderr.read() for racer in racers]
            time.sleep(0.005)
        (barrier / f"go.{round_}").touch()
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_two_launches_racing_with_different_specs_exactly_one_wins_and_the_other_is_refused(backend, tmp_path):
    results = _race(tmp_path, ("naive", "logreg"))
    settings = StorageSettings.from_env()
    store = build_object_store(settings)
    for round_ in range(ROUNDS):
        stored = read_manifest(store, settings.prefix, f"race-{round_:02d}").spec.families
        outcomes = [result[round_] for result in results]
        winners = [outcome for outcome in outcomes if "registered" in outcome]
        losers = [outcome for outcome in outcomes if "refused" in outcome]
        assert len(winners) == 1 and len(losers) == 1, (round_, outcomes)
        assert winners[0]["registered"] == stored, "a launch reported a cohort that is not the registered one"
        assert "registered already with another spec" in losers[0]["refused"]


def test_two_launches_racing_with_the_same_spec_join_one_manifest(backend, tmp_path):
    results = _race(tmp_path, ("naive", "naive"))
    for round_ in range(ROUNDS):
        first, second = (result[round_] for result in results)
        assert first["registered"] == second["registered"] == ["naive"]
        assert first["created_at"] == second["created_at"], "each launch wrote its own manifest"


def test_create_only_write_refuses_an_existing_key_on_both_backends(object_store):
    key = "s43-predictions/race-x/_manifest.json"
    object_store.put_if_absent(key, b"first")
    with pytest.raises(ObjectExists, match="race-x"):
        object_store.put_if_absent(key, b"second")
    assert object_store.get(key) == b"first"


def test_reusing_an_id_with_another_spec_sequentially_is_one_error_line_exit_2(storage_root, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    store = build_object_store(StorageSettings.from_env())
    with dg.DagsterInstance.ephemeral() as instance:
        register_campaign(instance, store, "s43-predictions", small_spec("reuse-001", families=["naive"]))
        with pytest.raises(CampaignConflict):
            register_campaign(instance, store, "s43-predictions", small_spec("reuse-001", families=["logreg"]))
    result = CliRunner().invoke(get_cli(), ["campaign", "launch", "--group", "defi", "--symbols", "SOLUSDC,ADAUSDC",
                                      "--campaign-id", "reuse-001", "--families", "hgb"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # a fresh DAGSTER_HOME is announced once (progress); the refusal is the one error line
    errors = [line for line in lines if not line.startswith("DAGSTER_HOME ")]
    assert len(errors) == 1 and errors[0].startswith("error: campaign_id 'reuse-001' is registered already"), lines
    assert "families" in errors[0] and "Traceback" not in result.output
