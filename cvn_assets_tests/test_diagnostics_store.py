"""Diagnostics tables: real gate reports written to SQLite and PostgreSQL, identically, once."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cvn_assets.diagnostics.resources import DiagnosticsResource, diagnostics_url_from_env, migrated_store
from cvn_assets.diagnostics.store import MIGRATIONS, DiagnosticsStore, safe_url
from cvn_assets.diagnostics.tables import SIGNAL_FLOATS, SIGNAL_INTEGERS
from cvn_assets.gate.report import Verdict
from cvn_assets_tests.fixtures.campaigns import small_spec


def head_revision() -> str:
    """The newest migration shipped in the package (one head: the revisions form one chain)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def without_time(rows):
    return [{name: value for name, value in row.items() if name != "evaluated_at"} for row in rows]


def test_same_gates_write_identical_rows_to_sqlite_and_postgres_and_a_rerun_replaces(real_gates, tmp_path,
                                                                                      postgres_url):
    stores = [DiagnosticsStore(f"sqlite:///{tmp_path / 'a.sqlite'}"), DiagnosticsStore(postgres_url)]
    rows = []
    for store in stores:
        store.migrate()
        store.migrate()  # idempotent: safe at every start
        for case in real_gates.values():
            store.replace_gate(case.report)
            store.replace_gate(case.report)  # a re-run gate replaces, never duplicates
        rows.append({case.report.campaign_id: store.gate_rows(case.report.campaign_id) for case in real_gates.values()})
        with store.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM cvn_gate_verdicts")).scalar_one() == 3
            assert connection.execute(sa.text("SELECT count(*) FROM cvn_crypto_signals")).scalar_one() == 3
            assert connection.execute(sa.text("SELECT version_num FROM cvn_alembic_version")).scalar_one() == head_revision()
        store.close()
    lite, postgres = rows
    for campaign_id, (lite_verdict, lite_signals) in lite.items():
        pg_verdict, pg_signals = postgres[campaign_id]
        assert without_time([lite_verdict]) == without_time([pg_verdict])
        assert without_time(lite_signals) == without_time(pg_signals)
        assert lite_verdict["evaluated_at"] == pg_verdict["evaluated_at"]  # both timezone-aware UTC

    report = real_gates["pass"].report
    verdict, signals = postgres[report.campaign_id]
    assert (verdict["verdict"], verdict["crypto_group"], verdict["n_expected"], verdict["n_present"]) == \
        ("PASS", "defi", 12, 12)
    assert verdict["evaluated_at"] == report.evaluated_at and json.loads(verdict["spec"])["campaign_id"] == report.campaign_id
    assert [row["crypto"] for row in signals] == ["ADAUSDC", "SOLUSDC"]
    assert verdict["timeframe"] == "5m" and {row["timeframe"] for row in signals} == {"5m"}  # Grafana shows it
    for row in signals:
        crypto = report.cryptos[row["crypto"]]
        assert (row["diagnostic"], row["candidate"], row["action"], row["relaunch"]) == \
            (crypto.diagnostic, crypto.candidate, crypto.action, crypto.relaunch)
        assert row["codes"].split(",") == crypto.codes and json.loads(row["reasons"]) == crypto.reasons
        assert {name: row[name] for name in (*SIGNAL_FLOATS, *SIGNAL_INTEGERS)} == \
            {name: crypto.signals[name] for name in (*SIGNAL_FLOATS, *SIGNAL_INTEGERS)}

    inconclusive = postgres[real_gates["inconclusive"].report.campaign_id]
    assert inconclusive[0]["verdict"] == "INCONCLUSIVE_TOOLING" and inconclusive[1] == []
    assert inconclusive[0]["n_present"] == inconclusive[0]["n_expected"] - 1 and inconclusive[0]["n_candidates"] is None
    assert json.loads(inconclusive[0]["missing"]) == real_gates["inconclusive"].report.missing
    assert postgres[real_gates["fail"].report.campaign_id][0]["codes"] == "NO_CANDIDATES"


def test_a_campaign_regated_as_inconclusive_loses_its_old_signals(real_gates, tmp_path):
    store = DiagnosticsStore(f"sqlite:///{tmp_path / 'b.sqlite'}")
    store.migrate()
    passed = real_gates["pass"].report
    store.replace_gate(passed)
    inconclusive = real_gates["inconclusive"].report.model_copy(update={"campaign_id": passed.campaign_id})
    store.replace_gate(inconclusive)
    verdict, signals = store.gate_rows(passed.campaign_id)
    assert verdict["verdict"] == "INCONCLUSIVE_TOOLING" and signals == []


