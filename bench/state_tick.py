"""Benchmark: the global-state tick (the body of ``global_state_sensor``) against the size of the history.

The tick reads every golden signal (``collect_signals``: run records of our jobs, the diagnostics
store, the machine) and derives the §0 state (``evaluate_state``). It runs every 5 minutes for as
long as the deployment lives, so its cost must not grow with the number of runs in the storage.

For each storage (SQLite under a temporary DAGSTER_HOME, and PostgreSQL: fresh databases on the
local server) and each history size, the bench writes a history through Dagster's own run storage
(``add_historical_run`` + the run's start and end events, timestamped in the past: the same rows a
real run leaves), ``--gates`` gate evaluations through ``DiagnosticsStore.replace_gate``, then
times the tick: one warm-up, then ``--repeat`` rounds, the history sizes rotated from round to
round. The report gives every sample, the medians and, per storage, the ratio of the largest
history to the smallest (goal: ≤ 2×). Only the tick is timed, never the writing of the history.

    .venv/bin/python bench/state_tick.py                      # 1,000 and 10,000 runs, SQLite and PostgreSQL
    .venv/bin/python bench/state_tick.py --quick              # 100 and 1,000 runs, 50 gates, 1 round
    .venv/bin/python bench/state_tick.py --storages sqlite --runs 1000,10000,30000

One JSON object on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.storage.runs import RunStorage, SqliteRunStorage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvn_assets.contracts.campaign import UNIVERSES_ENV, CampaignSpec  # noqa: E402
from cvn_assets.diagnostics.store import DiagnosticsStore  # noqa: E402
from cvn_assets.gate.diagnosis import CryptoVerdict  # noqa: E402
from cvn_assets.gate.report import GateReport, Verdict  # noqa: E402
from cvn_assets.gate.signals import CryptoSignals  # noqa: E402
from cvn_assets.operations.instance_storage import POSTGRES_URL_ENV  # noqa: E402
from cvn_assets.runs import OUR_JOBS  # noqa: E402
from cvn_assets.state.check import default_sources  # noqa: E402
from cvn_assets.state.rules import evaluate_state  # noqa: E402
from cvn_assets.state.settings import StateSettings  # noqa: E402
from cvn_assets.state.signals import pipeline_latency, pipeline_success_rate  # noqa: E402
from cvn_assets.state.sources import collect_signals  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HISTORY_DAYS = 60  # the history spans two latency windows: old runs must be ignored, not just absent
WRITERS = 8  # threads writing the PostgreSQL history
WRITE_BLOCK = 64
CRYPTOS = ("BTCUSDC", "ETHUSDC", "SOLUSDC", "ADAUSDC", "AVAXUSDC", "LINKUSDC")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Storages


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped afterwards."""
    name = f"cvn_bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()



@contextmanager
def history_home(storage: str, postgres_admin_url: str, workdir: str | None) -> Iterator[tuple[Path, str | None, str]]:
    """An empty DAGSTER_HOME on the repository's dagster.yaml, its PostgreSQL URL (None: SQLite
    under the home) and an empty diagnostics database, on ``storage``."""
    home = Path(tempfile.mkdtemp(prefix=f"cvn-bench-state-{storage}-", dir=workdir))
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    try:
        if storage == "sqlite":
            yield home, None, f"sqlite:///{home / 'diagnostics.db'}"
        else:
            with postgres_database(postgres_admin_url) as runs_url, postgres_database(postgres_admin_url) as diag_url:
                yield home, runs_url, diag_url
    finally:
        shutil.rmtree(home, ignore_errors=True)


def open_instance(home: Path, postgres_url: str | None) -> dg.DagsterInstance:
    """The instance an operator gets with this DAGSTER_HOME (and CVN_DAGSTER_POSTGRES_URL)."""
    saved = {name: os.environ.get(name) for name in ("DAGSTER_HOME", POSTGRES_URL_ENV)}
    os.environ["DAGSTER_HOME"] = str(home)
    if postgres_url:
        os.environ[POSTGRES_URL_ENV] = postgres_url
    else:
        os.environ.pop(POSTGRES_URL_ENV, None)
    try:
        return dg.DagsterInstance.from_config(str(home))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---------------------------------------------------------------------------------------------
# History


def pooled(storage: RunStorage) -> RunStorage:
    """The same run storage, holding its connection between statements while the history is written.

    Dagster opens a new connection per statement (NullPool): right for a daemon, but 10,000 runs
    would then take most of an hour to write on this machine. The rows are the ones Dagster writes
    (its own ``add_historical_run`` / ``handle_run_event``); the tick reads them through a separate,
    ordinary instance.
    """
    if isinstance(storage, SqliteRunStorage):
        engine = sa.create_engine(storage._conn_string)  # noqa: SLF001 - the storage's own database

        @contextmanager
        def connect() -> Iterator[sa.Connection]:
            with engine.connect() as connection, connection.begin():
                yield connection

        storage.connect = connect  # type: ignore[method-assign]
    else:
        storage.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=WRITERS)
    return storage


