"""The MLflow adapter of the registry contract: read a crypto's versions and aliases, apply one change.

Everything MLflow lists is read page by page (``search_registered_models`` returns 100 per page,
``search_model_versions`` pages too), so counts stay right above a page. ``apply`` executes one
``Change`` of a lifecycle plan; every change is idempotent (setting an alias or a tag again is a
no-op, deleting an alias that no longer points at the version is skipped), which is what lets a
half-done action be completed by running it again.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cvn_assets.contracts.identifiers import validate_crypto
from cvn_assets.models.contract import MODEL_PREFIX, Change, RegistryView, VersionView

PAGE_SIZE = 100
TRACKING_ENV = "MLFLOW_TRACKING_URI"


def model_name(crypto: str) -> str:
    """The registered model of a crypto: one per crypto, ``cvn-s43-<CRYPTO>``."""
    return f"{MODEL_PREFIX}{validate_crypto(crypto)}"


# A SQLite store is created (MLflow runs its alembic migrations on first use) once, under an
# exclusive file lock beside the database: concurrent gates on a fresh DAGSTER_HOME would otherwise
# migrate the same file at once (``duplicate column name``, ``_alembic_tmp_experiments already
# exists``) and one of them would fail.
_INITIALISED: set[str] = set()  # SQLite stores this process has seen created (or created itself)
_INITIALISING = threading.Lock()


def sqlite_database(tracking_uri: str) -> Path | None:
    """The database file of a SQLite tracking URI; None for any other store."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not database or database == ":memory:":
        raise ValueError(f"{TRACKING_ENV} {tracking_uri!r}: expected a SQLite file, found an in-memory database")
    return Path(database)


def ensure_store(tracking_uri: str) -> None:
    """Create (or upgrade) a SQLite tracking and registry store once, one process at a time.

    The first caller migrates under an exclusive ``flock`` on ``<database>.init-lock``; the others
    wait for it, then find the schema at head. A tracking server migrates itself: nothing to do.
    """
    database = sqlite_database(tracking_uri)
    if database is None or tracking_uri in _INITIALISED:
        return
    import mlflow

    with _INITIALISING:
        if tracking_uri in _INITIALISED:
            return
        lock_path = database.with_name(database.name + ".init-lock")
        try:
            handle = open(lock_path, "a")
        except OSError as exc:
            raise ValueError(f"{TRACKING_ENV}: cannot create the SQLite registry {database}: expected a writable "
                             f"existing directory {database.parent}, found {exc.strerror or exc}") from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
                client.search_experiments(max_results=1)  # creates / migrates the tracking tables
                client.search_registered_models(max_results=1)  # and the registry's
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        _INITIALISED.add(tracking_uri)


def mlflow_client(tracking_uri: str) -> Any:
    """A client on the tracking and registry store, created first if it is a new SQLite file."""
    import mlflow

    ensure_store(tracking_uri)
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _pages(search: Callable[..., Any], filter_string: str | None) -> Iterator[Any]:
    token = None
    while True:
        page = search(filter_string=filter_string, max_results=PAGE_SIZE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def registered_models(client: Any) -> list[Any]:
    """Every registered model of the store (all pages)."""
    return list(_pages(client.search_registered_models, None))


def model_versions(client: Any, name: str, extra_filter: str = "") -> list[Any]:
    """Every version of one registered model (all pages); ``name`` is ours, already validated."""
    where = f"name='{name}'" + (f" and {extra_filter}" if extra_filter else "")
    return list(_pages(client.search_model_versions, where))


def read_view(client: Any, crypto: str) -> RegistryView:
    """The crypto's registered model as the lifecycle sees it; an empty view when it has none."""
    from mlflow.exceptions import MlflowException

    name = model_name(crypto)
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return RegistryView(crypto=crypto, name=name, exists=False, aliases={}, versions={})
        raise
    versions = {
        str(found.version): VersionView(version=str(found.version), created_ms=int(found.creation_timestamp),
                                        tags=dict(found.tags or {}))
        for found in model_versions(client, name)
    }
    return RegistryView(crypto=crypto, name=name, exists=True, aliases={k: str(v) for k, v in model.aliases.items()},
                        versions=versions)


def crypto_of_model(name: str) -> str | None:
    """The crypto of one of our registered models, None for a model that is not ours."""
    if not name.startswith(MODEL_PREFIX):
        return None
    crypto = name.removeprefix(MODEL_PREFIX)
    try:
        return validate_crypto(crypto)
    except ValueError:
        return None


def our_cryptos(client: Any) -> list[str]:
    """Cryptos that have a registered model in this store (all pages)."""
    return sorted(c for c in (crypto_of_model(model.name) for model in registered_models(client)) if c)


def apply(client: Any, name: str, change: Change) -> None:
    """Execute one change of a plan on the registered model ``name`` (idempotent)."""
    if change.op == "set_alias":
        client.set_registered_model_alias(name, change.key, change.version)
    elif change.op == "delete_alias":
        current = client.get_registered_model(name).aliases.get(change.key)
        if current is not None and str(current) == change.version:
            client.delete_registered_model_alias(name, change.key)
    elif change.op == "set_tag":
        client.set_model_version_tag(name, change.version, change.key, change.value)
    elif change.op == "delete_artifacts":
        delete_artifacts(client, name, change.version)
    else:  # the Change model refuses other ops; kept loud in case it grows
        raise ValueError(f"registry change {change.op!r} is not one of set_alias, delete_alias, set_tag, delete_artifacts")


def delete_artifacts(client: Any, name: str, version: str) -> None:
    """Delete the stored files of a version (the registry entry and its tags stay, as the archive)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    location = client.get_model_version_download_uri(name, version)
    repository = get_artifact_repository(location)
    if repository.list_artifacts():  # already empty: a re-run after a completed deletion
        repository.delete_artifacts()
