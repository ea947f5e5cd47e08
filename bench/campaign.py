"""Benchmark: a campaign through Dagster (`cvn campaign launch`) against the same compute called bare.

Both sides run as a new process on a new, empty DAGSTER_HOME (the object store, the diagnostics
database and the MLflow store in it), so both pay their imports and the creation of the stores:

- ``dagster``: ``cvn campaign launch --group GROUP --json`` — registration (manifest + dynamic
  partitions), one ``s43_acquire_job`` run per crypto (in this process or in spawned workers, as
  the command chooses), then the ``s43_gate_job`` run (cohort check, gate, challengers);
- ``bare``: this script with ``--bare``: the same functions the assets call, in the same order,
  without Dagster — manifest, then per crypto ``load_candles`` / ``check_candles`` / ``acquire``
  / ``persist_blobs`` / read-back, then ``load_cohort`` / ``evaluate_gate`` / report /
  diagnostics row / MLflow run (and the challengers on a PASS).

The report gives, per side, the CPU seconds (user + system of the process and its children) and
the wall seconds of every round and their medians, and ``ratios.cpu`` / ``ratios.wall``
(dagster / bare) from the same run. Rounds alternate the order of the sides. One JSON object on
stdout; progress on stderr.

    .venv/bin/python bench/campaign.py                        # the demo campaign (defi), 3 rounds
    .venv/bin/python bench/campaign.py --repeat 5 --workers 2 # force two acquisition workers
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fresh_home(parent: Path, name: str) -> dict[str, str]:
    """An empty DAGSTER_HOME on the repository's dagster.yaml; every store takes its embedded default."""
    home = parent / name
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("CVN_", "MLFLOW_TRACKING", "DAGSTER_HOME"))}
    environ["DAGSTER_HOME"] = str(home)
    return environ


def timed(command: Sequence[str], environ: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, children included) of one command, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=environ, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        log(result.stderr[-3000:])
        raise SystemExit(f"{' '.join(command[:4])} … exited {result.returncode}: expected 0")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def run_dagster(environ: dict[str, str], campaign_id: str, options: Sequence[str]) -> dict:
    wall, cpu, stdout = timed([str(BIN / "cvn"), "campaign", "launch", "--campaign-id", campaign_id,
                               *options, "--json"], environ)
    report = json.loads(stdout)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "verdict": report["verdict"],
            "workers": report.get("acquisition_workers")}


def run_bare(environ: dict[str, str], campaign_id: str, options: Sequence[str]) -> dict:
    wall, cpu, stdout = timed([sys.executable, str(Path(__file__).resolve()), "--bare", "--campaign-id",
                               campaign_id, *options], environ)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "verdict": json.loads(stdout)["verdict"]}