def test_readers_give_the_latest_gates_and_the_latest_signals_of_each_crypto(real_gates, tmp_path):
    store = DiagnosticsStore(f"sqlite:///{tmp_path / 'c.sqlite'}")
    store.migrate()
    for case in real_gates.values():
        store.replace_gate(case.report)
    passed = real_gates["pass"].report
    later = passed.model_copy(update={"campaign_id": "gate-pass-002", "evaluated_at": passed.evaluated_at + timedelta(days=5),
                                      "cryptos": {"SOLUSDC": passed.cryptos["SOLUSDC"]}})
    store.replace_gate(later)

    history = store.latest_gate_verdicts(3)
    assert [row["campaign_id"] for row in history] == ["gate-pass-002", "gate-inc-001", "gate-fail-001"]
    assert history[0]["cryptos"]["SOLUSDC"]["sortino"] == passed.cryptos["SOLUSDC"].signals["sortino"]
    assert history[1]["cryptos"] == {} and history[0]["evaluated_at"].tzinfo is not None

    latest = {row["crypto"]: row for row in store.latest_crypto_signals()}
    assert {crypto: row["campaign_id"] for crypto, row in latest.items()} == \
        {"ADAUSDC": "gate-pass-001", "SOLUSDC": "gate-pass-002", "XRPUSDC": "gate-fail-001"}
    assert latest["XRPUSDC"]["signals"]["f1_buy_delta"] == real_gates["fail"].report.cryptos["XRPUSDC"].signals["f1_buy_delta"]


def test_global_state_rows_round_trip(tmp_path):
    store = DiagnosticsStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    store.migrate()
    assert store.latest_global_state() is None
    store.record_global_state(datetime(2026, 11, 23, 4, 0, tzinfo=UTC), "GREEN", None, [], {})
    store.record_global_state(datetime(2026, 11, 23, 5, 0, tzinfo=UTC), "ORANGE", "GREEN",
                              [{"rule": "success_rate", "value": 0.6}], {"pipeline_success_rate": 0.6})
    row = store.latest_global_state()
    assert (row["state"], row["previous_state"]) == ("ORANGE", "GREEN")
    assert row["rules"] == [{"rule": "success_rate", "value": 0.6}] and row["signals"] == {"pipeline_success_rate": 0.6}
    assert row["evaluated_at"] == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


def test_the_resource_opens_a_migrated_store_where_the_environment_says(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'diag.sqlite'}"
    store = DiagnosticsResource(url=url).store()
    assert store.latest_gate_verdicts(5) == []  # tables exist: migrated on first use
    nested = tmp_path / "nested" / "dir"
    with pytest.raises(ValueError, match="expected an existing directory"):  # a typo grows no directory tree
        DiagnosticsResource(url=f"sqlite:///{nested / 'diag.sqlite'}").store()
    assert not (tmp_path / "nested").exists()
    assert diagnostics_url_from_env({"CVN_DIAGNOSTICS_URL": url}) == url
    assert diagnostics_url_from_env({"DAGSTER_HOME": str(tmp_path)}) == f"sqlite:///{tmp_path / 'cvn-diagnostics.sqlite'}"
    with pytest.raises(ValueError, match="CVN_DIAGNOSTICS_URL"):
        diagnostics_url_from_env({})


def test_passwords_never_appear_in_descriptions_or_errors():
    assert "s3cret" not in safe_url("postgresql://cvn:s3cret@db:5432/cvn")
    assert safe_url("not a url with s3cret") == "<not a SQLAlchemy URL>"
    assert DiagnosticsStore("postgresql://cvn:s3cret@db:5432/cvn").describe().startswith("postgresql+psycopg2://cvn:***@")
    with pytest.raises(ValueError, match="CVN_DIAGNOSTICS_URL") as error:
        DiagnosticsStore("nosuchdialect://cvn:s3cret@db/cvn")
    assert "s3cret" not in str(error.value)


def test_the_gate_asset_records_an_inconclusive_gate_in_the_store_and_mlflow(pass_harness):
    import mlflow

    from cvn_assets.gate.model_registry import tracking_uri_from_env

    manifest = pass_harness.launch(small_spec("store-002", symbols=["SOLUSDC"]))
    pass_harness.store.delete(pass_harness.blob_keys(manifest)[0])
    result = pass_harness.gate("store-002")
    assert result.success
    verdict, signals = migrated_store(diagnostics_url_from_env()).gate_rows("store-002")
    assert verdict["verdict"] == Verdict.INCONCLUSIVE_TOOLING and signals == []
    run_id = result.asset_materializations_for_node("s43_gate")[0].metadata["mlflow_run_id"].value
    run = mlflow.MlflowClient(tracking_uri=tracking_uri_from_env()).get_run(run_id)
    assert run.data.tags["verdict"] == "INCONCLUSIVE_TOOLING" and run.data.tags["absent_blobs"] == "1"
    assert run.data.metrics == {}


