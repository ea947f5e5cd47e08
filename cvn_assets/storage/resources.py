"""The object store as a Dagster resource: one key, two backends (local directory or S3).

Sensors, assets and the CLI ask for ``object_store`` and never where they run (hooli's pattern).
The S3 connection settings come from dagster-aws ``S3Resource``; the client is built with our
timeouts and botocore retries off, because ``S3ObjectStore`` owns the attempts (``max_attempts``
and a deadline cover torn bodies and checksum mismatches too, which botocore never retries).
"""


import dagster as dg
from dagster_aws.s3 import S3Resource
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
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds to open a connection to S3")
    read_timeout: float = Field(default=20.0, gt=0, description="seconds without a byte from S3 on a request")
    deadline: float = Field(default=60.0, gt=0, description="seconds one S3 operation may take, retries included")
    s3: dg.ResourceDependency[S3Resource]

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> "ObjectStoreResource":
        return cls(
            backend=settings.backend,
            prefix=settings.prefix,
            local_root=settings.local_root,
            bucket=settings.bucket,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=settings.deadline,
            s3=s3_resource(settings),
        )

    def settings(self) -> StorageSettings:
        return StorageSettings(
            backend=self.backend,  # type: ignore[arg-type]
            prefix=self.prefix,
            local_root=self.local_root,
            bucket=self.bucket,
            endpoint_url=self.s3.endpoint_url,
            region_name=self.s3.region_name,
            max_attempts=self.s3.max_attempts,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            deadline=self.deadline,
        )

    def store(self) -> ObjectStore:
        return cached_object_store(self.settings())
