"""Dagster's SQLite instance storage, without rebuilding its database machinery at every statement.

Dagster's own ``DagsterSqliteStorage`` (runs, event logs, schedules under ``$DAGSTER_HOME``)
creates a new SQLAlchemy engine for every connection it opens — about five per stored event — so
every statement is compiled again (an engine's compiled cache dies with it), and it loads all 90 of
its alembic revision files twice each time a run's event database is first touched in a process
(once to read the head revision, once to stamp a new database). On the demo campaign (5 runs,
~200 events, 1,000 engines) that was 0.35 s of CPU, an eighth of what a campaign pays for besides
its compute (bench/README.md, ``campaign.py``).

``SqliteStorage`` is that storage with two changes, and nothing else:

* one engine per database file, kept for the storage's life (run databases: the latest
  ``RUN_ENGINES`` used). The engines keep Dagster's ``NullPool``: a connection is still opened
  and closed around every use, exactly as before, so several processes (webserver, daemon, runs)
  share the files as they always did; only the engine — its dialect and compiled statements — is
  reused;
* a run's event database is initialised as Dagster does it (tables, WAL, alembic stamp at head),
  with the alembic revisions loaded once per process; an existing database is recognised by its
  alembic revision alone.

The files, their schema and their alembic revision are Dagster's, identical to what
``DagsterSqliteStorage`` writes (a test compares them), so a home made by one opens with the other.
``dagster==1.13.27`` is pinned: these classes override methods of that version (``connect``,
``_connect``, ``has_table``, ``_initdb``), and the suite's Dagster instances run on them
(``cvn_assets_tests/fixtures/dagster_home.py`` uses the repository's dagster.yaml).
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import create_engine, get_alembic_config
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    SqliteStorageConfig,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# Run event databases whose engine is kept; older ones are dropped (a NullPool engine holds no
# connection, so dropping one closes nothing). A process touches few runs at a time.
RUN_ENGINES = 64
# Dagster's own retry of a database initialised by two processes at once (webserver + run).
INIT_ATTEMPTS = 11
INIT_RETRY_SECONDS = 0.2
CONCURRENT_INIT = re.compile(
    r"table [A-Za-z_]* already exists|database is locked|UNIQUE constraint failed: alembic_version.version_num"
)


@functools.cache
def event_log_scripts() -> ScriptDirectory:
    """Dagster's event-log alembic revisions, loaded once per process."""
    return ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))


class _OneEngine:
    """``connect`` of Dagster's SQLite run and schedule storages (one database file each), on one engine
    for the storage's life instead of one per call (creating it opens no connection)."""

    _conn_string: str

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(conn_string, inst_data)  # type: ignore[call-arg]
        self._engine = create_engine(conn_string, poolclass=NullPool)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            with conn.begin():
                yield conn


class EngineReusingRunStorage(_OneEngine, SqliteRunStorage):
    """Dagster's SQLite run storage (``history/runs.db``), on one engine."""


class EngineReusingScheduleStorage(_OneEngine, SqliteScheduleStorage):
    """Dagster's SQLite schedule storage (``schedules/schedules.db``), on one engine."""


class EngineReusingEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log storage (one database per run + the index); one engine per
    database, and revisions loaded once per process when a database is initialised."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # Before Dagster's constructor: on a new index database it reindexes through _connect.
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_lock = threading.Lock()  # held only while the cache changes, never across a yield
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = create_engine(self.conn_string_for_shard(shard), poolclass=NullPool,
                                       connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
                self._engines[shard] = engine
                run_shards = [name for name in self._engines if name != INDEX_SHARD_NAME]
                for name in run_shards[:max(0, len(run_shards) - RUN_ENGINES)]:
                    del self._engines[name]
            elif shard != INDEX_SHARD_NAME:
                self._engines.move_to_end(shard)
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:  # Dagster's: one connection of this storage at a time
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def has_table(self, table_name: str) -> bool:
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """Dagster's initialisation (tables, WAL, stamp at head when the database has no revision),
        with the revisions loaded once per process."""
        for attempt in range(INIT_ATTEMPTS):
            try:
                with engine.connect() as connection:
                    if MigrationContext.configure(connection).get_current_revision():
                        return
                    if for_index_shard and "event_logs" in sa.inspect(connection).get_table_names():
                        break  # a pre-alembic index database: Dagster's own path stamps its legacy revision
                    SqlEventLogStorageMetadata.create_all(engine)
                    connection.execute(sa.text("PRAGMA journal_mode=WAL;"))
                    MigrationContext.configure(connection).stamp(event_log_scripts(), "head")
                    connection.commit()
                return
            except (sa_exc.DatabaseError, sqlite3.DatabaseError) as exc:
                if not CONCURRENT_INIT.search(str(exc)) or attempt == INIT_ATTEMPTS - 1:
                    raise
                time.sleep(INIT_RETRY_SECONDS)
        super()._initdb(engine, for_index_shard)

    def dispose(self) -> None:
        super().dispose()
        with self._engines_lock:
            self._engines.clear()


class SqliteStorage(DagsterSqliteStorage):
    """``DagsterSqliteStorage`` (same directories, same files) on the engine-reusing storages above."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        self._run_storage = EngineReusingRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = EngineReusingEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = EngineReusingScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: SqliteStorageConfig) -> SqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
