"""`cvn lifecycle sweep`: the local backend gets the S3 rule — keys under the prefix older than 7 days go."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from cvn_assets.cli.lifecycle import lifecycle_group
from cvn_assets.operations.retention import expired_keys, sweep_local
from cvn_assets.storage.object_store import CONTENT_DIR, LocalObjectStore, ObjectInfo

DAY = 86_400
OLD = "s43-predictions/defi-20261101-000000"
NEW = "s43-predictions/defi-20261122-000000"


def age(store: LocalObjectStore, key: str, days: float) -> None:
    """Make a key look written ``days`` ago (its link's mtime is when the key was last written)."""
    when = time.time() - days * DAY
    os.utime(store.root / key, (when, when), follow_symlinks=False)
    content, _ = store._resolve(key)  # its content file was written then too (unless shared later)
    os.utime(content, (min(when, content.stat().st_mtime),) * 2)


def content_files(root: Path) -> int:
    return sum(1 for _ in (root / CONTENT_DIR).glob("*/*"))


def populate(root: Path) -> LocalObjectStore:
    store = LocalObjectStore(root)
    store.put(f"{OLD}/_manifest.json", b'{"old": true}')
    store.put(f"{OLD}/SOLUSDC/hgb/fold-00.npz", b"old blob")
    store.put(f"{OLD}/SOLUSDC/hgb/fold-01.npz", b"bytes shared with a recent key")
    store.put(f"{NEW}/_manifest.json", b'{"new": true}')
    store.put(f"{NEW}/SOLUSDC/hgb/fold-00.npz", b"bytes shared with a recent key")
    store.put("xcom/run-1/value.json", b"not ours")
    for key in (f"{OLD}/_manifest.json", f"{OLD}/SOLUSDC/hgb/fold-00.npz", f"{OLD}/SOLUSDC/hgb/fold-01.npz",
                "xcom/run-1/value.json"):
        age(store, key, 8)
    age(store, f"{NEW}/_manifest.json", 6.9)
    return store


def sweep(*args: str):
    return CliRunner().invoke(lifecycle_group, ["sweep", *args])


def test_sweep_deletes_keys_older_than_seven_days_under_the_prefix_only(storage_root):
    store = populate(storage_root)
    assert content_files(storage_root) == 5
    result = sweep("--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(report["expired"]) == sorted([f"{OLD}/_manifest.json", f"{OLD}/SOLUSDC/hgb/fold-00.npz",
                                                f"{OLD}/SOLUSDC/hgb/fold-01.npz"])
    assert report["kept"] == 2
    remaining = sorted(info.key for info in store.list(""))
    assert remaining == [f"{NEW}/SOLUSDC/hgb/fold-00.npz", f"{NEW}/_manifest.json", "xcom/run-1/value.json"]
    # content of deleted keys is gone, content still referenced by a recent key stays readable
    assert report["content_files_removed"] == 2
    assert content_files(storage_root) == 3
    assert store.get(f"{NEW}/SOLUSDC/hgb/fold-00.npz") == b"bytes shared with a recent key"
    assert not (storage_root / OLD).exists()  # the emptied campaign folder is removed
    assert (storage_root / "s43-predictions").is_dir()


def test_a_second_sweep_finds_nothing_more(storage_root):
    populate(storage_root)
    assert sweep().exit_code == 0
    report = json.loads(sweep("--json").stdout)
    assert (report["expired"], report["content_files_removed"], report["kept"]) == ([], 0, 2)


def test_dry_run_lists_and_deletes_nothing(storage_root):
    store = populate(storage_root)
    result = sweep("--dry-run")
    assert result.exit_code == 0
    assert "would delete 3 key(s), kept 2" in result.output
    assert len(list(store.list("s43-predictions/"))) == 5
    assert content_files(storage_root) == 5


def test_days_is_configurable(storage_root):
    populate(storage_root)
    report = json.loads(sweep("--days", "30", "--json").stdout)
    assert (report["expired"], report["kept"]) == ([], 5)


def test_sweep_on_s3_points_to_the_lifecycle_rule(s3_bucket):
    result = sweep()
    assert result.exit_code == 2
    assert "cvn lifecycle apply" in result.output


def test_the_rule_keeps_a_key_exactly_at_the_cutoff():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    infos = [ObjectInfo(key=f"k{d}", size=1, last_modified=now - timedelta(days=d), sha256=None, uri="")
             for d in (6, 7, 8)]
    assert expired_keys(infos, now - timedelta(days=7)) == (["k8"], 2)


def test_sweep_local_with_an_explicit_clock(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.put("s43-predictions/c-1/_manifest.json", b"{}")
    later = datetime.now(UTC) + timedelta(days=7, minutes=1)
    report = sweep_local(store, "s43-predictions", days=7, now=later)
    assert report.expired == ["s43-predictions/c-1/_manifest.json"]
    assert list(store.list("s43-predictions/")) == []
