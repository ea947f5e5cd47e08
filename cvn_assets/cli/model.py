"""`cvn model …`: the registry lifecycle of the manual §4 and §10 (ls, approve, promote, killswitch,
rollback, decommission).

Identity is what the user states — ``--by NAME`` or the ``CVN_ACTOR`` variable — and is not
authenticated here: the control is the audit row (``cvn_model_events``) every command writes,
refused or done. Exit codes: 0 done, 1 the registry or database failed (the audit row says what
moved; re-run the same command to complete), 2 refused or bad input (nothing changed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from cvn_assets.cli.common import EXIT_ERROR, EXIT_USAGE, CommandFailed, emit_json, exit_codes
from cvn_assets.contracts.identifiers import validate_crypto
from cvn_assets.models.contract import REQUIRED_APPROVALS, Refused, Role, validate_version
from cvn_assets.models.lifecycle import ActionResult, Lifecycle, LifecycleFailed
from cvn_assets.cli.model_ops import add_model_ops_commands

F = TypeVar("F", bound=Callable[..., Any])
ACTOR_ENV = "CVN_ACTOR"


def open_lifecycle() -> Lifecycle:
    """The lifecycle on MLFLOW_TRACKING_URI and CVN_DIAGNOSTICS_URL (or their DAGSTER_HOME defaults)."""
    from cvn_assets.diagnostics.resources import diagnostics_url_from_env, migrated_store
    from cvn_assets.gate.model_registry import tracking_uri_from_env

    try:
        tracking_uri, url = tracking_uri_from_env(), diagnostics_url_from_env()
    except ValueError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    return Lifecycle(tracking_uri, migrated_store(url), origin="cli")


def lifecycle_errors(command: F) -> F:
    """Refusals and bad input → exit 2; registry or database failures → exit 1 (``--json``: one object)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException
        from sqlalchemy.exc import SQLAlchemyError

        from cvn_assets.campaigns.runner import without_library_chatter
        from cvn_assets.cli.common import verbose
        from cvn_assets.state.sources import describe_error

        try:
            with without_library_chatter(verbose()):  # MLflow's table-creation notices only with -v
                return command(*args, **kwargs)
        except (Refused, ValueError) as exc:
            message, code = str(exc), EXIT_USAGE
        except LifecycleFailed as exc:
            message, code = str(exc), EXIT_ERROR
        except (MlflowException, SQLAlchemyError, OSError) as exc:
            message, code = f"registry or diagnostics database unreachable — {describe_error(exc)}", EXIT_ERROR
        if kwargs.get("as_json"):
            emit_json({"error": message, "exit_code": code})
        raise CommandFailed(message, code)

    return wrapper  # type: ignore[return-value]


def _checked(crypto: str, version: str | None = None) -> None:
    """Input checked before any store is opened (a typo never creates a database)."""
    validate_crypto(crypto)
    if version is not None:
        validate_version(version)


def _by_option(command: F) -> F:
    return click.option("--by", "actor", required=True, envvar=ACTOR_ENV, show_envvar=True,
                        help="who acts (your name; identity is what you state, the audit row is the control)")(command)


def _json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="print the result as one JSON object")(command)


def _print_result(result: ActionResult, as_json: bool) -> None:
    if as_json:
        emit_json(result)
        return
    click.echo(f"{result.action.value} {result.crypto}" + (f" v{result.version}" if result.version else "")
               + f": {result.outcome.value} — {result.detail} (audit event #{result.event_id})")
    for change in result.changes:
        click.echo(f"  {change}")


@click.group("model")
def model_group() -> None:
    """Registered models (manual §4, §10): the registry lifecycle and the model operations.

    Lifecycle: champion, challengers, approvals, emergencies (ls, approve, promote, killswitch,
    rollback, decommission). Operations: backtest, walkforward, retrain, monitor, meta-train.

    Roles are MLflow aliases of cvn-s43-<CRYPTO>: champion, previous, challenger-<campaign>,
    quarantined. Every action is a row of cvn_model_events (who, role, reason, before/after).
    """


