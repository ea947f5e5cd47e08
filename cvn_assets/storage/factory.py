"""Building an object store from settings, for code outside Dagster (the `cvn` command, tests).

dagster-aws (and boto3 with it) is imported only when the backend is S3: it costs over a second
at start-up, which every `cvn` call on the local backend would otherwise pay.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from cvn_assets.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from cvn_assets.storage.settings import StorageSettings

if TYPE_CHECKING:
    from dagster_aws.s3 import S3Resource


def s3_resource(settings: StorageSettings) -> "S3Resource":
    """dagster-aws S3Resource for the settings; credentials stay in the AWS_* environment."""
    from dagster_aws.s3 import S3Resource

    return S3Resource(endpoint_url=settings.endpoint_url, region_name=settings.region_name,
                      max_attempts=settings.max_attempts)


def build_object_store(settings: StorageSettings, s3: "S3Resource | None" = None) -> ObjectStore:
    if settings.backend == "s3":
        client = (s3 or s3_resource(settings)).get_client()
        return S3ObjectStore(client, bucket=settings.bucket or "", endpoint_url=settings.endpoint_url)
    return LocalObjectStore(settings.local_root or "")


@functools.lru_cache(maxsize=32)
def cached_object_store(settings: StorageSettings) -> ObjectStore:
    """One store per settings per process: a boto3 client costs ~0.2 s to build (it loads the
    service models) and is thread-safe, so steps and sensors share it instead of rebuilding it."""
    return build_object_store(settings)
