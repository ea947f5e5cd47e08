"""`cvn s3 check`: the S3 transport's connectivity, credentials, bucket and prefix (runbook scenario C)."""

from __future__ import annotations

import sys

import click

from cvn_assets.cli.common import EXIT_ERROR, EXIT_USAGE, emit_json, exit_codes, fail, storage_settings
from cvn_assets.operations.s3_check import Finding, S3Diagnosis, check


@click.group("s3")
def s3_group() -> None:
    """The S3 bucket of the s43 prediction transport."""


def render(diagnosis: S3Diagnosis) -> str:
    facts = diagnosis.facts
    lines = [
        f"S3 check: bucket {facts.bucket} at {facts.endpoint} (region {facts.region or 'default'}), "
        f"prefix {facts.prefix}/",
    ]
    if diagnosis.finding in {Finding.OK, Finding.EMPTY_PREFIX, Finding.WRONG_PREFIX}:
        lines.append("  endpoint, credentials, bucket: ok")
        lines.append(f"  objects under {facts.prefix}/: {facts.objects} ({facts.bytes} bytes)")
        shown = facts.campaigns[:20]
        lines.append(f"  campaign prefixes found: {len(facts.campaigns)}")
        for campaign in shown:
            mark = "manifest" if campaign.manifest else "NO MANIFEST"
            lines.append(f"    {facts.prefix}/{campaign.campaign_id}/  {campaign.objects} objects, {mark}")
        if len(facts.campaigns) > len(shown):
            lines.append(f"    … and {len(facts.campaigns) - len(shown)} more (use --json for all)")
    lines.append(f"{diagnosis.finding.value.upper()}: {diagnosis.message}")
    lines.append(f"next step: {diagnosis.next_step}")
    return "\n".join(lines)


@s3_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="one JSON object: finding, message, next_step, facts")
@exit_codes
def check_command(as_json: bool) -> None:
    """Check endpoint (DNS, connection), credentials, bucket and prefix, in that order.

    Prints the object count under the prefix and the campaign prefixes found, or the first broken
    link with its next step. Exit 0 when the prefix holds campaigns, 1 for any finding (endpoint
    unreachable or unresolvable, no/bad credentials, access denied, missing bucket, empty or wrong
    prefix), 2 when no bucket is configured (CVN_S3_BUCKET unset) or the configuration is invalid.
    """
    settings = storage_settings()
    if settings.backend != "s3":
        fail(f"CVN_S3_BUCKET is not set: the object store is the local directory {settings.local_root}; "
             "set CVN_S3_BUCKET (and CVN_S3_ENDPOINT_URL for Scaleway / MinIO) to check S3", EXIT_USAGE)
    diagnosis = check(settings)
    if as_json:
        emit_json(diagnosis)
    else:
        click.echo(render(diagnosis))
    if not diagnosis.ok:
        sys.exit(EXIT_ERROR)
