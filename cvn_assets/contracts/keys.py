"""Object keys of the transport (DESIGN.md): run-isolated per campaign.

``{prefix}/{campaign_id}/{crypto}/{family}/fold-{k:02d}.npz`` and
``{prefix}/{campaign_id}/_manifest.json``. Every part is validated before a key is built, and
``parse_blob_key`` is the exact inverse, so a key read from a listing or typed by an operator
is checked the same way.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from cvn_assets.contracts.identifiers import (
    CAMPAIGN_ID_PATTERN,
    CRYPTO_PATTERN,
    FAMILY_PATTERN,
    validate_campaign_id,
    validate_crypto,
    validate_family,
    validate_fold,
)

DEFAULT_PREFIX = "s43-predictions"
MANIFEST_NAME = "_manifest.json"
PREFIX_PATTERN = r"[a-z0-9][a-z0-9._-]{0,62}(/[a-z0-9][a-z0-9._-]{0,62}){0,3}"

_BLOB_KEY = re.compile(
    rf"(?P<prefix>{PREFIX_PATTERN})/(?P<campaign_id>{CAMPAIGN_ID_PATTERN})/(?P<crypto>{CRYPTO_PATTERN})"
    rf"/(?P<family>{FAMILY_PATTERN})/fold-(?P<fold>[0-9]{{2}})\.npz"
)


def validate_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or re.fullmatch(PREFIX_PATTERN, prefix) is None:
        raise ValueError(
            f"prefix {prefix!r} is invalid: expected lowercase path segments matching ^{PREFIX_PATTERN}$"
        )
    return prefix


class BlobRef(BaseModel):
    """One expected blob of a campaign: the (crypto, fold, family) unit of the runbook."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    crypto: str
    fold: int
    family: str

    def key(self, prefix: str) -> str:
        return blob_key(prefix, self.campaign_id, self.crypto, self.family, self.fold)


def campaign_prefix(prefix: str, campaign_id: str) -> str:
    return f"{validate_prefix(prefix)}/{validate_campaign_id(campaign_id)}/"


def manifest_key(prefix: str, campaign_id: str) -> str:
    return campaign_prefix(prefix, campaign_id) + MANIFEST_NAME


def blob_key(prefix: str, campaign_id: str, crypto: str, family: str, fold: int) -> str:
    validate_crypto(crypto)
    validate_family(family)
    validate_fold(fold)
    return f"{campaign_prefix(prefix, campaign_id)}{crypto}/{family}/fold-{fold:02d}.npz"


def parse_blob_key(key: str) -> tuple[str, BlobRef]:
    """Return (prefix, ref) of a blob key, or raise ValueError naming the expected layout."""
    match = _BLOB_KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise ValueError(
            f"blob key {key!r} is invalid: expected "
            "'{prefix}/{campaign_id}/{CRYPTO}/{family}/fold-NN.npz', e.g. "
            "s43-predictions/defi-20261123-031500/SOLUSDC/hgb/fold-00.npz"
        )
    ref = BlobRef(
        campaign_id=match["campaign_id"],
        crypto=match["crypto"],
        fold=int(match["fold"]),
        family=match["family"],
    )
    return match["prefix"], ref
