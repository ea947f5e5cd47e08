"""Peak memory of loading a large cohort from the local store, against the decoded arrays.

Writes ``--blobs`` schema-v1 blobs (``--rows`` rows each) to a temporary local store, then loads
the cohort with ``gate.cohort.load_cohort`` in a fresh process and reports that process's peak
RSS growth (``ru_maxrss`` after the load minus the RSS before it) over the decoded arrays' size.
Goal (issue #17): ≤ 2×. One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvn_assets.contracts.blob import encode_blob  # noqa: E402
from cvn_assets.contracts.campaign import UNIVERSES_ENV, CampaignManifest, CampaignSpec  # noqa: E402
from cvn_assets.gate.cohort import load_cohort  # noqa: E402
from cvn_assets.storage.manifests import write_manifest  # noqa: E402
from cvn_assets.storage.object_store import LocalObjectStore  # noqa: E402
from cvn_assets_tests.fixtures.blobs import sample_blob  # noqa: E402

PREFIX = "s43-predictions"
CAMPAIGN = "rss-bench-001"


def current_rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def load(root: str) -> dict[str, float]:
    store = LocalObjectStore(root)
    before = current_rss_kb()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cohort = load_cohort(store, PREFIX, CAMPAIGN)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    live = current_rss_kb() - before
    decoded = sum(array.nbytes for entry in cohort.entries if entry.blob for array in entry.blob.arrays().values())
    assert cohort.complete, cohort.missing_keys[:3]
    # The peak during the load, over what the process held before it (its own peak included:
    # imports may have peaked above the RSS measured just before the load).
    growth = max(live, peak - max(before, peak_before)) * 1024
    return {"blobs": len(cohort.entries), "decoded_mb": round(decoded / 1e6, 1),
            "live_growth_mb": round(live * 1024 / 1e6, 1), "peak_growth_mb": round(growth / 1e6, 1),
            "peak_growth_vs_decoded": round(growth / decoded, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/cohort_rss.py", description=__doc__)
    parser.add_argument("--blobs", type=int, default=5_004, help="blobs, a multiple of 9 (default 5,004)")
    parser.add_argument("--rows", type=int, default=17_280, help="rows per blob (default 17,280)")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: the measuring child process
    args = parser.parse_args()
    if args.load:
        print(json.dumps(load(args.load)))
        return 0
    with tempfile.TemporaryDirectory(prefix="cvn-rss-") as scratch:
        cryptos = [f"C{index:03d}USDC" for index in range(args.blobs // 9)]
        universes = Path(scratch) / "universes.yaml"
        universes.write_text(json.dumps({"groups": {"bench": {"symbols": cryptos}}}))
        os.environ[UNIVERSES_ENV] = str(universes)
        manifest = CampaignManifest.for_spec(CampaignSpec(
            campaign_id=CAMPAIGN, group="bench", symbols=cryptos, folds=3, families=["naive", "logreg", "hgb"]))
        store = LocalObjectStore(Path(scratch) / "objects")
        write_manifest(store, PREFIX, manifest)
        for start in range(0, len(manifest.expected), 9):  # one acquisition step's worth at a time
            store.put_many([(ref.key(PREFIX), encode_blob(sample_blob(
                campaign_id=CAMPAIGN, crypto=ref.crypto, fold=ref.fold, family=ref.family, rows=args.rows,
                seed=start + offset))) for offset, ref in enumerate(manifest.expected[start:start + 9])])
        child = subprocess.run([sys.executable, __file__, "--load", str(store.root)], capture_output=True, text=True,
                               check=True, env=os.environ)
        print(json.dumps({"benchmark": "cohort load peak RSS (local store)", "rows_per_blob": args.rows,
                          **json.loads(child.stdout)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
