"""The code location loads as Dagster loads it, with every asset, check, job and sensor."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from cvn_assets.definitions import build_defs


def test_code_location_loads_from_the_workspace_module(storage_root):
    module = importlib.import_module("cvn_assets.definitions")
    defs = module.defs() if callable(module.defs) else module.defs
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()} >= {
        "market_candles", "s43_predictions", "s43_gate"}
    checks = {key.name for key in repository.asset_graph.asset_check_keys}
    assert checks >= {"candles_valid", "blobs_intact", "cohort_complete", "cohort_intact", "ml_beats_baseline"}
    assert {"s43_acquire_job", "s43_gate_job", "launch_discovery", "model_approval_job", "model_promotion_job",
            "model_killswitch_job", "model_rollback_job", "model_decommission_job"} <= {
        job.name for job in repository.get_all_jobs()}
    assert {"campaign_sensor", "global_state_sensor", "run_failure_alert_sensor", "asset_check_alert_sensor",
            "stuck_run_sensor", "model_lifecycle_alert_sensor"} <= {sensor.name for sensor in repository.sensor_defs}
    assert "morning_check_schedule" in {schedule.name for schedule in repository.schedule_defs}
    # the UI counts a campaign's unexpected campaign × crypto cells as missing: the assets say why
    descriptions = {name: " ".join(repository.asset_graph.get(dg.AssetKey(name)).description.split())
                    for name in ("market_candles", "s43_predictions")}
    assert "a campaign expects only the cryptos of its manifest" in descriptions["market_candles"]
    assert "only the campaign's own cryptos are expected" in descriptions["s43_predictions"]


def test_nothing_is_read_from_the_environment_at_import(monkeypatch):
    """Importing the module must not need configuration; building the definitions does."""
    monkeypatch.delenv("CVN_STORAGE_ROOT", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    importlib.reload(importlib.import_module("cvn_assets.definitions"))
    with pytest.raises(ValueError, match="no object store configured"):
        build_defs()


def test_unknown_executor_is_a_configuration_error(storage_root, monkeypatch):
    monkeypatch.setenv("CVN_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="CVN_EXECUTOR='threads' is invalid"):
        build_defs()


LOAD_AND_LIST_MODULES = """
import json, sys
from cvn_assets.definitions import build_defs
defs = build_defs()
defs.get_repository_def().get_all_jobs()
print(json.dumps(sorted(sys.modules)))
"""


def test_loading_the_definitions_on_the_local_backend_imports_no_s3_client_mlflow_or_trainer(dagster_home, storage_root):
    """Every spawned acquisition worker, the code server and `cvn` load the definitions: on the local
    backend they must not pay for dagster-aws/boto3 (S3), MLflow (the gate's registry) or
    scikit-learn (the training step)."""
    import json
    import os
    import subprocess
    import sys

    environ = {name: value for name, value in os.environ.items() if not name.startswith("CVN_S3")}
    result = subprocess.run([sys.executable, "-c", LOAD_AND_LIST_MODULES], capture_output=True, text=True,
                            env=environ, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = {name.split(".")[0] for name in json.loads(result.stdout.strip().splitlines()[-1])}
    assert "dagster" in loaded and "cvn_assets" in loaded  # the definitions were really built
    assert not loaded & {"dagster_aws", "boto3", "mlflow", "sklearn"}, sorted(loaded & {
        "dagster_aws", "boto3", "mlflow", "sklearn"})
@pytest.mark.slow
def test_dg_check_defs_loads_the_project_without_repeated_notices(dagster_home, storage_root):
    """`dg check defs` (dagster-dg-cli, [tool.dg] in pyproject.toml) loads the code location as `dg dev` does.

    The preview/beta features we use on purpose do not print their notice on every load.
    """
    root = Path(__file__).resolve().parents[1]
    venv = Path(sys.executable).parent.parent
    result = subprocess.run([str(Path(sys.executable).with_name("dg")), "check", "defs"], cwd=root,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "VIRTUAL_ENV": str(venv)})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All definitions loaded successfully." in output
    for notice in ("PreviewWarning", "BetaWarning", "virtual environment does not match"):
        assert notice not in output
