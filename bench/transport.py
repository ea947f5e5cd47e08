"""Transport benchmark: persist and load one s43 cohort several ways, in one run, on two backends.

What is timed is the path a cohort takes between the acquisition steps and the gate. Per backend:

S3 (a moto server on 127.0.0.1, spoken to over HTTP):
  cvn_io_manager  our S43PredictionIOManager over S3ObjectStore: one handle_output per acquisition
                  partition (campaign × crypto), one load_input of the whole cohort for the gate;
  s3_pickle       dagster-aws S3PickleIOManager, the same arrays as one pickled DataFrame per blob;
  raw             the reference: boto3 put_object / get_object + np.savez / np.load, one by one;
  raw_threaded    the same with the IO manager's pool size (what concurrency alone buys).
local disk (a temporary directory):
  cvn_io_manager  the same IO manager over LocalObjectStore;
  filesystem_pickle  dagster's FilesystemIOManager, pickled DataFrames;
  raw, raw_threaded  files + np.savez / np.load.

Ratios are against ``raw`` of the same backend measured in the same run, so they compare across
machines where seconds do not. Speed is measured, never asserted. Every load is compared with what
was written, array by array, bit for bit (and meta for our IO manager): if any method loads back
different data the benchmark exits 1 — a figure for a broken path is worthless.

One JSON object goes to stdout; progress goes to stderr.
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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import numpy as np
import pandas as pd
from dagster_aws.s3 import S3PickleIOManager, S3Resource

# Run as a script (`python bench/transport.py`): the repository root holds the test fixtures reused here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvn_assets.contracts.blob import BlobMeta, PredictionBlob  # noqa: E402
from cvn_assets.contracts.campaign import UNIVERSES_ENV, CampaignManifest, CampaignSpec  # noqa: E402
from cvn_assets.contracts.keys import BlobRef  # noqa: E402
from cvn_assets.gate.cohort import Cohort  # noqa: E402
from cvn_assets.partitions import (  # noqa: E402
    CAMPAIGN_DIMENSION,
    CRYPTO_DIMENSION,
    acquisition_partition_key,
    acquisition_partitions,
    campaign_partitions,
)
from cvn_assets.storage.io_manager import S43PredictionIOManager  # noqa: E402
from cvn_assets.storage.manifests import write_manifest  # noqa: E402
from cvn_assets.storage.object_store import LocalObjectStore, S3ObjectStore  # noqa: E402
from cvn_assets.storage.resources import ObjectStoreResource  # noqa: E402
from cvn_assets.storage.settings import StorageSettings  # noqa: E402
from cvn_assets_tests.fixtures.blobs import sample_blob  # noqa: E402
from cvn_assets_tests.fixtures.s3 import CREDENTIALS, MotoServer, start_moto_server  # noqa: E402

FOLDS = 3
FAMILIES = ("naive", "logreg", "hgb")
BLOBS_PER_CRYPTO = FOLDS * len(FAMILIES)
BENCH_GROUP = "bench"
BUCKET = "cvn-bench"
REGION = "us-east-1"
PREDICTIONS = dg.AssetKey("s43_predictions")
MAX_CRYPTOS = 600  # 5,400 blobs: the 5,000-blob local figure of issue #17
QUICK = {"blobs": 18, "rows": 2_000, "repeat": 1}
WARMUP_ROWS = 200
PACKAGES = ("dagster", "dagster-aws", "numpy", "pandas", "boto3", "botocore", "moto", "pydantic", "cvn_assets")

# What a load gives back, per blob path "{campaign}/{crypto}/{family}/fold-{k:02d}": the meta when
# the method carries it (ours does, the others store arrays only) and the six arrays.
Loaded = Mapping[str, tuple[BlobMeta | None, Mapping[str, np.ndarray]]]


class BenchmarkFailure(RuntimeError):
    """A method loaded back something other than what was written."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def crypto_names(count: int) -> list[str]:
    return [f"C{index:02d}USDC" for index in range(count)]


def blob_path(campaign_id: str, crypto: str, family: str, fold: int) -> str:
    return f"{campaign_id}/{crypto}/{family}/fold-{fold:02d}"


