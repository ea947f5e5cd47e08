"""Campaign manifests in the object store: the expected cohort, written before any blob."""

from __future__ import annotations

from pydantic import ValidationError

from cvn_assets.contracts.campaign import STORED, CampaignManifest
from cvn_assets.contracts.keys import manifest_key
from cvn_assets.storage.object_store import ObjectNotFound, ObjectStore


class CampaignNotRegistered(LookupError):
    """No manifest for this campaign id under the configured prefix."""


class CampaignConflict(ValueError):
    """The campaign id is registered already with another spec (bad input: choose another id)."""


def write_manifest(store: ObjectStore, prefix: str, manifest: CampaignManifest) -> str:
    key = manifest_key(prefix, manifest.campaign_id)
    store.put(key, manifest.model_dump_json(indent=2).encode(), content_type="application/json")
    return key


def create_manifest(store: ObjectStore, prefix: str, manifest: CampaignManifest) -> str:
    """Write the manifest only if the campaign has none: raise ObjectExists if another writer won."""
    key = manifest_key(prefix, manifest.campaign_id)
    store.put_if_absent(key, manifest.model_dump_json(indent=2).encode(), content_type="application/json")
    return key


def read_manifest(store: ObjectStore, prefix: str, campaign_id: str) -> CampaignManifest:
    key = manifest_key(prefix, campaign_id)
    try:
        text = store.get(key)
    except ObjectNotFound:
        raise CampaignNotRegistered(
            f"campaign {campaign_id!r} is not registered: expected its manifest at {store.uri(key)} "
            f"({store.describe()}); launch it with `cvn campaign launch` or check CVN_S3_PREFIX"
        ) from None
    try:
        return CampaignManifest.model_validate_json(text, context=STORED)
    except ValidationError as exc:
        raise ValueError(f"manifest {store.uri(key)} is invalid: {exc}") from None


def list_campaigns(store: ObjectStore, prefix: str) -> list[str]:
    """Campaign ids that have a manifest under ``prefix``, sorted."""
    suffix = "/_manifest.json"
    return sorted(
        info.key[len(prefix) + 1 : -len(suffix)]
        for info in store.list(f"{prefix}/")
        if info.key.endswith(suffix) and info.key.count("/") == prefix.count("/") + 2
    )
