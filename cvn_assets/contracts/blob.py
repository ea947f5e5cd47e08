"""Prediction blob schema v2: one ``.npz`` per (crypto, fold, family).

v2 adds ``timeframe`` to the meta; v1 blobs (all of 5-minute bars) are upgraded on read.

A blob is what crosses the pod boundary, so it is checked as strictly on the way in as on the
way out: ``encode_blob`` refuses to write what ``decode_blob`` would refuse to read. The format
is plain ``numpy.savez`` (uncompressed: probabilities and returns barely compress, and the
gate reads dozens of blobs) and is always loaded with ``allow_pickle=False``.

Every failure is a ``ValueError`` whose message starts with one of the fail-loud prefixes of
DESIGN.md and names the key, what was expected and what was found — for any bytes whatsoever:
the reader parses the zip structure itself with hard limits (stored members only, no duplicate,
npy headers parsed by a regular expression, declared shapes equal to the bytes present), so a
hostile or truncated object can cost its own size in memory and never a library's exception.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cvn_assets.contracts.identifiers import CampaignId, Crypto, Family
from cvn_assets.contracts.keys import BlobRef
from cvn_assets.contracts.timeframes import Timeframe

SCHEMA_VERSION = 2

# Hard limits: a blob of the default campaign is ~330 KB; anything near these is not ours.
MAX_BLOB_BYTES = 256 * 1024 * 1024
MAX_ROWS = 5_000_000
MAX_META_CHARS = 64 * 1024


class ExitReason(IntEnum):
    """How the trade opened at a bar would have closed under the campaign's PTE."""

    TP = 0
    SL = 1
    TIMEOUT = 2


ARRAY_DTYPES: Mapping[str, np.dtype] = {
    "ts": np.dtype(np.int64),
    "y_true": np.dtype(np.int8),
    "proba_buy": np.dtype(np.float32),
    "y_pred": np.dtype(np.int8),
    "exit_reason": np.dtype(np.int8),
    "trade_return": np.dtype(np.float32),
}
META_ARRAY = "meta"
EXPECTED_ARRAYS = (*ARRAY_DTYPES, META_ARRAY)


class BlobError(ValueError):
    """Base of the fail-loud blob errors; ``prefix`` is the stable message prefix."""

    prefix = "s43 npz"

    def __init__(self, key: str, detail: str):
        self.key = key
        self.detail = detail
        super().__init__(f"{self.prefix}: key={key}: {detail}")


class BlobSchemaMismatch(BlobError):
    prefix = "s43 npz schema mismatch"


class BlobMissingArray(BlobError):
    prefix = "s43 npz missing array"


class BlobShapeMismatch(BlobError):
    prefix = "s43 npz shape mismatch"


class BlobCorrupt(BlobError):
    prefix = "s43 npz corrupt"


class Pte(BaseModel):
    """Trade-execution parameters: ATR multiples for the barriers and a horizon in bars."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sl: float = Field(gt=0, description="stop-loss distance in ATR multiples")
    tp: float = Field(gt=0, description="take-profit distance in ATR multiples")
    horizon: int = Field(gt=0, description="maximum holding time in bars")


class Window(BaseModel):
    """A half-open time window [start_ms, end_ms) in epoch milliseconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_ms: int
    end_ms: int

    @field_validator("end_ms")
    @classmethod
    def _ordered(cls, end_ms: int, info: Any) -> int:
        start = info.data.get("start_ms")
        if start is not None and end_ms <= start:
            raise ValueError(f"end_ms {end_ms} must be after start_ms {start}")
        return end_ms


