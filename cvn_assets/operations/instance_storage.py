"""The local Dagster instance's storage, chosen by one environment variable.

The repository's ``dagster.yaml`` (the local instance, placed in ``$DAGSTER_HOME``) names
``LocalOrPostgresStorage`` as its ``storage``:

* ``CVN_DAGSTER_POSTGRES_URL`` unset → runs, event logs and schedules live in SQLite files under
  ``$DAGSTER_HOME`` — exactly Dagster's default layout, so an existing ``.dagster_home`` keeps its history;
* ``CVN_DAGSTER_POSTGRES_URL=postgresql+psycopg2://user:pass@host:5432/db`` → they live in that PostgreSQL
  database (dagster-postgres), the storage the Kubernetes deployment uses.

Dagster's instance file cannot pick a storage class from the environment by itself (``env:`` only
fills values), hence this selector. It is never instantiated: ``from_config_value`` returns
``operations.sqlite_storage.SqliteStorage`` (Dagster's ``DagsterSqliteStorage``, same files, with
its engines reused: see that module) or Dagster's ``DagsterPostgresStorage``. The PostgreSQL URL is passed
on as ``{env: CVN_DAGSTER_POSTGRES_URL}``, so the password never lands in an instance reference,
a run's serialized instance or a log line.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import yaml
# No public API exists for instance plug-ins: imported from where dagster-postgres imports them.
from dagster._core.storage.base_storage import DagsterStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

POSTGRES_URL_ENV = "CVN_DAGSTER_POSTGRES_URL"
# SQLAlchemy 2.1 resolves a bare postgresql:// to psycopg 3; the pinned driver is psycopg2.
DRIVER_MODULES = {"postgresql": "psycopg", "postgresql+psycopg": "psycopg", "postgresql+psycopg2": "psycopg2"}
POSTGRES_SCHEMES = tuple(DRIVER_MODULES)


class LocalOrPostgresStorage(DagsterStorage, ConfigurableClass):
    """Selects the instance storage: SQLite under ``base_dir``, or PostgreSQL when the URL variable is set."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "base_dir": dg.Field(dg.StringSource, description="SQLite storage root (Dagster's default: DAGSTER_HOME)"),
            "postgres_url_env": dg.Field(str, is_required=False, default_value=POSTGRES_URL_ENV,
                                         description="environment variable holding the PostgreSQL URL"),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,
                          config_value: Mapping[str, Any]) -> DagsterStorage:  # type: ignore[override]
        return selected_storage_data(config_value["base_dir"], config_value["postgres_url_env"],
                                     os.environ).rehydrate(as_type=DagsterStorage)


def selected_storage_data(base_dir: str, postgres_url_env: str,
                          environ: Mapping[str, str]) -> ConfigurableClassData:
    """Which Dagster storage class to load, and its config (the URL stays behind its variable)."""
    url = (environ.get(postgres_url_env) or "").strip()
    if not url:
        return ConfigurableClassData(
            "cvn_assets.operations.sqlite_storage", "SqliteStorage",
            yaml.safe_dump({"base_dir": base_dir}),
        )
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"{postgres_url_env} is invalid: expected a URL starting with postgresql+psycopg2:// "
            f"(e.g. postgresql+psycopg2://dagster:***@127.0.0.1:5432/dagster), found scheme {scheme!r}"
        )
    driver = DRIVER_MODULES[scheme]
    if importlib.util.find_spec(driver) is None:
        raise ValueError(
            f"{postgres_url_env} uses scheme {scheme!r}, whose driver module {driver!r} is not installed "
            "(SQLAlchemy 2.1 maps postgresql:// to psycopg 3); use postgresql+psycopg2:// — psycopg2 is the "
            "driver cvn_assets ships"
        )
    return ConfigurableClassData(
        "dagster_postgres", "DagsterPostgresStorage", yaml.safe_dump({"postgres_url": {"env": postgres_url_env}}),
    )
