"""What every `cvn` sub-command shares: configuration, output and the exit-code contract.

0 = done (whatever the verdict or state), 1 = a fail-loud error (corrupt blob, unreachable
store, failed run), 2 = bad input or configuration. Errors go to stderr and name what was
expected, what was found and where; with ``--json`` stdout holds exactly one JSON object, the
result or, on error, ``{"error": "...", "exit_code": N}``.

This module is imported by ``cvn --help``: it imports nothing heavy (no Dagster, numpy, pydantic)
at module level, so the help and the commands that do not run Dagster start at once.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from cvn_assets.storage.object_store import ObjectStore
    from cvn_assets.storage.settings import StorageSettings

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
F = TypeVar("F", bound=Callable[..., Any])

HOME_ENV = "DAGSTER_HOME"
# Keys of the root context's ``meta``: what the command line asked for, read by every sub-command.
JSON_REQUESTED = "cvn.json"
JSON_EMITTED = "cvn.json_emitted"
VERBOSE = "cvn.verbose"

# Our exceptions and the exit code each means, by (module, class): looked up in sys.modules so
# that this table imports nothing — an exception can only be raised by a module already loaded.
KNOWN_ERRORS: tuple[tuple[str, str, int], ...] = (
    ("cvn_assets.storage.manifests", "CampaignNotRegistered", EXIT_USAGE),
    ("cvn_assets.storage.manifests", "CampaignConflict", EXIT_USAGE),
    ("cvn_assets.settings", "SettingsError", EXIT_USAGE),
    ("cvn_assets.contracts.blob", "BlobError", EXIT_ERROR),
    ("cvn_assets.storage.object_store", "IntegrityError", EXIT_ERROR),
    ("cvn_assets.storage.object_store", "StorageError", EXIT_ERROR),
    ("cvn_assets.storage.object_store", "ObjectNotFound", EXIT_ERROR),
)


class CommandFailed(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    raise CommandFailed(message, code)


def _meta() -> dict[str, Any]:
    context = click.get_current_context(silent=True)
    return context.meta if context is not None else {}


def verbose() -> bool:
    """``cvn -v …``: show Dagster's run logs and the libraries' chatter on stderr."""
    return bool(_meta().get(VERBOSE))


def _option_names() -> dict[str, str]:
    """Parameter name → the flag a person types (``sl_range`` → ``--sl-range``) of the running command."""
    context = click.get_current_context(silent=True)
    if context is None:
        return {}
    names = {}
    for param in context.command.params:
        flags = [opt for opt in param.opts if opt.startswith("--")]
        if param.name and flags:
            names[param.name] = max(flags, key=len)
    return names


def validation_message(exc: ValidationError, what: str) -> str:
    """One line per error, naming the flag the person typed and the value it had.

    A field that is an option of the running command is named by its flag (``--horizons 'H0'``);
    pydantic's own wording ("Value error, ") and item indexes (``horizons.0``) are not shown.
    """
    flags = _option_names()
    context = click.get_current_context(silent=True)
    typed = context.params if context is not None else {}
    lines = [f"invalid {what}:"]
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        value = typed.get(field) if field in flags else None
        if field in flags:
            name = flags[field] + (f" {str(value)!r}" if value is not None else "")
        else:
            name = ".".join(str(part) for part in error["loc"]) or what
        if value is None and error["type"] != "value_error" and "input" in error:
            message += f" (found {error['input']!r})"  # our own messages already name what they found
        lines.append(f"  {name}: {message}")
    return "\n".join(lines)


def _exit_code_of(exc: Exception) -> int | None:
    validation_error = getattr(sys.modules.get("pydantic_core"), "ValidationError", None)
    if validation_error is not None and isinstance(exc, validation_error):
        return EXIT_USAGE
    for module, name, code in KNOWN_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return code
    return None


def report_error(message: str, code: int, as_json: bool) -> NoReturn:
    """Print the error on stderr (and, with --json, as the one JSON object on stdout), then exit."""
    click.echo(f"error: {message}", err=True)
    if as_json and not _meta().get(JSON_EMITTED):
        click.echo(json.dumps({"error": message, "exit_code": code}))
    sys.exit(code)


def exit_codes(command: F) -> F:
    """Map our exceptions to the exit-code contract, printing one clear message on stderr."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json") or _meta().get(JSON_REQUESTED))
        try:
            return command(*args, **kwargs)
        except CommandFailed as exc:
            report_error(str(exc), exc.code, as_json)
        except Exception as exc:
            code = _exit_code_of(exc)
            if code is None:
                raise  # not ours to explain: a bug shows its traceback
            message = validation_message(exc, "input") if code == EXIT_USAGE and hasattr(exc, "errors") else str(exc)
            report_error(message, code, as_json)

    return wrapper  # type: ignore[return-value]


