"""Entry point of the `cvn` command.

Exit codes (DESIGN.md): 0 = done, whatever the verdict or state; 1 = a fail-loud error;
2 = bad input or configuration. Each sub-command module registers its click group here.
"""

from __future__ import annotations

import click

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="cvn_assets", prog_name="cvn")
def cli() -> None:
    """Operate CVNTrade s43 campaigns: launch, gate, inspect blobs, check S3 and the global state.

    Configuration comes from the environment: DAGSTER_HOME, CVN_STORAGE_ROOT (local object
    store) or CVN_S3_BUCKET / CVN_S3_ENDPOINT_URL / CVN_S3_PREFIX with the AWS_* credentials,
    CVN_DIAGNOSTICS_URL, MLFLOW_TRACKING_URI and the CVN_*_WEBHOOK_URL alert channels.
    """


def _register() -> None:
    # Sub-command modules, one per concern; each exposes one click command or group.
    # (registration list: keep one import + add_command per line)
    from cvn_assets.cli.blob import blob_group

    cli.add_command(blob_group)
    from cvn_assets.cli.campaign import campaign_group

    cli.add_command(campaign_group)
    import cvn_assets.cli.campaign_rerun  # noqa: F401 — adds `campaign rerun` to the group
    from cvn_assets.cli.gate import gate_command

    cli.add_command(gate_command)
    from cvn_assets.cli.s3 import s3_group

    cli.add_command(s3_group)
    from cvn_assets.cli.lifecycle import lifecycle_group

    cli.add_command(lifecycle_group)
    from cvn_assets.cli.state import state_command

    cli.add_command(state_command)


def get_cli() -> click.Group:
    """The root group with every sub-command registered (idempotent; tests use it with CliRunner)."""
    if not cli.commands:
        _register()
    return cli


def main() -> None:
    from cvn_assets.campaigns.runner import quiet_dagster_notices

    quiet_dagster_notices()
    get_cli()(prog_name="cvn")
