"""`cvn lifecycle show|plan|apply|verify|sweep`: the 7-day retention of the transport (runbook scenario D).

On S3 the retention is the bucket's lifecycle rule on ``s43-predictions/``, merged with the rules
other teams keep on the same bucket (``xcom/``, ``l2_events/``): a bucket has one configuration
and writing ours alone would drop theirs. On the local backend ``sweep`` applies the same rule.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from cvn_assets.cli.common import EXIT_ERROR, EXIT_USAGE, emit_json, exit_codes, fail, storage_settings
from cvn_assets.operations.lifecycle import (
    DEFAULT_RETENTION_DAYS,
    LifecycleConflict,
    LifecyclePlan,
    Rule,
    apply_lifecycle,
    desired_rules,
    load_rules_file,
    owned_scope,
    plan_lifecycle,
    read_lifecycle,
    rule_scope,
    summarize_rule,
    verify_lifecycle,
)
from cvn_assets.operations.retention import sweep_local
from cvn_assets.operations.s3_check import endpoint_text
from cvn_assets.storage.object_store import LocalObjectStore
from cvn_assets.storage.factory import s3_resource
from cvn_assets.storage.settings import StorageSettings


@click.group("lifecycle")
def lifecycle_group() -> None:
    """Retention of the transport prefix: the S3 lifecycle rule (show, plan, apply, verify) or the local sweep.

    The rule expires every key under CVN_S3_PREFIX/ (default s43-predictions/) 7 days after it was
    written and aborts incomplete multipart uploads after 1 day. It is merged into the bucket's
    configuration by rule ID and prefix; rules outside the prefix are never changed.
    """


def _bucket() -> tuple[Any, StorageSettings]:
    settings = storage_settings()
    if settings.backend != "s3" or not settings.bucket:
        fail(f"CVN_S3_BUCKET is not set: the object store is the local directory {settings.local_root}, which "
             "has no lifecycle rules; use `cvn lifecycle sweep` to apply the same retention there", EXIT_USAGE)
    return s3_resource(settings).get_client(), settings


def _desired(settings: StorageSettings, days: int, rules_file: str | None) -> list[Rule]:
    try:
        if rules_file:
            return load_rules_file(rules_file)
        return desired_rules(settings.prefix, days)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def _header(client: Any, settings: StorageSettings) -> str:
    return f"lifecycle of s3://{settings.bucket} at {endpoint_text(client.meta.endpoint_url)}"


def _rule_line(rule: Rule, scope: str) -> str:
    target = rule_scope(rule)
    owner = "ours   " if target.startswith(scope) else "foreign"
    return f"{owner} {rule.get('ID', '(no id)')!s:<32} {target or '(whole bucket)':<24} {summarize_rule(rule)}"


def render_plan(plan: LifecyclePlan) -> list[str]:
    lines = []
    for change in plan.changes:
        label = {"add": "+ add", "update": "~ update", "unchanged": "= unchanged", "keep": "  keep"}[change.action]
        owner = "" if change.owned else " (not ours)"
        lines.append(f"{label:<12} {change.rule_id:<32} {change.prefix or '(whole bucket)'}{owner}")
        for difference in change.differences if change.action in ("add", "update") else []:
            lines.append(f"{'':<14}{difference}")
    for note in plan.notes:
        lines.append(f"note: {note}")
    for conflict in plan.conflicts:
        lines.append(f"REFUSED: {conflict}")
    return lines


days_option = click.option("--days", type=click.IntRange(min=1), default=DEFAULT_RETENTION_DAYS, show_default=True,
                           help="retention of keys under the prefix, in days")
rules_option = click.option("--rules", "rules_file", type=click.Path(dir_okay=False),
                            help="JSON {\"Rules\": [...]} to use instead of the generated rule "
                                 "(e.g. deploy/s3/s3-lifecycle-s43-predictions.json)")
json_option = click.option("--json", "as_json", is_flag=True, help="one JSON object")


@lifecycle_group.command("show")
@json_option
@exit_codes
def show_command(as_json: bool) -> None:
    """Print every rule of the bucket's lifecycle configuration, ours and other teams'."""
    client, settings = _bucket()
    lifecycle = read_lifecycle(client, settings.bucket or "")
    scope = owned_scope(settings.prefix)
    if as_json:
        emit_json({"bucket": settings.bucket, "endpoint": endpoint_text(client.meta.endpoint_url), "scope": scope,
                   "rules": [{**rule, "_owned": rule_scope(rule).startswith(scope)} for rule in lifecycle.rules]})
        return
    click.echo(f"{_header(client, settings)}: {len(lifecycle.rules)} rule(s); ours = inside {scope}")
    for rule in lifecycle.rules:
        click.echo(f"  {_rule_line(rule, scope)}")


@lifecycle_group.command("plan")
@days_option
@rules_option
@json_option
@exit_codes
def plan_command(days: int, rules_file: str | None, as_json: bool) -> None:
    """Show what `apply` would write: the merged configuration as a per-rule diff. Writes nothing.

    Exit 1 when the plan is refused (it would alter or drop a rule outside the prefix).
    """
    client, settings = _bucket()
    desired = _desired(settings, days, rules_file)
    plan = plan_lifecycle(read_lifecycle(client, settings.bucket or "").rules, desired, settings.prefix)
    if as_json:
        emit_json(plan.to_dict())
    else:
        verdict = "refused" if plan.refused else "changes" if plan.changed else "no change"
        click.echo(f"{_header(client, settings)}: plan ({verdict})")
        for line in render_plan(plan):
            click.echo(f"  {line}")
    if plan.refused:
        sys.exit(EXIT_ERROR)


@lifecycle_group.command("apply")
@days_option
@rules_option
@json_option
@exit_codes
def apply_command(days: int, rules_file: str | None, as_json: bool) -> None:
    """Merge our rule into the bucket's configuration and write it; a second apply writes nothing.

    Refuses (exit 1, nothing written) a plan that would alter or drop another team's rule. After
    writing, the configuration is read back and must equal the merge.
    """
    client, settings = _bucket()
    desired = _desired(settings, days, rules_file)
    try:
        result = apply_lifecycle(client, settings.bucket or "", desired, settings.prefix)
    except LifecycleConflict as exc:
        plan = plan_lifecycle(read_lifecycle(client, settings.bucket or "").rules, desired, settings.prefix)
        if as_json:
            emit_json({**plan.to_dict(), "written": False})
        else:
            for line in render_plan(plan):
                click.echo(f"  {line}")
        fail(f"{exc}; nothing was written", EXIT_ERROR)
    if as_json:
        emit_json({**result.plan.to_dict(), "written": result.written})
        return
    state = "written" if result.written else "already up to date, nothing written"
    click.echo(f"{_header(client, settings)}: {state}")
    for line in render_plan(result.plan):
        click.echo(f"  {line}")


@lifecycle_group.command("verify")
@days_option
@rules_option
@click.option("--expect-prefix", "expect_prefixes", multiple=True,
              help="a foreign prefix that must still have a rule, e.g. xcom/ (repeatable)")
@json_option
@exit_codes
def verify_command(days: int, rules_file: str | None, expect_prefixes: tuple[str, ...], as_json: bool) -> None:
    """Exit 1 when the bucket drifted: our rule missing or edited, or an expected foreign rule gone."""
    client, settings = _bucket()
    desired = _desired(settings, days, rules_file)
    lifecycle = read_lifecycle(client, settings.bucket or "")
    drift = verify_lifecycle(lifecycle.rules, desired, settings.prefix, expect_prefixes)
    if as_json:
        emit_json({"bucket": settings.bucket, "in_sync": not drift, "drift": drift, "rules": lifecycle.rules})
    else:
        click.echo(f"{_header(client, settings)}: {'in sync' if not drift else 'DRIFT'}")
        for line in drift:
            click.echo(f"  {line}")
        if drift:
            click.echo("  next step: `cvn lifecycle plan` then `cvn lifecycle apply` (merges, never drops others' rules)")
    if drift:
        sys.exit(EXIT_ERROR)


@lifecycle_group.command("sweep")
@days_option
@click.option("--dry-run", is_flag=True, help="list what would be deleted, delete nothing")
@json_option
@exit_codes
def sweep_command(days: int, dry_run: bool, as_json: bool) -> None:
    """Local backend: delete keys under the prefix older than --days, then unreferenced content files.

    The same retention as the S3 lifecycle rule, for CVN_STORAGE_ROOT (run it daily, e.g. from cron).
    """
    settings = storage_settings()
    if settings.backend != "local":
        fail(f"the object store is S3 bucket {settings.bucket}: S3 expires keys itself; use "
             "`cvn lifecycle apply` to install the rule", EXIT_USAGE)
    report = sweep_local(LocalObjectStore(settings.local_root or ""), settings.prefix, days, dry_run=dry_run)
    if as_json:
        emit_json(report.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"sweep of {report.root}/{report.prefix}/ (keys older than {days} d, before "
               f"{report.cutoff:%Y-%m-%d %H:%M} UTC): {verb} {len(report.expired)} key(s), kept {report.kept}")
    if not dry_run:
        click.echo(f"  removed {report.content_files_removed} unreferenced content file(s) and "
                   f"{report.directories_removed} empty folder(s)")
    for key in report.expired[:20]:
        click.echo(f"  {key}")
    if len(report.expired) > 20:
        click.echo(f"  … and {len(report.expired) - 20} more (use --json for all)")
