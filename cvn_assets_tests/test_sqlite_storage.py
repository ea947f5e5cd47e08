"""The local instance's SQLite storage (``operations.sqlite_storage``): Dagster's own files and schema,
read and written interchangeably with Dagster's ``DagsterSqliteStorage``, with one engine per database
file — also when several processes initialise the same new run database at once.

Real instances on temporary DAGSTER_HOMEs: the repository's dagster.yaml (ours) against a dagster.yaml
without a storage block (Dagster's default ``DagsterSqliteStorage``).
"""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.events.log import EventLogEntry

from cvn_assets.operations.instance_storage import POSTGRES_URL_ENV
from cvn_assets.operations.sqlite_storage import RUN_ENGINES, EngineReusingEventLogStorage
from cvn_assets_tests.fixtures.dagster_postgres import LOCAL_INSTANCE_YAML
DAGSTER_DEFAULT_YAML = "telemetry:\n  enabled: false\n"


@dg.asset
def heartbeat() -> int:
    return 1


@dg.asset_check(asset=heartbeat)
def heartbeat_positive() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"value": 1})


def _home(root: Path, ours: bool) -> Path:
    root.mkdir(parents=True)
    if ours:
        shutil.copyfile(LOCAL_INSTANCE_YAML, root / "dagster.yaml")
    else:
        (root / "dagster.yaml").write_text(DAGSTER_DEFAULT_YAML)
    return root


def _instance(home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv(POSTGRES_URL_ENV, raising=False)
    return dg.DagsterInstance.get()


def _materialize(instance: dg.DagsterInstance) -> str:
    result = dg.materialize([heartbeat, heartbeat_positive], instance=instance)
    assert result.success
    return result.run_id


def _schema(database: Path) -> tuple[list[tuple], list[str]]:
    with sqlite3.connect(database) as connection:
        objects = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        revision = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
    return objects, revision


def test_the_local_instance_writes_the_files_and_schema_of_dagsters_own_sqlite_storage(tmp_path, monkeypatch):
    homes, runs = {}, {}
    for side, ours in (("ours", True), ("dagster", False)):
        homes[side] = _home(tmp_path / side, ours)
        with _instance(homes[side], monkeypatch) as instance:
            assert isinstance(instance.event_log_storage, EngineReusingEventLogStorage) is ours
            runs[side] = _materialize(instance)
    files = {side: sorted(str(path.relative_to(home)).replace(runs[side], "RUN")
                          for path in home.rglob("*.db")) for side, home in homes.items()}
    assert files["ours"] == files["dagster"]
    assert "history/runs/RUN.db" in files["ours"] and "history/runs/index.db" in files["ours"]
    for relative in files["ours"]:
        mine, theirs = (_schema(homes[side] / relative.replace("RUN", runs[side])) for side in ("ours", "dagster"))
        assert mine == theirs, f"{relative}: schema or alembic revision differs from Dagster's own storage"
        assert mine[1], f"{relative}: expected an alembic revision, found none"


def test_a_home_moves_between_dagsters_storage_and_ours_with_its_history(tmp_path, monkeypatch):
    home = _home(tmp_path / "home", ours=False)
    with _instance(home, monkeypatch) as instance:
        first = _materialize(instance)
    shutil.copyfile(LOCAL_INSTANCE_YAML, home / "dagster.yaml")
    with _instance(home, monkeypatch) as instance:
        assert isinstance(instance.event_log_storage, EngineReusingEventLogStorage)
        assert instance.get_run_by_id(first).status == dg.DagsterRunStatus.SUCCESS
        second = _materialize(instance)
        assert len(instance.fetch_materializations(heartbeat.key, limit=10).records) == 2
    (home / "dagster.yaml").write_text(DAGSTER_DEFAULT_YAML)
    with _instance(home, monkeypatch) as instance:
        assert not isinstance(instance.event_log_storage, EngineReusingEventLogStorage)
        for run_id in (first, second):
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
            assert any(entry.dagster_event and entry.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS
                       for entry in instance.all_logs(run_id))
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [heartbeat_positive.check_key])[heartbeat_positive.check_key]
        assert check.run_id == second


def test_runs_open_one_engine_per_database_not_one_per_statement(tmp_path, monkeypatch):
    """Dagster's own SQLite storage builds an engine (and compiles every statement again) per
    connection, ~5 per stored event; ours builds one per database file."""
    engines: dict[bool, int] = {}
    for ours in (True, False):
        home = _home(tmp_path / ("ours" if ours else "dagster"), ours)
        with _instance(home, monkeypatch) as instance:
            _materialize(instance)  # the storages' own databases are open
            first_connects: list[object] = []
            listener = lambda _connection, record: first_connects.append(record)  # noqa: E731
            sa.event.listen(sa.pool.Pool, "first_connect", listener)
            try:
                for _ in range(3):
                    _materialize(instance)
            finally:
                sa.event.remove(sa.pool.Pool, "first_connect", listener)
            engines[ours] = len(first_connects)
    # three new run databases; at most the runs, index and schedules files besides
    assert engines[True] <= 3 + 3, f"expected at most 6 engines for 3 runs, found {engines[True]}"
    assert engines[False] > 10 * engines[True], engines  # the baseline the change removes


def test_the_engines_of_run_databases_are_bounded(tmp_path, monkeypatch):
    home = _home(tmp_path / "home", ours=True)
    with _instance(home, monkeypatch) as instance:
        storage = instance.event_log_storage
        for index in range(RUN_ENGINES + 8):
            storage.store_event(_entry(f"run-{index:04d}", "hello"))
        assert len(storage._engines) <= RUN_ENGINES + 1  # + the index database
        assert [e.user_message for e in storage.get_logs_for_run("run-0000")] == ["hello"]  # evicted, still readable


def _entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(error_info=None, level="INFO", user_message=message, run_id=run_id,
                         timestamp=time.time(), dagster_event=None, job_name="job", step_key=None)


def _store_together(home: str, run_id: str, worker: int, start: float, count: int) -> None:
    import os

    os.environ["DAGSTER_HOME"] = home
    os.environ.pop(POSTGRES_URL_ENV, None)
    with dg.DagsterInstance.get() as instance:
        time.sleep(max(0.0, start - time.time()))
        for index in range(count):
            instance.event_log_storage.store_event(_entry(run_id, f"worker {worker} event {index}"))


def test_processes_initialising_the_same_new_run_database_at_once_all_store_their_events(tmp_path, monkeypatch):
    home = _home(tmp_path / "home", ours=True)
    with _instance(home, monkeypatch) as instance:
        pass  # runs, index and schedules databases exist; the run's does not
    workers, count, start = 4, 25, time.time() + 6.0  # past every worker's start-up (a spawned interpreter)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_store_together, args=(str(home), "shared-run", worker, start, count))
                 for worker in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * workers
    with _instance(home, monkeypatch) as instance:
        messages = [entry.user_message for entry in instance.all_logs("shared-run")]
    assert sorted(messages) == sorted(f"worker {w} event {i}" for w in range(workers) for i in range(count))
