"""Registering a campaign: the manifest (expected cohort) first, then its Dagster partitions.

Nothing is written for an invalid spec: validation happens when the ``CampaignSpec`` is built,
before this module is reached. Re-registering the same id with the same spec is a no-op; with a
different spec it is refused (a campaign's cohort never changes under the gate's feet).
"""

from __future__ import annotations

import dagster as dg

from cvn_assets.contracts.campaign import CampaignManifest, CampaignSpec
from cvn_assets.partitions import CAMPAIGN_DIMENSION, CRYPTO_DIMENSION
from cvn_assets.storage.manifests import CampaignNotRegistered, read_manifest, write_manifest
from cvn_assets.storage.object_store import ObjectStore


class CampaignConflict(ValueError):
    """The campaign id is registered already with another spec."""


def resolve_spec(spec: CampaignSpec) -> CampaignSpec:
    """Freeze the universe into the spec: another pod may have another universes file."""
    return spec.model_copy(update={"symbols": spec.cryptos})


def register_campaign(
    instance: dg.DagsterInstance, store: ObjectStore, prefix: str, spec: CampaignSpec
) -> CampaignManifest:
    spec = resolve_spec(spec)
    try:
        existing = read_manifest(store, prefix, spec.campaign_id)
    except CampaignNotRegistered:
        existing = None
    if existing is not None:
        if existing.spec != spec:
            raise CampaignConflict(
                f"campaign_id {spec.campaign_id!r} is registered already with another spec "
                f"({store.describe()}); choose a new --campaign-id"
            )
        manifest = existing
    else:
        manifest = CampaignManifest.for_spec(spec)
        write_manifest(store, prefix, manifest)
    instance.add_dynamic_partitions(CAMPAIGN_DIMENSION, [spec.campaign_id])
    known = set(instance.get_dynamic_partitions(CRYPTO_DIMENSION))
    new_cryptos = [crypto for crypto in spec.cryptos if crypto not in known]
    if new_cryptos:
        instance.add_dynamic_partitions(CRYPTO_DIMENSION, new_cryptos)
    return manifest
