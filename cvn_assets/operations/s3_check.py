"""`cvn s3 check` (runbook scenario C): can this process use the bucket, and does the prefix hold campaigns?

When every blob of a cohort is absent the runbook says it is one transport or configuration
problem, not N independent failures. The check walks the chain in the order a request does —
the endpoint's name (DNS), the connection, the credentials, the bucket, then the prefix — and
stops at the first broken link with a message and the operator's next step.

``probe`` gathers the facts with a real S3 client (the same AWS credential chain and endpoint as
production); ``diagnose`` is a pure function from those facts to exactly one finding.
Nothing here prints or returns a credential: endpoints are shown without user-info or query.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from urllib.parse import urlsplit
from enum import StrEnum
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.contracts.keys import MANIFEST_NAME, validate_prefix
from cvn_assets.redaction import redact_text, redact_url
from cvn_assets.storage.settings import StorageSettings

# A top-level prefix of the bucket is scanned for campaign manifests only when ours holds none;
# bounded so that a bucket with thousands of prefixes costs a handful of requests, not thousands.
MAX_OTHER_PREFIXES = 20
SCAN_KEYS_PER_PREFIX = 1000
# The check answers in seconds: one attempt, short connect timeout (production keeps its retries).
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30

CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
    "TokenRefreshRequired", "InvalidClientTokenId", "InvalidSecurity",
})
DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "403", "Forbidden"})
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})


class Finding(StrEnum):
    """One diagnosis per check: the first broken link of the chain, or ``ok``."""

    OK = "ok"
    DNS = "dns"
    UNREACHABLE = "unreachable"
    NO_CREDENTIALS = "no_credentials"
    BAD_CREDENTIALS = "bad_credentials"
    ACCESS_DENIED = "access_denied"
    MISSING_BUCKET = "missing_bucket"
    EMPTY_PREFIX = "empty_prefix"
    WRONG_PREFIX = "wrong_prefix"
    S3_ERROR = "s3_error"


class CampaignPrefix(BaseModel):
    """A ``{prefix}/{campaign_id}/`` folder seen in the bucket; ``manifest`` = the expected cohort is there."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    objects: int
    manifest: bool


class S3Facts(BaseModel):
    """What the probe observed, before any interpretation (all strings are credential-free)."""

    model_config = ConfigDict(frozen=True)

    endpoint: str
    bucket: str
    prefix: str
    region: str | None = None
    failure: Finding | None = Field(default=None, description="set when a request failed")
    error_code: str | None = None
    error_detail: str | None = None
    objects: int = 0
    bytes: int = 0
    campaigns: list[CampaignPrefix] = Field(default_factory=list)
    bucket_prefixes: list[str] = Field(default_factory=list, description="top-level prefixes of the bucket")
    campaigns_elsewhere: dict[str, list[str]] = Field(
        default_factory=dict, description="other top-level prefix → campaign ids with a manifest under it"
    )


class S3Diagnosis(BaseModel):
    """The verdict of `cvn s3 check`: one finding, what it means, and what to do next."""

    finding: Finding
    ok: bool
    message: str
    next_step: str
    facts: S3Facts


# ---------------------------------------------------------------------------------------------
# pure parts


def endpoint_text(url: str | None) -> str:
    """An endpoint as printed: redacted (cvn_assets.redaction), or botocore's default."""
    return redact_url(url) if url else "(AWS default endpoint)"