def bare_campaign(campaign_id: str, group: str, symbols: str | None, backtest_days: int | None) -> str:
    """The campaign's compute without Dagster: what the assets call, in the order they call it."""
    import logging

    from cvn_assets.acquisition.market_data import check_candles, load_candles
    from cvn_assets.acquisition.pipeline import acquire
    from cvn_assets.campaigns.registration import resolve_spec
    from cvn_assets.contracts.blob import decode_blob
    from cvn_assets.contracts.campaign import CampaignManifest, CampaignSpec
    from cvn_assets.diagnostics.resources import diagnostics_url_from_env, migrated_store
    from cvn_assets.gate.cohort import load_cohort
    from cvn_assets.gate.model_registry import log_gate_evaluation, register_challengers, tracking_uri_from_env
    from cvn_assets.gate.report import Verdict, report_key
    from cvn_assets.gate.verdict import evaluate_gate
    from cvn_assets.storage.factory import build_object_store
    from cvn_assets.storage.io_manager import persist_blobs
    from cvn_assets.storage.manifests import write_manifest
    from cvn_assets.storage.settings import StorageSettings

    logger = logging.getLogger("bench.campaign")
    values = {"symbols": symbols.split(",")} if symbols else {}
    if backtest_days:
        values["backtest_days"] = backtest_days
    spec = resolve_spec(CampaignSpec(campaign_id=campaign_id, group=group, **values))
    settings = StorageSettings.from_env()
    store, prefix = build_object_store(settings), settings.prefix
    manifest = CampaignManifest.for_spec(spec)
    write_manifest(store, prefix, manifest)
    candles_of = {}
    for crypto in spec.cryptos:
        candles = load_candles(spec, crypto)
        check_candles(candles, spec)
        candles_of[crypto] = candles
        blobs = acquire(spec, crypto, candles)
        expected = [(ref.fold, ref.family) for ref in manifest.expected if ref.crypto == crypto]
        for blob, info in persist_blobs(store, prefix, campaign_id, crypto, blobs, expected, 8, logger):
            decode_blob(store.get(info.key), info.key, expected=blob.meta.ref)  # the blobs_intact read-back
    cohort = load_cohort(store, prefix, campaign_id)
    report = evaluate_gate(cohort)
    store.put(report_key(prefix, campaign_id), report.model_dump_json(indent=2).encode(),
              content_type="application/json")
    migrated_store(diagnostics_url_from_env()).replace_gate(report)
    tracking_uri = tracking_uri_from_env()
    log_gate_evaluation(report, tracking_uri)
    if report.verdict == Verdict.PASS:
        register_challengers(report, tracking_uri, cohort.pooled(), candles_of.__getitem__)
    return report.verdict.value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", default="defi", help="crypto group (default defi, as `make demo`)")
    parser.add_argument("--symbols", help="comma-separated subset of the group")
    parser.add_argument("--backtest-days", type=int, help="days of 5-minute bars (default: the spec's 60)")
    parser.add_argument("--workers", type=int,
                        help="acquisition workers of `cvn campaign launch` (default: its own choice)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; every sample is reported")
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)  # the bare side, in its own process
    parser.add_argument("--campaign-id", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:
        print(json.dumps({"verdict": bare_campaign(args.campaign_id, args.group, args.symbols, args.backtest_days)}))
        return 0
    if args.repeat < 1 or (args.workers is not None and args.workers < 1):
        parser.error(f"expected --repeat >= 1 and --workers >= 1 (found {args.repeat}, {args.workers})")
    common = ["--group", args.group]
    if args.symbols:
        common += ["--symbols", args.symbols]
    if args.backtest_days:
        common += ["--backtest-days", str(args.backtest_days)]
    dagster_options = common + (["--workers", str(args.workers)] if args.workers else [])
    samples: dict[str, list[dict]] = {"dagster": [], "bare": []}
    sides = {"dagster": lambda env, cid: run_dagster(env, cid, dagster_options),
             "bare": lambda env, cid: run_bare(env, cid, common)}
    with tempfile.TemporaryDirectory(prefix="cvn-bench-campaign-") as parent:
        for round_index in range(args.repeat):
            order = ["dagster", "bare"] if round_index % 2 == 0 else ["bare", "dagster"]
            for side in order:
                campaign_id = f"{args.group}-bench-{round_index}-{side}"
                samples[side].append(sides[side](fresh_home(Path(parent), f"{side}-{round_index}"), campaign_id))
                log(f"round {round_index + 1}/{args.repeat} {side}: {samples[side][-1]}")
    verdicts = {s["verdict"] for side in samples.values() for s in side}
    if len(verdicts) != 1:
        raise SystemExit(f"the two sides disagree on the verdict: {sorted(verdicts)} (expected one verdict)")
    medians = {side: {figure: statistics.median(s[figure] for s in runs) for figure in ("cpu_s", "wall_s")}
               for side, runs in samples.items()}
    print(json.dumps({
        "parameters": {"group": args.group, "symbols": args.symbols, "backtest_days": args.backtest_days,
                       "workers": args.workers, "repeat": args.repeat},
        "environment": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                        "platform": platform.platform(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                        "pythondontwritebytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
                        "packages": {name: version(name) for name in ("dagster", "scikit-learn", "mlflow")}},
        "verdict": verdicts.pop(),
        "results": {side: {"median": medians[side], "samples": runs} for side, runs in samples.items()},
        "ratios": {figure: round(medians["dagster"][figure] / medians["bare"][figure], 3)
                   for figure in ("cpu_s", "wall_s")},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
