"""Model-operations benchmark: backtest vs discovery acquisition, and drift, in one run (issue 15).

1. **Backtest vs acquisition** (target: ratio <= 0.10). For one crypto on ``--days`` days of
   5-minute bars (60 = 17,280 bars, the manual's §9.5 "normal" backtest):

   - reference, ``acquisition``: the discovery step of that crypto as a campaign runs it — the
     candles loaded, then ``acquire`` (screening of the PTE grid, per fold and family the
     search and calibration, predictions, blobs) with the default campaign grid;
   - ``backtest``: the registered version of that crypto, backtested the way ``cvn model backtest``
     does it — its estimator loaded from a real MLflow store (SQLite, skops), the latest window
     loaded, the predictions made, the blobs written with ``persist_blobs`` and read back, and the
     gate run over them. No screening, no fitting.

   Registering the version (a discovery PASS's job) is done before the clock starts.
2. **Drift** (target: <= 0.5 s per crypto): ``feature_drift`` over ``--features`` inputs ×
   ``--bars`` bars in each window (PSI, KS, Wasserstein per input). The inputs are the real
   feature matrix of two synthetic windows, repeated with a small jitter to reach 60 columns.

Rounds alternate the two sides (``--repeat``); the report gives every sample and the medians.
One JSON object on stdout, progress on stderr. Speed is measured here, never asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from cvn_assets.acquisition.features import build_features  # noqa: E402
from cvn_assets.acquisition.folds import WARMUP_BARS  # noqa: E402
from cvn_assets.acquisition.market_data import load_candles  # noqa: E402
from cvn_assets.acquisition.pipeline import acquire, train_full_window  # noqa: E402
from cvn_assets.contracts.campaign import CampaignSpec  # noqa: E402
from cvn_assets.gate.model_registry import model_name  # noqa: E402
from cvn_assets.gate.signals import choose_family  # noqa: E402
from cvn_assets.modelops.drift import feature_drift  # noqa: E402
from cvn_assets.modelops.evaluation import backtest_blobs, judge, operation_run_id, operation_spec  # noqa: E402
from cvn_assets.modelops.registry import (  # noqa: E402
    load_estimator, pte_tag, register_version, registered_versions,
)
from cvn_assets.modelops.windows import MarketWindow, latest_candles, window_of  # noqa: E402
from cvn_assets.storage.object_store import LocalObjectStore  # noqa: E402

PREFIX = "s43-predictions"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(work):
    """(wall seconds, CPU seconds of this process, value): on a shared machine CPU time is the steadier."""
    started, cpu = time.perf_counter(), time.process_time()
    value = work()
    return time.perf_counter() - started, time.process_time() - cpu, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crypto", default="SOLUSDC")
    parser.add_argument("--days", type=int, default=60, help="days of 5-minute bars (60 = 17,280 bars)")
    parser.add_argument("--features", type=int, default=60, help="drift: model inputs")
    parser.add_argument("--bars", type=int, default=17_280, help="drift: bars per window")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds")
    parser.add_argument("--quick", action="store_true", help="smoke run: 12 days, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.days, args.repeat = 12, 1

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        uri = f"sqlite:///{root / 'mlflow.sqlite'}"
        spec = CampaignSpec(campaign_id="bench-modelops", group="defi", symbols=[args.crypto],
                            backtest_days=args.days, planted_signal=0.6, folds=3 if args.days >= 20 else 2,
                            horizons=[1, 2, 4] if args.days >= 20 else [1])
        store = LocalObjectStore(root / "objects")
        log = logging.getLogger("bench")

        say(f"acquisition of {args.crypto}: {args.days} days, {spec.folds} folds, families {spec.families} (warm-up)")
        blobs = acquire(spec, args.crypto, load_candles(spec, args.crypto))
        family = choose_family(blobs)
        last = max((b for b in blobs if b.meta.family == family), key=lambda b: b.meta.fold)
        candles = load_candles(spec, args.crypto)
        model = train_full_window(spec, args.crypto, candles, family, last.meta.pte, dict(last.meta.hyperparameters))
        window = window_of(candles)
        register_version(uri, model_name(args.crypto), model, "bench", {
            "campaign_id": spec.campaign_id, "family": family, "pte": pte_tag(last.meta.pte),
            "threshold": f"{last.meta.threshold:.6f}", "screening_f1_buy": f"{last.meta.screening_f1_buy or 0:.6f}",
        }, "champion")
        (registered,) = registered_versions(uri, args.crypto)

        def acquisition() -> int:
            return len(acquire(spec, args.crypto, load_candles(spec, args.crypto)))

        def backtest() -> bool:
            estimator = load_estimator(uri, registered)
            latest = latest_candles(spec, args.crypto, MarketWindow())
            run_id = operation_run_id("backtest", args.crypto, registered.version, datetime.now(UTC))
            operation = operation_spec(spec, run_id, registered, spec.folds, args.days)
            report = judge(store, PREFIX, operation, backtest_blobs(run_id, registered, estimator, operation, latest,
                                                                    window), log)
            return report.cryptos[args.crypto].candidate

        backtest()  # warm-up of the backtest path (imports, MLflow client)
        samples: dict[str, list[float]] = {"acquisition": [], "backtest": []}
        cpu: dict[str, list[float]] = {"acquisition": [], "backtest": [], "drift": []}
        for round_ in range(args.repeat):
            order = ["acquisition", "backtest"] if round_ % 2 == 0 else ["backtest", "acquisition"]
            for side in order:
                seconds, cpu_seconds, _ = timed(acquisition if side == "acquisition" else backtest)
                samples[side].append(round(seconds, 4))
                cpu[side].append(round(cpu_seconds, 4))
                say(f"round {round_ + 1}: {side} {seconds:.2f} s (CPU {cpu_seconds:.2f} s)")

        say(f"drift: {args.features} inputs × {args.bars} bars")
        rng = np.random.default_rng(0)
        windows = []
        for path in (1, 2):
            bars = latest_candles(spec.model_copy(update={"backtest_days": args.bars // 288 + 2}), args.crypto,
                                  MarketWindow(path=path))
            matrix = build_features(bars).iloc[WARMUP_BARS:WARMUP_BARS + args.bars].to_numpy()
            columns = [matrix[:, i % matrix.shape[1]] * (1 + 0.01 * (i // matrix.shape[1]))
                       + rng.normal(0, 1e-6, matrix.shape[0]) for i in range(args.features)]
            windows.append({f"input_{i:02d}": column for i, column in enumerate(columns)})
        drift_samples = []
        feature_drift(*windows)  # warm-up
        for _ in range(max(args.repeat, 3)):
            seconds, cpu_seconds, measures = timed(lambda: feature_drift(*windows))
            assert len(measures) == args.features
            drift_samples.append(round(seconds, 4))
            cpu["drift"].append(round(cpu_seconds, 4))

    acquisition_s = statistics.median(samples["acquisition"])
    backtest_s = statistics.median(samples["backtest"])
    drift_s = statistics.median(drift_samples)
    cpu_median = {side: statistics.median(values) for side, values in cpu.items()}
    report = {
        "benchmark": "modelops",
        "parameters": {"crypto": args.crypto, "days": args.days, "bars": args.days * 288, "folds": spec.folds,
                       "families": spec.families, "horizons": spec.horizons, "ptes": len(spec.sl_range) * len(
                           spec.tp_range) * len(spec.horizons), "drift_features": args.features,
                       "drift_bars": args.bars, "repeat": args.repeat},
        "environment": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "platform": platform.platform(), "cvn_assets": version("cvn_assets"),
                        "scikit-learn": version("scikit-learn"), "scipy": version("scipy")},
        "seconds": {"acquisition": samples["acquisition"], "backtest": samples["backtest"], "drift": drift_samples},
        "median_seconds": {"acquisition": acquisition_s, "backtest": backtest_s, "drift": drift_s},
        "cpu_seconds": cpu,
        "median_cpu_seconds": cpu_median,
        "load_average": os.getloadavg(),
        "ratios": {"backtest_vs_acquisition": round(backtest_s / acquisition_s, 4),
                   "backtest_vs_acquisition_cpu": round(cpu_median["backtest"] / cpu_median["acquisition"], 4)},
        "targets": {"backtest_vs_acquisition_at_most": 0.10, "drift_seconds_at_most": 0.5,
                    "backtest_met": backtest_s / acquisition_s <= 0.10, "drift_met": drift_s <= 0.5,
                    "drift_cpu_met": cpu_median["drift"] <= 0.5},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
