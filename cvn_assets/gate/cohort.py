"""The cohort of one campaign: every expected blob, present (decoded, validated) or absent.

This is where the runbook's two failure modes part ways. An absent blob is tolerated — the
entry records why, as the acquisition logged it, and the kind of cause (data, configuration,
code, transport) — and the cohort is then incomplete, so
``pooled()`` refuses to produce anything (never a partial pool). A present blob that does not
decode raises its ``s43 npz …`` ValueError at load: corruption is never mistaken for absence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cvn_assets.contracts.blob import MAX_BLOB_BYTES, BlobCorrupt, PredictionBlob, decode_blob
from cvn_assets.contracts.campaign import CampaignManifest
from cvn_assets.contracts.keys import BlobRef
from cvn_assets.storage.manifests import read_manifest
from cvn_assets.storage.object_store import IntegrityError, ObjectNotFound, ObjectStore, ObjectTooLarge

if TYPE_CHECKING:
    from cvn_assets.runs import AcquisitionFailure

# Recorded causes that explain an absent blob by themselves; transport and unknown do not.
EXPLAINING_CAUSES = ("data", "configuration", "code")


@dataclass(frozen=True)
class CohortEntry:
    ref: BlobRef
    key: str
    blob: PredictionBlob | None
    reason: str | None = None
    cause: str | None = None  # data | configuration | code | transport | unknown, when the acquisition failed

    @property
    def present(self) -> bool:
        return self.blob is not None


@dataclass(frozen=True)
class Cohort:
    """The expected cohort of one campaign as found in storage."""

    manifest: CampaignManifest
    entries: list[CohortEntry]
    store_description: str = field(default="")

    @property
    def campaign_id(self) -> str:
        return self.manifest.campaign_id

    @property
    def complete(self) -> bool:
        return all(entry.present for entry in self.entries)

    @property
    def absent(self) -> list[CohortEntry]:
        return [entry for entry in self.entries if not entry.present]

    @property
    def missing_keys(self) -> list[str]:
        return [entry.key for entry in self.absent]

    @property
    def all_absent(self) -> bool:
        return bool(self.entries) and not any(entry.present for entry in self.entries)

    @property
    def absence_causes(self) -> list[str]:
        """When every blob is absent and every absence has a recorded non-transport cause: those causes.

        Then the acquisitions themselves say why (e.g. every crypto's candles were refused), and
        the report names that cause instead of suspecting transport.
        """
        if not self.all_absent or any(entry.cause not in EXPLAINING_CAUSES for entry in self.entries):
            return []
        return sorted({entry.cause for entry in self.entries if entry.cause})

    @property
    def transport_suspect(self) -> bool:
        """Every expected blob is absent and no recorded acquisition failure explains it: runbook scenario C."""
        return self.all_absent and not self.absence_causes

    def pooled(self) -> dict[str, list[PredictionBlob]]:
        """Blobs by crypto, in manifest order. Refuses an incomplete cohort."""
        if not self.complete:
            raise ValueError(
                f"cohort of campaign {self.campaign_id} is incomplete: expected {len(self.entries)} blobs, "
                f"{len(self.absent)} absent ({', '.join(self.missing_keys[:5])}…); a partial pool is never computed"
            )
        pooled: dict[str, list[PredictionBlob]] = {}
        for entry in self.entries:
            pooled.setdefault(entry.ref.crypto, []).append(entry.blob)  # type: ignore[arg-type]
        return pooled


def _load_entry(store: ObjectStore, key: str, ref: BlobRef) -> PredictionBlob | None:
    try:
        data = store.get(key, max_bytes=MAX_BLOB_BYTES)
    except ObjectNotFound:
        return None
    except IntegrityError as exc:
        raise BlobCorrupt(key, f"checksum mismatch: stored sha256 {exc.expected}, bytes hash to {exc.found}") from None
    except ObjectTooLarge as exc:
        raise BlobCorrupt(key, f"expected at most {exc.limit} bytes, found {exc.size} (refused from its length, "
                               "body not read)") from None
    return decode_blob(data, key, expected=ref, sha256_verified=True)


def load_cohort(
    store: ObjectStore,
    prefix: str,
    campaign_id: str,
    absence_reasons: Callable[[], Mapping[str, AcquisitionFailure]] | None = None,
    max_workers: int | None = None,
) -> Cohort:
    """Read the manifest, then every expected blob concurrently with a bounded pool.

    ``absence_reasons`` is called only when something is absent and maps a crypto to why its
    latest acquisition failed (``runs.acquisition_failures``: the reason and its kind of cause);
    ``max_workers`` defaults to what pays on the store's backend. Raises the blob's ``s43 npz …`` ValueError for a malformed blob and
    ``StorageError`` when the store cannot be reached (that is not absence either).
    """
    manifest = read_manifest(store, prefix, campaign_id)
    keys = [ref.key(prefix) for ref in manifest.expected]
    workers = store.concurrency if max_workers is None else max_workers
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(keys) or 1))) as pool:
        blobs = list(pool.map(lambda pair: _load_entry(store, *pair), zip(keys, manifest.expected)))
    failures: Mapping[str, AcquisitionFailure] = {}
    if any(blob is None for blob in blobs) and absence_reasons is not None:
        failures = absence_reasons()
    entries = []
    for ref, key, blob in zip(manifest.expected, keys, blobs):
        failure = failures.get(ref.crypto) if blob is None else None
        entries.append(CohortEntry(ref=ref, key=key, blob=blob, reason=failure.reason if failure else None,
                                   cause=failure.cause if failure else None))
    return Cohort(manifest=manifest, entries=entries, store_description=store.describe())
