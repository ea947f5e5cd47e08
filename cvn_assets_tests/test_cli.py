"""The `cvn` command as an operator runs it: the installed entry point, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CVN = str(Path(sys.executable).with_name("cvn"))
SMALL = ["--symbols", "SOLUSDC,ADAUSDC", "--folds", "2", "--families", "naive,logreg", "--horizons", "H1",
         "--sl-range", "1.0", "--tp-range", "2.0", "--backtest-days", "10"]


def cvn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CVN, *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=300)


@pytest.fixture
def cli_env(dagster_home, storage_root) -> dict[str, str]:
    return dict(os.environ)


@pytest.fixture
def launched(cli_env) -> dict:
    result = cvn("campaign", "launch", "--group", "defi", *SMALL, "--campaign-id", "cli-001", "--workers", "1", "--json")
    assert result.returncode == 0, result.stderr
    return {**json.loads(result.stdout), "_stderr": result.stderr}


def test_launch_runs_a_campaign_and_prints_one_json_report(launched, cli_env):
    report = launched
    assert report["campaign_id"] == "cli-001"
    assert report["verdict"] in {"PASS", "FAIL"}
    assert report["transport_suspect"] is False and report["missing"] == []
    assert len(report["cohort"]) == 8
    assert set(report["cohort"][0]) >= {"crypto", "fold", "family", "key", "status"}
    assert {entry["status"] for entry in report["cohort"]} == {"present"}
    assert set(report["acquisition_runs"]) == {"SOLUSDC", "ADAUSDC"}
    # Quiet by default: progress from the first second, none of MLflow's or Dagster's chatter.
    stderr = report["_stderr"]
    assert stderr.index("1 acquisition worker") < stderr.index("[1/2] acquisition")
    for chatter in ("Creating initial MLflow database tables", "Successfully registered model", "STEP_",
                    "PreviewWarning", "BetaWarning", "No dagster instance configuration file"):
        assert chatter not in stderr

    import dagster as dg

    with dg.DagsterInstance.get() as instance:  # the runs are on the instance the UI shows
        runs = instance.get_run_records(filters=dg.RunsFilter(tags={"cvn/campaign": "cli-001"}))
        assert {record.dagster_run.job_name for record in runs} == {"s43_acquire_job", "s43_gate_job"}


def test_gate_blob_ls_and_inspect_show_what_the_gate_sees(launched, cli_env, storage_root):
    missing_key = launched["cohort"][0]["key"]
    bad_key = launched["cohort"][1]["key"]
    (storage_root / missing_key).unlink()

    listing = cvn("blob", "ls", "--campaign", "cli-001", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {row["key"]: row for row in json.loads(listing.stdout)["blobs"]}
    assert rows[missing_key]["status"] == "absent" and rows[bad_key]["status"] == "present"

    gate = cvn("gate", "--campaign", "cli-001", "--json")
    assert gate.returncode == 0, gate.stderr  # INCONCLUSIVE is a verdict, not an error
    report = json.loads(gate.stdout)
    assert report["verdict"] == "INCONCLUSIVE_TOOLING" and report["missing"] == [missing_key]

    good = cvn("blob", "inspect", bad_key, "--json")
    assert good.returncode == 0, good.stderr
    details = json.loads(good.stdout)
    assert details["schema_version"] == 2 and details["meta"]["timeframe"] == "5m" and details["checksum"] == "verified"
    assert details["arrays"]["proba_buy"] == {"dtype": "float32", "shape": [details["rows"]]}
    # The URI it prints and the path on disk name the same blob.
    for same in (details["uri"], str(storage_root / bad_key)):
        again = cvn("blob", "inspect", same, "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["sha256"] == details["sha256"]

    target = (storage_root / bad_key).resolve()
    target.write_bytes(target.read_bytes()[:100])  # truncated behind the store's back
    broken = cvn("blob", "inspect", bad_key)
    assert broken.returncode == 1
    assert broken.stderr.startswith(f"error: s43 npz corrupt: key={bad_key}: checksum mismatch")

    plain_key = launched["cohort"][2]["key"]
    plain = storage_root / plain_key
    data = plain.read_bytes()
    plain.unlink()
    plain.write_bytes(data)  # a plain file copied into the store: not written by cvn, no stored checksum
    foreign = cvn("blob", "inspect", plain_key)
    assert foreign.returncode == 1
    assert "not written by cvn" in foreign.stderr and "None" not in foreign.stderr
    listing = cvn("blob", "ls", "--campaign", "cli-001", "--json")
    assert listing.returncode == 1  # after listing every blob: one cannot be read
    rows = {row["key"]: row for row in json.loads(listing.stdout)["blobs"]}
    assert len(rows) == 8 and rows[plain_key]["status"] == "unreadable" and rows[bad_key]["status"] == "present"
    assert "not written by cvn" in rows[plain_key]["error"]
    plain.unlink()

    failed_gate = cvn("gate", "--campaign", "cli-001")
    assert failed_gate.returncode == 1
    assert "s43 npz corrupt" in failed_gate.stderr and bad_key in failed_gate.stderr
    # One useful message, not Dagster's stack traces (they are in the run's logs; -v shows them).
    assert "Stack Trace" not in failed_gate.stderr and "STEP_FAILURE" not in failed_gate.stderr
    said = [line for line in failed_gate.stderr.splitlines() if not line.startswith("  … ")]  # heartbeats aside
    assert len(said) <= 6, failed_gate.stderr
    verbose = cvn("-v", "gate", "--campaign", "cli-001")
    assert verbose.returncode == 1 and "STEP_FAILURE" in verbose.stderr and "Stack Trace" in verbose.stderr


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--group", "nope"], "--group 'nope'"),
        (["--group", "defi", "--campaign-id", "../x"], "--campaign-id '../x'"),
        (["--group", "defi", "--folds", "1"], "--folds '1'"),
        (["--group", "defi", "--families", "naive,transformer"], "--families 'naive,transformer'"),
        (["--group", "defi", "--sl-range", "abc"], "--sl-range 'abc'"),
        (["--group", "defi", "--horizons", "H0"], "--horizons 'H0'"),
        (["--group", "defi", "--backtest-days", "2"], "--backtest-days '2'"),
    ],
    ids=["unknown-group", "path-traversal-id", "one-fold", "unknown-family", "sl-not-numbers", "h0", "too-short"],
)
def test_bad_launch_input_exits_2_naming_the_field_and_writes_nothing(cli_env, storage_root, dagster_home, args, field):
    result = cvn("campaign", "launch", *args)
    assert result.returncode == 2, result.stderr
    assert field in result.stderr
    assert not storage_root.exists() or not any(storage_root.rglob("*"))
    assert not (dagster_home / "storage").exists() or not any((dagster_home / "storage").iterdir())


def test_unknown_campaign_and_bad_key_are_bad_input(cli_env):
    unknown = cvn("gate", "--campaign", "never-launched")
    assert unknown.returncode == 2 and "not registered" in unknown.stderr
    bad_key = cvn("blob", "inspect", "s43-predictions/../../etc/passwd")
    assert bad_key.returncode == 2 and "blob key" in bad_key.stderr
    assert "DESIGN.md" not in bad_key.stderr  # not in this repository: messages say the rule themselves


def test_every_command_has_help(cli_env):
    for command in (["--help"], ["campaign", "launch", "--help"], ["gate", "--help"], ["blob", "ls", "--help"],
                    ["blob", "inspect", "--help"]):
        result = cvn(*command)
        assert result.returncode == 0 and "Usage:" in result.stdout, command
