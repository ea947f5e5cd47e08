"""Both Dagster instance files load as real instances: the local dagster.yaml (SQLite, or PostgreSQL by
one environment variable) and deploy/k8s/dagster-instance.yaml (PostgreSQL, S3 compute logs, K8s).

Validated by Dagster itself (its instance schema and ``DagsterInstance`` loading) against the
PostgreSQL server on 127.0.0.1 and a moto S3 server over HTTP; a tiny job runs on each instance.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._serdes import serialize_value
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_k8s import K8sRunLauncher
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from cvn_assets.operations.instance_storage import POSTGRES_URL_ENV
from cvn_assets.operations.sqlite_storage import (
    EngineReusingEventLogStorage,
    EngineReusingRunStorage,
    EngineReusingScheduleStorage,
)
from cvn_assets_tests.fixtures.dagster_postgres import LOCAL_INSTANCE_YAML, psycopg2_url

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_INSTANCE_YAML = REPO_ROOT / "deploy" / "k8s" / "dagster-instance.yaml"


@dg.op
def heartbeat() -> int:
    print("cvn heartbeat step")  # captured by the instance's compute log manager
    return 1


@dg.job
def heartbeat_job() -> None:
    heartbeat()


def install(instance_file: Path, home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(instance_file, home / "dagster.yaml")
    return home


def storage_types(instance: dg.DagsterInstance) -> tuple[type, type, type]:
    return type(instance.run_storage), type(instance.event_log_storage), type(instance.schedule_storage)


# ---------------------------------------------------------------------------------------------
# the local instance (repository dagster.yaml)


def test_local_instance_without_the_switch_is_sqlite_under_dagster_home(dagster_home):
    install(LOCAL_INSTANCE_YAML, dagster_home)
    dagster_instance_config(str(dagster_home))  # Dagster's own schema; raises on any invalid key
    with dg.DagsterInstance.get() as instance:
        # Dagster's SQLite storages (subclasses that reuse their engines: test_sqlite_storage.py)
        assert storage_types(instance) == (EngineReusingRunStorage, EngineReusingEventLogStorage,
                                           EngineReusingScheduleStorage)
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert isinstance(instance.event_log_storage, SqliteEventLogStorage)
        assert isinstance(instance.schedule_storage, SqliteScheduleStorage)
        run_id = heartbeat_job.execute_in_process(instance=instance).run_id
    # Dagster's default layout, so an existing .dagster_home keeps its history when the file is added
    assert (dagster_home / "history" / "runs.db").is_file()
    with dg.DagsterInstance.get() as again:
        assert again.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS


def test_local_instance_with_the_switch_keeps_runs_events_and_schedules_in_postgres(postgres_instance, postgres_url):
    assert storage_types(postgres_instance) == (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage)
    run_id = heartbeat_job.execute_in_process(instance=postgres_instance).run_id
    with dg.DagsterInstance.get() as again:  # a second process-like instance reads it back
        assert again.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        assert any(e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS
                   for e in again.all_logs(run_id))
    connection = psycopg2.connect(postgres_url.replace("postgresql+psycopg2://", "postgresql://", 1))  # libpq URI
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM runs WHERE run_id = %s", (run_id,))
            assert cursor.fetchone() == (1,)
            cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
            assert cursor.fetchone()[0] > 0
            cursor.execute("SELECT to_regclass('public.instigators') IS NOT NULL")
            assert cursor.fetchone() == (True,)
    finally:
        connection.close()
    assert not any((Path(os.environ["DAGSTER_HOME"]) / name).exists() for name in ("history", "schedules"))


def test_the_postgres_password_never_leaves_its_environment_variable(postgres_url, dagster_home, monkeypatch):
    install(LOCAL_INSTANCE_YAML, dagster_home)
    url = psycopg2_url(postgres_url).replace("postgres@", "postgres:pw-0f9e8d7c@")  # trust auth ignores it
    monkeypatch.setenv(POSTGRES_URL_ENV, url)
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        reference = serialize_value(instance.get_ref())  # what runs and code servers receive
    assert "pw-0f9e8d7c" not in reference and "LocalOrPostgresStorage" in reference
    info = subprocess.run([str(Path(sys.executable).with_name("dagster")), "instance", "info"],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert info.returncode == 0, info.stderr[-2000:]
    assert "PostgresRunStorage" in info.stdout
    assert "pw-0f9e8d7c" not in info.stdout + info.stderr


def test_a_url_for_a_driver_that_is_not_installed_is_refused_with_the_fix(dagster_home, monkeypatch):
    install(LOCAL_INSTANCE_YAML, dagster_home)
    monkeypatch.setenv(POSTGRES_URL_ENV, "postgresql://dagster:pw-1a2b3c@127.0.0.1:5432/dagster")
    with pytest.raises(ValueError, match=r"postgresql\+psycopg2://") as raised:
        dg.DagsterInstance.get()
    assert "pw-1a2b3c" not in str(raised.value)


# ---------------------------------------------------------------------------------------------
# the Kubernetes instance (deploy/k8s/dagster-instance.yaml)


@pytest.fixture
def k8s_environment(postgres_url, s3_bucket, monkeypatch):
    """The variables the pods get from cvn-config / dagster-postgresql-secret, aimed at local services."""
    database = postgres_url.rsplit("/", 1)[1]
    for name, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": database,
                        "DAGSTER_PG_USERNAME": "postgres", "DAGSTER_PG_PASSWORD": ""}.items():
        monkeypatch.setenv(name, value)
    return s3_bucket  # CVN_S3_BUCKET / CVN_S3_ENDPOINT_URL / AWS_* point at the moto server


def test_kubernetes_instance_loads_on_postgres_with_s3_compute_logs(k8s_environment, moto_server, tmp_path):
    home = install(K8S_INSTANCE_YAML, tmp_path / "k8s_home")
    config, _ = dagster_instance_config(str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert storage_types(instance) == (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage)
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled and instance.run_retries_max_retries == 1
        result = heartbeat_job.execute_in_process(instance=instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None
    # the step's stdout went to S3, outside the transport prefix, where the UI reads it
    client = moto_server.client()
    listed = client.list_objects_v2(Bucket=k8s_environment, Prefix="dagster-compute-logs/")
    [stdout_key] = [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(".out")]
    assert result.run_id in stdout_key
    assert b"cvn heartbeat step" in client.get_object(Bucket=k8s_environment, Key=stdout_key)["Body"].read()
    # the run launcher loads in-cluster credentials when built, so its config is checked with its own schema
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    checked = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), launcher["config"])
    assert checked.success, checked.errors


def test_kubernetes_compute_logs_stay_outside_the_seven_day_prefix():
    config = yaml.safe_load(K8S_INSTANCE_YAML.read_text())
    prefix = config["compute_logs"]["config"]["prefix"]
    assert not prefix.startswith("s43-predictions")
