"""The deployment's configuration, read and checked in one place before anything is written.

``CvnSettings`` (pydantic-settings) holds every variable cvn reads: the Dagster instance
(``DAGSTER_HOME``, ``CVN_DAGSTER_POSTGRES_URL``, ``CVN_EXECUTOR``), the object store (the
``CVN_S3_*`` / ``CVN_STORAGE_ROOT`` variables, validated by ``StorageSettings``), the diagnostics
database (``CVN_DIAGNOSTICS_URL``), the MLflow registry (``MLFLOW_TRACKING_URI``) and the alert
channels (``CVN_*_WEBHOOK_URL``). ``load_settings`` validates each one; ``preflight`` then reaches
every backend once (object store, diagnostics database, MLflow store, Dagster PostgreSQL storage).
Both raise ``SettingsError``: one line per problem, naming the variable, what was expected and
what was found — a URL only in its redacted form, a secret never.

`cvn campaign launch` and the ``launch_discovery`` job call both before registering a campaign,
so a bad configuration costs nothing: no manifest, no blob, no run.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from cvn_assets.redaction import redact_url
from cvn_assets.storage.settings import ENV_OF_FIELD, StorageSettings

EXECUTORS = ("in_process", "multiprocess", "k8s")
DIAGNOSTICS_DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg2")
MLFLOW_SCHEMES = ("sqlite", "http", "https", "postgresql", "postgresql+psycopg2", "file", "databricks")
PROBE_TIMEOUT_SECONDS = 5
# Variables whose value is never shown, not even redacted (a token without URL structure).
OPAQUE = ("CVN_ALERT_WEBHOOK_URL", "CVN_SLACK_WEBHOOK_URL", "CVN_SMS_WEBHOOK_URL")


class SettingsError(ValueError):
    """The configuration is unusable: each line names a variable, what was expected and what was found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


# What a variable must hold, in words, where pydantic's own message would be a regex.
EXPECTED = {"CVN_S3_BUCKET": "expected an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, "
                             "starting and ending with a letter or digit",
            "CVN_S3_MAX_ATTEMPTS": "expected a whole number of attempts from 1 to 10"}


def _problem(variable: str, message: str, value: object) -> str:
    expected = EXPECTED.get(variable) or message.removeprefix("Value error, ")
    return f"{variable}: {expected}; found {_shown(variable, value)}"


def _shown(variable: str, value: object) -> str:
    if variable in OPAQUE:
        return "a value (not shown: it is a secret)"
    if isinstance(value, str) and "://" in value:
        return repr(redact_url(value))
    return repr(value)


class CvnSettings(BaseSettings):
    """Every variable cvn reads, as the environment gives it (strings), checked by ``load_settings``."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True, env_ignore_empty=True)

    dagster_home: str | None = Field(default=None, validation_alias="DAGSTER_HOME")
    executor: Literal["in_process", "multiprocess", "k8s"] = Field(default="in_process", validation_alias="CVN_EXECUTOR")
    dagster_postgres_url: str | None = Field(default=None, validation_alias="CVN_DAGSTER_POSTGRES_URL")
    diagnostics_url: str | None = Field(default=None, validation_alias="CVN_DIAGNOSTICS_URL")
    mlflow_tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    alert_webhook_url: str | None = Field(default=None, validation_alias="CVN_ALERT_WEBHOOK_URL")
    slack_webhook_url: str | None = Field(default=None, validation_alias="CVN_SLACK_WEBHOOK_URL")
    sms_webhook_url: str | None = Field(default=None, validation_alias="CVN_SMS_WEBHOOK_URL")
    storage: StorageSettings


def load_settings(environ: Mapping[str, str] | None = None) -> CvnSettings:
    """Read and validate every setting (no I/O but ``stat``); raise SettingsError listing each problem."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    storage = None
    try:
        storage = StorageSettings.from_env(env)
    except ValidationError as exc:
        for error in exc.errors():
            variable = ENV_OF_FIELD.get(str(error["loc"][0]) if error["loc"] else "", "CVN_S3_*")
            problems.append(_problem(variable, error["msg"], error["input"]))
    except ValueError as exc:
        problems.append(str(exc))
    storage = storage or StorageSettings(backend="local")  # placeholder: its problems are listed already
    try:
        if environ is None:  # pydantic-settings reads the process environment itself
            settings = CvnSettings(storage=storage)
        else:
            settings = CvnSettings.model_validate({**{k: v for k, v in env.items() if v != ""}, "storage": storage})
    except ValidationError as exc:
        for error in exc.errors():
            variable = str(error["loc"][0]) if error["loc"] else "?"
            problems.append(_problem(variable, error["msg"], error["input"]))
        raise SettingsError(problems) from None
    problems += _static_problems(settings)
    if problems:
        raise SettingsError(problems)
    return settings


