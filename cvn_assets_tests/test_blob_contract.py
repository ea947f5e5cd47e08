"""Blob schema v1: round trip, and every malformed shape raises its own `s43 npz …` error."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from contextlib import nullcontext

import numpy as np
import pytest

from cvn_assets.contracts.blob import (
    SCHEMA_VERSION, BlobCorrupt, BlobMissingArray, BlobSchemaMismatch, BlobShapeMismatch, decode_blob, encode_blob,
)
from cvn_assets.contracts.keys import BlobRef, blob_key, parse_blob_key
from cvn_assets_tests.fixtures.blobs import rewrite_npz, sample_blob
from cvn_assets_tests.fixtures.malformed_blobs import lying_bomb, members_of, zip_members

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


@pytest.mark.parametrize(
    ("name", "values"),
    [("proba_buy", np.full(500, 1.5, np.float32)), ("proba_buy", np.full(500, np.nan, np.float32)),
     ("y_true", np.full(500, -1, np.int8)), ("y_pred", np.full(500, 2, np.int8)),
     ("exit_reason", np.full(500, 3, np.int8)), ("trade_return", np.full(500, np.inf, np.float32)),
     ("trade_return", np.full(500, np.nan, np.float32))],
)
def test_values_outside_their_domain_are_refused(name, values):
    data = rewrite_npz(encode_blob(sample_blob()), **{name: values})
    with pytest.raises(BlobSchemaMismatch, match=name):
        decode_blob(data, KEY)


def test_compressed_member_is_refused_before_anything_is_inflated():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ts.npy", b"\0" * (32 * 1024 * 1024))
    with pytest.raises(BlobCorrupt, match=r"member 'ts.npy' expected compression method 0 \(stored.*found 8 \(deflate\)"):
        decode_blob(buffer.getvalue(), KEY)


def test_bzip2_bomb_lying_about_its_size_is_refused_without_inflating_it():
    data = lying_bomb(zipfile.ZIP_BZIP2, 64 * 1024 * 1024)
    assert len(data) < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(BlobCorrupt, match=r"found 12 \(bzip2\)"):
            decode_blob(data, KEY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [(("ts.npy", "ts.npy"), "member 'ts' expected once, found twice"),
     (("ts", "ts.npy"), "member 'ts' expected once, found twice")],
    ids=["same-name-twice", "with-and-without-suffix"],
)
def test_duplicate_members_are_ambiguous_and_refused(extra, fragment):
    members = members_of(encode_blob(sample_blob()))
    ts = dict(members)["ts.npy"]
    renamed = [(extra[0] if name == "ts.npy" else name, data) for name, data in members]
    with pytest.warns(UserWarning, match="Duplicate name") if extra[0] == extra[1] else nullcontext():
        data = zip_members([*renamed, (extra[1], ts)])
    with pytest.raises(BlobCorrupt, match=fragment) as raised:
        decode_blob(data, KEY)
    assert f"key={KEY}" in str(raised.value)


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_schema_version_that_only_equals_one_is_refused(version):
    data = _with_meta(encode_blob(sample_blob()), schema_version=version)
    with pytest.raises(BlobSchemaMismatch, match="only a JSON integer is a version"):
        decode_blob(data, KEY)


def test_declared_shape_larger_than_the_member_is_refused_before_allocating():
    members = members_of(encode_blob(sample_blob()))
    header = b"{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000,), }"
    ts = dict(members)["ts.npy"]
    npy = b"\x93NUMPY\x01\x00" + len(header + b"\n").to_bytes(2, "little") + header + b"\n" + ts[128:]
    with pytest.raises(BlobCorrupt, match=r"array 'ts' declares shape \(1000000000000,\)"):
        decode_blob(zip_members([(n, npy if n == "ts.npy" else d) for n, d in members]), KEY)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [(lambda d: b"junk" + d, "junk before or inside the archive"),
     (lambda d: d + b"junk", "junk appended"),
     (lambda d: zip_members([(n, b"not an npy file" if n == "ts.npy" else b) for n, b in members_of(d)]),
      "array 'ts' expected an npy file"),
     (lambda d: zip_members([(n, b[:10] + b"{'descr': \"\"\"" + b[23:] if n == "ts.npy" else b)
                             for n, b in members_of(d)]), "array 'ts' expected an npy header as np.save writes it")],
    ids=["junk-before", "junk-after", "no-npy-magic", "tokenizer-junk-header"],
)
def test_junk_around_or_inside_the_archive_is_corrupt_naming_the_key(mutate, fragment):
    with pytest.raises(BlobCorrupt, match=fragment) as raised:
        decode_blob(mutate(encode_blob(sample_blob())), KEY)
    assert str(raised.value).startswith(f"s43 npz corrupt: key={KEY}: ")


def test_decoded_arrays_are_views_over_a_bytearray_read():
    data = bytearray(encode_blob(sample_blob()))
    decoded = decode_blob(data, KEY)
    assert decoded.ts.base is not None and decoded.ts.flags.writeable  # no copy of the body


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
