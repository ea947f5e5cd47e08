"""Crypto groups (manual §11): the table cvntrade_universes on PostgreSQL is the source of truth once
seeded, the YAML file the embedded default; campaigns, the launchpad and the state rules read the same."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic import ValidationError

from cvn_assets.cli.main import get_cli
from cvn_assets.contracts.campaign import CampaignSpec, load_universes, universes_source
from cvn_assets.diagnostics.store import DiagnosticsStore


def cvn(*args: str):
    return CliRunner().invoke(get_cli(), list(args))


@pytest.fixture
def pg_universes(postgres_url, monkeypatch, dagster_home):
    monkeypatch.setenv("CVN_DIAGNOSTICS_URL", postgres_url)
    monkeypatch.delenv("CVN_UNIVERSES_FILE", raising=False)
    return postgres_url


def test_without_a_database_the_yaml_file_is_the_source_and_needs_no_server(monkeypatch, tmp_path):
    monkeypatch.delenv("CVN_DIAGNOSTICS_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))  # no cvn-diagnostics.sqlite there: none is created
    groups, where = universes_source()
    assert where.startswith("file ") and groups["btc-core"].core and "SOLUSDC" in groups["defi"].symbols
    assert not (tmp_path / "cvn-diagnostics.sqlite").exists()


def test_sync_seeds_the_postgres_table_idempotently_and_the_table_then_rules(pg_universes, instance):
    first = cvn("universes", "sync", "--json")
    assert first.exit_code == 0, first.output
    assert len(json.loads(first.stdout)["added"]) == 6
    again = cvn("universes", "sync", "--json")
    assert json.loads(again.stdout) | {"database": ""} == {"database": "", "added": [], "updated": [], "unchanged": 6}

    store = DiagnosticsStore(pg_universes)
    with store.engine.begin() as connection:  # the operator edits the source of truth
        connection.execute(sa.text("INSERT INTO cvntrade_universes (crypto_group, symbol, core) VALUES "
                                   "('majors', 'BTCUSDT', true), ('majors', 'ETHUSDT', true)"))
    store.close()

    groups, where = universes_source()
    assert where.startswith("table cvntrade_universes (postgresql+psycopg2://postgres@127.0.0.1:5432/")
    assert groups["majors"].core and groups["majors"].symbols == ["BTCUSDT", "ETHUSDT"]
    assert CampaignSpec(campaign_id="majors-001", group="majors").cryptos == ["BTCUSDT", "ETHUSDT"]
    with pytest.raises(ValidationError, match=r"unknown group 'alts': expected one of \['btc-core', 'defi', "
                                              r"'majors'\] \(table cvntrade_universes"):
        CampaignSpec(campaign_id="alts-001", group="alts")

    shown = cvn("universes", "show", "--group", "majors")
    assert shown.exit_code == 0 and "majors (core): BTCUSDT, ETHUSDT" in shown.output
    unknown = cvn("universes", "show", "--group", "alts")
    assert unknown.exit_code == 2 and "expected one of btc-core, defi, majors" in unknown.output
    symbol = cvn("universes", "show", "--symbol", "DOGEUSDT")
    assert symbol.exit_code == 2 and "expected one of ADAUSDC, BONKUSDC, BTCUSDC, BTCUSDT" in symbol.output

    # the launchpad's group enum and the state rules read the same source
    from cvn_assets.definitions import build_defs
    from cvn_assets.runs import LAUNCH_JOB
    from cvn_assets.state.check import default_sources

    job = build_defs().resolve_job_def(LAUNCH_JOB)
    assert dg.validate_run_config(job, {"ops": {"register_campaign": {"config": {"group": "majors"}}}})
    import os

    assert default_sources(instance, None, dict(os.environ)).universes["majors"].core


def test_an_unreachable_table_fails_loud_naming_the_database(monkeypatch, dagster_home):
    monkeypatch.setenv("CVN_DIAGNOSTICS_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(ValueError, match=r"crypto groups: cannot read cvntrade_universes in "
                                         r"postgresql\+psycopg2://postgres@127.0.0.1:1/nowhere"):
        load_universes()
    shown = cvn("universes", "show")
    assert shown.exit_code == 2 and "Traceback" not in shown.output
