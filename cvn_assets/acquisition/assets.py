"""Acquisition assets, partitioned by campaign × crypto: candles in, prediction blobs out.

Each partition is one acquisition "pod" of the runbook: it trains a model per (fold, family)
and persists one blob per (crypto, fold, family) through the s43 IO manager.
"""


import logging
import time
from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd

from cvn_assets.acquisition.market_data import check_candles, load_candles
from cvn_assets.contracts.blob import BlobError, decode_blob, encode_blob
from cvn_assets.contracts.campaign import CampaignSpec
from cvn_assets.events import Event, log_event
from cvn_assets.partitions import acquisition_partitions, partition_identity
from cvn_assets.storage.manifests import read_manifest
from cvn_assets.storage.object_store import IntegrityError, ObjectNotFound, sha256_hex
from cvn_assets.storage.resources import ObjectStoreResource

MARKET_CANDLES = "market_candles"
S43_PREDICTIONS = "s43_predictions"
CANDLES_VALID = "candles_valid"
BLOBS_INTACT = "blobs_intact"
ACQUISITION_GROUP = "acquisition"


# Progress of a training step in its run's log: every line is kept, but written at most this often.
PROGRESS_EVERY_SECONDS = 5.0


class BatchedProgress:
    """The progress lines of a step, for its run's event log: the first one at once, the next ones
    gathered and written together (one event, one line each) once PROGRESS_EVERY_SECONDS have passed
    since the last write, and whatever is left by ``flush`` when the step ends. Each event costs the
    run a write to the event log: a 2-second acquisition of the demo writes 2 instead of 13, and a
    long one still shows where it is every few seconds."""

    def __init__(self, write: Callable[[str], None], every: float = PROGRESS_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self._write, self._every, self._clock = write, every, clock
        self._pending: list[str] = []
        self._last: float | None = None

    def __call__(self, line: str) -> None:
        self._pending.append(line)
        if self._last is None or self._clock() - self._last >= self._every:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._write("\n".join(self._pending))
            self._pending = []
            self._last = self._clock()


def campaign_spec(object_store: ObjectStoreResource, campaign_id: str) -> CampaignSpec:
    return read_manifest(object_store.store(), object_store.prefix, campaign_id).spec


@dg.asset(
    name=MARKET_CANDLES,
    partitions_def=acquisition_partitions,
    io_manager_key="candles_io_manager",
    group_name=ACQUISITION_GROUP,
    check_specs=[
        dg.AssetCheckSpec(CANDLES_VALID, asset=MARKET_CANDLES, blocking=True, partitions_def=acquisition_partitions,
                          description="timestamps strictly increasing and unique, OHLC consistent, no NaN, "
                                      "enough bars for the folds; gaps counted")
    ],
    kinds={"pandas", "parquet"},
)
def market_candles(context: dg.AssetExecutionContext, object_store: ObjectStoreResource) -> Iterator:
    """OHLCV bars of one crypto over the campaign window, at the campaign's timeframe (synthetic or user files).

    Partitions are campaign × crypto over every crypto any campaign uses: a campaign expects only
    the cryptos of its manifest, so the other cells of its row stay unmaterialized by design and
    the UI's "missing" count includes them (docs/architecture.md). The expected cohort is the
    manifest: `cvn blob ls --campaign ID`.
    """
    campaign_id, crypto = partition_identity(context.partition_key)
    spec = campaign_spec(object_store, campaign_id)
    candles = load_candles(spec, crypto)
    report = check_candles(candles, spec)
    yield dg.Output(candles, metadata={
        "bars": len(candles),
        "first_bar": pd.Timestamp(int(candles["timestamp"].iloc[0]), unit="ms", tz="UTC").isoformat(),
        "last_bar": pd.Timestamp(int(candles["timestamp"].iloc[-1]), unit="ms", tz="UTC").isoformat(),
        "data_source": spec.data_source,
        "timeframe": spec.timeframe,
    })
    yield dg.AssetCheckResult(
        check_name=CANDLES_VALID,
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"report": dg.MetadataValue.json(report.model_dump(mode="json")),
                  "problems": "\n".join(report.problems) or "none",
                  "gaps": report.gaps, "missing_bars": report.missing_bars,
                  "warnings": "\n".join(report.warnings) or "none"},
    )


@dg.asset(
    name=S43_PREDICTIONS,
    partitions_def=acquisition_partitions,
    io_manager_key="s43_io_manager",
    group_name=ACQUISITION_GROUP,
    ins={"candles": dg.AssetIn(MARKET_CANDLES)},
    check_specs=[
        dg.AssetCheckSpec(BLOBS_INTACT, asset=S43_PREDICTIONS, blocking=True,
                          partitions_def=acquisition_partitions,
                          description="read-back of every blob just written: present, checksum, schema")
    ],
    kinds={"numpy", "s3"},
)
def s43_predictions(
    context: dg.AssetExecutionContext, candles: pd.DataFrame, object_store: ObjectStoreResource
) -> Iterator:
    """Walk-forward test-fold predictions of one crypto: one blob per (fold, family).

    Like market_candles, only the campaign's own cryptos are expected: the other campaign × crypto
    cells shown as missing are partitions no campaign asked for, not failed acquisitions (the gate's
    cohort_complete check says what is really absent).
    """
    campaign_id, crypto = partition_identity(context.partition_key)
    spec = campaign_spec(object_store, campaign_id)
    # scikit-learn is imported by the step that trains, not by every process loading the definitions
    from cvn_assets.acquisition.pipeline import acquire

    started = time.monotonic()
    progress = BatchedProgress(context.log.info)
    try:
        blobs = acquire(spec, crypto, candles, progress=progress)
    except Exception as exc:
        progress.flush()
        log_event(context.log, Event.ACQUIRE_OUTCOME, logging.ERROR, campaign=campaign_id, crypto=crypto,
                  status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    progress.flush()
    log_event(context.log, Event.ACQUIRE_OUTCOME, campaign=campaign_id, crypto=crypto, status="predicted",
              blobs=len(blobs), seconds=round(time.monotonic() - started, 2))
    yield dg.Output(blobs)  # the IO manager persists here, before the read-back below

    store, prefix = object_store.store(), object_store.prefix
    problems = []
    for blob in blobs:
        key = blob.meta.ref.key(prefix)
        try:
            stored = decode_blob(store.get(key), key, expected=blob.meta.ref)
            if sha256_hex(encode_blob(stored)) != sha256_hex(encode_blob(blob)):
                problems.append(f"{key}: read back differs from what was written")
        except (ObjectNotFound, IntegrityError, BlobError) as exc:
            problems.append(f"{key}: {exc}")
    log_event(context.log, Event.ACQUIRE_OUTCOME, campaign=campaign_id, crypto=crypto,
              status="persisted" if not problems else "corrupt", blobs=len(blobs))
    yield dg.AssetCheckResult(
        check_name=BLOBS_INTACT,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"blobs_checked": len(blobs), "problems": "\n".join(problems) or "none"},
    )
