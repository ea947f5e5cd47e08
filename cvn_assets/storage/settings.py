"""Where objects live, decided from the environment in one place (DESIGN.md configuration).

``CVN_S3_BUCKET`` set → S3 (with ``CVN_S3_ENDPOINT_URL`` for Scaleway / MinIO / moto and the
standard AWS_* credentials, which boto3 reads itself and which never pass through our config);
otherwise the local directory ``CVN_STORAGE_ROOT`` (default ``$DAGSTER_HOME/cvn-objects``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cvn_assets.contracts.keys import DEFAULT_PREFIX, validate_prefix
from cvn_assets.home import in_dagster_home

# Anchored: pydantic's ``pattern`` searches, so an unanchored one accepted "bucket/../x".
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# The variable each field comes from, for messages that name what the user set.
ENV_OF_FIELD = {"backend": "CVN_S3_BUCKET", "prefix": "CVN_S3_PREFIX", "local_root": "CVN_STORAGE_ROOT",
                "bucket": "CVN_S3_BUCKET", "endpoint_url": "CVN_S3_ENDPOINT_URL", "region_name": "AWS_REGION",
                "max_attempts": "CVN_S3_MAX_ATTEMPTS", "connect_timeout": "CVN_S3_CONNECT_TIMEOUT",
                "read_timeout": "CVN_S3_READ_TIMEOUT", "deadline": "CVN_S3_DEADLINE"}


class StorageSettings(BaseModel):
    """The object store of this deployment; secrets are not part of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["local", "s3"]
    prefix: str = Field(default=DEFAULT_PREFIX, description="key prefix of the s43 transport")
    local_root: str | None = Field(default=None, description="root directory of the local backend")
    bucket: str | None = Field(default=None, pattern=BUCKET_PATTERN, description="S3 bucket")
    endpoint_url: str | None = Field(default=None, description="S3 endpoint (None = AWS)")
    region_name: str | None = None
    max_attempts: int = Field(default=3, ge=1, le=10,
                              description="attempts per S3 operation: requests, torn bodies and checksum mismatches")
    connect_timeout: float = Field(default=5.0, gt=0, le=300, description="seconds to open a connection to S3")
    read_timeout: float = Field(default=20.0, gt=0, le=600, description="seconds without a byte from S3 on a request")
    deadline: float = Field(default=60.0, gt=0, le=3600,
                            description="seconds one S3 operation may take, all its attempts included")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        return validate_prefix(prefix)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, url: str | None) -> str | None:
        if url is None:
            return url
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 — raises ValueError on a port that is not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or url != url.strip():
            raise ValueError("expected an http(s)://host[:port] URL")
        return url

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> StorageSettings:
        env = os.environ if environ is None else environ
        prefix = env.get("CVN_S3_PREFIX") or DEFAULT_PREFIX
        if env.get("CVN_S3_BUCKET"):
            return cls(
                backend="s3",
                prefix=prefix,
                bucket=env["CVN_S3_BUCKET"],
                endpoint_url=env.get("CVN_S3_ENDPOINT_URL") or None,
                region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
                max_attempts=_number(env, "CVN_S3_MAX_ATTEMPTS", 3, int),
                connect_timeout=_number(env, "CVN_S3_CONNECT_TIMEOUT", 5.0, float),
                read_timeout=_number(env, "CVN_S3_READ_TIMEOUT", 20.0, float),
                deadline=_number(env, "CVN_S3_DEADLINE", 60.0, float),
            )
        root = env.get("CVN_STORAGE_ROOT") or str(in_dagster_home(
            env, "cvn-objects", what="object store",
            instead="CVN_S3_BUCKET (S3) or CVN_STORAGE_ROOT (local directory)"))
        return cls(backend="local", prefix=prefix, local_root=root)


def _number(env: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    """A positive number from ``name`` (``default`` when unset); ValueError naming the variable."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        unit = "a positive integer" if kind is int else "a positive number of seconds"
        raise ValueError(f"{name} expected {unit}, found {raw!r}")
    return value