class BlobMeta(BaseModel):
    """The JSON ``meta`` of a blob: where it belongs and how its predictions were made."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int
    campaign_id: CampaignId
    crypto: Crypto
    fold: int = Field(ge=0, le=99)
    family: Family
    pte: Pte
    timeframe: Timeframe = Field(description="bar length of the candles the model saw; pte.horizon counts these bars")
    threshold: float = Field(ge=0, le=1, description="BUY threshold calibrated on the validation slice")
    train: Window
    validation: Window
    test: Window
    screening_f1_buy: float | None = Field(
        default=None, description="f1_buy of the chosen PTE at screening, same metric as the test folds"
    )
    validation_f1_buy: float | None = Field(
        default=None, description="f1_buy on the validation slice: how the gate picks a family without peeking at test"
    )
    fees_bps: float = Field(ge=0, description="round-trip fees charged in trade_return, basis points")
    hyperparameters: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    producer_version: str

    @property
    def ref(self) -> BlobRef:
        return BlobRef(campaign_id=self.campaign_id, crypto=self.crypto, fold=self.fold, family=self.family)


@dataclass(frozen=True, eq=False)
class PredictionBlob:
    """Test-fold predictions of one (crypto, fold, family), with what happened after each bar."""

    meta: BlobMeta
    ts: np.ndarray
    y_true: np.ndarray
    proba_buy: np.ndarray
    y_pred: np.ndarray
    exit_reason: np.ndarray
    trade_return: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.ts.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAY_DTYPES}


# Readers accept exactly the versions they can upgrade to SCHEMA_VERSION. An upgrader takes the
# raw arrays and meta dict of version N and returns those of version N+1. v1 is the first version.
Upgrader = Callable[[dict[str, np.ndarray], dict[str, Any]], tuple[dict[str, np.ndarray], dict[str, Any]]]


def _v1_to_v2(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """v1 had no timeframe: every campaign ran on 5-minute bars then."""
    return arrays, {**meta, "schema_version": 2, "timeframe": "5m"}


UPGRADERS: dict[int, Upgrader] = {1: _v1_to_v2}


def accepted_schema_versions() -> list[int]:
    versions = [SCHEMA_VERSION]
    while versions[0] - 1 in UPGRADERS:
        versions.insert(0, versions[0] - 1)
    return versions


def _check_arrays(key: str, arrays: Mapping[str, np.ndarray]) -> int:
    """Validate dtypes, shapes and value domains; return the row count."""
    for name, dtype in ARRAY_DTYPES.items():
        array = arrays[name]
        if array.dtype != dtype:
            raise BlobSchemaMismatch(key, f"array '{name}' expected dtype {dtype}, found {array.dtype}")
        if array.ndim != 1:
            raise BlobShapeMismatch(key, f"array '{name}' expected 1-D, found shape {array.shape}")
    lengths = {name: int(arrays[name].shape[0]) for name in ARRAY_DTYPES}
    rows = lengths["ts"]
    if len(set(lengths.values())) != 1:
        raise BlobShapeMismatch(key, f"arrays expected equal lengths, found {lengths}")
    if rows == 0:
        raise BlobShapeMismatch(key, "arrays expected at least 1 row, found 0")
    if rows > MAX_ROWS:
        raise BlobShapeMismatch(key, f"arrays expected at most {MAX_ROWS} rows, found {rows}")
    # One reduction per array, no temporary the size of the array where a reduction suffices:
    # an int8 flag array is in {0, 1} iff its largest byte (as unsigned) is at most 1; a float
    # array is finite iff its min and max are (NaN propagates into both).
    ts = arrays["ts"]
    if rows > 1 and not bool((ts[1:] > ts[:-1]).all()):
        raise BlobSchemaMismatch(key, "array 'ts' expected strictly increasing epoch ms, found a repeat or a step back")
    for name in ("y_true", "y_pred"):
        if int(arrays[name].view(np.uint8).max()) > 1:
            raise BlobSchemaMismatch(key, f"array '{name}' expected values in {{0, 1}}, found {np.unique(arrays[name])[:5]}")
    if int(arrays["exit_reason"].view(np.uint8).max()) > max(ExitReason):
        raise BlobSchemaMismatch(key, "array 'exit_reason' expected values in {0=tp, 1=sl, 2=timeout}")
    proba = arrays["proba_buy"]
    if not (float(proba.min()) >= 0.0 and float(proba.max()) <= 1.0):
        raise BlobSchemaMismatch(key, "array 'proba_buy' expected finite values in [0, 1]")
    trade_return = arrays["trade_return"]
    if not (math.isfinite(float(trade_return.min())) and math.isfinite(float(trade_return.max()))):
        raise BlobSchemaMismatch(key, "array 'trade_return' expected finite values, found NaN or inf")
    return rows


def _parse_meta(key: str, raw: dict[str, Any], expected: BlobRef | None) -> BlobMeta:
    try:
        meta = BlobMeta.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise BlobSchemaMismatch(key, f"meta field '{field}': {first['msg']}") from None
    if expected is not None and meta.ref != expected:
        found = meta.ref.model_dump()
        raise BlobSchemaMismatch(key, f"meta expected identity {expected.model_dump()}, found {found}")
    return meta


def make_blob(meta: BlobMeta, **arrays: np.ndarray) -> PredictionBlob:
    """Build a blob, casting arrays to the schema dtypes and validating everything."""
    key = f"<new blob {meta.campaign_id}/{meta.crypto}/{meta.family}/fold-{meta.fold:02d}>"
    missing = [name for name in ARRAY_DTYPES if name not in arrays]
    if missing:
        raise BlobMissingArray(key, f"expected arrays {list(ARRAY_DTYPES)}, missing {missing}")
    unexpected = sorted(set(arrays) - set(ARRAY_DTYPES))
    if unexpected:
        raise BlobSchemaMismatch(key, f"unexpected arrays {unexpected}")
    cast = {name: np.ascontiguousarray(arrays[name], dtype=dtype) for name, dtype in ARRAY_DTYPES.items()}
    if meta.schema_version != SCHEMA_VERSION:
        raise BlobSchemaMismatch(key, f"meta schema_version expected {SCHEMA_VERSION}, found {meta.schema_version}")
    _check_arrays(key, cast)
    return PredictionBlob(meta=meta, **cast)


def encode_blob(blob: PredictionBlob) -> bytes:
    """Serialise a blob to ``.npz`` bytes (no pickle: the meta is a unicode scalar array)."""
    key = f"<encode {blob.meta.campaign_id}/{blob.meta.crypto}/{blob.meta.family}/fold-{blob.meta.fold:02d}>"
    _check_arrays(key, blob.arrays())
    if blob.meta.schema_version != SCHEMA_VERSION:
        raise BlobSchemaMismatch(key, f"meta schema_version expected {SCHEMA_VERSION}, found {blob.meta.schema_version}")
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(blob.meta.model_dump_json()), **blob.arrays())
    return buffer.getvalue()


def decode_blob(data: bytes | bytearray | memoryview, key: str, expected: BlobRef | None = None, *,
                sha256_verified: bool = False) -> PredictionBlob:
    """Parse and validate ``.npz`` bytes read from ``key``; raise the matching ``s43 npz`` error.

    The arrays of the result are views over ``data`` (no copy): read-only over ``bytes``,
    writable over a ``bytearray``. ``sha256_verified``: the caller has just checked the whole
    object against the SHA-256 stored with it (the object stores do on every read), so the
    members' CRC-32 would check the same bytes a second time and is skipped.
    """
    if len(data) > MAX_BLOB_BYTES:
        raise BlobCorrupt(key, f"expected at most {MAX_BLOB_BYTES} bytes, found {len(data)}")
    arrays, text = _read_arrays(key, data, check_crc=not sha256_verified)
    if len(text) > MAX_META_CHARS:
        raise BlobCorrupt(key, f"meta expected at most {MAX_META_CHARS} characters, found {len(text)}")
    try:
        meta_dict = json.loads(text, object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, _DuplicateKey) as exc:
        raise BlobSchemaMismatch(key, f"meta expected a JSON object, found invalid JSON ({exc})") from None
    if not isinstance(meta_dict, dict):
        raise BlobSchemaMismatch(key, f"meta expected a JSON object, found {type(meta_dict).__name__}")
    version = meta_dict.get("schema_version")
    accepted = accepted_schema_versions()
    # `true` and `1.0` compare equal to 1 in Python: only a JSON integer is a version.
    if type(version) is not int or version not in accepted:
        kind = "" if type(version) is int else f" ({type(version).__name__}: only a JSON integer is a version)"
        raise BlobSchemaMismatch(key, f"schema_version expected one of {accepted}, found {version!r}{kind}")
    while meta_dict["schema_version"] < SCHEMA_VERSION:
        arrays, meta_dict = UPGRADERS[meta_dict["schema_version"]](arrays, meta_dict)

    meta = _parse_meta(key, meta_dict, expected)
    _check_arrays(key, arrays)
    return PredictionBlob(meta=meta, **arrays)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose key repeats is ambiguous (json.loads would keep the last): refuse it."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        repeated = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise _DuplicateKey(f"key {repeated!r} appears twice")
    return document


# ---- the bounded .npz reader ----------------------------------------------------------------------
# np.load trusts the archive: it inflates whatever a member declares (a 9 KB bzip2 member became
# 2 GiB), allocates a declared shape before reading it, parses the npy header with ast, keeps the
# last of two members of the same name and leaks zlib/bz2/tokenize errors. This reader parses the
# zip structure itself and accepts only what encode_blob writes: stored (uncompressed) members,
# one per array, each a plain npy of the schema's dtype whose declared size is exactly the bytes it
# holds. Nothing is inflated, so no member can decode to more bytes than the object has; arrays
# are views over the bytes read (no copy), checked against their CRC-32.

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # local file header
_EOCD_SIGNATURE, _CENTRAL_SIGNATURE, _LOCAL_SIGNATURE = b"PK\x05\x06", b"PK\x01\x02", b"PK\x03\x04"
_ZIP64_EXTRA = 0x0001
_STORED = 0  # the only compression method encode_blob (np.savez) writes
_COMPRESSION_NAMES = {8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 95: "xz", 99: "AES"}
_FLAG_ENCRYPTED = 0x0001
_FLAG_DATA_DESCRIPTOR = 0x0008
_FLAG_STRONG_ENCRYPTION = 0x0040
MAX_MEMBERS = 16
MAX_NPY_HEADER = 4096
_NPY_MAGIC = b"\x93NUMPY"
# What np.save writes (numpy.lib.format.header_data_from_array_1_0, repr-formatted, space padded);
# parsed by this expression, never by ast, so junk is a message and not a tokenizer crash.
_NPY_HEADER = re.compile(
    r"\{'descr': '(?P<descr>[<>|=][A-Za-z]\d{0,9})', 'fortran_order': (?P<fortran>False|True), "
    r"'shape': \((?P<shape>(?:\d{1,19}, ){0,31}\d{1,19},?|)\), \} *\n"
)


@dataclass(frozen=True)
class _Member:
    name: str
    start: int  # absolute offset of the member's bytes (the npy file) in the archive
    size: int
    crc: int


def _read_members(key: str, view: memoryview) -> dict[str, _Member]:
    """The archive's members by array name, every structural field cross-checked; BlobCorrupt otherwise."""
    size = len(view)
    eocd_at = size - _EOCD.size  # encode_blob writes no archive comment: the record ends the object
    if eocd_at < 0 or view[eocd_at:eocd_at + 4] != _EOCD_SIGNATURE:
        raise BlobCorrupt(key, f"expected an .npz (zip) archive ending in its end-of-central-directory record, "
                               f"found {size} bytes without one (truncated write? junk appended?)")
    _, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment = _EOCD.unpack_from(view, eocd_at)
    if disk or cd_disk or comment or on_disk != count:
        raise BlobCorrupt(key, "expected a single-disk zip archive without comment, found a multi-disk or "
                               f"commented end record (disk {disk}, directory disk {cd_disk}, comment {comment} bytes)")
    if count > MAX_MEMBERS:
        raise BlobCorrupt(key, f"expected at most {MAX_MEMBERS} members, found {count} declared")
    if cd_offset + cd_size != eocd_at:
        raise BlobCorrupt(key, f"expected the central directory to end where its end record starts ({eocd_at}), "
                               f"found offset {cd_offset} + size {cd_size} (junk before or inside the archive?)")
    members: dict[str, _Member] = {}
    position, previous_end, misnamed = cd_offset, 0, None
    for index in range(count):
        if position + _CENTRAL.size > eocd_at or view[position:position + 4] != _CENTRAL_SIGNATURE:
            raise BlobCorrupt(key, f"expected central directory entry {index + 1} of {count} at offset {position}, "
                                   "found something else")
        (_, _, _, _, _, flags, method, _, _, crc, compressed, uncompressed, name_len, extra_len, comment_len,
         _, _, _, header_offset) = _CENTRAL.unpack_from(view, position)
        name_end = position + _CENTRAL.size + name_len
        raw_name = bytes(view[position + _CENTRAL.size:name_end])
        position = name_end + extra_len + comment_len
        if position > eocd_at:
            raise BlobCorrupt(key, f"central directory entry {index + 1} runs past the directory's end")
        name = raw_name.decode("ascii", errors="replace")
        where = f"member {name!r}"
        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
            raise BlobCorrupt(key, f"{where} expected unencrypted, found the encryption flag set")
        if method != _STORED:
            label = _COMPRESSION_NAMES.get(method, "unknown")
            raise BlobCorrupt(key, f"{where} expected compression method 0 (stored, what encode_blob writes), "
                                   f"found {method} ({label})")
        if compressed != uncompressed or 0xFFFFFFFF in (compressed, header_offset):
            raise BlobCorrupt(key, f"{where} expected equal stored and declared sizes below 4 GiB, "
                                   f"found {compressed} and {uncompressed}")
        array = name.removesuffix(".npy")
        if array in members:  # 'ts.npy' twice, or 'ts' and 'ts.npy': np.load would keep one silently
            raise BlobCorrupt(key, f"member {array!r} expected once, found twice (ambiguous archive)")
        if (not raw_name.isascii() or not name.endswith(".npy")) and misnamed is None:
            misnamed = raw_name  # refused after the loop, so that 'ts' + 'ts.npy' is named a duplicate
        start = _local_data_start(key, view, header_offset, raw_name, method, crc, compressed)
        end = start + compressed
        if header_offset < previous_end or end > cd_offset:
            raise BlobCorrupt(key, f"{where} expected its bytes between the previous member's end ({previous_end}) "
                                   f"and the central directory ({cd_offset}), found {header_offset}..{end}")
        previous_end = end
        members[array] = _Member(name=array, start=start, size=compressed, crc=crc)
    if position != eocd_at:
        raise BlobCorrupt(key, f"central directory expected to hold exactly {count} entries, "
                               f"found {eocd_at - position} trailing bytes")
    if misnamed is not None:
        raise BlobCorrupt(key, f"member {misnamed!r} expected an ASCII name ending in '.npy'")
    return members


