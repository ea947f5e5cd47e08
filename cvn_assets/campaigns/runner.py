"""Runs a campaign through Dagster on the current instance, for the `cvn` command.

Acquisitions run as real Dagster runs (visible in the UI, tagged with the campaign), in this
process on one instance or, when the machine has cores to spare (``default_workers``), in
parallel worker processes — started with ``spawn``, never ``fork``: forking a process with live
client threads is the deadlock of the manual's §17.5. The gate runs once they have all finished,
failed ones included, exactly as ``campaign_sensor`` would.
"""

from __future__ import annotations

import functools
import io
import multiprocessing
import os
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


# A spawned worker is a fresh interpreter: it loads the definitions and the pandas / scikit-learn
# stack before its first acquisition (~2 s of CPU with bytecode), about what one acquisition of
# the demo's size computes. A worker pays off only with a core of its own and enough acquisitions
# to spread that cost over; otherwise the acquisitions run one after another in this process,
# which has loaded all of it already.
MIN_ACQUISITIONS_PER_WORKER = 4


def available_cpus() -> int:
    """Cores this process may run on (its affinity: a container's or taskset's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(acquisitions: int, cpus: int | None = None) -> int:
    """Acquisition workers for this machine: one per core beyond the one this process keeps (the
    instance's writes, the gate, the UI), and at least MIN_ACQUISITIONS_PER_WORKER acquisitions
    each. 1 means in this process, one after another: on a 2-core machine, always."""
    cpus = available_cpus() if cpus is None else cpus
    return max(1, min(cpus - 1, acquisitions // MIN_ACQUISITIONS_PER_WORKER))


@dataclass(frozen=True)
class RunOutcome:
    label: str
    run_id: str
    success: bool
    seconds: float
    errors: list[str]


@functools.lru_cache(maxsize=4)
def _job(job_name: str, environment: tuple[tuple[str, str], ...]) -> dg.JobDefinition:
    """The job as the definitions build it for this environment (resources, executor), built once
    per campaign instead of once per run: a campaign's runs share one environment."""
    from cvn_assets.definitions import build_defs

    return build_defs(dict(environment)).resolve_job_def(job_name)


def _execute(job_name: str, partition_key: str | dg.MultiPartitionKey, tags: dict[str, str], label: str,
             instance: dg.DagsterInstance | None = None, verbose: bool = False) -> RunOutcome:
    """One run in this process, on ``instance`` (the caller's, shared by a campaign's runs: opening
    the instance — its storages, their schema checks — costs more than a small step computes) or,
    without one, on the instance of DAGSTER_HOME opened for this run."""
    if instance is None:
        with dg.DagsterInstance.get() as own:
            return _execute(job_name, partition_key, tags, label, own, verbose)
    started = time.monotonic()
    job = _job(job_name, tuple(sorted(os.environ.items())))
    with without_library_chatter(verbose):
        result = job.execute_in_process(instance=instance, partition_key=partition_key, tags=tags,
                                        run_config=VERBOSE_RUN_CONFIG if verbose else QUIET_RUN_CONFIG,
                                        raise_on_error=False)
    return RunOutcome(label=label, run_id=result.run_id, success=result.success,
                      seconds=round(time.monotonic() - started, 1), errors=step_failures(result))


def run_acquisition(campaign_id: str, crypto: str, instance: dg.DagsterInstance | None = None,
                    verbose: bool = False) -> RunOutcome:
    return _execute(ACQUIRE_JOB, acquisition_partition_key(campaign_id, crypto),
                    acquisition_tags(campaign_id, crypto), crypto, instance, verbose)


def run_acquisitions(
    campaign_id: str, cryptos: Sequence[str], workers: int, on_done: Callable[[RunOutcome], None],
    instance: dg.DagsterInstance | None = None, verbose: bool = False,
) -> list[RunOutcome]:
    """Every acquisition of the campaign: in this process on ``instance`` (workers <= 1), else in
    ``workers`` spawned processes, each on the instance of DAGSTER_HOME."""
    if workers <= 1:
        outcomes = []
        for crypto in cryptos:
            outcomes.append(run_acquisition(campaign_id, crypto, instance, verbose))
            on_done(outcomes[-1])
        return outcomes
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(run_acquisition, campaign_id, crypto, None, verbose) for crypto in cryptos]
        outcomes = []
        for future in as_completed(futures):
            outcomes.append(future.result())
            on_done(outcomes[-1])
    order = {crypto: index for index, crypto in enumerate(cryptos)}
    return sorted(outcomes, key=lambda outcome: order[outcome.label])


def run_gate(campaign_id: str, instance: dg.DagsterInstance | None = None, verbose: bool = False) -> RunOutcome:
    return _execute(GATE_JOB, campaign_id, gate_tags(campaign_id), "gate", instance, verbose)


def read_report(store: ObjectStore, prefix: str, campaign_id: str) -> GateReport:
    return GateReport.model_validate_json(store.get(report_key(prefix, campaign_id)), context=STORED)
