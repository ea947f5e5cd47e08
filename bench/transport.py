"""Transport benchmark: persist and load one cohort of prediction blobs, several ways, in one run.

Compared on the S3 API (a moto server on 127.0.0.1, over HTTP) and on the local disk:

- ``cvn_io_manager``: our S43PredictionIOManager (one handle_output per campaign × crypto partition,
  one load_input of the whole cohort), through the object store of that backend;
- ``pickle_io_manager``: dagster-aws S3PickleIOManager on S3, dagster's FilesystemIOManager on
  disk, with each blob's arrays as a pickled pandas DataFrame (one object per blob);
- ``raw``: the floor — boto3 put_object/get_object or plain files, with np.savez / np.load.

Ratios are against ``raw`` of the same backend measured in the same run (speed is measured,
never asserted). Every method's loaded arrays are compared with what was written: a benchmark of
a path that loses data exits non-zero.

    .venv/bin/python bench/transport.py            # 90 blobs of 17,280 rows, 3 repeats
    .venv/bin/python bench/transport.py --quick    # a small smoke run
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import boto3
import dagster as dg
import numpy as np
import pandas as pd
from dagster_aws.s3 import S3PickleIOManager, S3Resource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvn_assets.contracts.blob import SCHEMA_VERSION, BlobMeta, PredictionBlob, Pte, Window, make_blob  # noqa: E402
from cvn_assets.contracts.campaign import CampaignManifest, CampaignSpec, producer_version  # noqa: E402
from cvn_assets.contracts.keys import BlobRef  # noqa: E402
from cvn_assets.gate.cohort import Cohort  # noqa: E402
from cvn_assets.partitions import acquisition_partition_key, acquisition_partitions, campaign_partitions  # noqa: E402
from cvn_assets.storage.io_manager import S43PredictionIOManager  # noqa: E402
from cvn_assets.storage.manifests import write_manifest  # noqa: E402
from cvn_assets.storage.resources import ObjectStoreResource  # noqa: E402
from cvn_assets.storage.settings import StorageSettings  # noqa: E402
from cvn_assets_tests.fixtures.s3 import CREDENTIALS, start_moto_server  # noqa: E402

FAMILIES = ("naive", "logreg", "hgb")
FOLDS = 3
SYMBOLS = [f"SYM{index:02d}" for index in range(100)]
ARRAYS = ("ts", "y_true", "proba_buy", "y_pred", "exit_reason", "trade_return")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_cohort(campaign_id: str, cryptos: int, rows: int, seed: int = 0) -> list[PredictionBlob]:
    rng = np.random.default_rng(seed)
    blobs = []
    for crypto in SYMBOLS[:cryptos]:
        for family in FAMILIES:
            for fold in range(FOLDS):
                start = 1_700_000_000_000 + fold * rows * 300_000
                proba = rng.random(rows).astype(np.float32)
                meta = BlobMeta(
                    schema_version=SCHEMA_VERSION, campaign_id=campaign_id, crypto=crypto, fold=fold, family=family,
                    pte=Pte(sl=1.0, tp=2.0, horizon=12), threshold=0.5,
                    train=Window(start_ms=start - 20 * 86_400_000, end_ms=start - 2 * 86_400_000),
                    validation=Window(start_ms=start - 2 * 86_400_000, end_ms=start),
                    test=Window(start_ms=start, end_ms=start + rows * 300_000),
                    screening_f1_buy=0.5, validation_f1_buy=0.5, fees_bps=10.0, producer_version="bench",
                )
                blobs.append(make_blob(
                    meta, ts=start + np.arange(rows, dtype=np.int64) * 300_000,
                    y_true=(rng.random(rows) < 0.4).astype(np.int8), proba_buy=proba,
                    y_pred=(proba > 0.5).astype(np.int8), exit_reason=rng.integers(0, 3, rows).astype(np.int8),
                    trade_return=rng.normal(0, 0.01, rows).astype(np.float32)))
    return blobs


def manifest_for(campaign_id: str, blobs: list[PredictionBlob]) -> CampaignManifest:
    cryptos = sorted({blob.meta.crypto for blob in blobs})
    spec = CampaignSpec.model_construct(  # a synthetic universe: the registry's group check does not apply
        campaign_id=campaign_id, group="bench", symbols=cryptos, folds=FOLDS, families=list(FAMILIES),
        horizons=[1], sl_range=[1.0], tp_range=[2.0], hpo_trials=0, backtest_days=60, data_source="synthetic",
        data_dir=None, seed=0, fees_bps=10.0, planted_signal=0.0)
    expected = [BlobRef(campaign_id=campaign_id, crypto=c, fold=k, family=f)
                for c in cryptos for f in FAMILIES for k in range(FOLDS)]
    return CampaignManifest.model_construct(manifest_version=1, spec=spec, expected=expected,
                                            created_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
                                            producer_version=producer_version())


def fingerprint(arrays: dict[str, np.ndarray]) -> tuple:
    return tuple((name, arrays[name].dtype.str, arrays[name].tobytes()) for name in ARRAYS)


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


# ---- the three methods -------------------------------------------------------------------------

def ours(settings: StorageSettings, instance: dg.DagsterInstance):
    resource = ObjectStoreResource.from_settings(settings)
    manager = S43PredictionIOManager(object_store=resource)

    def persist(campaign_id: str, blobs: list[PredictionBlob]) -> Callable[[], None]:
        write_manifest(resource.store(), settings.prefix, manifest_for(campaign_id, blobs))  # registration
        by_crypto: dict[str, list[PredictionBlob]] = {}
        for blob in blobs:
            by_crypto.setdefault(blob.meta.crypto, []).append(blob)
        instance.add_dynamic_partitions("campaign", [campaign_id])
        instance.add_dynamic_partitions("crypto", sorted(by_crypto))
        calls = [(dg.build_output_context(asset_key="s43_predictions", asset_partitions_def=acquisition_partitions,
                                          partition_key=acquisition_partition_key(campaign_id, crypto),
                                          instance=instance), group)
                 for crypto, group in by_crypto.items()]
        return lambda: [manager.handle_output(context, group) for context, group in calls]

    def load(campaign_id: str, blobs: list[PredictionBlob]) -> Callable[[], list[dict[str, np.ndarray]]]:
        context = dg.build_input_context(asset_key="s43_predictions", partition_key=campaign_id,
                                         asset_partitions_def=campaign_partitions, instance=instance)

        def run() -> list[dict[str, np.ndarray]]:
            cohort: Cohort = manager.load_input(context)
            if not cohort.complete:
                raise SystemExit(f"cvn_io_manager lost blobs: {cohort.missing_keys[:3]}")
            return [entry.blob.arrays() for entry in cohort.entries]

        return run

    return persist, load


def pickle_io(manager: dg.IOManager):
    def context_key(blob_meta: BlobMeta) -> list[str]:
        return ["bench", blob_meta.campaign_id, blob_meta.crypto, blob_meta.family, f"fold_{blob_meta.fold:02d}"]

    def persist(campaign_id: str, blobs: list[PredictionBlob]) -> Callable[[], None]:
        calls = [(dg.build_output_context(asset_key=context_key(blob.meta)), pd.DataFrame(blob.arrays()))
                 for blob in blobs]
        return lambda: [manager.handle_output(context, frame) for context, frame in calls]

    def load(campaign_id: str, blobs: list[PredictionBlob]) -> Callable[[], list[dict[str, np.ndarray]]]:
        contexts = [dg.build_input_context(asset_key=context_key(blob.meta),
                                           upstream_output=dg.build_output_context(asset_key=context_key(blob.meta)))
                    for blob in blobs]

        def run() -> list[dict[str, np.ndarray]]:
            frames = [manager.load_input(context) for context in contexts]
            return [{name: frame[name].to_numpy() for name in ARRAYS} for frame in frames]

        return run

    return persist, load


def raw(put: Callable[[str, bytes], None], get: Callable[[str], bytes]):
    def key(meta: BlobMeta) -> str:
        return f"raw/{meta.campaign_id}/{meta.crypto}/{meta.family}/fold-{meta.fold:02d}.npz"

    def persist(campaign_id: str, blobs: list[PredictionBlob]) -> Callable[[], None]:
        def run() -> None:
            for blob in blobs:
                buffer = io.BytesIO()
                np.savez(buffer, **blob.arrays())
                put(key(blob.meta), buffer.getvalue())

        return run

    def load(campaign_id: str, blobs: list[PredictionBlob]) -> Callable[[], list[dict[str, np.ndarray]]]:
        def run() -> list[dict[str, np.ndarray]]:
            loaded = []
            for blob in blobs:
                with np.load(io.BytesIO(get(key(blob.meta))), allow_pickle=False) as npz:
                    loaded.append({name: npz[name] for name in ARRAYS})
            return loaded

        return run

    return persist, load


# ---- the run ------------------------------------------------------------------------------------

def measure(name: str, method, cryptos: int, rows: int, repeat: int) -> dict[str, float]:
    """Median seconds of ``repeat`` persist and load calls; each method returns timed actions."""
    persist, load = method
    persist_times, load_times = [], []
    for attempt in range(repeat):
        campaign_id = f"bench-{name.replace('_', '-')}-{attempt:02d}"
        blobs = make_cohort(campaign_id, cryptos, rows, seed=attempt)
        elapsed, _ = timed(persist(campaign_id, blobs))  # contexts are built outside the timed call
        persist_times.append(elapsed)
        elapsed, loaded = timed(load(campaign_id, blobs))
        load_times.append(elapsed)
        expected = sorted(fingerprint(blob.arrays()) for blob in blobs)
        if sorted(fingerprint(arrays) for arrays in loaded) != expected:
            raise SystemExit(f"{name}: the arrays loaded back differ from those written")
    log(f"  {name}: persist {statistics.median(persist_times):.3f} s, load {statistics.median(load_times):.3f} s")
    return {"persist_s": round(statistics.median(persist_times), 4), "load_s": round(statistics.median(load_times), 4)}


def ratios(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    floor = results["raw"]
    return {f"{name}_vs_raw": {phase: round(values[f"{phase}_s"] / floor[f"{phase}_s"], 2) for phase in ("persist", "load")}
            for name, values in results.items() if name != "raw"}


def main() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)  # per-object DEBUG lines would drown the figures
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cryptos", type=int, default=10, help="cryptos in the cohort (× 3 folds × 3 families)")
    parser.add_argument("--rows", type=int, default=17_280, help="rows per blob (60 days of 5-minute bars)")
    parser.add_argument("--repeat", type=int, default=3, help="repeats per method; the median is reported")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 cryptos, 2,000 rows, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.cryptos, args.rows, args.repeat = 2, 2_000, 1
    if not 1 <= args.cryptos <= len(SYMBOLS) or args.rows < 1 or args.repeat < 1:
        parser.error(f"--cryptos must be 1..{len(SYMBOLS)}, --rows and --repeat at least 1")

    os.environ.update(CREDENTIALS)
    server = start_moto_server()
    results: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch, dg.instance_for_test() as instance:
            root = Path(scratch)
            bucket = "cvn-bench"
            client = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1")
            client.create_bucket(Bucket=bucket)
            s3_settings = StorageSettings(backend="s3", bucket=bucket, endpoint_url=server.endpoint_url,
                                          region_name="us-east-1")
            log(f"S3 (moto server {server.endpoint_url}), {args.cryptos * 9} blobs × {args.rows} rows")
            s3 = {
                "cvn_io_manager": measure("cvn_io_manager", ours(s3_settings, instance), args.cryptos, args.rows, args.repeat),
                "pickle_io_manager": measure("s3_pickle", pickle_io(S3PickleIOManager(
                    s3_resource=S3Resource(endpoint_url=server.endpoint_url, region_name="us-east-1"),
                    s3_bucket=bucket, s3_prefix="pickle")), args.cryptos, args.rows, args.repeat),
                "raw": measure("raw_boto3", raw(
                    lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data),
                    lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read()),
                    args.cryptos, args.rows, args.repeat),
            }
            log(f"local disk ({root})")
            local_settings = StorageSettings(backend="local", local_root=str(root / "objects"))

            def put_file(key: str, data: bytes) -> None:
                path = root / "raw-files" / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

            local = {
                "cvn_io_manager": measure("cvn_io_manager", ours(local_settings, instance), args.cryptos, args.rows, args.repeat),
                "pickle_io_manager": measure("filesystem_pickle", pickle_io(dg.FilesystemIOManager(
                    base_dir=str(root / "pickle")).create_io_manager(dg.build_init_resource_context())),
                    args.cryptos, args.rows, args.repeat),
                "raw": measure("raw_files", raw(put_file, lambda key: (root / "raw-files" / key).read_bytes()),
                               args.cryptos, args.rows, args.repeat),
            }
            results = {"s3": s3, "local": local}
    finally:
        server.stop()

    blob_bytes = sum(array.nbytes for array in make_cohort("size-000", 1, args.rows)[0].arrays().values())
    print(json.dumps({
        "benchmark": "s43 prediction transport",
        "parameters": {"blobs": args.cryptos * 9, "rows_per_blob": args.rows, "repeat": args.repeat,
                       "array_bytes_per_blob": blob_bytes, "cohort_mb": round(blob_bytes * args.cryptos * 9 / 1e6, 1)},
        "environment": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "dagster": version("dagster"), "dagster-aws": version("dagster-aws"),
                        "numpy": version("numpy"), "boto3": version("boto3"), "moto": version("moto")},
        "seconds": results,
        "ratios": {backend: ratios(values) for backend, values in results.items()},
        "notes": "cvn_io_manager writes and reads concurrently (8 threads) and verifies SHA-256 and the schema "
                 "of every blob; pickle_io_manager and raw do neither.",
    }, indent=2))


if __name__ == "__main__":
    main()