def classify_error(exc: BaseException) -> tuple[Finding, str | None, str]:
    """Map a boto3/botocore failure to (finding, S3 error code, credential-free detail)."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return Finding.NO_CREDENTIALS, None, redact_text(str(exc))
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return Finding.UNREACHABLE, None, redact_text(str(exc))
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or None
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = redact_text(f"{code}: {error.get('Message', '')} (HTTP {status})".strip())
        if code in CREDENTIAL_CODES:
            return Finding.BAD_CREDENTIALS, code, detail
        if code in MISSING_BUCKET_CODES:
            return Finding.MISSING_BUCKET, code, detail
        if code in DENIED_CODES:
            return Finding.ACCESS_DENIED, code, detail
        return Finding.S3_ERROR, code, detail
    if isinstance(exc, BotoCoreError):
        return Finding.S3_ERROR, type(exc).__name__, redact_text(str(exc))
    raise TypeError(f"not an S3 client error: {type(exc).__name__}: {exc}") from exc


def summarize_keys(keys: Iterable[tuple[str, int]], prefix: str) -> tuple[int, int, list[CampaignPrefix]]:
    """(object count, total bytes, campaign folders) of the keys listed under ``{prefix}/``."""
    base = f"{prefix}/"
    objects = total = 0
    counts: dict[str, int] = {}
    manifests: set[str] = set()
    for key, size in keys:
        if not key.startswith(base):
            continue
        objects += 1
        total += size
        rest = key[len(base):]
        if "/" not in rest:
            continue  # an object directly under the prefix belongs to no campaign
        campaign, tail = rest.split("/", 1)
        counts[campaign] = counts.get(campaign, 0) + 1
        if tail == MANIFEST_NAME:
            manifests.add(campaign)
    campaigns = [CampaignPrefix(campaign_id=c, objects=n, manifest=c in manifests) for c, n in sorted(counts.items())]
    return objects, total, campaigns


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def diagnose(facts: S3Facts) -> S3Diagnosis:
    """The one finding the facts support, with its meaning and the operator's next step."""
    where = f"bucket {facts.bucket!r} at {facts.endpoint}"
    prefix = f"{facts.prefix}/"
    detail = f" ({facts.error_detail})" if facts.error_detail else ""
    finding = facts.failure
    if finding == Finding.DNS:
        message = f"the S3 endpoint's host name does not resolve{detail}"
        step = ("check CVN_S3_ENDPOINT_URL for a typo; from the pod, `getent hosts <host>` tells whether "
                "cluster DNS (or the egress proxy) can resolve it")
    elif finding == Finding.UNREACHABLE:
        message = f"cannot connect to the S3 endpoint {facts.endpoint}{detail}"
        step = ("check that the endpoint is up and reachable from here (port, TLS, proxy, NetworkPolicy "
                "egress); CVN_S3_ENDPOINT_URL must be the S3 API URL, e.g. https://s3.fr-par.scw.cloud")
    elif finding == Finding.NO_CREDENTIALS:
        message = f"no S3 credentials found for {where}{detail}"
        step = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (on Kubernetes: the cvn-s3-credentials Secret "
                "in the pod's envFrom), then restart the pod")
    elif finding == Finding.BAD_CREDENTIALS:
        message = f"the endpoint rejected the credentials for {where}{detail}"
        step = ("the access key is unknown to this endpoint or the secret does not match it: check "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY belong to this provider and project (Scaleway keys are "
                "per project), rotate the Secret, restart the pods")
    elif finding == Finding.ACCESS_DENIED:
        message = f"the credentials are valid but may not list {where}{detail}"
        step = (f"grant s3:ListBucket on the bucket and s3:GetObject/PutObject/DeleteObject on {prefix}* "
                "to this key (bucket policy or IAM), or use the key the acquisition pods use")
    elif finding == Finding.MISSING_BUCKET:
        message = f"{where} does not exist{detail}"
        step = ("check CVN_S3_BUCKET, and that CVN_S3_ENDPOINT_URL / AWS_REGION name the region the bucket lives "
                "in (a bucket exists in one region only)")
    elif finding == Finding.S3_ERROR:
        message = f"S3 request to {where} failed{detail}"
        step = ("the endpoint answered but not as S3 expects: check CVN_S3_ENDPOINT_URL points at the S3 API "
                "and AWS_REGION matches it")
    elif finding is not None:
        raise ValueError(f"S3Facts.failure {finding!r} is not a request failure")
    else:
        return _diagnose_prefix(facts)
    return S3Diagnosis(finding=finding, ok=False, message=message, next_step=step, facts=facts)


def _diagnose_prefix(facts: S3Facts) -> S3Diagnosis:
    prefix = f"{facts.prefix}/"
    registered = [c.campaign_id for c in facts.campaigns if c.manifest]
    elsewhere = ", ".join(f"{p}/ ({len(ids)} campaign(s), e.g. {ids[0]})" for p, ids in facts.campaigns_elsewhere.items())
    others = ", ".join(facts.bucket_prefixes) or "nothing"
    if registered:
        orphans = [c.campaign_id for c in facts.campaigns if not c.manifest]
        message = (f"{facts.objects} objects ({_size(facts.bytes)}) under {prefix}, "
                   f"{len(registered)} registered campaign(s)")
        step = "nothing to fix: the transport is reachable and the prefix holds campaigns"
        if orphans:
            message += f"; {len(orphans)} folder(s) without a manifest: {', '.join(orphans[:5])}"
            step = ("folders without _manifest.json were not launched by `cvn campaign launch` under this prefix; "
                    "the gate ignores them")
        return S3Diagnosis(finding=Finding.OK, ok=True, message=message, next_step=step, facts=facts)
    if facts.campaigns_elsewhere:
        candidate = next(iter(facts.campaigns_elsewhere))
        message = (f"no campaign under {prefix} ({facts.objects} objects), but campaign manifests exist under "
                   f"{elsewhere}")
        step = (f"the acquisition pods and the gate must use the same prefix: set CVN_S3_PREFIX={candidate} "
                "everywhere (ConfigMap cvn-config) or relaunch the campaign with the current prefix")
        return S3Diagnosis(finding=Finding.WRONG_PREFIX, ok=False, message=message, next_step=step, facts=facts)
    if facts.objects:
        message = (f"{facts.objects} objects under {prefix} but no campaign manifest "
                   f"(folders: {', '.join(c.campaign_id for c in facts.campaigns[:5]) or 'none'})")
        step = ("this prefix holds someone else's objects: check CVN_S3_PREFIX (default s43-predictions) on the "
                "acquisition and gate pods")
        return S3Diagnosis(finding=Finding.WRONG_PREFIX, ok=False, message=message, next_step=step, facts=facts)
    message = f"no object under {prefix} in bucket {facts.bucket!r} (the bucket holds: {others})"
    step = ("if a campaign ran, its blobs were never written here: look for s43_pred_persist_failed events and "
            "compare CVN_S3_BUCKET / CVN_S3_PREFIX on the acquisition pods; on a new bucket, launch a campaign "
            "(blobs expire after 7 days, so an idle week also empties the prefix)")
    return S3Diagnosis(finding=Finding.EMPTY_PREFIX, ok=False, message=message, next_step=step, facts=facts)


# ---------------------------------------------------------------------------------------------
# the probe (network)


def diagnostic_client(settings: StorageSettings) -> Any:
    """A boto3 S3 client like production's (same credential chain, endpoint, region) that fails fast."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region_name,
        config=Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                      retries={"max_attempts": 1, "mode": "standard"}),
    )


def _list(client: Any, bucket: str, prefix: str, limit: int | None = None) -> list[tuple[str, int]]:
    keys: list[tuple[str, int]] = []
    paginator = client.get_paginator("list_objects_v2")
    config = {"MaxItems": limit} if limit else {}
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig=config):
        keys.extend((item["Key"], int(item["Size"])) for item in page.get("Contents", []))
    return keys


def _top_level_prefixes(client: Any, bucket: str) -> list[str]:
    response = client.list_objects_v2(Bucket=bucket, Delimiter="/", MaxKeys=1000)
    return sorted(p["Prefix"] for p in response.get("CommonPrefixes", []))


def probe(settings: StorageSettings, client: Any | None = None) -> S3Facts:
    """Observe the chain endpoint → credentials → bucket → prefix with real requests; never raises for S3."""
    if settings.backend != "s3" or not settings.bucket:
        raise ValueError("the S3 check needs CVN_S3_BUCKET: the configured object store is the local directory "
                         f"{settings.local_root!r}")
    client = client or diagnostic_client(settings)
    endpoint_url = client.meta.endpoint_url
    base = dict(endpoint=endpoint_text(endpoint_url), bucket=settings.bucket, prefix=settings.prefix,
                region=client.meta.region_name)
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    try:
        socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        return S3Facts(**base, failure=Finding.DNS, error_detail=f"{host}: {exc.strerror or exc}")
    try:
        objects, total, campaigns = summarize_keys(_list(client, settings.bucket, f"{settings.prefix}/"),
                                                   settings.prefix)
        bucket_prefixes: list[str] = []
        elsewhere: dict[str, list[str]] = {}
        if not any(c.manifest for c in campaigns):
            bucket_prefixes = _top_level_prefixes(client, settings.bucket)
            elsewhere = _campaigns_elsewhere(client, settings.bucket, settings.prefix, bucket_prefixes)
    except (BotoCoreError, ClientError) as exc:
        finding, code, detail = classify_error(exc)
        return S3Facts(**base, failure=finding, error_code=code, error_detail=detail)
    return S3Facts(**base, objects=objects, bytes=total, campaigns=campaigns, bucket_prefixes=bucket_prefixes,
                   campaigns_elsewhere=elsewhere)


def _campaigns_elsewhere(client: Any, bucket: str, prefix: str, top_level: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    candidates = [p.rstrip("/") for p in top_level if p.rstrip("/") != prefix]
    for candidate in candidates[:MAX_OTHER_PREFIXES]:
        try:
            validate_prefix(candidate)
        except ValueError:
            continue  # not a prefix our keys could live under (uppercase, dots first…)
        _, _, campaigns = summarize_keys(_list(client, bucket, f"{candidate}/", SCAN_KEYS_PER_PREFIX), candidate)
        registered = [c.campaign_id for c in campaigns if c.manifest]
        if registered:
            found[candidate] = registered
    return found


def check(settings: StorageSettings, client: Any | None = None) -> S3Diagnosis:
    """Probe then diagnose: the whole of `cvn s3 check`."""
    return diagnose(probe(settings, client))
