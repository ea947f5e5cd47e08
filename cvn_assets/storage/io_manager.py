"""The s43 prediction IO manager: one blob per (fold, family) out, one whole cohort in.

Writing an acquisition partition (campaign × crypto) stores one ``.npz`` per expected (fold,
family) and records, for each key, its URI, bytes, sha256, schema version and rows. Loading the
gate's input returns the campaign's ``Cohort``: the expected entries of its manifest, present
blobs decoded and validated, absent ones with the reason their acquisition logged. Never raises
for an absent blob; always raises the ``s43 npz …`` ValueError for a malformed present one.
"""


import logging
from collections.abc import Sequence

import dagster as dg
from pydantic import Field

from cvn_assets.contracts.blob import SCHEMA_VERSION, BlobError, PredictionBlob, encode_blob
from cvn_assets.events import Event, log_event
from cvn_assets.gate.cohort import Cohort, load_cohort
from cvn_assets.partitions import partition_identity
from cvn_assets.runs import acquisition_failures
from cvn_assets.storage.manifests import read_manifest
from cvn_assets.storage.object_store import ObjectInfo, ObjectStore, StorageError
from cvn_assets.storage.resources import ObjectStoreResource


def persist_blobs(
    store: ObjectStore, prefix: str, campaign_id: str, crypto: str, blobs: Sequence[PredictionBlob],
    expected: Sequence[tuple[int, str]], max_workers: int | None, logger: logging.Logger | dg.DagsterLogManager,
) -> list[tuple[PredictionBlob, ObjectInfo]]:
    """Encode every blob first (nothing is written if one is invalid), then write concurrently."""
    produced = sorted((blob.meta.fold, blob.meta.family) for blob in blobs)
    if produced != sorted(expected):
        raise ValueError(
            f"acquisition {campaign_id}/{crypto} produced {produced}, expected exactly the manifest's "
            f"(fold, family) pairs {sorted(expected)}: nothing was written"
        )
    for blob in blobs:
        if (blob.meta.campaign_id, blob.meta.crypto) != (campaign_id, crypto):
            raise ValueError(
                f"blob for {blob.meta.campaign_id}/{blob.meta.crypto} handed to partition {campaign_id}/{crypto}"
            )
    payloads = [(blob.meta.ref.key(prefix), encode_blob(blob)) for blob in blobs]
    try:
        infos = store.put_many(payloads, content_type="application/x-npz",
                               max_workers=store.concurrency if max_workers is None else max_workers)
    except StorageError as exc:
        log_event(logger, Event.PRED_PERSIST_FAILED, logging.ERROR, campaign=campaign_id, crypto=crypto,
                  key=exc.key, error=str(exc))
        raise
    return list(zip(blobs, infos))


class S43PredictionIOManager(dg.ConfigurableIOManager):
    """Persists s43 prediction blobs to the object store and loads a campaign's cohort for the gate."""

    object_store: dg.ResourceDependency[ObjectStoreResource]
    max_workers: int | None = Field(default=None, ge=1, le=64,
                                    description="concurrent reads/writes per step (default: what pays on the "
                                                "backend, 4 on a 2-core local disk, 16 on S3)")

    def handle_output(self, context: dg.OutputContext, obj: Sequence[PredictionBlob]) -> None:
        campaign_id, crypto = partition_identity(context.asset_partition_key)
        store, prefix = self.object_store.store(), self.object_store.prefix
        manifest = read_manifest(store, prefix, campaign_id)
        expected = [(ref.fold, ref.family) for ref in manifest.expected if ref.crypto == crypto]
        written = persist_blobs(store, prefix, campaign_id, crypto, obj, expected, self.max_workers, context.log)
        rows = [
            dg.TableRecord({"key": info.key, "uri": info.uri, "bytes": info.size, "sha256": info.sha256,
                            "schema_version": blob.meta.schema_version, "rows": blob.rows})
            for blob, info in written
        ]
        context.add_output_metadata({
            "uri": dg.MetadataValue.path(store.uri(f"{prefix}/{campaign_id}/{crypto}/")),
            "blobs": dg.MetadataValue.table(rows, schema=dg.TableSchema(columns=[
                dg.TableColumn("key"), dg.TableColumn("uri"), dg.TableColumn("bytes", "int"),
                dg.TableColumn("sha256"), dg.TableColumn("schema_version", "int"), dg.TableColumn("rows", "int"),
            ])),
            "blob_count": len(written),
            "total_bytes": sum(info.size for _, info in written),
            "schema_version": SCHEMA_VERSION,
        })

    def load_input(self, context: dg.InputContext) -> Cohort:
        campaign_id = context.partition_key
        store, prefix = self.object_store.store(), self.object_store.prefix
        try:
            cohort = load_cohort(
                store, prefix, campaign_id,
                absence_reasons=lambda: acquisition_failures(context.instance, campaign_id),
                max_workers=self.max_workers,
            )
        except (BlobError, StorageError) as exc:
            log_event(context.log, Event.PRED_LOAD_FAILED, logging.ERROR, campaign=campaign_id,
                      key=getattr(exc, "key", ""), error=str(exc))
            raise
        log_event(context.log, Event.COHORT, campaign=campaign_id, expected=len(cohort.entries),
                  present=len(cohort.entries) - len(cohort.absent), absent=len(cohort.absent),
                  missing=cohort.missing_keys)
        return cohort
