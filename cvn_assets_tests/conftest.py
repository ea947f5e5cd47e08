"""Shared fixtures: each one is a real part (moto server over HTTP, PostgreSQL, Dagster instance).

Fixture modules live in cvn_assets_tests/fixtures/; add a new one to ``pytest_plugins``.
"""

import os

import pytest

pytest_plugins = [
    "cvn_assets_tests.fixtures.s3",
    "cvn_assets_tests.fixtures.postgres",
    "cvn_assets_tests.fixtures.dagster_home",
    "cvn_assets_tests.fixtures.stores",
    "cvn_assets_tests.fixtures.fault_proxy",
    "cvn_assets_tests.fixtures.campaigns",
    "cvn_assets_tests.fixtures.http_receiver",
    "cvn_assets_tests.fixtures.alertmanager",
    "cvn_assets_tests.fixtures.dagster_postgres",
    "cvn_assets_tests.fixtures.gate_reports",
    "cvn_assets_tests.fixtures.mlflow_server",
]


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """No test reads the developer's own configuration: every CVN_* and S3 variable starts unset."""
    for name in list(os.environ):
        if name.startswith(("CVN_", "AWS_", "MLFLOW_")) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CVN_STORAGE_ROOT", str(tmp_path / "objects"))
    monkeypatch.setenv("CVN_DIAGNOSTICS_URL", f"sqlite:///{tmp_path / 'diagnostics.sqlite'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.sqlite'}")
