"""The embedded defaults: files of ours inside the Dagster instance directory, DAGSTER_HOME."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

HOME_ENV = "DAGSTER_HOME"


def in_dagster_home(environ: Mapping[str, str], name: str, *, what: str, instead: str) -> Path:
    """``$DAGSTER_HOME/name``, the default of ``what`` when ``instead`` (its own setting) is unset."""
    home = environ.get(HOME_ENV)
    if not home:
        raise ValueError(f"no {what} configured: set {instead}, or {HOME_ENV} "
                         f"(the embedded default ${HOME_ENV}/{name})")
    return Path(home) / name