def _static_problems(settings: CvnSettings) -> list[str]:
    from cvn_assets.alerts.channels import ChannelConfigError, validate_channel_url

    problems = []
    home = settings.dagster_home
    if home and Path(home).exists() and not Path(home).is_dir():
        problems.append(f"DAGSTER_HOME: expected a directory (the Dagster instance), found the file {home!r}")
    if settings.diagnostics_url:
        problems += _database_problems("CVN_DIAGNOSTICS_URL", settings.diagnostics_url, DIAGNOSTICS_DRIVERS)
    if settings.dagster_postgres_url:
        problems += _database_problems("CVN_DAGSTER_POSTGRES_URL", settings.dagster_postgres_url,
                                       ("postgresql+psycopg2",))
    if settings.mlflow_tracking_uri:
        problems += _mlflow_problems(settings.mlflow_tracking_uri)
    for variable, url in (("CVN_ALERT_WEBHOOK_URL", settings.alert_webhook_url),
                          ("CVN_SLACK_WEBHOOK_URL", settings.slack_webhook_url),
                          ("CVN_SMS_WEBHOOK_URL", settings.sms_webhook_url)):
        if url and url.strip():
            try:
                validate_channel_url(url.strip(), variable)
            except ChannelConfigError as exc:
                problems.append(str(exc))
    root = settings.storage.local_root if settings.storage.backend == "local" else None
    if root and Path(root).exists() and not Path(root).is_dir():
        problems.append(f"CVN_STORAGE_ROOT: expected a directory, found the file {root!r}")
    return problems


def _database_problems(variable: str, url: str, drivers: tuple[str, ...]) -> list[str]:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from cvn_assets.diagnostics.store import normalise_url

    try:
        parsed = make_url(normalise_url(url))
    except (sa.exc.ArgumentError, ValueError):
        return [f"{variable}: expected a SQLAlchemy URL ({' or '.join(f'{d}://…' for d in drivers)}), "
                f"found {_shown(variable, url) if '://' in url else 'text that is not a URL'}"]
    if parsed.drivername not in drivers:
        return [f"{variable}: expected a {' or '.join(drivers)} URL, found the driver {parsed.drivername!r}"]
    if parsed.drivername == "sqlite":
        return _sqlite_file_problems(variable, parsed.database)
    return []


def _sqlite_file_problems(variable: str, database: str | None) -> list[str]:
    if not database or database == ":memory:":
        return [f"{variable}: expected a SQLite file (sqlite:////absolute/path.db), found an in-memory database"]
    if not Path(database).parent.is_dir():
        return [f"{variable}: expected the SQLite file's directory to exist (it is not created for you), "
                f"found no directory {str(Path(database).parent)!r}"]
    return []


def _mlflow_problems(uri: str) -> list[str]:
    from urllib.parse import urlsplit

    scheme = urlsplit(uri).scheme
    if scheme not in MLFLOW_SCHEMES:
        return [f"MLFLOW_TRACKING_URI: expected an MLflow store URI ({', '.join(s + '://' for s in MLFLOW_SCHEMES[:3])} …), "
                f"found {_shown('MLFLOW_TRACKING_URI', uri) if '://' in uri else 'text that is not a URI'}"]
    if scheme == "sqlite":
        from cvn_assets.gate.model_registry import sqlite_database

        try:
            database = sqlite_database(uri)
        except ValueError:
            return ["MLFLOW_TRACKING_URI: expected a SQLite file (sqlite:////absolute/path.db), found an in-memory database"]
        return _sqlite_file_problems("MLFLOW_TRACKING_URI", str(database))
    return []


def preflight(settings: CvnSettings) -> None:
    """Reach every backend once, without writing to it; raise SettingsError naming each one unreachable."""
    problems = _store_problems(settings.storage)
    for variable, url in (("CVN_DIAGNOSTICS_URL", settings.diagnostics_url),
                          ("CVN_DAGSTER_POSTGRES_URL", settings.dagster_postgres_url)):
        if url and not url.startswith("sqlite"):
            problems += _connect_problems(variable, url)
    uri = settings.mlflow_tracking_uri
    if uri and uri.startswith(("http://", "https://")):
        problems += _tcp_problems("MLFLOW_TRACKING_URI", uri)
    if problems:
        raise SettingsError(problems)


def _store_problems(storage: StorageSettings) -> list[str]:
    if storage.backend == "local":
        return []
    from botocore.exceptions import BotoCoreError, ClientError

    from cvn_assets.operations.s3_check import classify_error, endpoint_text
    from cvn_assets.storage.factory import s3_resource

    try:
        s3_resource(storage).get_client().head_bucket(Bucket=storage.bucket)
    except (BotoCoreError, ClientError) as exc:
        finding, _, detail = classify_error(exc)
        return [f"CVN_S3_BUCKET / CVN_S3_ENDPOINT_URL: expected the bucket {storage.bucket!r} reachable at "
                f"{endpoint_text(storage.endpoint_url)}, found {finding.value}: {detail} (run `cvn s3 check`)"]
    return []


def _connect_problems(variable: str, url: str) -> list[str]:
    import sqlalchemy as sa

    from cvn_assets.diagnostics.store import normalise_url, safe_url
    from cvn_assets.redaction import redact_text

    engine = sa.create_engine(normalise_url(url), poolclass=sa.pool.NullPool,
                              connect_args={"connect_timeout": PROBE_TIMEOUT_SECONDS})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        reason = redact_text(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
        return [f"{variable}: expected a reachable PostgreSQL database at {safe_url(url)}, found {reason}"]
    finally:
        engine.dispose()
    return []


def _tcp_problems(variable: str, url: str) -> list[str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=PROBE_TIMEOUT_SECONDS):
            return []
    except OSError as exc:
        return [f"{variable}: expected a reachable MLflow tracking server at {redact_url(url)}, "
                f"found {exc.strerror or type(exc).__name__}"]
