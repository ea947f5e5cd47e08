"""The local backend's copy of the S3 lifecycle rule: delete transport keys older than N days.

On S3 the bucket expires ``s43-predictions/`` objects itself (``cvn lifecycle apply``). The local
directory backend has no such machinery, so ``cvn lifecycle sweep`` applies the same rule — every
key under the transport prefix last written more than ``days`` ago is deleted — and then removes
the content files no key references any more (``LocalObjectStore.collect_garbage``).

One difference, on purpose: S3 rounds an expiry up to the next midnight UTC, so it keeps an object
up to a day longer than the sweep, which counts exact 24-hour days.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cvn_assets.contracts.keys import validate_prefix
from cvn_assets.operations.lifecycle import DEFAULT_RETENTION_DAYS
from cvn_assets.storage.object_store import LocalObjectStore, ObjectInfo


@dataclass(frozen=True)
class SweepReport:
    """What one sweep found and did (``dry_run`` = nothing was deleted)."""

    root: str
    prefix: str
    days: int
    cutoff: datetime
    dry_run: bool
    expired: list[str]
    kept: int
    content_files_removed: int = 0
    directories_removed: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"root": self.root, "prefix": self.prefix, "days": self.days, "cutoff": self.cutoff.isoformat(),
                "dry_run": self.dry_run, "expired": self.expired, "expired_count": len(self.expired),
                "kept": self.kept, "content_files_removed": self.content_files_removed,
                "directories_removed": self.directories_removed}


def retention_cutoff(now: datetime, days: int) -> datetime:
    if days < 1:
        raise ValueError(f"retention days {days!r} is invalid: expected an integer >= 1")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now - timedelta(days=days)


def expired_keys(objects: Iterable[ObjectInfo], cutoff: datetime) -> tuple[list[str], int]:
    """(keys last written before ``cutoff``, number of keys kept) — the lifecycle rule as a function."""
    expired: list[str] = []
    kept = 0
    for info in objects:
        if info.last_modified < cutoff:
            expired.append(info.key)
        else:
            kept += 1
    return expired, kept


def sweep_local(store: LocalObjectStore, prefix: str, days: int = DEFAULT_RETENTION_DAYS,
                now: datetime | None = None, dry_run: bool = False) -> SweepReport:
    """Delete keys under ``{prefix}/`` older than ``days``, then unreferenced content and empty folders."""
    validate_prefix(prefix)
    cutoff = retention_cutoff(now or datetime.now(UTC), days)
    expired, kept = expired_keys(store.list(f"{prefix}/"), cutoff)
    if dry_run:
        return SweepReport(root=str(store.root), prefix=prefix, days=days, cutoff=cutoff, dry_run=True,
                           expired=expired, kept=kept)
    for key in expired:
        store.delete(key)
    directories = _remove_empty_directories(store.root / prefix, {(store.root / key).parent for key in expired})
    content = store.collect_garbage()
    return SweepReport(root=str(store.root), prefix=prefix, days=days, cutoff=cutoff, dry_run=False,
                       expired=expired, kept=kept, content_files_removed=content, directories_removed=directories)


def _remove_empty_directories(base: Path, touched: set[Path]) -> int:
    """Remove the folders the sweep emptied (campaign / crypto / family), never ``base`` itself."""
    removed = 0
    candidates = set()
    for directory in touched:
        while directory != base and base in directory.parents:
            candidates.add(directory)
            directory = directory.parent
    for directory in sorted(candidates, key=lambda p: len(p.parts), reverse=True):
        try:
            os.rmdir(directory)
        except OSError as exc:
            # A folder still holding keys (or one a writer just re-created a key in) is simply kept.
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                continue
            raise
        removed += 1
    return removed
