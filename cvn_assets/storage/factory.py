"""Building an object store from settings, for code outside Dagster (the `cvn` command, tests).

dagster-aws (and boto3 with it) is imported only when the backend is S3: it costs over a second
at start-up, which every `cvn` call on the local backend would otherwise pay.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from cvn_assets.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from cvn_assets.storage.settings import StorageSettings

if TYPE_CHECKING:
    from dagster_aws.s3 import S3Resource

S3_POOL = S3ObjectStore.concurrency  # HTTP connections per client: every thread of a cohort load keeps one


def s3_resource(settings: StorageSettings) -> "S3Resource":
    """dagster-aws S3Resource for the settings; credentials stay in the AWS_* environment."""
    from dagster_aws.s3 import S3Resource

    return S3Resource(endpoint_url=settings.endpoint_url, region_name=settings.region_name,
                      max_attempts=settings.max_attempts)


def s3_client(resource: "S3Resource", settings: StorageSettings) -> Any:
    """A boto3 S3 client from the resource's connection fields, with our timeouts and retries off.

    S3ObjectStore owns the attempts (one budget for requests, torn bodies and checksum
    mismatches, bounded by ``settings.deadline``), so botocore must not retry underneath it;
    dagster-aws ``get_client()`` has no timeout or retry override, hence this constructor.
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(profile_name=resource.profile_name)
    return session.client(
        "s3", region_name=resource.region_name, endpoint_url=resource.endpoint_url, use_ssl=resource.use_ssl,
        verify=resource.verify, aws_access_key_id=resource.aws_access_key_id,
        aws_secret_access_key=resource.aws_secret_access_key, aws_session_token=resource.aws_session_token,
        config=Config(connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout,
                      retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=S3_POOL),
    )


def build_object_store(settings: StorageSettings, s3: "S3Resource | None" = None) -> ObjectStore:
    if settings.backend == "s3":
        client = s3_client(s3 or s3_resource(settings), settings)
        return S3ObjectStore(client, bucket=settings.bucket or "", endpoint_url=settings.endpoint_url,
                             max_attempts=settings.max_attempts, deadline=settings.deadline)
    return LocalObjectStore(settings.local_root or "")


@functools.lru_cache(maxsize=32)
def cached_object_store(settings: StorageSettings) -> ObjectStore:
    """One store per settings per process: a boto3 client costs ~0.2 s to build (it loads the
    service models) and is thread-safe, so steps and sensors share it instead of rebuilding it."""
    return build_object_store(settings)
