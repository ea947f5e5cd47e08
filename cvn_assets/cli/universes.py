"""`cvn universes show|sync`: the crypto groups (manual §11) and their table, cvntrade_universes."""

from __future__ import annotations

import click

from cvn_assets.cli.common import EXIT_USAGE, emit_json, exit_codes, fail
from cvn_assets.contracts.campaign import load_universes_file, universes_file, universes_source


@click.group("universes")
def universes_group() -> None:
    """Crypto groups (manual §11): the table cvntrade_universes, or the YAML file until it is seeded.

    Groups come from the table cvntrade_universes of the diagnostics database (CVN_DIAGNOSTICS_URL,
    else $DAGSTER_HOME/cvn-diagnostics.sqlite) when it holds rows; otherwise from the universes
    YAML file (CVN_UNIVERSES_FILE, else the embedded default). Campaigns and the state rules read
    the same source.
    """


def _groups_or_exit():
    try:
        return universes_source()
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


@universes_group.command("show")
@click.option("--group", help="show only this group (exit 2 listing the groups if it is in none)")
@click.option("--symbol", help="show the groups holding this symbol (exit 2 listing the symbols if in none)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object: source and groups")
@exit_codes
def show_command(group: str | None, symbol: str | None, as_json: bool) -> None:
    """Show the crypto groups, their core flag and symbols, and where they were read from."""
    groups, where = _groups_or_exit()
    if group is not None:
        if group not in groups:
            fail(f"unknown group {group!r} in {where}: expected one of {', '.join(sorted(groups))}", EXIT_USAGE)
        groups = {group: groups[group]}
    if symbol is not None:
        holding = {name: universe for name, universe in groups.items() if symbol in universe.symbols}
        if not holding:
            known = sorted({s for universe in groups.values() for s in universe.symbols})
            fail(f"unknown symbol {symbol!r} in {where}{f' group {group}' if group else ''}: expected one of "
                 f"{', '.join(known)}", EXIT_USAGE)
        groups = holding
    if as_json:
        emit_json({"source": where, "groups": {name: universe.model_dump() for name, universe in groups.items()}})
        return
    click.echo(f"crypto groups from {where}")
    for name, universe in sorted(groups.items()):
        click.echo(f"  {name}{' (core)' if universe.core else ''}: {', '.join(universe.symbols)}")


@universes_group.command("sync")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object: what was added and updated")
@exit_codes
def sync_command(as_json: bool) -> None:
    """Seed the table cvntrade_universes from the YAML file (idempotent).

    Rows missing from the table are added and core flags aligned with the file; rows that only the
    table holds are kept (the table is the source of truth, the file its seed). Creates the table
    (alembic migration) if the diagnostics database does not have it yet.
    """
    from cvn_assets.diagnostics.resources import diagnostics_url_from_env
    from cvn_assets.diagnostics.store import DiagnosticsStore
    from cvn_assets.diagnostics.universes import sync_universes

    try:
        groups = load_universes_file(universes_file())
        store = DiagnosticsStore(diagnostics_url_from_env())
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        result = sync_universes(store, groups)
    finally:
        store.close()
    if as_json:
        emit_json(result)
        return
    click.echo(f"cvntrade_universes in {result.database}: {len(result.added)} row(s) added, "
               f"{len(result.updated)} core flag(s) updated, {result.unchanged} already there")
    for row in result.added:
        click.echo(f"  added {row}")
    for row in result.updated:
        click.echo(f"  updated {row}")
