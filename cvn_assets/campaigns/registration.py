"""Registering a campaign: the manifest (expected cohort) first, then its Dagster partitions.

Nothing is written for an invalid spec: validation happens when the ``CampaignSpec`` is built,
before this module is reached. Re-registering the same id with the same spec is a no-op; with a
different spec it is refused (a campaign's cohort never changes under the gate's feet).

The manifest is created with a create-only write (S3 ``If-None-Match: *``, an exclusive symlink
on the local store), never read-then-write: of two launches racing on one id exactly one creates
it; the other re-reads it and joins it (same spec) or is refused (another spec).
"""

from __future__ import annotations

import time

import dagster as dg

from cvn_assets.contracts.campaign import CampaignManifest, CampaignSpec
from cvn_assets.partitions import CAMPAIGN_DIMENSION, CRYPTO_DIMENSION
from cvn_assets.storage.manifests import CampaignConflict, CampaignNotRegistered, create_manifest, read_manifest
from cvn_assets.storage.object_store import ObjectExists, ObjectStore

__all__ = ["CampaignConflict", "register_campaign", "resolve_spec"]

# A create-only write that lost may find nothing on re-read for a moment (S3's 409 while the
# winner's write is in flight, or a winner that then failed): try again, a bounded number of times.
REGISTRATION_ATTEMPTS = 5


def _differences(registered: CampaignSpec, wanted: CampaignSpec) -> str:
    old, new = registered.model_dump(mode="json"), wanted.model_dump(mode="json")
    changed = [name for name in new if old.get(name) != new.get(name)]
    return ", ".join(f"{name}: registered {old.get(name)!r}, asked {new.get(name)!r}" for name in changed[:4])


def _claim_manifest(store: ObjectStore, prefix: str, spec: CampaignSpec) -> CampaignManifest:
    """The campaign's manifest: created by this call, or the identical one another launch created."""
    for attempt in range(REGISTRATION_ATTEMPTS):
        try:
            existing = read_manifest(store, prefix, spec.campaign_id)
        except CampaignNotRegistered:
            manifest = CampaignManifest.for_spec(spec)
            try:
                create_manifest(store, prefix, manifest)
            except ObjectExists:
                time.sleep(0.05 * (attempt + 1))
                continue  # another launch created it first: re-read it
            return manifest
        if existing.spec != spec:
            raise CampaignConflict(
                f"campaign_id {spec.campaign_id!r} is registered already with another spec "
                f"({_differences(existing.spec, spec)}) on {store.describe()}: choose a new --campaign-id"
            )
        return existing
    raise CampaignConflict(
        f"campaign_id {spec.campaign_id!r}: another launch is creating it on {store.describe()} and its "
        f"manifest is still unreadable after {REGISTRATION_ATTEMPTS} attempts; retry, or choose a new --campaign-id"
    )


def resolve_spec(spec: CampaignSpec) -> CampaignSpec:
    """Freeze the universe into the spec: another pod may have another universes file."""
    return spec.model_copy(update={"symbols": spec.cryptos})


def register_campaign(
    instance: dg.DagsterInstance, store: ObjectStore, prefix: str, spec: CampaignSpec
) -> CampaignManifest:
    spec = resolve_spec(spec)
    manifest = _claim_manifest(store, prefix, spec)
    instance.add_dynamic_partitions(CAMPAIGN_DIMENSION, [spec.campaign_id])
    known = set(instance.get_dynamic_partitions(CRYPTO_DIMENSION))
    new_cryptos = [crypto for crypto in spec.cryptos if crypto not in known]
    if new_cryptos:
        instance.add_dynamic_partitions(CRYPTO_DIMENSION, new_cryptos)
    return manifest
