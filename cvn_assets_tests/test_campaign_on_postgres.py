"""A whole campaign on a Dagster instance whose storages are the PostgreSQL server (issue 6).

Driven as an operator would: `cvn campaign launch` with two acquisition worker processes writing
runs and events concurrently to PostgreSQL, then the gate; the records are read back from there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

CVN = str(Path(sys.executable).with_name("cvn"))


def test_campaign_runs_end_to_end_on_postgres_storage(postgres_instance, storage_root):
    result = subprocess.run(
        [CVN, "campaign", "launch", "--group", "defi", "--symbols", "SOLUSDC,XRPUSDC", "--folds", "2",
         "--families", "naive,logreg", "--horizons", "H1", "--sl-range", "1.0", "--tp-range", "2.0",
         "--backtest-days", "10", "--campaign-id", "pg-001", "--workers", "2", "--json"],
        capture_output=True, text=True, env=dict(os.environ), timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] in {"PASS", "FAIL"} and report["missing"] == []

    records = postgres_instance.get_run_records(filters=dg.RunsFilter(tags={"cvn/campaign": "pg-001"}))
    assert sorted(r.dagster_run.job_name for r in records) == ["s43_acquire_job", "s43_acquire_job", "s43_gate_job"]
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
    materialization = postgres_instance.get_latest_materialization_event(dg.AssetKey("s43_gate"))
    assert materialization is not None
    assert materialization.asset_materialization.partition == "pg-001"
    assert materialization.asset_materialization.metadata["verdict"].value == report["verdict"]
    assert set(postgres_instance.get_dynamic_partitions("crypto")) == {"SOLUSDC", "XRPUSDC"}