def path_of(meta: BlobMeta | BlobRef) -> str:
    return blob_path(meta.campaign_id, meta.crypto, meta.family, meta.fold)


def make_cohort(campaign_id: str, cryptos: Sequence[str], rows: int, seed: int) -> list[PredictionBlob]:
    """Real schema-v1 blobs with random but valid arrays; a different seed per blob and per round."""
    return [
        sample_blob(campaign_id=campaign_id, crypto=crypto, fold=fold, family=family, rows=rows,
                    seed=seed * 100_000 + index)
        for index, (crypto, family, fold) in enumerate(
            (crypto, family, fold) for crypto in cryptos for family in FAMILIES for fold in range(FOLDS))
    ]


def write_universes(path: Path, cryptos: Sequence[str]) -> None:
    """A crypto group for the synthetic symbols, so CampaignSpec validates them like any campaign."""
    path.write_text(json.dumps({"groups": {BENCH_GROUP: {"symbols": list(cryptos)}}}))  # JSON is YAML


def campaign_manifest(campaign_id: str, cryptos: Sequence[str]) -> CampaignManifest:
    spec = CampaignSpec(campaign_id=campaign_id, group=BENCH_GROUP, symbols=list(cryptos), folds=FOLDS,
                        families=list(FAMILIES))
    return CampaignManifest.for_spec(spec)


Context = TypeVar("Context", dg.OutputContext, dg.InputContext)


def quiet(context: Context) -> Context:
    """Console logging off for this context: the pickle managers log a DEBUG line per object, which
    would time the terminal. Set before the first log call (a Logger caches isEnabledFor)."""
    context.log.setLevel(logging.WARNING)
    return context