WORKER = """
import pathlib, sys, time
from cvn_assets.diagnostics.store import DiagnosticsStore
store = DiagnosticsStore(sys.argv[1])
ready, name, workers = pathlib.Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
(ready / name).touch()
deadline = time.monotonic() + 60
while len(list(ready.iterdir())) < workers and time.monotonic() < deadline:
    time.sleep(0.005)  # imports done everywhere: every worker migrates at the same instant
store.migrate()
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_first_migrations_of_a_fresh_database_all_succeed(backend, tmp_path, request):
    import subprocess
    import sys

    # Separate processes, as a gate step and the global-state sensor on a fresh DAGSTER_HOME would
    # be: PostgreSQL's advisory lock or SQLite's BEGIN IMMEDIATE serialises them.
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'race.sqlite'}"
    ready = tmp_path / "ready"
    ready.mkdir()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(ready), str(n), "3"],
                                stderr=subprocess.PIPE, text=True) for n in range(3)]
    failures = [worker.communicate(timeout=120)[1] for worker in workers if worker.wait(timeout=120) != 0]
    assert failures == []
    store = DiagnosticsStore(url)
    assert store.latest_gate_verdicts(1) == []
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM cvn_alembic_version")).scalars().all() == [head_revision()]
    store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migrated_schema_is_the_schema_the_store_writes(backend, tmp_path, request):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cvn_assets.diagnostics.tables import crypto_signals, metadata
    from cvn_assets.gate.signals import CryptoSignals

    # One numeric column per numeric golden signal: a signal added to CryptoSignals needs a column
    # (and a migration), or Grafana would never see it.
    numeric = {name for name in CryptoSignals.model_fields if name not in ("crypto", "family")}
    assert set(SIGNAL_FLOATS) | set(SIGNAL_INTEGERS) == numeric
    assert {name for name, field in CryptoSignals.model_fields.items() if field.annotation is int} == set(SIGNAL_INTEGERS)
    assert {"crypto", "family"} <= set(crypto_signals.c.keys())

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'schema.sqlite'}"
    store = DiagnosticsStore(url)
    store.migrate()
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "version_table": "cvn_alembic_version"})
        assert compare_metadata(context, metadata) == []  # tables.py and the alembic revisions agree
    store.close()


def test_a_report_the_tables_cannot_hold_is_refused_and_leaves_the_campaign_as_it_was(real_gates, tmp_path):
    store = DiagnosticsStore(f"sqlite:///{tmp_path / 'strict.sqlite'}")
    store.migrate()
    report = real_gates["pass"].report
    store.replace_gate(report)
    before = store.gate_rows(report.campaign_id)

    def with_signals(**changes):
        verdict = report.cryptos["SOLUSDC"]
        signals = {name: value for name, value in {**verdict.signals, **changes}.items() if value != "drop"}
        return report.model_copy(update={"cryptos": {**report.cryptos,
                                                     "SOLUSDC": verdict.model_copy(update={"signals": signals})}})

    with pytest.raises(ValueError, match=r"gate-pass-001/SOLUSDC: expected signal 'sortino'"):
        store.replace_gate(with_signals(sortino="drop"))  # absent is not "not measurable" (NULL)
    with pytest.raises(ValueError, match=r"'expectancy' to be a finite number or None, found nan"):
        store.replace_gate(with_signals(expectancy=float("nan")))  # SQLite would read it back as NULL
    with pytest.raises(ValueError, match=r"'n_trades' to be a whole number"):
        store.replace_gate(with_signals(n_trades=12.5))
    with pytest.raises(ValueError, match=r"expected signal 'family'"):
        store.replace_gate(with_signals(family=""))
    assert store.gate_rows(report.campaign_id) == before


def test_the_installed_package_carries_and_runs_its_migrations(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    # Build the package as the image installs it (setuptools, pyproject's package-data), then
    # migrate from that copy alone: alembic finds env.py and the revisions inside the package.
    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(repo / "pyproject.toml", source)
    shutil.copy(repo / "README.md", source)
    shutil.copytree(repo / "cvn_assets", source / "cvn_assets", ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "built"
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                    "--build-lib", str(built)], cwd=source, check=True, capture_output=True)
    migrations = built / "cvn_assets" / "diagnostics" / "migrations"
    assert {path.relative_to(migrations).as_posix() for path in migrations.rglob("*") if path.is_file()} >= {
        "env.py", "script.py.mako", "versions/0001_diagnostics_tables.py"}

    probe = ("import sys, cvn_assets.diagnostics.store as module; store = module.DiagnosticsStore(sys.argv[1]); "
             "store.migrate(); store.migrate(); print(module.__file__)")
    database = tmp_path / "installed.sqlite"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", probe, f"sqlite:///{database}"], cwd=elsewhere, check=True,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(built)})
    assert done.stdout.strip() == str(built / "cvn_assets" / "diagnostics" / "store.py")
    assert DiagnosticsStore(f"sqlite:///{database}").latest_gate_verdicts(1) == []
