"""What every `cvn` sub-command shares: configuration, output and the exit-code contract.

0 = done (whatever the verdict or state), 1 = a fail-loud error (corrupt blob, unreachable
store, failed run), 2 = bad input or configuration. Errors go to stderr and name what was
expected, what was found and where; ``--json`` output goes to stdout only.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from pydantic import BaseModel, ValidationError

from cvn_assets.contracts.blob import BlobError
from cvn_assets.storage.manifests import CampaignConflict, CampaignNotRegistered
from cvn_assets.storage.object_store import IntegrityError, ObjectNotFound, ObjectStore, StorageError
from cvn_assets.storage.factory import build_object_store
from cvn_assets.storage.settings import StorageSettings

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])


class CommandFailed(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    raise CommandFailed(message, code)


def validation_message(exc: ValidationError, what: str) -> str:
    lines = [f"invalid {what}:"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or what
        lines.append(f"  {field}: {error['msg']}")
    return "\n".join(lines)


def exit_codes(command: F) -> F:
    """Map our exceptions to the exit-code contract, printing one clear message on stderr."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CommandFailed as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.code)
        except ValidationError as exc:
            click.echo(f"error: {validation_message(exc, 'input')}", err=True)
            sys.exit(EXIT_USAGE)
        except (CampaignNotRegistered, CampaignConflict) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except (BlobError, IntegrityError, StorageError, ObjectNotFound) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def storage_settings() -> StorageSettings:
    """The object store configuration from the environment; exit 2 naming what is wrong."""
    try:
        return StorageSettings.from_env()
    except ValidationError as exc:
        fail(validation_message(exc, "storage configuration (CVN_S3_* / CVN_STORAGE_ROOT)"), EXIT_USAGE)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def storage() -> tuple[ObjectStore, StorageSettings]:
    settings = storage_settings()
    return build_object_store(settings), settings


def require_dagster_home() -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        fail("DAGSTER_HOME is not set: expected the directory of the Dagster instance whose UI shows "
             "these runs (make demo / make dev set it to ./.dagster_home)", EXIT_USAGE)
    os.makedirs(home, exist_ok=True)
    return home


def emit_json(payload: BaseModel | dict[str, Any] | list[Any]) -> None:
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def progress(message: str) -> None:
    click.echo(message, err=True)
