"""`cvn blob ls|inspect`: look at a campaign's blobs as the gate sees them (runbook scenario B)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import click

from cvn_assets.cli.common import EXIT_ERROR, EXIT_USAGE, emit_json, exit_codes, fail, storage
from cvn_assets.contracts.blob import ARRAY_DTYPES, BlobError, decode_blob
from cvn_assets.contracts.identifiers import validate_campaign_id
from cvn_assets.contracts.keys import parse_blob_key
from cvn_assets.storage.manifests import read_manifest
from cvn_assets.storage.object_store import (
    IntegrityError,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    sha256_hex,
)


@click.group("blob")
def blob_group() -> None:
    """Prediction blobs of the s43 transport."""


@blob_group.command("ls")
@click.option("--campaign", "campaign_id", required=True, help="campaign id")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@exit_codes
def ls_command(campaign_id: str, as_json: bool) -> None:
    """List the campaign's expected blobs: present, absent or unreadable, size and stored sha256 (HEAD only).

    Every expected blob is listed; exit 1 after the listing when one is unreadable (a plain file
    or a link whose content is gone: `cvn blob inspect KEY` says which).
    """
    try:
        validate_campaign_id(campaign_id)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    store, settings = storage()
    manifest = read_manifest(store, settings.prefix, campaign_id)
    rows = []
    for ref in manifest.expected:
        key = ref.key(settings.prefix)
        row = {"key": key, "uri": store.uri(key), "crypto": ref.crypto, "fold": ref.fold, "family": ref.family,
               "status": "present", "bytes": None, "sha256": None, "error": None}
        try:
            info = store.head(key)
            row.update(bytes=info.size, sha256=info.sha256)
        except ObjectNotFound:
            row["status"] = "absent"
        except (IntegrityError, StorageError) as exc:  # this one blob: listed as such, the others still shown
            row.update(status="unreadable", error=str(exc))
        rows.append(row)
    present = sum(row["status"] == "present" for row in rows)
    unreadable = [row for row in rows if row["status"] == "unreadable"]
    if as_json:
        emit_json({"campaign_id": campaign_id, "store": store.describe(), "expected": len(rows),
                   "present": present, "unreadable": len(unreadable), "blobs": rows})
    else:
        click.echo(f"campaign {campaign_id} on {store.describe()}: {present}/{len(rows)} blobs present")
        for row in rows:
            if row["status"] == "present":
                detail = f"{row['bytes']:>9} B  sha256 {(row['sha256'] or '')[:16]}…"
            else:
                detail = "ABSENT" if row["status"] == "absent" else f"UNREADABLE — {row['error']}"
            click.echo(f"  {row['key']}  {detail}")
    if unreadable:
        fail(f"{len(unreadable)} of {len(rows)} blob(s) of campaign {campaign_id} cannot be read: "
             + ", ".join(row["key"] for row in unreadable) + " — `cvn blob inspect KEY` shows why", EXIT_ERROR)


def key_of(argument: str, store: ObjectStore) -> str:
    """The object key a person means: the key itself, its URI (file://, s3://) or its path on disk.

    ``cvn blob ls`` prints keys and ``cvn blob inspect`` prints the URI; both are accepted back.
    """
    parsed = urlparse(argument)
    if parsed.scheme == "s3":
        if not isinstance(store, S3ObjectStore) or parsed.netloc != store.bucket:
            fail(f"{argument} is not in the configured object store ({store.describe()})", EXIT_USAGE)
        return parsed.path.lstrip("/")
    if parsed.scheme == "file":
        path = unquote(parsed.path)
    elif parsed.scheme:
        fail(f"{argument!r}: expected a blob key, a file:// or s3:// URI, or a path", EXIT_USAGE)
    elif argument.startswith(("/", "./", "../", "~")) or (isinstance(store, LocalObjectStore)
                                                        and os.path.lexists(argument)):
        path = argument
    else:
        return argument
    if not isinstance(store, LocalObjectStore):
        fail(f"{argument} is a local path but the object store is {store.describe()}: give the key", EXIT_USAGE)
    absolute = Path(os.path.abspath(os.path.expanduser(path)))  # not resolved: a key is a symlink
    try:
        return absolute.relative_to(store.root).as_posix()
    except ValueError:
        fail(f"{absolute} is not inside the object store root {store.root} (CVN_STORAGE_ROOT): "
             "expected a blob of this store", EXIT_USAGE)


@blob_group.command("inspect")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
@exit_codes
def inspect_command(key: str, as_json: bool) -> None:
    """Decode one blob: schema, arrays (dtype, shape), checksum, meta — or the exact error.

    KEY is the object key, e.g. s43-predictions/defi-20261123-031500/SOLUSDC/hgb/fold-00.npz,
    as `cvn blob ls` prints it; its file:// or s3:// URI or its path on disk are accepted too.
    Exit 1 with the `s43 npz …` error when the blob is malformed, as the gate would raise it.
    """
    store, _ = storage()
    key = key_of(key, store)
    try:
        _, ref = parse_blob_key(key)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        data = store.get(key)
    except IntegrityError as exc:
        if exc.expected is None:
            fail(f"s43 npz corrupt: key={key}: not written by cvn — there is no stored sha256 to verify it "
                 f"against ({exc.found}); the gate refuses it too: re-run the acquisition to rewrite it", EXIT_ERROR)
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
