"""The object store as a Dagster resource: one key, two backends (local directory or S3).

Sensors, assets and the CLI ask for ``object_store`` and never where they run (hooli's pattern).
The resource holds the S3 settings only and builds the client when a store is first asked for:
dagster-aws (and boto3) are imported by processes that use S3, never by every process that loads
the definitions on the local backend (each spawned acquisition worker, the code server, `cvn`).
The client is built with our timeouts and botocore retries off, because ``S3ObjectStore`` owns
the attempts (``max_attempts`` and a deadline cover torn bodies and checksum mismatches too,
which botocore never retries).
"""


import dagster as dg
from pydantic import Field

from cvn_assets.contracts.keys import DEFAULT_PREFIX
from cvn_assets.storage.factory import build_object_store, cached_object_store, s3_resource
from cvn_assets.storage.object_store import ObjectStore
from cvn_assets.storage.settings import StorageSettings

__all__ = ["ObjectStoreResource", "build_object_store", "s3_resource"]


class ObjectStoreResource(dg.ConfigurableResource):
    """Where prediction blobs and campaign manifests live (local directory or S3 bucket)."""

    backend: str = Field(default="local", description="'local' (directory mirroring S3 keys) or 's3'")
    prefix: str = Field(default=DEFAULT_PREFIX, description="key prefix of the s43 transport")
    local_root: str | None = Field(default=None, description="root directory of the local backend")
    bucket: str | None = Field(default=None, description="S3 bucket of the s3 backend")
    endpoint_url: str | None = Field(default=None, description="S3 endpoint (None = AWS); credentials: AWS_*")
    region_name: str | None = Field(default=None, description="S3 region")
    max_attempts: int = Field(default=3, description="attempts per S3 operation (requests, torn bodies, checksum mismatches)")
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds to open a connection to S3")
    read_timeout: float = Field(default=20.0, gt=0, description="seconds without a byte from S3 on a request")
    deadline: float = Field(default=60.0, gt=0, description="seconds one S3 operation may take, retries included")

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> "ObjectStoreResource":
        return cls(
            backend=settings.backend,
            prefix=settings.prefix,
            local_root=settings.local_root,
            bucket=settings.bucket,
            endpoint_url=settings.endpoint_url,
            region_name=settings.region_name,
            max_attempts=settings.max_attempts,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=settings.deadline,
        )

    def settings(self) -> StorageSettings:
        return StorageSettings(
            backend=self.backend,  # type: ignore[arg-type]
            prefix=self.prefix,
            local_root=self.local_root,
            bucket=self.bucket,
            endpoint_url=self.endpoint_url,
            region_name=self.region_name,
            max_attempts=self.max_attempts,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            deadline=self.deadline,
        )

    def store(self) -> ObjectStore:
        return cached_object_store(self.settings())
