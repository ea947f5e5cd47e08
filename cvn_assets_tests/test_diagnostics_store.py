"""Diagnostics tables: real gate reports written to SQLite and PostgreSQL, identically, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cvn_assets.diagnostics.resources import DiagnosticsResource, diagnostics_url_from_env, migrated_store
from cvn_assets.diagnostics.store import DiagnosticsStore, safe_url
from cvn_assets.diagnostics.tables import SIGNAL_FLOATS, SIGNAL_INTEGERS
from cvn_assets.gate.report import Verdict
from cvn_assets_tests.fixtures.campaigns import small_spec


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
            assert connection.execute(sa.text("SELECT version_num FROM cvn_alembic_version")).scalar_one() == "0001"
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
    url = f"sqlite:///{tmp_path / 'nested' / 'diag.sqlite'}"
    store = DiagnosticsResource(url=url).store()
    assert store.latest_gate_verdicts(5) == []  # tables exist: migrated on first use, parent directory created
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


def test_concurrent_first_migrations_of_a_postgres_database_all_succeed(postgres_url):
    import subprocess
    import sys

    # Separate processes, as gates of several campaigns would be: the advisory lock serialises them.
    script = "import sys; from cvn_assets.diagnostics.store import DiagnosticsStore; DiagnosticsStore(sys.argv[1]).migrate()"
    workers = [subprocess.Popen([sys.executable, "-c", script, postgres_url], stderr=subprocess.PIPE, text=True)
               for _ in range(3)]
    failures = [worker.communicate(timeout=120)[1] for worker in workers if worker.wait(timeout=120) != 0]
    assert failures == []
    store = DiagnosticsStore(postgres_url)
    assert store.latest_gate_verdicts(1) == []
    store.close()