def _line(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "none"
    text = f"v{entry['version']} ({entry['age_days']:.1f} d, campaign {entry.get('campaign_id') or '?'}"
    if entry.get("diagnostic"):
        text += f", {entry['diagnostic']}"
    return text + ")"


@model_group.command("ls")
@click.option("--crypto", default=None, help="one crypto (e.g. SOLUSDC); default every registered crypto")
@_json_option
@exit_codes
@lifecycle_errors
def ls_command(crypto: str | None, as_json: bool) -> None:
    """Per crypto: champion (version, age, origin campaign, signals), challengers, previous,
    quarantined, pending approvals."""
    if crypto:
        _checked(crypto)
    lifecycle = open_lifecycle()
    cryptos = [crypto] if crypto else lifecycle.cryptos()
    models = [lifecycle.roles(c) for c in cryptos]
    if as_json:
        emit_json({"models": models})
        return
    if not models:
        click.echo("no cvn-s43 model registered")
    for model in models:
        click.echo(f"{model['crypto']} ({model['model']})")
        click.echo(f"  champion     {_line(model['champion'])}")
        click.echo(f"  previous     {_line(model['previous'])}")
        click.echo(f"  challengers  {', '.join(_line(c) for c in model['challengers']) or 'none'}")
        click.echo(f"  quarantined  {', '.join('v' + q['version'] for q in model['quarantined']) or 'none'}")
        for approval in model["approvals"]:
            click.echo(f"  approval     v{approval['version']} {approval['action']}: {approval['role']} "
                       f"by {approval['actor']} at {approval['approved_at']}")
        if model["unfinished"]:
            u = model["unfinished"]
            click.echo(f"  UNFINISHED   {u['action']} v{u['version']} (event #{u['event_id']}, {u['outcome']}): "
                       f"re-run it to complete — {u['detail']}")


@model_group.command("approve")
@click.argument("crypto")
@click.argument("version")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="your role (manual §4)")
@_by_option
@click.option("--reason", default="", help="why you approve (kept in the audit row)")
@click.option("--for", "action", default="promotion", show_default=True, type=click.Choice(list(REQUIRED_APPROVALS)),
              help="the action approved")
@_json_option
@exit_codes
@lifecycle_errors
def approve_command(crypto: str, version: str, role: str, actor: str, reason: str, action: str, as_json: bool) -> None:
    """Record an approval of VERSION of CRYPTO's model (promotion: ml_owner and operator, two people)."""
    _checked(crypto, version)
    _print_result(open_lifecycle().approve(crypto, version, role, actor, reason, action), as_json)


@model_group.command("promote")
@click.argument("crypto")
@click.argument("version")
@_by_option
@_json_option
@exit_codes
@lifecycle_errors
def promote_command(crypto: str, version: str, actor: str, as_json: bool) -> None:
    """Challenger VERSION → champion; the old champion → previous.

    Refused (exit 2) unless the version passed a gate and holds two approvals by different people
    (ml_owner and operator); never a quarantined or decommissioned version.
    """
    _checked(crypto, version)
    _print_result(open_lifecycle().promote(crypto, version, actor), as_json)


@model_group.command("killswitch")
@click.argument("crypto")
@click.option("--confirm", default=None, help="CRYPTO@VERSION of the current champion, typed exactly")
@click.option("--reason", default=None, help="why (mandatory)")
@_by_option
@_json_option
@exit_codes
@lifecycle_errors
def killswitch_command(crypto: str, confirm: str | None, reason: str | None, actor: str, as_json: bool) -> None:
    """Emergency: quarantine the champion; CRYPTO has no champion until a promotion or a rollback."""
    _checked(crypto)
    _print_result(open_lifecycle().killswitch(crypto, confirm, reason, actor), as_json)


@model_group.command("rollback")
@click.argument("crypto")
@click.option("--confirm", default=None, help="CRYPTO@VERSION of the current (bad) champion, typed exactly")
@click.option("--reason", default=None, help="why (mandatory)")
@_by_option
@_json_option
@exit_codes
@lifecycle_errors
def rollback_command(crypto: str, confirm: str | None, reason: str | None, actor: str, as_json: bool) -> None:
    """Previous → champion, the current champion → quarantined (refused when there is no previous)."""
    _checked(crypto)
    _print_result(open_lifecycle().rollback(crypto, confirm, reason, actor), as_json)


@model_group.command("decommission")
@click.argument("crypto")
@click.argument("version")
@click.option("--confirm", default=None, help="CRYPTO@VERSION of the version to archive, typed exactly")
@_by_option
@click.option("--delete-artifacts", is_flag=True, help="also delete the version's stored files (default: kept)")
@_json_option
@exit_codes
@lifecycle_errors
def decommission_command(crypto: str, version: str, confirm: str | None, actor: str, delete_artifacts: bool,
                         as_json: bool) -> None:
    """Archive a quarantined or superseded VERSION: aliases removed, stage decommissioned."""
    _checked(crypto, version)
    _print_result(open_lifecycle().decommission(crypto, version, confirm, actor, delete_artifacts), as_json)


add_model_ops_commands(model_group)
