"""Blob schema v1: round trip, and every malformed shape raises its own `s43 npz …` error."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from cvn_assets.contracts.blob import (
    SCHEMA_VERSION, BlobCorrupt, BlobMissingArray, BlobSchemaMismatch, BlobShapeMismatch, decode_blob, encode_blob,
)
from cvn_assets.contracts.keys import BlobRef, blob_key, parse_blob_key
from cvn_assets_tests.fixtures.blobs import rewrite_npz, sample_blob

KEY = "s43-predictions/test-campaign/SOLUSDC/logreg/fold-00.npz"


def test_round_trip_is_exact():
    blob = sample_blob()
    decoded = decode_blob(encode_blob(blob), KEY, expected=blob.meta.ref)
    assert decoded.meta == blob.meta
    for name, array in blob.arrays().items():
        np.testing.assert_array_equal(getattr(decoded, name), array)
        assert getattr(decoded, name).dtype == array.dtype
    assert encode_blob(decoded) == encode_blob(blob)  # deterministic bytes


@pytest.mark.parametrize(
    ("mutate", "error", "fragment"),
    [
        (lambda d: d[: len(d) // 2], BlobCorrupt, "truncated"),
        (lambda d: rewrite_npz(d, y_pred=None), BlobMissingArray, "missing ['y_pred']"),
        (lambda d: rewrite_npz(d, proba_buy=np.zeros((250, 2), np.float32)), BlobShapeMismatch, "expected 1-D"),
        (lambda d: rewrite_npz(d, y_true=np.zeros(499, np.int8)), BlobShapeMismatch, "equal lengths"),
        (lambda d: rewrite_npz(d, y_true=np.zeros(500, np.int64)), BlobSchemaMismatch, "dtype int8"),
        (lambda d: rewrite_npz(d, trade_return=np.array([object()] * 500, dtype=object)), BlobCorrupt, "pickle"),
        (lambda d: rewrite_npz(d, extra=np.zeros(500)), BlobSchemaMismatch, "unexpected ['extra']"),
    ],
    ids=["truncated", "dropped-array", "2d-shape", "short-array", "dtype", "pickled-object-array", "extra-array"],
)
def test_malformed_blob_raises_named_error(mutate, error, fragment):
    with pytest.raises(error) as raised:
        decode_blob(mutate(encode_blob(sample_blob())), KEY)
    message = str(raised.value)
    assert message.startswith(error.prefix)
    assert f"key={KEY}" in message
    assert fragment in message


def _with_meta(data: bytes, **updates) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
    meta.update(updates)
    return rewrite_npz(data, meta=np.array(json.dumps(meta)))


def test_raised_schema_version_is_a_schema_mismatch():
    data = _with_meta(encode_blob(sample_blob()), schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(BlobSchemaMismatch, match=rf"schema_version expected one of \[1, 2\], found {SCHEMA_VERSION + 1}"):
        decode_blob(data, KEY)


def test_a_v1_blob_written_before_timeframes_reads_as_five_minute_bars():
    current = sample_blob()
    with np.load(io.BytesIO(encode_blob(current)), allow_pickle=False) as npz:
        v1_meta = json.loads(str(npz["meta"]))
    del v1_meta["timeframe"]  # exactly what a v1 producer wrote
    v1_meta["schema_version"] = 1
    blob = decode_blob(rewrite_npz(encode_blob(current), meta=np.array(json.dumps(v1_meta))), KEY)
    assert blob.meta.schema_version == SCHEMA_VERSION == 2 and blob.meta.timeframe == "5m"
    assert blob.meta.model_dump(exclude={"schema_version"}) == current.meta.model_dump(exclude={"schema_version"})


def test_a_v2_blob_without_its_timeframe_is_a_schema_mismatch():
    data = _with_meta(encode_blob(sample_blob()), timeframe=None)
    with pytest.raises(BlobSchemaMismatch, match="meta field 'timeframe'"):
        decode_blob(data, KEY)


def test_blob_stored_under_another_identity_is_refused():
    data = encode_blob(sample_blob(crypto="ADAUSDC"))
    with pytest.raises(BlobSchemaMismatch, match="meta expected identity"):
        decode_blob(data, KEY, expected=BlobRef(campaign_id="test-campaign", crypto="SOLUSDC", fold=0, family="logreg"))


def test_values_outside_their_domain_are_refused():
    data = rewrite_npz(encode_blob(sample_blob()), proba_buy=np.full(500, 1.5, np.float32))
    with pytest.raises(BlobSchemaMismatch, match="proba_buy"):
        decode_blob(data, KEY)


def test_oversized_member_declared_in_zip_is_refused_before_loading():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ts.npy", b"\0" * (300 * 1024 * 1024))
    with pytest.raises(BlobCorrupt, match="uncompressed bytes"):
        decode_blob(buffer.getvalue(), KEY)


@pytest.mark.parametrize("bad", ["../x", "a", "UPPER-case", "abc/def", "ok-id\n"])
def test_campaign_ids_that_could_escape_a_prefix_are_rejected(bad):
    with pytest.raises(ValueError, match="campaign_id"):
        blob_key("s43-predictions", bad, "SOLUSDC", "logreg", 0)


def test_keys_parse_back_to_their_identity():
    key = blob_key("s43-predictions", "defi-20261123-000000", "SOLUSDC", "hgb", 3)
    assert key == "s43-predictions/defi-20261123-000000/SOLUSDC/hgb/fold-03.npz"
    prefix, ref = parse_blob_key(key)
    assert prefix == "s43-predictions" and ref.fold == 3 and ref.family == "hgb"
    with pytest.raises(ValueError, match="blob key"):
        parse_blob_key("s43-predictions/../etc/passwd")
