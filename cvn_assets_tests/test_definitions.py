"""The code location loads as Dagster loads it, with every asset, check, job and sensor."""

from __future__ import annotations

import importlib

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
