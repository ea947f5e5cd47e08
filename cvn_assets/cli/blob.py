"""`cvn blob ls|inspect`: look at a campaign's blobs as the gate sees them (runbook scenario B)."""

from __future__ import annotations

import click

from cvn_assets.cli.common import EXIT_ERROR, EXIT_USAGE, emit_json, exit_codes, fail, storage
from cvn_assets.contracts.blob import ARRAY_DTYPES, BlobError, decode_blob
from cvn_assets.contracts.identifiers import validate_campaign_id
from cvn_assets.contracts.keys import parse_blob_key
from cvn_assets.storage.manifests import read_manifest
from cvn_assets.storage.object_store import IntegrityError, ObjectNotFound, sha256_hex


@click.group("blob")
def blob_group() -> None:
    """Prediction blobs of the s43 transport."""


@blob_group.command("ls")
@click.option("--campaign", "campaign_id", required=True, help="campaign id")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@exit_codes
def ls_command(campaign_id: str, as_json: bool) -> None:
    """List the campaign's expected blobs: present or absent, size and stored sha256 (HEAD only)."""
    try:
        validate_campaign_id(campaign_id)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    store, settings = storage()
    manifest = read_manifest(store, settings.prefix, campaign_id)
    rows = []
    for ref in manifest.expected:
        key = ref.key(settings.prefix)
        try:
            info = store.head(key)
            rows.append({"key": key, "crypto": ref.crypto, "fold": ref.fold, "family": ref.family,
                         "status": "present", "bytes": info.size, "sha256": info.sha256})
        except ObjectNotFound:
            rows.append({"key": key, "crypto": ref.crypto, "fold": ref.fold, "family": ref.family,
                         "status": "absent", "bytes": None, "sha256": None})
    present = sum(row["status"] == "present" for row in rows)
    if as_json:
        emit_json({"campaign_id": campaign_id, "store": store.describe(), "expected": len(rows),
                   "present": present, "blobs": rows})
        return
    click.echo(f"campaign {campaign_id} on {store.describe()}: {present}/{len(rows)} blobs present")
    for row in rows:
        detail = f"{row['bytes']:>9} B  sha256 {row['sha256'][:16]}…" if row["status"] == "present" else "ABSENT"
        click.echo(f"  {row['key']}  {detail}")


@blob_group.command("inspect")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@exit_codes
def inspect_command(key: str, as_json: bool) -> None:
    """Decode one blob: schema, arrays (dtype, shape), checksum, meta — or the exact error.

    KEY is the object key, e.g. s43-predictions/defi-20261123-031500/SOLUSDC/hgb/fold-00.npz.
    Exit 1 with the `s43 npz …` error when the blob is malformed, as the gate would raise it.
    """
    try:
        _, ref = parse_blob_key(key)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    store, _ = storage()
    try:
        data = store.get(key)
    except IntegrityError as exc:
        fail(f"s43 npz corrupt: key={key}: checksum mismatch: stored sha256 {exc.expected}, bytes hash to {exc.found}",
             EXIT_ERROR)
    except ObjectNotFound:
        fail(f"blob {store.uri(key)} is absent ({store.describe()}): the gate counts it as missing "
             f"(runbook scenario A)", EXIT_ERROR)
    try:
        blob = decode_blob(data, key, expected=ref)
    except BlobError as exc:
        fail(str(exc), EXIT_ERROR)
    arrays = {name: {"dtype": str(array.dtype), "shape": list(array.shape)} for name, array in blob.arrays().items()}
    payload = {"key": key, "uri": store.uri(key), "bytes": len(data), "sha256": sha256_hex(data),
               "checksum": "verified", "schema_version": blob.meta.schema_version, "rows": blob.rows,
               "arrays": arrays, "meta": blob.meta.model_dump(mode="json")}
    if as_json:
        emit_json(payload)
        return
    click.echo(f"{payload['uri']}\n  {len(data)} bytes, sha256 {payload['sha256']} (verified)")
    click.echo(f"  schema_version {blob.meta.schema_version}, {blob.rows} rows")
    for name in ARRAY_DTYPES:
        click.echo(f"  {name:<13} {arrays[name]['dtype']:<8} shape {tuple(arrays[name]['shape'])}")
    meta = blob.meta
    click.echo(f"  {meta.family} fold {meta.fold}: PTE sl={meta.pte.sl} tp={meta.pte.tp} horizon={meta.pte.horizon} bars of {meta.timeframe}, "
               f"threshold {meta.threshold:.3f}, producer {meta.producer_version}")
