"""Diagnostics tables: the same gate writes the same rows to SQLite and PostgreSQL, once."""

from __future__ import annotations


import pytest

from cvn_assets.diagnostics.resources import diagnostics_url_from_env, migrated_store
from cvn_assets.diagnostics.store import DiagnosticsStore, safe_url
from cvn_assets.gate.model_registry import (
    CHALLENGER, challenger_count, model_freshness_days, model_name, tracking_uri_from_env,
)
from cvn_assets_tests.fixtures.campaigns import passing_campaign, small_spec


def comparable(rows):
    return [{k: (round(v, 9) if isinstance(v, float) else v) for k, v in row.items() if k != "evaluated_at"}
            for row in rows]


def test_same_gate_writes_identical_rows_to_sqlite_and_postgres_and_replaces_on_rerun(pass_harness, tmp_path, postgres_url):
    report, _ = passing_campaign(pass_harness, "store-001")
    sqlite = DiagnosticsStore(f"sqlite:///{tmp_path / 'a.sqlite'}")
    postgres = DiagnosticsStore(postgres_url)
    for store in (sqlite, postgres):
        store.migrate()
        store.migrate()  # idempotent
        store.replace_gate(report)
        store.replace_gate(report)  # a re-run gate replaces, never duplicates
    lite_verdict, lite_signals = sqlite.gate_rows("store-001")
    pg_verdict, pg_signals = postgres.gate_rows("store-001")
    assert comparable([lite_verdict]) == comparable([pg_verdict])
    assert comparable(lite_signals) == comparable(pg_signals)
    assert len(pg_signals) == 2 and lite_verdict["verdict"] == "PASS"
    assert lite_verdict["evaluated_at"] == pg_verdict["evaluated_at"] == report.evaluated_at
    assert [row["campaign_id"] for row in postgres.latest_gate_verdicts(10)] == ["store-001"]
    assert {row["crypto"] for row in postgres.latest_crypto_signals()} == {"SOLUSDC", "ADAUSDC"}


def test_inconclusive_gate_writes_its_verdict_and_no_signals(pass_harness, tmp_path):
    manifest = pass_harness.launch(small_spec("store-002", symbols=["SOLUSDC"]))
    pass_harness.store.delete(pass_harness.blob_keys(manifest)[0])
    assert pass_harness.gate("store-002").success
    store = migrated_store(diagnostics_url_from_env())  # where the gate asset wrote, from the same environment
    verdict, signals = store.gate_rows("store-002")
    assert verdict["verdict"] == "INCONCLUSIVE_TOOLING" and verdict["n_present"] == verdict["n_expected"] - 1
    assert verdict["n_candidates"] is None and signals == []


def test_global_state_rows_round_trip(tmp_path):
    from datetime import UTC, datetime

    store = DiagnosticsStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    store.migrate()
    assert store.latest_global_state() is None
    store.record_global_state(datetime(2026, 11, 23, 4, 0, tzinfo=UTC), "ORANGE", "GREEN",
                              [{"rule": "success_rate", "value": 0.6}], {"pipeline_success_rate": 0.6})
    row = store.latest_global_state()
    assert row["state"] == "ORANGE" and row["previous_state"] == "GREEN"
    assert row["rules"] == [{"rule": "success_rate", "value": 0.6}]


def test_passwords_never_appear_in_descriptions():
    assert "s3cret" not in safe_url("postgresql://cvn:s3cret@db:5432/cvn")
    assert safe_url("not a url with s3cret") == "<not a SQLAlchemy URL>"
    with pytest.raises(ValueError, match="CVN_DIAGNOSTICS_URL '<not a SQLAlchemy URL>' is invalid") as raised:
        DiagnosticsStore("postgresql://cvn:s3cret@[::1")
    assert "s3cret" not in str(raised.value)
    assert DiagnosticsStore("postgresql://cvn:s3cret@db:5432/cvn").describe().startswith("postgresql+psycopg2://cvn:***@")


def test_pass_logs_the_gate_run_and_registers_challengers_that_load_and_predict(pass_harness):
    import mlflow
    import mlflow.pyfunc

    from cvn_assets.acquisition.features import build_features

    report, gate_result = passing_campaign(pass_harness, "mlflow-001")
    tracking_uri = tracking_uri_from_env()
    run_id = gate_result.asset_materializations_for_node("s43_gate")[0].metadata["mlflow_run_id"].value
    run = mlflow.MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
    assert run.data.tags["verdict"] == "PASS" and run.data.params["campaign_id"] == "mlflow-001"
    assert any(name.startswith("SOLUSDC.") for name in run.data.metrics)

    candidates = sorted(crypto for crypto, verdict in report.cryptos.items() if verdict.candidate)
    challengers = gate_result.asset_materializations_for_node("challengers")[0]
    assert challengers.metadata["registered"].value == len(candidates) >= 1
    crypto = candidates[0]
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = client.get_model_version_by_alias(model_name(crypto), CHALLENGER)
    assert version.tags["campaign_id"] == "mlflow-001" and version.tags["diagnostic"] == report.cryptos[crypto].diagnostic

    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.sklearn.load_model(f"models:/{model_name(crypto)}@{CHALLENGER}")  # skops: no unpickling
    from cvn_assets.acquisition.market_data import load_candles

    features = build_features(load_candles(report.spec, crypto)).iloc[400:420]
    probabilities = model.predict_proba(features)
    assert probabilities.shape == (20, 2) and ((0 <= probabilities) & (probabilities <= 1)).all()
    assert challenger_count(tracking_uri) == len(candidates)
    assert model_freshness_days(tracking_uri, crypto) < 0.01
