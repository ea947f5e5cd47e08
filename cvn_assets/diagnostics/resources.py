"""The diagnostics store as a Dagster resource, and where its URL comes from."""

import functools
import os
from collections.abc import Mapping

import dagster as dg
from pydantic import Field

from cvn_assets.diagnostics.store import DiagnosticsStore
from cvn_assets.home import in_dagster_home

URL_ENV = "CVN_DIAGNOSTICS_URL"


def diagnostics_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """CVN_DIAGNOSTICS_URL, else a SQLite file in DAGSTER_HOME (the embedded default)."""
    env = os.environ if environ is None else environ
    if env.get(URL_ENV):
        return env[URL_ENV]
    database = in_dagster_home(env, "cvn-diagnostics.sqlite", what="diagnostics database",
                               instead=f"{URL_ENV} (SQLAlchemy URL)")
    return f"sqlite:///{database}"


@functools.lru_cache(maxsize=8)
def migrated_store(url: str) -> DiagnosticsStore:
    """One migrated store per URL per process (the migration runs once, not at every step)."""
    store = DiagnosticsStore(url)
    store.migrate()
    return store


class DiagnosticsResource(dg.ConfigurableResource):
    """The SQL database of gate verdicts, crypto signals and global states (Grafana's source)."""

    url: str = Field(description="SQLAlchemy URL (sqlite:///… or postgresql+psycopg2://…)")

    def store(self) -> DiagnosticsStore:
        return migrated_store(self.url)