def write_runs(instance: dg.DagsterInstance, runs: int, now: datetime, rng: random.Random) -> None:
    """``runs`` finished runs of our jobs over HISTORY_DAYS, ~8 % failed, ~1 % cancelled, one still running."""
    storage = pooled(instance.run_storage)
    span = timedelta(days=HISTORY_DAYS).total_seconds()
    plans = []
    for index in range(runs):
        draw = rng.random()
        plans.append((
            OUR_JOBS[index % len(OUR_JOBS)],
            now - timedelta(seconds=span * (runs - index) / runs),
            rng.uniform(1, 10),
            rng.lognormvariate(5.5, 0.35),  # ~4 min, a realistic spread for a p95
            DagsterEventType.RUN_CANCELED if draw < 0.01 else
            DagsterEventType.RUN_FAILURE if draw < 0.09 else DagsterEventType.RUN_SUCCESS,
            {"cvn/campaign": f"defi-{index // 30:05d}", "cvn/crypto": CRYPTOS[index % len(CRYPTOS)]},
        ))

    def write(plan: tuple) -> None:
        job, created, queued, duration, end_type, tags = plan
        run = dg.DagsterRun(job_name=job, run_id=str(uuid.uuid4()), tags=tags)
        storage.add_historical_run(run, created)
        start = created + timedelta(seconds=queued)
        storage.handle_run_event(run.run_id, DagsterEvent(DagsterEventType.RUN_START.value, job), start)
        storage.handle_run_event(run.run_id, DagsterEvent(end_type.value, job), start + timedelta(seconds=duration))

    # PostgreSQL commits every statement (AUTOCOMMIT): several writers overlap the commit waits.
    # SQLite has one writer at a time. The runs' ids follow their creation time either way, in
    # blocks of WRITE_BLOCK (as a storage written by several run workers).
    threads = 1 if isinstance(storage, SqliteRunStorage) else WRITERS
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for begin in range(0, runs, WRITE_BLOCK):
            list(pool.map(write, plans[begin:begin + WRITE_BLOCK]))
    running = dg.DagsterRun(job_name=OUR_JOBS[0], run_id=str(uuid.uuid4()))
    storage.add_historical_run(running, now - timedelta(minutes=3))
    storage.handle_run_event(running.run_id, DagsterEvent(DagsterEventType.RUN_START.value, OUR_JOBS[0]),
                             now - timedelta(minutes=3))


def gate_report(index: int, evaluated_at: datetime, rng: random.Random) -> GateReport:
    campaign_id = f"defi-{evaluated_at:%Y%m%d-%H%M%S}"
    cryptos = {}
    for crypto in CRYPTOS:
        sortino = rng.uniform(-0.5, 1.5)
        cryptos[crypto] = CryptoVerdict(
            signals=CryptoSignals(
                crypto=crypto, family="hgb", folds=3, test_rows=9_000, f1_buy=0.55, precision_buy=0.5,
                recall_buy=0.6, buy_rate=0.4, baseline_f1_buy=0.42, f1_buy_delta=13.0, std_f1_buy=0.04,
                screening_f1_buy=0.6, last_fold_f1_buy=0.55, screening_testing_gap=0.05, n_trades=100,
                sortino=sortino, tp_pct=0.6, sl_pct=0.3, timeout_pct=0.1, expectancy=0.002, max_drawdown=0.1,
            ).model_dump(),
            diagnostic="ML_SOLID", codes=["ML_SOLID"], candidate=sortino > 0.5, reasons=["bench"], action="none")
    passed = [crypto for crypto, verdict in cryptos.items() if verdict.candidate]
    return GateReport(
        campaign_id=campaign_id, group="defi", verdict=Verdict.PASS if passed else Verdict.FAIL,
        transport_suspect=False, cohort=[], missing=[], codes=[], evaluated_at=evaluated_at,
        summary=f"{len(passed)} of {len(CRYPTOS)} cryptos qualify",
        spec=CampaignSpec(campaign_id=campaign_id, group="defi", symbols=list(CRYPTOS)), cryptos=cryptos)


def write_gates(store: DiagnosticsStore, gates: int, now: datetime, rng: random.Random) -> None:
    span = timedelta(days=HISTORY_DAYS).total_seconds()
    for index in range(gates):
        store.replace_gate(gate_report(index, now - timedelta(seconds=span * (gates - index) / gates), rng))


# ---------------------------------------------------------------------------------------------
# The tick


def tick(instance: dg.DagsterInstance, store: DiagnosticsStore, environ: dict[str, str],
         settings: StateSettings) -> dict[str, float]:
    """One sensor body without the notification: read every signal, derive the state. Then, untimed
    in the tick's figure, the two run-record signals alone (where the tick's growth would come from)."""
    started = time.perf_counter()
    signals = collect_signals(default_sources(instance, store, environ), settings, datetime.now(UTC))
    evaluate_state(signals, settings, {})
    seconds = time.perf_counter() - started
    if not signals.pipeline_success_rate.known:
        raise SystemExit(f"the tick did not read the success rate: {signals.pipeline_success_rate.unknown}")
    parts = {}
    for name, signal in (("pipeline_success_rate", pipeline_success_rate), ("pipeline_latency", pipeline_latency)):
        part_started = time.perf_counter()
        signal(instance, settings, datetime.now(UTC))
        parts[name] = time.perf_counter() - part_started
    return {"seconds": seconds, "success_rate": signals.pipeline_success_rate.value, **parts}