def resolve_dagster_home(environ: dict[str, str] | os._Environ = os.environ) -> None:
    """Make a relative ``DAGSTER_HOME`` absolute (Dagster refuses relative ones), for us and our workers.

    ``DAGSTER_HOME=.dagster_home cvn …`` means the directory below the current one, as a person
    expects; refused (exit 2) when that path exists and is not a directory.
    """
    home = environ.get(HOME_ENV)
    if not home:
        return
    absolute = os.path.abspath(os.path.expanduser(home))
    if os.path.exists(absolute) and not os.path.isdir(absolute):
        fail(f"{HOME_ENV}={home!r} is not a directory ({absolute} is a file): expected the directory of "
             "the Dagster instance", EXIT_USAGE)
    environ[HOME_ENV] = absolute


def storage_settings() -> StorageSettings:
    """The object store configuration from the environment; exit 2 naming what is wrong."""
    from pydantic import ValidationError

    from cvn_assets.storage.settings import StorageSettings

    try:
        return StorageSettings.from_env()
    except ValidationError as exc:
        fail(validation_message(exc, "storage configuration (CVN_S3_* / CVN_STORAGE_ROOT)"), EXIT_USAGE)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def storage() -> tuple[ObjectStore, StorageSettings]:
    from cvn_assets.storage.factory import build_object_store

    settings = storage_settings()
    return build_object_store(settings), settings


def require_dagster_home() -> str:
    """The instance directory, created with the project's dagster.yaml when it has none.

    Without a dagster.yaml Dagster warns on every run and prints its telemetry banner; the packaged
    instance file (cvn_assets/operations/dagster.yaml, the repository's ./dagster.yaml) is the one
    `make demo` and `make dev` use, so a home made by `cvn` behaves the same. An existing file is
    never touched.
    """
    resolve_dagster_home()
    home = os.environ.get(HOME_ENV)
    if not home:
        fail(f"{HOME_ENV} is not set: expected the directory of the Dagster instance whose UI shows "
             "these runs (make demo / make dev set it to ./.dagster_home)", EXIT_USAGE)
    os.makedirs(home, exist_ok=True)
    instance_file = os.path.join(home, "dagster.yaml")
    if not os.path.lexists(instance_file):
        from importlib.resources import files

        with open(instance_file, "x", encoding="utf-8") as handle:
            handle.write(files("cvn_assets.operations").joinpath("dagster.yaml").read_text(encoding="utf-8"))
        progress(f"{HOME_ENV} {home}: new instance, wrote its dagster.yaml (the project's local instance)")
    return home


def emit_json(payload: BaseModel | dict[str, Any] | list[Any]) -> None:
    data = payload.model_dump(mode="json") if hasattr(payload, "model_dump") else payload
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[JSON_EMITTED] = True


def progress(message: str) -> None:
    click.echo(message, err=True)


@contextmanager
def heartbeat(what: str, first: float = 5.0, every: float = 15.0) -> Iterator[None]:
    """While a long step runs, say after ``first`` then every ``every`` seconds that it still does (stderr).

    A person watching a silent terminal for 20 s cannot tell work from a hang.
    """
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        wait = first
        while not done.wait(wait):
            progress(f"  … {what} ({time.monotonic() - started:.0f} s)")
            wait = every

    thread = threading.Thread(target=beat, name="cvn-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