def verify(method: str, blobs: Sequence[PredictionBlob], loaded: Loaded) -> None:
    """Raise BenchmarkFailure unless ``loaded`` holds exactly ``blobs``, bit for bit."""
    expected = {path_of(blob.meta): blob for blob in blobs}
    if set(loaded) != set(expected):
        missing, unexpected = sorted(set(expected) - set(loaded)), sorted(set(loaded) - set(expected))
        raise BenchmarkFailure(f"{method}: expected {len(expected)} blobs, loaded {len(loaded)}; "
                               f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for path, blob in expected.items():
        meta, arrays = loaded[path]
        if meta is not None and meta != blob.meta:
            raise BenchmarkFailure(f"{method}: {path}: meta expected {blob.meta!r}, found {meta!r}")
        written_arrays = blob.arrays()
        if set(arrays) != set(written_arrays):
            raise BenchmarkFailure(
                f"{method}: {path}: arrays expected {sorted(written_arrays)}, found {sorted(arrays)}")
        for name, written in written_arrays.items():
            found = arrays[name]
            if (found.dtype, found.shape) != (written.dtype, written.shape):
                raise BenchmarkFailure(f"{method}: {path}: array {name!r} expected {written.dtype}{written.shape}, "
                                       f"found {found.dtype}{found.shape}")
            if found.tobytes() != written.tobytes():
                differing = int(np.count_nonzero(found != written))
                raise BenchmarkFailure(f"{method}: {path}: array {name!r} expected the written values, "
                                       f"found {differing} of {written.size} elements different")


# ---- the methods ---------------------------------------------------------------------------------
# Each method prepares its Dagster contexts / buffers outside the timed call, and returns the
# timed action. Building a Dagster context is test scaffolding, not transport.

@dataclass
class Method:
    """One way to move a cohort: ``persist`` / ``load`` prepare a round (untimed) and return the
    timed action; ``unpack`` turns what the load returned into blobs for ``verify``."""

    name: str
    via: str
    persist: Callable[[str, Sequence[PredictionBlob]], Callable[[], object]]
    load: Callable[[str, Sequence[PredictionBlob]], Callable[[], object]]
    unpack: Callable[[Any], Loaded]
    stored_bytes: Callable[[str], int]


def cvn_io_manager(settings: StorageSettings, instance: dg.DagsterInstance, resources: Any, via: str) -> Method:
    resource = ObjectStoreResource.from_settings(settings)
    manager = S43PredictionIOManager(object_store=resource)
    store = resource.store()

    def persist(campaign_id: str, blobs: Sequence[PredictionBlob]) -> Callable[[], object]:
        by_crypto: dict[str, list[PredictionBlob]] = {}
        for blob in blobs:
            by_crypto.setdefault(blob.meta.crypto, []).append(blob)
        # Registration, as `cvn campaign launch` does before any acquisition runs: not transport.
        write_manifest(store, settings.prefix, campaign_manifest(campaign_id, sorted(by_crypto)))
        instance.add_dynamic_partitions(CAMPAIGN_DIMENSION, [campaign_id])
        instance.add_dynamic_partitions(CRYPTO_DIMENSION, sorted(by_crypto))
        calls = [
            (quiet(dg.build_output_context(
                asset_key=PREDICTIONS, partition_key=acquisition_partition_key(campaign_id, crypto),
                asset_partitions_def=acquisition_partitions, instance=instance, resources=resources)), group)
            for crypto, group in by_crypto.items()
        ]
        return lambda: [manager.handle_output(context, group) for context, group in calls]

    def load(campaign_id: str, blobs: Sequence[PredictionBlob]) -> Callable[[], object]:
        context = quiet(dg.build_input_context(asset_key=PREDICTIONS, partition_key=campaign_id,
                                               asset_partitions_def=campaign_partitions, instance=instance))
        return lambda: manager.load_input(context)

    def unpack(cohort: Cohort) -> Loaded:
        if not cohort.complete:
            raise BenchmarkFailure(f"cvn_io_manager: cohort incomplete, absent {cohort.missing_keys[:3]}")
        return {path_of(entry.ref): (entry.blob.meta, entry.blob.arrays())
                for entry in cohort.entries if entry.blob is not None}

    def stored_bytes(campaign_id: str) -> int:
        return sum(info.size for info in store.list(f"{settings.prefix}/{campaign_id}/") if info.key.endswith(".npz"))

    return Method("cvn_io_manager", via, persist, load, unpack, stored_bytes)


class InputContexts:
    """Input contexts by asset key, shared by every round and backend: building one costs ~50 ms
    (Dagster makes an ephemeral instance for it), and a load does not change it."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self.contexts: dict[dg.AssetKey, dg.InputContext] = {}

    def get(self, asset_key: dg.AssetKey) -> dg.InputContext:
        if asset_key not in self.contexts:
            self.contexts[asset_key] = quiet(dg.build_input_context(asset_key=asset_key, instance=self.instance))
        return self.contexts[asset_key]


def pickle_io_manager(name: str, manager_for: Callable[[str], dg.IOManager], instance: dg.DagsterInstance,
                      resources: Any, input_contexts: InputContexts, via: str,
                      stored_bytes: Callable[[str], int]) -> Method:
    """A pickling UPathIOManager, one asset key (= one object) per blob, as a DataFrame of its arrays.

    ``manager_for(campaign_id)`` gives a ready manager whose base path is that campaign's, so the
    asset keys (crypto, family, fold) and their input contexts are the same in every round.
    """
    managers: dict[str, dg.IOManager] = {}

    def asset_key(meta: BlobMeta) -> dg.AssetKey:
        return dg.AssetKey([meta.crypto, meta.family, f"fold-{meta.fold:02d}"])

    def persist(campaign_id: str, blobs: Sequence[PredictionBlob]) -> Callable[[], object]:
        if campaign_id not in managers:
            managers[campaign_id] = manager_for(campaign_id)
        manager = managers[campaign_id]
        calls = [(quiet(dg.build_output_context(asset_key=asset_key(blob.meta), instance=instance,
                                                resources=resources)), pd.DataFrame(blob.arrays()))
                 for blob in blobs]
        return lambda: [manager.handle_output(context, frame) for context, frame in calls]

    def load(campaign_id: str, blobs: Sequence[PredictionBlob]) -> Callable[[], object]:
        manager = managers[campaign_id]
        calls = [(path_of(blob.meta), input_contexts.get(asset_key(blob.meta))) for blob in blobs]
        return lambda: {path: manager.load_input(context) for path, context in calls}

    def unpack(frames: dict[str, pd.DataFrame]) -> Loaded:
        return {path: (None, {column: frame[column].to_numpy() for column in frame.columns})
                for path, frame in frames.items()}

    return Method(name, via, persist, load, unpack, stored_bytes)


def raw_method(name: str, put: Callable[[str, bytes], object], get: Callable[[str], bytes], via: str,
               stored_bytes: Callable[[str], int], threads: int = 1) -> Method:
    """np.savez / np.load(allow_pickle=False) over plain put/get of bytes; ``threads`` > 1 maps them on a pool."""

    def run_all(action: Callable[[PredictionBlob], object], blobs: Sequence[PredictionBlob]) -> list[object]:
        if threads == 1:
            return [action(blob) for blob in blobs]
        with ThreadPoolExecutor(max_workers=min(threads, len(blobs))) as pool:
            return list(pool.map(action, blobs))

    def write(blob: PredictionBlob) -> object:
        buffer = io.BytesIO()
        np.savez(buffer, **blob.arrays())
        return put(path_of(blob.meta), buffer.getvalue())

    def read(blob: PredictionBlob) -> tuple[str, dict[str, np.ndarray]]:
        with np.load(io.BytesIO(get(path_of(blob.meta))), allow_pickle=False) as npz:
            return path_of(blob.meta), {name: npz[name] for name in npz.files}

    def unpack(pairs: list[tuple[str, dict[str, np.ndarray]]]) -> Loaded:
        return {path: (None, arrays) for path, arrays in pairs}

    return Method(name, via, lambda _, blobs: lambda: run_all(write, blobs),
                  lambda _, blobs: lambda: run_all(read, blobs), unpack, stored_bytes)


def s3_methods(server: MotoServer, instance: dg.DagsterInstance, resources: Any, input_contexts: InputContexts,
               threads: int) -> list[Method]:
    s3 = S3Resource(endpoint_url=server.endpoint_url, region_name=REGION)
    client = s3.get_client()  # the raw methods use the same botocore configuration as the managers
    client.create_bucket(Bucket=BUCKET)

    def listed_bytes(prefix: str) -> int:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sum(item["Size"] for page in pages for item in page.get("Contents", []))

    def raw_s3(name: str, count: int) -> Method:
        return raw_method(
            name, lambda key, data: client.put_object(Bucket=BUCKET, Key=f"{name}/{key}", Body=data),
            lambda key: client.get_object(Bucket=BUCKET, Key=f"{name}/{key}")["Body"].read(),
            f"boto3 put_object/get_object + np.savez/np.load, {'sequential' if count == 1 else f'{count} threads'}",
            lambda campaign_id: listed_bytes(f"{name}/{campaign_id}/"), threads=count)

    settings = StorageSettings(backend="s3", bucket=BUCKET, endpoint_url=server.endpoint_url, region_name=REGION)
    return [
        cvn_io_manager(settings, instance, resources,
                       "S43PredictionIOManager over S3ObjectStore (dagster-aws S3Resource)"),
        # inner_io_manager() is what S3PickleIOManager delegates every call to; built here, untimed,
        # so its boto3 client exists before the clock starts, as ours and raw's do.
        pickle_io_manager(
            "s3_pickle",
            lambda campaign_id: S3PickleIOManager(
                s3_resource=s3, s3_bucket=BUCKET, s3_prefix=f"s3_pickle/{campaign_id}").inner_io_manager(),
            instance, resources, input_contexts, "dagster-aws S3PickleIOManager, a pickled DataFrame per blob",
            lambda campaign_id: listed_bytes(f"s3_pickle/{campaign_id}/")),
        raw_s3("raw", 1),
        raw_s3("raw_threaded", threads),
    ]


def local_methods(root: Path, instance: dg.DagsterInstance, resources: Any, input_contexts: InputContexts,
                  threads: int) -> list[Method]:
    def tree_bytes(directory: Path) -> int:
        return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file() and not path.is_symlink())

    def raw_files(name: str, count: int) -> Method:
        def put(key: str, data: bytes) -> None:
            path = root / name / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        return raw_method(name, put, lambda key: (root / name / key).read_bytes(),
                          f"files + np.savez/np.load, {'sequential' if count == 1 else f'{count} threads'}",
                          lambda campaign_id: tree_bytes(root / name / campaign_id), threads=count)

    return [
        cvn_io_manager(StorageSettings(backend="local", local_root=str(root / "cvn")), instance, resources,
                       "S43PredictionIOManager over LocalObjectStore"),
        pickle_io_manager(
            "filesystem_pickle",
            lambda campaign_id: dg.FilesystemIOManager(base_dir=str(root / "filesystem_pickle" / campaign_id))
            .create_io_manager(dg.build_init_resource_context()),
            instance, resources, input_contexts, "dagster FilesystemIOManager, a pickled DataFrame per blob",
            lambda campaign_id: tree_bytes(root / "filesystem_pickle" / campaign_id)),
        raw_files("raw", 1),
        raw_files("raw_threaded", threads),
    ]


# ---- the run -------------------------------------------------------------------------------------

def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def round_trip(method: Method, campaign_id: str, blobs: Sequence[PredictionBlob]) -> tuple[float, float]:
    persist_s, _ = timed(method.persist(campaign_id, blobs))
    load_s, result = timed(method.load(campaign_id, blobs))
    verify(method.name, blobs, method.unpack(result))
    return persist_s, load_s


def measure_backend(backend: str, methods: Sequence[Method], rounds: Sequence[tuple[str, list[PredictionBlob]]],
                    warmup: tuple[str, list[PredictionBlob]]) -> dict[str, dict[str, Any]]:
    """Median of the rounds. Each round runs every method on the same cohort, in a rotated order,
    so a load spike on this shared machine does not land on one method only."""
    for method in methods:  # untimed: boto3 connection pools, imports and code paths warmed alike
        round_trip(method, *warmup)
    samples: dict[str, dict[str, list[float]]] = {method.name: {"persist": [], "load": []} for method in methods}
    for index, (campaign_id, blobs) in enumerate(rounds):
        shift = index % len(methods)
        for method in [*methods[shift:], *methods[:shift]]:
            persist_s, load_s = round_trip(method, campaign_id, blobs)
            samples[method.name]["persist"].append(persist_s)
            samples[method.name]["load"].append(load_s)
    results = {}
    for method in methods:
        persist, load = samples[method.name]["persist"], samples[method.name]["load"]
        results[method.name] = {
            "via": method.via,
            "persist_s": round(statistics.median(persist), 4),
            "load_s": round(statistics.median(load), 4),
            "stored_mb": round(method.stored_bytes(rounds[0][0]) / 1e6, 2),
            "persist_samples_s": [round(value, 4) for value in persist],
            "load_samples_s": [round(value, 4) for value in load],
        }
        log(f"  {backend:5} {method.name:18} persist {results[method.name]['persist_s']:7.3f} s   "
            f"load {results[method.name]['load_s']:7.3f} s   {results[method.name]['stored_mb']:6.1f} MB")
    return results


def ratios(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    def ratio(name: str, reference: str) -> dict[str, float]:
        return {phase: round(results[name][f"{phase}_s"] / results[reference][f"{phase}_s"], 2)
                for phase in ("persist", "load")}

    out = {f"{name}_vs_raw": ratio(name, "raw") for name in results if name != "raw"}
    out["cvn_io_manager_vs_raw_threaded"] = ratio("cvn_io_manager", "raw_threaded")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/transport.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blobs", type=int, default=90,
                        help=f"blobs in the cohort, a multiple of {BLOBS_PER_CRYPTO} (folds × families per crypto); "
                             "default 90 = 10 cryptos")
    parser.add_argument("--rows", type=int, default=17_280,
                        help="rows per blob; default 17,280 = 60 days of 5-minute bars")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the median is reported (default 3)")
    parser.add_argument("--backends", default="s3,local",
                        help="comma-separated backends to measure, of s3 and local (default both)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK['blobs']} blobs of {QUICK['rows']} rows, {QUICK['repeat']} round "
                             "(overrides --blobs, --rows, --repeat)")
    args = parser.parse_args(argv)
    if args.quick:
        args.blobs, args.rows, args.repeat = QUICK["blobs"], QUICK["rows"], QUICK["repeat"]
    if args.blobs < BLOBS_PER_CRYPTO or args.blobs % BLOBS_PER_CRYPTO or args.blobs > MAX_CRYPTOS * BLOBS_PER_CRYPTO:
        parser.error(f"--blobs must be a multiple of {BLOBS_PER_CRYPTO} between {BLOBS_PER_CRYPTO} and "
                     f"{MAX_CRYPTOS * BLOBS_PER_CRYPTO} (every crypto has {FOLDS} folds × {len(FAMILIES)} families), "
                     f"got {args.blobs}")
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    if not args.backends or set(args.backends) - {"s3", "local"}:
        parser.error(f"--backends expected a comma-separated subset of s3,local, got {','.join(args.backends)!r}")
    if args.rows < 1:
        parser.error(f"--rows must be at least 1, got {args.rows}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    return args


def run(args: argparse.Namespace, scratch: Path, stack: ExitStack) -> dict[str, Any]:
    cryptos = crypto_names(args.blobs // BLOBS_PER_CRYPTO)
    universes = scratch / "universes.yaml"
    write_universes(universes, cryptos)
    os.environ[UNIVERSES_ENV] = str(universes)
    os.environ.update(CREDENTIALS)

    instance = stack.enter_context(dg.instance_for_test())
    # One Resources object shared by every output context: otherwise each context builds an
    # ephemeral Dagster instance (~45 ms, alembic stamp), minutes of scaffolding at full size.
    resources = stack.enter_context(dg.build_resources({}, instance=instance))
    input_contexts = InputContexts(instance)
    log("starting moto_server on 127.0.0.1")
    server = start_moto_server()
    stack.callback(server.stop)

    warmup = ("bench-warmup", make_cohort("bench-warmup", cryptos[:1], WARMUP_ROWS, seed=999))
    rounds = [(f"bench-r{index:02d}", make_cohort(f"bench-r{index:02d}", cryptos, args.rows, seed=index))
              for index in range(args.repeat)]
    # raw_threaded uses the pool our IO manager uses on each backend (sized by the store), so the
    # ratio compares the same concurrency.
    workers = {"s3": S3ObjectStore.concurrency, "local": LocalObjectStore(scratch / "local" / "cvn").concurrency}
    array_bytes = sum(array.nbytes for blob in rounds[0][1] for array in blob.arrays().values())
    log(f"cohort: {args.blobs} blobs × {args.rows} rows = {array_bytes / 1e6:.1f} MB of arrays, "
        f"{args.repeat} round(s) + 1 warm-up per backend")

    results = {}
    if "s3" in args.backends:
        results["s3"] = measure_backend("s3", s3_methods(server, instance, resources, input_contexts, workers["s3"]),
                                        rounds, warmup)
    if "local" in args.backends:
        results["local"] = measure_backend("local", local_methods(scratch / "local", instance, resources,
                                                                  input_contexts, workers["local"]), rounds, warmup)
    return {
        "benchmark": "s43 prediction transport",
        "parameters": {
            "blobs": args.blobs, "cryptos": len(cryptos), "folds": FOLDS, "families": list(FAMILIES),
            "rows_per_blob": args.rows, "repeat": args.repeat, "quick": args.quick, "backends": args.backends,
            "cohort_array_mb": round(array_bytes / 1e6, 2), "io_manager_workers": workers,
            "s3": f"moto_server {version('moto')} on 127.0.0.1 over HTTP", "local": "temporary directory",
        },
        "environment": {
            "python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "packages": {package: version(package) for package in PACKAGES},
        },
        "results": results,
        "ratios": {backend: ratios(values) for backend, values in results.items()},
        "verified": "every method's loads equal the written blobs bit for bit (and meta for cvn_io_manager)",
        "notes": [
            "ratios are median seconds over the median of 'raw' (sequential) of the same backend, same run",
            "cvn_io_manager also stores and verifies a SHA-256 per object, validates every blob's schema and "
            "meta, reads the campaign manifest, and on local disk writes temp file + fsync + rename",
            "s3_pickle / filesystem_pickle unpickle on load, which the s43 transport never does",
            "Dagster contexts are built outside the timed calls; console logging is off for all methods",
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cvn-bench-")))
        try:
            report = run(args, scratch, stack)
        except BenchmarkFailure as exc:
            log(f"transport benchmark FAILED, a method loaded back different data: {exc}")
            return 1
    log(f"done in {time.perf_counter() - started:.1f} s")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
