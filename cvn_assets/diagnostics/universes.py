"""The crypto groups' source of truth: table ``cvntrade_universes`` of the diagnostics database (§11).

Campaigns (group validation, the launchpad's group enum) and the state rules (core / non-core
model staleness) read groups through ``contracts.campaign.load_universes``, which asks this module
first: when the diagnostics database holds the table with rows, the groups come from it; else
from the universes YAML file, the embedded default (``make demo`` needs no database). Reading
never creates a database: an absent SQLite file or an unmigrated database means "no table".
``sync_universes`` seeds the table from the YAML file and is idempotent (rows the operator added
in the table are kept: the table is the source of truth, the file only its seed).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from cvn_assets.contracts.campaign import Universe
from cvn_assets.diagnostics.resources import URL_ENV, diagnostics_url_from_env
from cvn_assets.diagnostics.store import DiagnosticsStore, normalise_url, safe_url
from cvn_assets.diagnostics.tables import universes as universes_table
from cvn_assets.home import HOME_ENV

TABLE = universes_table.name


@functools.lru_cache(maxsize=8)
def _reader(url: str) -> DiagnosticsStore:
    """One engine per URL per process: groups are read at every spec validation."""
    return DiagnosticsStore(url)


def configured_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The diagnostics database to read groups from, or None when there is none to read.

    The embedded default (a SQLite file in DAGSTER_HOME) counts only once it exists: reading must
    not create it.
    """
    env = os.environ if environ is None else environ
    if env.get(URL_ENV):
        return env[URL_ENV]
    if not env.get(HOME_ENV):
        return None
    url = diagnostics_url_from_env(env)
    return url if Path(url.removeprefix("sqlite:///")).exists() else None


def read_table(store: DiagnosticsStore) -> dict[str, Universe] | None:
    """Groups from ``cvntrade_universes``, or None when the database has no such table or no rows."""
    where = f"{TABLE} in {store.describe()}"
    try:
        if not sa.inspect(store.engine).has_table(TABLE):
            return None
        with store.engine.connect() as connection:
            rows = connection.execute(sa.select(universes_table).order_by(
                universes_table.c.crypto_group, universes_table.c.symbol)).mappings().all()
    except sa.exc.SQLAlchemyError as exc:
        raise ValueError(f"crypto groups: cannot read {where}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]}") from None
    if not rows:
        return None
    groups: dict[str, dict[str, object]] = {}
    for row in rows:
        group = groups.setdefault(row["crypto_group"], {"core": bool(row["core"]), "symbols": []})
        if group["core"] != bool(row["core"]):
            raise ValueError(f"crypto groups: {where}: group {row['crypto_group']!r} expected one core flag for "
                             f"every symbol, found both true and false")
        group["symbols"].append(row["symbol"])  # type: ignore[union-attr]
    try:
        return {name: Universe.model_validate(body) for name, body in groups.items()}
    except ValueError as exc:
        raise ValueError(f"crypto groups: {where} holds an invalid row: {exc}") from None


def table_universes(environ: Mapping[str, str] | None = None) -> tuple[dict[str, Universe], str] | None:
    """(groups, where) from the configured diagnostics database's table, or None to use the YAML file."""
    url = configured_url(environ)
    if url is None:
        return None
    store = _reader(normalise_url(url))
    groups = read_table(store)
    return None if groups is None else (groups, f"table {TABLE} ({safe_url(url)})")


class SyncResult(BaseModel):
    """What `cvn universes sync` changed: rows added and core flags updated; the rest was already there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database: str
    added: list[str]
    updated: list[str]
    unchanged: int


def sync_universes(store: DiagnosticsStore, groups: Mapping[str, Universe]) -> SyncResult:
    """Seed ``cvntrade_universes`` with ``groups`` in one transaction (idempotent; extra rows kept)."""
    store.migrate()
    added: list[str] = []
    updated: list[str] = []
    unchanged = 0
    with store.engine.begin() as connection:
        existing = {(row["crypto_group"], row["symbol"]): bool(row["core"])
                    for row in connection.execute(sa.select(universes_table)).mappings()}
        for name, universe in sorted(groups.items()):
            for symbol in universe.symbols:
                key = (name, symbol)
                if key not in existing:
                    connection.execute(sa.insert(universes_table).values(
                        crypto_group=name, symbol=symbol, core=universe.core))
                    added.append(f"{name}/{symbol}")
                elif existing[key] != universe.core:
                    connection.execute(sa.update(universes_table).where(
                        universes_table.c.crypto_group == name, universes_table.c.symbol == symbol,
                    ).values(core=universe.core))
                    updated.append(f"{name}/{symbol}")
                else:
                    unchanged += 1
    return SyncResult(database=store.describe(), added=added, updated=updated, unchanged=unchanged)