def _local_data_start(key: str, view: memoryview, offset: int, raw_name: bytes, method: int, crc: int,
                      size: int) -> int:
    """Where a member's bytes start, after its local header agrees with the central directory."""
    where = f"member {raw_name.decode('ascii', errors='replace')!r}"
    if offset + _LOCAL.size > len(view) or view[offset:offset + 4] != _LOCAL_SIGNATURE:
        raise BlobCorrupt(key, f"{where} expected a local file header at offset {offset}, found something else")
    (_, _, _, flags, local_method, _, _, local_crc, local_compressed, local_size, name_len,
     extra_len) = _LOCAL.unpack_from(view, offset)
    name_at = offset + _LOCAL.size
    extra_at = name_at + name_len
    sizes = (local_compressed, local_size)
    if sizes == (0xFFFFFFFF, 0xFFFFFFFF):  # np.savez forces zip64 local headers: sizes in the extra field
        sizes = _zip64_sizes(view[extra_at:extra_at + extra_len])
    if (bytes(view[name_at:extra_at]) != raw_name or local_method != method or local_crc != crc
            or flags & _FLAG_DATA_DESCRIPTOR or sizes != (size, size)):
        raise BlobCorrupt(key, f"{where} local header disagrees with the central directory "
                               f"(name, method, CRC or sizes {sizes} vs {size})")
    return extra_at + extra_len


