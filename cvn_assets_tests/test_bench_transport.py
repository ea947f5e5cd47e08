"""The transport benchmark runs and reports every method on both backends (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_reports_every_method_and_ratio():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "transport.py"), "--quick"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    for backend in ("s3", "local"):
        methods = report["seconds"][backend]
        assert set(methods) == {"cvn_io_manager", "pickle_io_manager", "raw"}
        assert all(value > 0 for timing in methods.values() for value in timing.values())
        assert set(report["ratios"][backend]) == {"cvn_io_manager_vs_raw", "pickle_io_manager_vs_raw"}
    assert report["parameters"]["blobs"] == 18
