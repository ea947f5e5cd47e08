"""Configuration is checked before any write: a bad setting costs no manifest, no blob, no run.

Each case is one mistake an operator can make in the environment; `cvn campaign launch` must exit
2 with a message naming the variable, what was expected and what was found (never a secret), and
leave the object store, the Dagster instance and the MLflow store untouched.
"""

from __future__ import annotations

import dagster as dg
import pytest
from click.testing import CliRunner

from cvn_assets.cli.main import get_cli
from cvn_assets.settings import SettingsError, load_settings, preflight

SMALL = ["--group", "defi", "--symbols", "SOLUSDC", "--folds", "2", "--families", "naive", "--horizons", "H1",
         "--sl-range", "1.0", "--tp-range", "2.0", "--backtest-days", "10", "--campaign-id", "preflight-001",
         "--workers", "1"]
PASSWORD = "pw-S3KRET-4411"

CASES = {
    "diagnostics garbage": ({"CVN_DIAGNOSTICS_URL": "garbage"}, "CVN_DIAGNOSTICS_URL", "expected a SQLAlchemy URL"),
    "diagnostics unreachable": ({"CVN_DIAGNOSTICS_URL": f"postgresql+psycopg2://cvn:{PASSWORD}@127.0.0.1:9/cvn"},
                                "CVN_DIAGNOSTICS_URL", "expected a reachable PostgreSQL database"),
    "diagnostics mysql": ({"CVN_DIAGNOSTICS_URL": f"mysql://cvn:{PASSWORD}@127.0.0.1/cvn"},
                          "CVN_DIAGNOSTICS_URL", "found the driver 'mysql'"),
    "diagnostics sqlite without directory": ({"CVN_DIAGNOSTICS_URL": "sqlite:///{tmp}/nonexistent/dir/x.db"},
                                             "CVN_DIAGNOSTICS_URL", "found no directory '{tmp}/nonexistent/dir'"),
    "mlflow garbage": ({"MLFLOW_TRACKING_URI": "garbage://x"}, "MLFLOW_TRACKING_URI", "expected an MLflow store URI"),
    "mlflow unreachable": ({"MLFLOW_TRACKING_URI": f"http://cvn:{PASSWORD}@127.0.0.1:9"}, "MLFLOW_TRACKING_URI",
                           "expected a reachable MLflow tracking server"),
    "executor": ({"CVN_EXECUTOR": "bogus"}, "CVN_EXECUTOR", "found 'bogus'"),
    "endpoint not a url": ({"CVN_S3_BUCKET": "cvn-bucket", "CVN_S3_ENDPOINT_URL": "not a url"},
                           "CVN_S3_ENDPOINT_URL", "expected an http(s)://host[:port] URL"),
    "dagster home is a file": ({"DAGSTER_HOME": "/etc/hostname"}, "DAGSTER_HOME", "/etc/hostname is a file"),
    "dagster postgres unreachable": ({"CVN_DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://d:{PASSWORD}@127.0.0.1:9/d"},
                                     "CVN_DAGSTER_POSTGRES_URL", "expected a reachable PostgreSQL database"),
    "max attempts": ({"CVN_S3_BUCKET": "cvn-bucket", "CVN_S3_MAX_ATTEMPTS": "abc"}, "CVN_S3_MAX_ATTEMPTS",
                     "expected a positive integer, found 'abc'"),
    "bucket with a path": ({"CVN_S3_BUCKET": "bucket/../x"}, "CVN_S3_BUCKET", "expected an S3 bucket name"),
    "bucket in capitals": ({"CVN_S3_BUCKET": "UPPER-bucket"}, "CVN_S3_BUCKET", "expected an S3 bucket name"),
    "webhook with whitespace": ({"CVN_ALERT_WEBHOOK_URL": f"http://127.0.0.1:9/hook/{PASSWORD} x"},
                                "CVN_ALERT_WEBHOOK_URL", "whitespace"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_bad_setting_is_refused_before_anything_is_written(case, dagster_home, storage_root, tmp_path, monkeypatch):
    environment, variable, expected = CASES[case]
    expected = expected.replace("{tmp}", str(tmp_path))  # a directory that surely does not exist
    for name, value in environment.items():
        monkeypatch.setenv(name, value.replace("{tmp}", str(tmp_path)))
    result = CliRunner().invoke(get_cli(), ["campaign", "launch", *SMALL])
    assert result.exit_code == 2, result.output
    # DAGSTER_HOME is resolved by `cvn` itself before any command runs; every other setting by the launch
    prefix = "error: " if variable == "DAGSTER_HOME" else "error: invalid configuration:"
    assert result.stderr.startswith(prefix) and variable in result.stderr
    assert expected in result.stderr, result.stderr
    assert PASSWORD not in result.output and "Traceback" not in result.output
    # nothing written: no manifest or blob, no run, no MLflow store, no diagnostics file
    assert not storage_root.exists() or not any(storage_root.rglob("*"))
    assert not (tmp_path / "mlflow.sqlite").exists() and not (tmp_path / "diagnostics.sqlite").exists()
    assert not (dagster_home / "storage").exists() and not (tmp_path / "nonexistent").exists()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.delenv("CVN_DAGSTER_POSTGRES_URL", raising=False)  # unreachable in its case: nothing there
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs() == []


def test_every_problem_is_listed_at_once_and_a_good_configuration_passes(dagster_home, postgres_url, monkeypatch):
    monkeypatch.setenv("CVN_EXECUTOR", "bogus")
    monkeypatch.setenv("CVN_S3_BUCKET", "UPPER-bucket")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert [problem.split(":")[0] for problem in raised.value.problems] == ["CVN_S3_BUCKET", "CVN_EXECUTOR"]

    monkeypatch.delenv("CVN_EXECUTOR")
    monkeypatch.delenv("CVN_S3_BUCKET")
    monkeypatch.setenv("CVN_DIAGNOSTICS_URL", postgres_url)
    settings = load_settings()
    preflight(settings)  # the local PostgreSQL is reachable: no problem
    assert settings.executor == "in_process" and settings.storage.backend == "local"


def test_the_launch_job_checks_the_configuration_before_registering(instance, storage_root, monkeypatch):
    from cvn_assets.definitions import build_defs
    from cvn_assets.runs import LAUNCH_JOB

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "garbage://x")
    result = build_defs().resolve_job_def(LAUNCH_JOB).execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"ops": {"register_campaign": {"config": {"group": "defi", "campaign_id": "preflight-job-001"}}}},
    )
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "MLFLOW_TRACKING_URI: expected an MLflow store URI" in failure.step_failure_data.error.message
    assert not storage_root.exists() or not any(storage_root.rglob("*"))
    assert instance.get_dynamic_partitions("campaign") == []