def _zip64_sizes(extra: memoryview) -> tuple[int, int] | None:
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<2H", extra, position)
        if tag == _ZIP64_EXTRA and length >= 16 and position + 4 + length <= len(extra):
            uncompressed, compressed = struct.unpack_from("<2Q", extra, position + 4)
            return compressed, uncompressed
        position += 4 + length
    return None


def _npy_header(key: str, name: str, view: memoryview, member: _Member) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, absolute offset of the data) of one npy member, parsed without ast."""
    data = view[member.start:member.start + member.size]
    if data[:6] != _NPY_MAGIC or len(data) < 10:
        raise BlobCorrupt(key, f"array '{name}' expected an npy file (magic \\x93NUMPY), found other bytes")
    major = data[6]
    if major == 1:
        length, begin = struct.unpack_from("<H", data, 8)[0], 10
    elif major in (2, 3) and len(data) >= 12:
        length, begin = struct.unpack_from("<I", data, 8)[0], 12
    else:
        raise BlobCorrupt(key, f"array '{name}' expected npy format version 1, 2 or 3, found {major}")
    if length > MAX_NPY_HEADER or begin + length > len(data):
        raise BlobCorrupt(key, f"array '{name}' expected an npy header of at most {MAX_NPY_HEADER} bytes within "
                               f"its member, found {length} declared in {len(data)} bytes")
    text = bytes(data[begin:begin + length]).decode("latin-1")
    match = _NPY_HEADER.fullmatch(text)
    if match is None:
        raise BlobCorrupt(key, f"array '{name}' expected an npy header as np.save writes it, found {text[:80]!r}")
    descr = match["descr"]
    if descr[1] == "O":
        raise BlobCorrupt(key, f"array '{name}' expected a plain dtype, found a pickle-bearing object array")
    try:
        dtype = np.dtype(descr)
    except TypeError:
        raise BlobCorrupt(key, f"array '{name}' expected a numpy dtype, found {descr!r}") from None
    if match["fortran"] == "True":
        raise BlobCorrupt(key, f"array '{name}' expected C order (fortran_order False), found True")
    shape = tuple(int(part) for part in match["shape"].split(",") if part.strip())
    holds = len(data) - begin - length
    declared = math.prod(shape) * dtype.itemsize
    if declared != holds:
        # Checked before anything is allocated: a declared shape can never exceed the bytes present.
        raise BlobCorrupt(key, f"array '{name}' declares shape {shape} of {dtype} ({declared} bytes), "
                               f"found {holds} bytes in its member")
    return dtype, shape, member.start + begin + length


def _read_arrays(key: str, data: bytes | bytearray | memoryview,
                 check_crc: bool = True) -> tuple[dict[str, np.ndarray], str]:
    """The six arrays (views over ``data``) and the meta text of an archive, or the ``s43 npz`` error."""
    view = memoryview(data).cast("B")
    members = _read_members(key, view)
    missing = [name for name in EXPECTED_ARRAYS if name not in members]
    if missing:
        raise BlobMissingArray(key, f"expected arrays {list(EXPECTED_ARRAYS)}, missing {missing}")
    unexpected = sorted(set(members) - set(EXPECTED_ARRAYS))
    if unexpected:
        raise BlobSchemaMismatch(key, f"expected arrays {list(EXPECTED_ARRAYS)}, found unexpected {unexpected}")
    for member in members.values() if check_crc else ():
        if zlib.crc32(view[member.start:member.start + member.size]) != member.crc:
            raise BlobCorrupt(key, f"array '{member.name}' fails its CRC-32: the member's bytes changed")

    dtype, shape, start = _npy_header(key, META_ARRAY, view, members[META_ARRAY])
    if shape != () or dtype.kind != "U" or dtype.byteorder not in ("<", "=") or dtype.itemsize // 4 > MAX_META_CHARS:
        raise BlobSchemaMismatch(key, f"array 'meta' expected a little-endian unicode scalar of at most "
                                      f"{MAX_META_CHARS} characters, found dtype {dtype} shape {shape}")
    try:
        text = bytes(view[start:start + dtype.itemsize]).decode("utf-32-le").rstrip("\x00")
    except UnicodeDecodeError as exc:
        raise BlobCorrupt(key, f"array 'meta' expected UTF-32 text, found invalid code points ({exc.reason})") from None

    arrays: dict[str, np.ndarray] = {}
    for name, expected_dtype in ARRAY_DTYPES.items():
        dtype, shape, start = _npy_header(key, name, view, members[name])
        if dtype != expected_dtype:
            raise BlobSchemaMismatch(key, f"array '{name}' expected dtype {expected_dtype}, found {dtype}")
        if len(shape) != 1:
            raise BlobShapeMismatch(key, f"array '{name}' expected 1-D, found shape {shape}")
        arrays[name] = np.frombuffer(data, dtype=dtype, count=shape[0], offset=start)
    return arrays, text
