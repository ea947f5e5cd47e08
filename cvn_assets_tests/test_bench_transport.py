"""The transport benchmark runs, reports every method on both backends, and refuses a broken path.

Figures are never asserted: only that they exist, are positive, and come from methods whose loads
were checked against what they wrote.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "transport.py"
METHODS = {
    "s3": {"cvn_io_manager", "s3_pickle", "raw", "raw_threaded"},
    "local": {"cvn_io_manager", "filesystem_pickle", "raw", "raw_threaded"},
}


def test_quick_run_prints_one_json_object_with_every_method_on_both_backends():
    result = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=120,
                            cwd=BENCH.parents[1])

    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)  # the whole of stdout is one JSON object; progress went to stderr
    assert report["parameters"]["blobs"] == 18 and report["parameters"]["quick"] is True
    assert report["environment"]["python"] and report["environment"]["cpu_count"] >= 1
    assert report["environment"]["packages"]["dagster-aws"]
    for backend, methods in METHODS.items():
        assert set(report["results"][backend]) == methods
        for figures in report["results"][backend].values():
            assert figures["persist_s"] > 0 and figures["load_s"] > 0 and figures["stored_mb"] > 0
        others = methods - {"raw"}
        assert set(report["ratios"][backend]) == {f"{name}_vs_raw" for name in others} | {
            "cvn_io_manager_vs_raw_threaded"}
        assert all(value > 0 for ratio in report["ratios"][backend].values() for value in ratio.values())


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_transport", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_a_method_that_loads_back_different_data_fails_the_benchmark(bench):
    blobs = bench.make_cohort("bench-r00", bench.crypto_names(1), rows=50, seed=0)
    loaded = {bench.path_of(blob.meta): (blob.meta, dict(blob.arrays())) for blob in blobs}
    bench.verify("exact", blobs, loaded)

    first = bench.path_of(blobs[0].meta)
    flipped = dict(loaded[first][1], proba_buy=np.nextafter(loaded[first][1]["proba_buy"], np.float32(2)))
    with pytest.raises(bench.BenchmarkFailure, match=r"proba_buy.*50 of 50 elements different"):
        bench.verify("one value off", blobs, {**loaded, first: (None, flipped)})
    widened = dict(loaded[first][1], y_pred=loaded[first][1]["y_pred"].astype(np.int64))
    with pytest.raises(bench.BenchmarkFailure, match=r"y_pred.*expected int8\(50,\), found int64\(50,\)"):
        bench.verify("dtype", blobs, {**loaded, first: (None, widened)})
    with pytest.raises(bench.BenchmarkFailure, match="expected 9 blobs, loaded 8"):
        bench.verify("lost one", blobs, {path: value for path, value in loaded.items() if path != first})
    other_meta = blobs[0].meta.model_copy(update={"threshold": 0.6})
    with pytest.raises(bench.BenchmarkFailure, match="meta expected"):
        bench.verify("meta", blobs, {**loaded, first: (other_meta, loaded[first][1])})
