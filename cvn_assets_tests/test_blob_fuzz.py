"""Fuzzed blobs: every malformed archive decodes to the original or raises `s43 npz …` naming the key.

5,200+ seeded cases (the exact count is asserted below) of every class the adversarial review of
issue #12 found crashing or fooling the decoder, each decoded under tracemalloc: a malformed blob
may cost its own size in memory, never what its headers declare.
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter

import numpy as np

from cvn_assets.contracts.blob import BlobError, decode_blob, encode_blob
from cvn_assets_tests.fixtures.blobs import sample_blob
from cvn_assets_tests.fixtures.malformed_blobs import malformed_cases

KEY = "s43-predictions/test-campaign/SOLUSDC/logreg/fold-00.npz"
CASES = 5_226  # with the v2 meta (timeframe): truncation offsets follow the blob size
PEAK_BYTES = 1024 * 1024  # the deflate / bzip2 bombs inflate to 16 MiB; the blob itself is ~4 KB


def test_every_malformed_blob_decodes_equal_or_raises_its_named_error():
    blob = sample_blob(rows=120)
    original = encode_blob(blob)
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    worst_peak = 0
    started = time.perf_counter()
    tracemalloc.start()
    try:
        for count, (kind, data) in enumerate(malformed_cases(original), start=1):
            tracemalloc.reset_peak()
            baseline = tracemalloc.get_traced_memory()[0]
            try:
                decoded = decode_blob(data, KEY, expected=blob.meta.ref)
            except BlobError as exc:
                message = str(exc)
                if not message.startswith("s43 npz") or f"key={KEY}: " not in message:
                    wrong.append(f"{kind}: error does not name the key: {message}")
                outcomes["refused"] += 1
            except Exception as exc:  # noqa: BLE001 — any other exception is the finding
                wrong.append(f"{kind}: {type(exc).__name__}: {exc}")
            else:
                same = decoded.meta == blob.meta and all(
                    getattr(decoded, name).dtype == array.dtype and np.array_equal(getattr(decoded, name), array)
                    for name, array in blob.arrays().items())
                if not same:
                    wrong.append(f"{kind}: decoded to something other than the original")
                outcomes["equal"] += 1
            worst_peak = max(worst_peak, tracemalloc.get_traced_memory()[1] - baseline)
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    print(f"{count} malformed blobs in {elapsed:.1f} s: {dict(outcomes)}, worst peak {worst_peak} bytes")
    assert wrong == [], f"{len(wrong)} of {count} cases mishandled, first: {wrong[:5]}"
    assert count == CASES  # the generator is seeded: the same cases every run
    assert outcomes["refused"] > 4_000
    assert worst_peak <= PEAK_BYTES, f"a malformed blob cost {worst_peak} bytes of memory to refuse"
