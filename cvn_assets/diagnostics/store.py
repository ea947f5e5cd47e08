"""The diagnostics store: what every gate concluded, per campaign and per crypto, in SQL.

SQLite by default, PostgreSQL in production (``CVN_DIAGNOSTICS_URL``). The schema is created and
upgraded by alembic migrations shipped in the package (``migrate()``, idempotent). Re-running a
campaign's gate replaces that campaign's rows in one transaction — never a duplicate, never a
half-written campaign; an INCONCLUSIVE gate writes its verdict row and no signals.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from cvn_assets.diagnostics.tables import (
    SIGNAL_FLOATS, SIGNAL_INTEGERS, alert_claims, crypto_signals, gate_verdicts, global_state, pipeline_latency,
    state_diagnostics,
)
from cvn_assets.gate.report import GateReport

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x63766E5F64696167  # PostgreSQL advisory lock key ("cvn_diag"): one migrator at a time
# alembic keeps its running migration context in module globals: one migration per process at a time.
_MIGRATING = threading.Lock()
SQLITE_MIGRATION_WAIT_SECONDS = 60.0  # how long a second migrator of a SQLite file waits for the first


def normalise_url(url: str) -> str:
    """Name the pinned driver: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, not installed."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages (never the raw text of an unparseable one)."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "<not a SQLAlchemy URL>"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class DiagnosticsStore:
    """Gate verdicts, crypto signals and global states over one SQLAlchemy engine."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        try:
            self.engine = sa.create_engine(self.url, future=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as exc:
            raise ValueError(f"CVN_DIAGNOSTICS_URL {safe_url(url)!r} is invalid: expected a SQLAlchemy URL "
                             f"(sqlite:///path or postgresql+psycopg2://user@host:5432/db): {type(exc).__name__}") from None

    def describe(self) -> str:
        return safe_url(self.url)

    def close(self) -> None:
        """Release the pooled connections (a store is reusable afterwards: the pool reopens)."""
        self.engine.dispose()

    def migrate(self) -> None:
        """Create or upgrade the tables to the latest revision (safe to call every time)."""
        if self.engine.dialect.name == "sqlite":
            database = self.engine.url.database
            if database and database != ":memory:":
                # The file's own folder may be made (a new DAGSTER_HOME holds the embedded default), but
                # a typo in the URL must not grow a directory tree: no missing parents are created.
                folder = Path(database).parent
                try:
                    folder.mkdir(exist_ok=True)
                except FileNotFoundError:
                    raise ValueError(f"CVN_DIAGNOSTICS_URL {safe_url(self.url)!r}: expected an existing directory "
                                     f"for the SQLite file (or its folder in one), found no directory "
                                     f"{str(folder.parent)!r}") from None
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        engine = self._migration_engine()
        try:
            with _MIGRATING, engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    # Gates of several campaigns may open a fresh database at once: the second waits,
                    # then finds the tables at head, instead of failing on CREATE TABLE.
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        finally:
            if engine is not self.engine:
                engine.dispose()

    def _migration_engine(self) -> sa.Engine:
        """The engine a migration runs on: SQLite files need one that locks before it reads.

        pysqlite's legacy transaction control runs DDL outside any transaction, so two processes
        opening a fresh file (a gate step and the global-state sensor) would both find no tables
        and the second CREATE TABLE would fail. Here SQLAlchemy emits ``BEGIN IMMEDIATE`` itself:
        SQLite's write lock is taken before alembic reads its version table, a second migrator
        waits for it (busy timeout), then finds the schema at head; the DDL commits or rolls back
        as one transaction.
        """
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return self.engine
        engine = sa.create_engine(self.engine.url, poolclass=sa.pool.NullPool,
                                  connect_args={"timeout": SQLITE_MIGRATION_WAIT_SECONDS})

        @sa.event.listens_for(engine, "connect")
        def _driver_leaves_transactions_to_us(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _lock_before_reading(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def replace_gate(self, report: GateReport) -> None:
        """Write one gate evaluation, replacing whatever that campaign had."""
        present = sum(1 for entry in report.cohort if entry.status == "present")
        cryptos = report.cryptos or {}
        verdict_row = {
            "campaign_id": report.campaign_id, "crypto_group": report.group, "verdict": report.verdict.value,
            "timeframe": report.spec.timeframe,
            "transport_suspect": report.transport_suspect, "n_expected": len(report.cohort), "n_present": present,
            "n_candidates": sum(1 for v in cryptos.values() if v.candidate) if report.cryptos is not None else None,
            "missing": json.dumps(report.missing), "codes": ",".join(report.codes), "summary": report.summary,
            "evaluated_at": _utc(report.evaluated_at), "spec": report.spec.model_dump_json(),
        }
        signal_rows = []
        for crypto, verdict in sorted(cryptos.items()):
            where = f"replace_gate {report.campaign_id}/{crypto}"
            signals = verdict.signals
            family = signals.get("family")
            if not isinstance(family, str) or not family:
                raise ValueError(f"{where}: expected signal 'family' (the chosen model family), found {family!r}")
            signal_rows.append({
                "campaign_id": report.campaign_id, "crypto": crypto, "crypto_group": report.group,
                "family": family, "timeframe": report.spec.timeframe, "diagnostic": verdict.diagnostic,
                "codes": ",".join(verdict.codes), "candidate": verdict.candidate,
                "reasons": json.dumps(verdict.reasons), "action": verdict.action, "relaunch": verdict.relaunch,
                **{name: _column_value(where, signals, name, float) for name in SIGNAL_FLOATS},
                **{name: _column_value(where, signals, name, int) for name in SIGNAL_INTEGERS},
                "evaluated_at": _utc(report.evaluated_at),
            })
        with self.engine.begin() as connection:
            connection.execute(sa.delete(crypto_signals).where(crypto_signals.c.campaign_id == report.campaign_id))
            connection.execute(sa.delete(gate_verdicts).where(gate_verdicts.c.campaign_id == report.campaign_id))
            connection.execute(sa.insert(gate_verdicts), [verdict_row])
            if signal_rows:
                connection.execute(sa.insert(crypto_signals), signal_rows)

    def gate_rows(self, campaign_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The verdict row and the signal rows of one campaign."""
        with self.engine.connect() as connection:
            verdict = connection.execute(
                sa.select(gate_verdicts).where(gate_verdicts.c.campaign_id == campaign_id)).mappings().first()
            signals = connection.execute(
                sa.select(crypto_signals).where(crypto_signals.c.campaign_id == campaign_id)
                .order_by(crypto_signals.c.crypto)).mappings().all()
        return (_row(verdict) if verdict else None), [_row(row) for row in signals]

    def latest_gate_verdicts(self, limit: int) -> list[dict[str, Any]]:
        """The most recent gates, newest first, each with ``cryptos`` → that gate's signals."""
        with self.engine.connect() as connection:
            verdicts = connection.execute(
                sa.select(gate_verdicts).order_by(gate_verdicts.c.evaluated_at.desc()).limit(limit)).mappings().all()
            ids = [row["campaign_id"] for row in verdicts]
            signals = connection.execute(
                sa.select(crypto_signals).where(crypto_signals.c.campaign_id.in_(ids))).mappings().all() if ids else []
        by_campaign: dict[str, dict[str, dict[str, Any]]] = {}
        for row in signals:
            by_campaign.setdefault(row["campaign_id"], {})[row["crypto"]] = _signals(row)
        return [{**_row(row), "cryptos": by_campaign.get(row["campaign_id"], {})} for row in verdicts]

    def latest_crypto_signals(self) -> list[dict[str, Any]]:
        """For each crypto, the signal row of its most recent gate (within-crypto, ADR-27)."""
        newest = (sa.select(crypto_signals.c.crypto, sa.func.max(crypto_signals.c.evaluated_at).label("at"))
                  .group_by(crypto_signals.c.crypto).subquery())
        query = (sa.select(crypto_signals)
                 .join(newest, sa.and_(crypto_signals.c.crypto == newest.c.crypto,
                                       crypto_signals.c.evaluated_at == newest.c.at))
                 .order_by(crypto_signals.c.crypto))
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:  # two campaigns gated at the same instant: keep one, deterministically
            latest.setdefault(row["crypto"], {**_row(row), "signals": _signals(row)})
        return list(latest.values())

    def record_global_state(self, evaluated_at: datetime, state: str, previous_state: str | None,
                            rules: Sequence[Mapping[str, Any]], signals: Mapping[str, Any], *,
                            source: str | None = None, unknown: Sequence[Mapping[str, Any]] = (),
                            columns: Mapping[str, float | int | None] | None = None,
                            routing: Sequence[Mapping[str, Any]] = (),
                            latency: Sequence[Mapping[str, Any]] = (),
                            diagnostics: Sequence[Mapping[str, Any]] = ()) -> int:
        """One evaluation of the global state, its per-job latency and its §7 codes, in one transaction.

        ``columns``: the §2 signals as numbers (columns of ``cvn_global_state``); returns the row id.
        """
        columns = dict(columns or {})
        unexpected = sorted(set(columns) - set(global_state.c.keys()))
        if unexpected:
            raise ValueError(f"cvn_global_state: unexpected column(s) {unexpected}; "
                             f"expected some of {sorted(global_state.c.keys())}")
        moment = _utc(evaluated_at)
        with self.engine.begin() as connection:
            result = connection.execute(sa.insert(global_state), [{
                **columns,
                "evaluated_at": moment, "state": state, "previous_state": previous_state,
                "rules": json.dumps(list(rules), default=str), "signals": json.dumps(dict(signals), default=str),
                "source": source, "unknown": json.dumps(list(unknown), default=str),
                "rules_fired": len(rules), "unknown_count": len(unknown),
                "routing": json.dumps(list(routing), default=str),
            }])
            row_id = int(result.inserted_primary_key[0])
            if latency:
                connection.execute(sa.insert(pipeline_latency), [
                    {**row, "global_state_id": row_id, "evaluated_at": moment} for row in latency])
            if diagnostics:
                connection.execute(sa.insert(state_diagnostics), [
                    {**row, "values": json.dumps(dict(row.get("values", {})), default=str),
                     "global_state_id": row_id, "evaluated_at": moment, "state": state} for row in diagnostics])
        return row_id

    def record_run_anomaly(self, *, detected_at: datetime, code: str, severity: str, reason: str, run_id: str,
                           job: str, campaign_id: str | None, step: str | None, seconds: float,
                           values: Mapping[str, Any]) -> None:
        """A run anomaly (RUN_TOO_LONG, RUN_STUCK) as a diagnostics row (Pipeline Health's long runs)."""
        with self.engine.begin() as connection:
            connection.execute(sa.insert(state_diagnostics), [{
                "evaluated_at": _utc(detected_at), "code": code, "severity": severity, "reason": reason,
                "run_id": run_id, "job": job, "campaign_id": campaign_id, "step": step, "seconds": seconds,
                "values": json.dumps(dict(values), default=str),
            }])

    def global_state_history(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest evaluations, newest first, each with its §7 codes."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(global_state).order_by(
                global_state.c.evaluated_at.desc(), global_state.c.id.desc()).limit(limit)).mappings().all()
            ids = [row["id"] for row in rows]
            codes: dict[int, list[str]] = {}
            if ids:
                for row in connection.execute(sa.select(state_diagnostics.c.global_state_id, state_diagnostics.c.code)
                                              .where(state_diagnostics.c.global_state_id.in_(ids))):
                    codes.setdefault(row.global_state_id, []).append(row.code)
        return [{**_row(row), "rules": json.loads(row["rules"]), "signals": json.loads(row["signals"]),
                 "unknown": json.loads(row["unknown"]) if row["unknown"] else [],
                 "routing": json.loads(row["routing"]) if row["routing"] else [],
                 "codes": sorted(codes.get(row["id"], []))} for row in rows]

    def state_diagnostics(self, code: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(state_diagnostics).order_by(state_diagnostics.c.id)
        if code is not None:
            query = query.where(state_diagnostics.c.code == code)
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [{**_row(row), "values": json.loads(row["values"])} for row in rows]

    def latency_rows(self, global_state_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(pipeline_latency).where(
                pipeline_latency.c.global_state_id == global_state_id).order_by(pipeline_latency.c.job)).mappings().all()
        return [_row(row) for row in rows]

    def claim_alert(self, claim_key: str, kind: str, state: str, claimed_by: str,
                    at: datetime) -> tuple[bool, datetime]:
        """Claim one notification: (True, at) for the one caller whose insert wins, else (False,
        when the winner claimed it). The primary key decides, not a read-then-write."""
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.insert(alert_claims), [{
                    "claim_key": claim_key, "kind": kind, "state": state, "claimed_by": claimed_by[:128],
                    "claimed_at": _utc(at)}])
            return True, _utc(at)
        except sa.exc.IntegrityError:
            with self.engine.connect() as connection:
                claimed_at = connection.execute(sa.select(alert_claims.c.claimed_at).where(
                    alert_claims.c.claim_key == claim_key)).scalar_one()
            return False, _utc(claimed_at)

    def latest_global_state(self) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(global_state).order_by(global_state.c.evaluated_at.desc(),
                                                                      global_state.c.id.desc()).limit(1)).mappings().first()
        if row is None:
            return None
        data = _row(row)
        data["rules"] = json.loads(data["rules"])
        data["signals"] = json.loads(data["signals"])
        return data


def _column_value(where: str, signals: Mapping[str, Any], name: str, kind: type) -> float | int | None:
    """One signal as its column holds it; a missing or unstorable signal fails loud.

    NULL means "not measurable" (no trade, no screening score), so a signal the report lacks is an
    error, not a NULL; and a non-finite number would read back differently per backend (SQLite
    stores NaN as NULL, PostgreSQL keeps it), so it is refused rather than written.
    """
    if name not in signals:
        raise ValueError(f"{where}: expected signal {name!r} (a column of cvn_crypto_signals), "
                         f"found only {sorted(signals)}")
    value = signals[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected signal {name!r} to be a finite number or None, found {value!r}")
    if kind is int and value != int(value):
        raise ValueError(f"{where}: expected signal {name!r} to be a whole number, found {value!r}")
    return kind(value)


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(row)
    if isinstance(data.get("evaluated_at"), datetime):
        data["evaluated_at"] = _utc(data["evaluated_at"])  # SQLite returns naive datetimes
    return data


def _signals(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in (*SIGNAL_FLOATS, *SIGNAL_INTEGERS)}
