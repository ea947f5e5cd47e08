"""Runs a campaign through Dagster on the current instance, for the `cvn` command.

Acquisitions run as real Dagster runs (visible in the UI, tagged with the campaign) in parallel
worker processes — started with ``spawn``, never ``fork``: forking a process with live client
threads is the deadlock of the manual's §17.5. The gate runs once they have all finished,
failed ones included, exactly as ``campaign_sensor`` would.
"""

from __future__ import annotations

import io
import multiprocessing
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TextIO

import dagster as dg

from cvn_assets.contracts.campaign import STORED
from cvn_assets.gate.report import GateReport, report_key
from cvn_assets.partitions import acquisition_partition_key
from cvn_assets.runs import ACQUIRE_JOB, GATE_JOB, acquisition_tags, gate_tags, step_failures
from cvn_assets.storage.object_store import ObjectStore


# What the terminal shows of a run. Quiet (the default): nothing — the command prints one line per
# run with the root cause of a failure, and every event (stack traces included) still goes to the
# instance's event log, which the UI and `dagster`/`dg` read. Verbose (`cvn -v`): warnings and
# errors, stack traces included.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
VERBOSE_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


# What MLflow says on stderr whatever the logging levels (its `eprint` stream, which it re-enables by
# itself): table creation on a new store and each model registration. Nothing a person needs after a
# campaign — the report lists the challengers. INFO lines only: its warnings and errors still show.
LIBRARY_CHATTER = re.compile(
    r"^(Successfully registered model '|Created version '\d+' of model '"
    r"|\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO (mlflow|alembic)[\w.]*: )"
)


class _WithoutChatter(io.TextIOBase):
    """A stderr that drops the lines matching ``drop`` and passes every other line through, whole."""

    def __init__(self, target: TextIO, drop: re.Pattern[str]):
        self._target, self._drop, self._pending = target, drop, ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
            for line in lines:
                if not self._drop.match(line):
                    self._target.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def close_line(self) -> None:
        with self._lock:
            if self._pending and not self._drop.match(self._pending):
                self._target.write(self._pending)
            self._pending = ""
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")


@contextmanager
def without_library_chatter(verbose: bool) -> Iterator[None]:
    """Keep MLflow's notices off stderr for the duration, unless verbose (``cvn -v``)."""
    if verbose:
        yield
        return
    original = sys.stderr
    filtered = _WithoutChatter(original, LIBRARY_CHATTER)
    sys.stderr = filtered
    try:
        yield
    finally:
        sys.stderr = original
        filtered.close_line()


@dataclass(frozen=True)
class RunOutcome:
    label: str
    run_id: str
    success: bool
    seconds: float
    errors: list[str]


def _execute(job_name: str, partition_key: str | dg.MultiPartitionKey, tags: dict[str, str], label: str,
             verbose: bool) -> RunOutcome:
    from cvn_assets.definitions import build_defs

    started = time.monotonic()
    job = build_defs().resolve_job_def(job_name)
    with without_library_chatter(verbose), dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, partition_key=partition_key, tags=tags,
                                        run_config=VERBOSE_RUN_CONFIG if verbose else QUIET_RUN_CONFIG,
                                        raise_on_error=False)
    return RunOutcome(label=label, run_id=result.run_id, success=result.success,
                      seconds=round(time.monotonic() - started, 1), errors=step_failures(result))


def run_acquisition(campaign_id: str, crypto: str, verbose: bool = False) -> RunOutcome:
    return _execute(ACQUIRE_JOB, acquisition_partition_key(campaign_id, crypto),
                    acquisition_tags(campaign_id, crypto), crypto, verbose)


def run_acquisitions(
    campaign_id: str, cryptos: Sequence[str], workers: int, on_done: Callable[[RunOutcome], None],
    verbose: bool = False,
) -> list[RunOutcome]:
    if workers <= 1:
        outcomes = []
        for crypto in cryptos:
            outcomes.append(run_acquisition(campaign_id, crypto, verbose))
            on_done(outcomes[-1])
        return outcomes
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(run_acquisition, campaign_id, crypto, verbose) for crypto in cryptos]
        outcomes = []
        for future in as_completed(futures):
            outcomes.append(future.result())
            on_done(outcomes[-1])
    order = {crypto: index for index, crypto in enumerate(cryptos)}
    return sorted(outcomes, key=lambda outcome: order[outcome.label])


def run_gate(campaign_id: str, verbose: bool = False) -> RunOutcome:
    return _execute(GATE_JOB, campaign_id, gate_tags(campaign_id), "gate", verbose)


def read_report(store: ObjectStore, prefix: str, campaign_id: str) -> GateReport:
    return GateReport.model_validate_json(store.get(report_key(prefix, campaign_id)), context=STORED)
