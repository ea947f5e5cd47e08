"""Decoder benchmark: peak memory of the blob reader on compression bombs and on a normal cohort,
and its speed against the ``np.load`` decoder it replaced (measured in the same run).

What is measured (one JSON object on stdout, progress on stderr):

- ``bombs``: ``decode_blob`` on the worst archives of the adversarial review — a bzip2 and a
  deflate member that inflate to ``--bomb-mib`` MiB while declaring 2,400 bytes, and a stored
  npy member declaring 10¹² rows. Peak memory (tracemalloc, which numpy reports to) of the refusal,
  against the decoded size of one normal blob: the guard holds when it is ≤ 2×.
- ``cohort``: ``--blobs`` normal blobs of ``--rows`` rows decoded one after another, by
  ``decode_blob`` and by ``np_load_decode`` (``np.load(allow_pickle=False)`` + the same schema and
  meta validation: the decoder before the guard). Median seconds over ``--repeat`` rotated rounds,
  and the peak memory of one cohort decode.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvn_assets.contracts.blob import (  # noqa: E402
    ARRAY_DTYPES, BlobError, PredictionBlob, _check_arrays, _parse_meta, decode_blob, encode_blob,
)
from cvn_assets_tests.fixtures.blobs import sample_blob  # noqa: E402
from cvn_assets_tests.fixtures.malformed_blobs import lying_bomb, members_of, zip_members  # noqa: E402


def np_load_decode(data: bytes, key: str) -> PredictionBlob:
    """The decoder before the guard: np.load of every member, then the same validation."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in (*ARRAY_DTYPES, "meta")}
    meta = _parse_meta(key, json.loads(str(arrays.pop("meta"))), None)
    _check_arrays(key, arrays)
    return PredictionBlob(meta=meta, **arrays)


def huge_shape(original: bytes) -> bytes:
    members = members_of(original)
    header = b"{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000,), }"
    ts = dict(members)["ts.npy"]
    npy = b"\x93NUMPY\x01\x00" + len(header + b"\n").to_bytes(2, "little") + header + b"\n" + ts[128:]
    return zip_members([(name, npy if name == "ts.npy" else data) for name, data in members])


def peak_of(action: Callable[[], object]) -> tuple[int, str]:
    tracemalloc.start()
    try:
        try:
            action()
            outcome = "decoded"
        except BlobError as exc:
            outcome = str(exc).split(": ", 2)[-1][:120]
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/decoder.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blobs", type=int, default=90, help="blobs in the cohort (default 90)")
    parser.add_argument("--rows", type=int, default=17_280, help="rows per blob (default 17,280)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--bomb-mib", type=int, default=256, help="what each bomb inflates to, MiB (default 256)")
    args = parser.parse_args(argv)

    key = "s43-predictions/bench/C00USDC/logreg/fold-00.npz"
    blobs = [sample_blob(rows=args.rows, seed=seed, fold=seed % 3) for seed in range(args.blobs)]
    payloads = [encode_blob(blob) for blob in blobs]
    decoded_bytes = sum(array.nbytes for array in blobs[0].arrays().values())
    print(f"building bombs of {args.bomb_mib} MiB …", file=sys.stderr)
    bombs = {
        "bzip2_bomb": lying_bomb(zipfile.ZIP_BZIP2, args.bomb_mib * 1024 * 1024),
        "deflate_bomb": lying_bomb(zipfile.ZIP_DEFLATED, args.bomb_mib * 1024 * 1024),
        "declared_10e12_rows": huge_shape(payloads[0]),
    }
    bomb_results = {}
    for name, data in bombs.items():
        peak, outcome = peak_of(lambda data=data: decode_blob(data, key))
        bomb_results[name] = {"object_bytes": len(data), "inflates_to_bytes": args.bomb_mib * 1024 * 1024
                              if "bomb" in name else None, "peak_bytes": peak,
                              "peak_vs_normal_blob_decoded": round(peak / decoded_bytes, 3), "outcome": outcome}
    normal_peak, _ = peak_of(lambda: decode_blob(payloads[0], key))

    methods = {"decode_blob": decode_blob, "np_load_decode": np_load_decode}
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for round_ in range(args.repeat + 1):  # round 0 warms up, untimed
        order = list(methods)[round_ % 2:] + list(methods)[:round_ % 2]
        for name in order:
            started = time.perf_counter()
            kept = [methods[name](data, key) for data in payloads]
            elapsed = time.perf_counter() - started
            if round_:
                samples[name].append(elapsed)
            del kept
    cohort_peaks = {name: peak_of(lambda f=function: [f(data, key) for data in payloads])[0]
                    for name, function in methods.items()}
    medians = {name: statistics.median(values) for name, values in samples.items()}
    report = {
        "benchmark": "s43 blob decoder",
        "parameters": vars(args),
        "normal_blob": {"object_bytes": len(payloads[0]), "decoded_bytes": decoded_bytes, "decode_peak_bytes": normal_peak},
        "bombs": bomb_results,
        "worst_bomb_peak_vs_normal_blob_decoded": max(r["peak_vs_normal_blob_decoded"] for r in bomb_results.values()),
        "cohort": {
            "decoded_bytes": decoded_bytes * args.blobs,
            "median_s": {name: round(value, 4) for name, value in medians.items()},
            "samples_s": {name: [round(v, 4) for v in values] for name, values in samples.items()},
            "decode_blob_vs_np_load_decode": round(medians["decode_blob"] / medians["np_load_decode"], 3),
            "peak_bytes": cohort_peaks,
            "note": "the cohort's payload bytes are allocated before measuring; decode_blob's arrays are views over "
                    "them, np.load copies every array",
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