def measure(storage: str, sizes: Sequence[int], gates: int, repeat: int, postgres_admin_url: str,
            workdir: str | None) -> dict:
    settings = StateSettings()
    with ExitStack() as stack:
        cases = {}
        for runs in sizes:
            home, postgres_url, diagnostics_url = stack.enter_context(
                history_home(storage, postgres_admin_url, workdir))
            store = DiagnosticsStore(diagnostics_url)
            store.migrate()
            stack.callback(store.close)
            now = datetime.now(UTC)
            rng = random.Random(runs)
            started = time.monotonic()
            with open_instance(home, postgres_url) as writer:
                write_runs(writer, runs, now, rng)
            write_gates(store, gates, now, rng)
            instance = stack.enter_context(open_instance(home, postgres_url))
            log(f"{storage}: {runs} runs + {gates} gates written in {time.monotonic() - started:.0f} s")
            environ = {"DAGSTER_HOME": str(home), "CVN_STORAGE_ROOT": str(home / "objects"),
                       "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'absent-mlflow.db'}"}
            cases[runs] = (instance, store, environ)
        for runs, (instance, store, environ) in cases.items():
            tick(instance, store, environ, settings)  # warm-up: connections, imports, caches
        samples: dict[int, list[float]] = {runs: [] for runs in sizes}
        parts: dict[int, dict[str, list[float]]] = {
            runs: {"pipeline_success_rate": [], "pipeline_latency": []} for runs in sizes}
        rates = {}
        order = list(sizes)
        for round_index in range(repeat):
            for runs in order[round_index % len(order):] + order[:round_index % len(order)]:
                outcome = tick(*cases[runs], settings)
                samples[runs].append(round(outcome["seconds"], 4))
                for name, values in parts[runs].items():
                    values.append(round(outcome[name], 4))
                rates[runs] = round(outcome["success_rate"], 2)
            log(f"{storage}: round {round_index + 1}/{repeat}: "
                + ", ".join(f"{runs} runs {samples[runs][-1]:.3f} s" for runs in sizes))
    medians = {runs: statistics.median(values) for runs, values in samples.items()}
    smallest, largest = min(sizes), max(sizes)
    return {
        "tick_s": {str(runs): {"median": round(medians[runs], 4), "samples": samples[runs],
                               "success_rate": rates[runs],
                               **{f"{name}_median_s": round(statistics.median(values), 4)
                                  for name, values in parts[runs].items()}} for runs in sizes},
        f"ratio_{largest}_vs_{smallest}": round(medians[largest] / medians[smallest], 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="1000,10000", help="history sizes, comma-separated (default 1000,10000)")
    parser.add_argument("--gates", type=int, default=1000, help="gate evaluations in the diagnostics store")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (every sample is reported)")
    parser.add_argument("--storages", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--postgres-admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
                        help="a database on the server where the bench may create and drop its own")
    parser.add_argument("--workdir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="where the SQLite homes go (default /dev/shm: writing 10,000 runs with an fsync "
                             "per statement would take longer than the whole bench; reads come from the page "
                             "cache either way)")
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 runs, 50 gates, 1 round")
    args = parser.parse_args(argv)
    sizes = [100, 1000] if args.quick else [int(value) for value in args.runs.split(",")]
    gates = 50 if args.quick else args.gates
    repeat = 1 if args.quick else args.repeat
    storages = [value.strip() for value in args.storages.split(",")]
    bad = [value for value in storages if value not in ("sqlite", "postgres")]
    if bad or len(sizes) < 2 or min(sizes) < 1 or gates < 1 or repeat < 1:
        parser.error(f"expected --storages among sqlite,postgres (found {bad or storages}), at least two "
                     f"positive --runs sizes (found {sizes}), --gates >= 1, --repeat >= 1")
    universes = Path(tempfile.mkdtemp(prefix="cvn-bench-universes-")) / "universes.yaml"
    universes.write_text("groups:\n  defi:\n    core: false\n    symbols: [" + ", ".join(CRYPTOS) + "]\n")
    os.environ[UNIVERSES_ENV] = str(universes)
    results = {storage: measure(storage, sizes, gates, repeat, args.postgres_admin_url, args.workdir)
               for storage in storages}
    shutil.rmtree(universes.parent)
    print(json.dumps({
        "parameters": {"runs": sizes, "gates": gates, "repeat": repeat, "storages": storages,
                       "history_days": HISTORY_DAYS, "quick": args.quick,
                       "workdir": args.workdir},
        "environment": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "platform": platform.platform(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                        "packages": {name: version(name) for name in ("dagster", "dagster-postgres", "sqlalchemy")}},
        "results": results,
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
