"""Prediction blob schema v2: one ``.npz`` per (crypto, fold, family).

v2 adds ``timeframe`` to the meta; v1 blobs (all of 5-minute bars) are upgraded on read.

A blob is what crosses the pod boundary, so it is checked as strictly on the way in as on the
way out: ``encode_blob`` refuses to write what ``decode_blob`` would refuse to read. The format
is plain ``numpy.savez`` (uncompressed: probabilities and returns barely compress, and the
gate reads dozens of blobs) and is always loaded with ``allow_pickle=False``.

Every failure is a ``ValueError`` whose message starts with one of the fail-loud prefixes of
DESIGN.md and names the key, what was expected and what was found.
"""

from __future__ import annotations

import io
import json
import zipfile
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
    if rows > 1 and not bool(np.all(np.diff(arrays["ts"]) > 0)):
        raise BlobSchemaMismatch(key, "array 'ts' expected strictly increasing epoch ms, found a repeat or a step back")
    for name in ("y_true", "y_pred"):
        if not bool(np.isin(arrays[name], (0, 1)).all()):
            raise BlobSchemaMismatch(key, f"array '{name}' expected values in {{0, 1}}, found {np.unique(arrays[name])[:5]}")
    if not bool(np.isin(arrays["exit_reason"], [reason.value for reason in ExitReason]).all()):
        raise BlobSchemaMismatch(key, "array 'exit_reason' expected values in {0=tp, 1=sl, 2=timeout}")
    proba = arrays["proba_buy"]
    if not bool(np.isfinite(proba).all()) or float(proba.min()) < 0.0 or float(proba.max()) > 1.0:
        raise BlobSchemaMismatch(key, "array 'proba_buy' expected finite values in [0, 1]")
    if not bool(np.isfinite(arrays["trade_return"]).all()):
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


def decode_blob(data: bytes, key: str, expected: BlobRef | None = None) -> PredictionBlob:
    """Parse and validate ``.npz`` bytes read from ``key``; raise the matching ``s43 npz`` error."""
    if len(data) > MAX_BLOB_BYTES:
        raise BlobCorrupt(key, f"expected at most {MAX_BLOB_BYTES} bytes, found {len(data)}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info.file_size for info in archive.infolist()}
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise BlobCorrupt(key, f"expected an .npz (zip) archive, found unreadable bytes ({exc}); truncated write?") from None
    if sum(members.values()) > MAX_BLOB_BYTES:
        raise BlobCorrupt(key, f"expected at most {MAX_BLOB_BYTES} uncompressed bytes, found {sum(members.values())}")
    names = {name.removesuffix(".npy") for name in members}
    missing = [name for name in EXPECTED_ARRAYS if name not in names]
    if missing:
        raise BlobMissingArray(key, f"expected arrays {list(EXPECTED_ARRAYS)}, missing {missing}")
    unexpected = sorted(names - set(EXPECTED_ARRAYS))
    if unexpected:
        raise BlobSchemaMismatch(key, f"expected arrays {list(EXPECTED_ARRAYS)}, found unexpected {unexpected}")

    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for name in EXPECTED_ARRAYS:
                arrays[name] = npz[name]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise BlobCorrupt(key, f"array '{name}' expected a plain dtype, found a pickle-bearing object array") from None
        raise BlobCorrupt(key, f"array '{name}' unreadable: {exc}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BlobCorrupt(key, f"array '{name}' unreadable: {exc}") from None

    raw_meta = arrays.pop(META_ARRAY)
    if raw_meta.ndim != 0 or raw_meta.dtype.kind != "U":
        raise BlobSchemaMismatch(key, f"array 'meta' expected a unicode scalar, found dtype {raw_meta.dtype} shape {raw_meta.shape}")
    text = str(raw_meta)
    if len(text) > MAX_META_CHARS:
        raise BlobCorrupt(key, f"meta expected at most {MAX_META_CHARS} characters, found {len(text)}")
    try:
        meta_dict = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BlobSchemaMismatch(key, f"meta expected a JSON object, found invalid JSON ({exc})") from None
    if not isinstance(meta_dict, dict):
        raise BlobSchemaMismatch(key, f"meta expected a JSON object, found {type(meta_dict).__name__}")
    version = meta_dict.get("schema_version")
    accepted = accepted_schema_versions()
    if version not in accepted:
        raise BlobSchemaMismatch(key, f"schema_version expected one of {accepted}, found {version!r}")
    while meta_dict["schema_version"] < SCHEMA_VERSION:
        arrays, meta_dict = UPGRADERS[meta_dict["schema_version"]](arrays, meta_dict)

    meta = _parse_meta(key, meta_dict, expected)
    _check_arrays(key, arrays)
    return PredictionBlob(meta=meta, **arrays)
