"""Entry point of the `cvn` command.

Exit codes: 0 = done, whatever the verdict or state; 1 = a fail-loud error; 2 = bad input or
configuration (cli/common.py). Sub-commands are registered by name in ``COMMANDS`` and imported
only when invoked, so ``cvn --help`` and ``cvn --version`` start without Dagster.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import click

from cvn_assets.cli.common import JSON_REQUESTED, CommandFailed, VERBOSE, report_error, resolve_dagster_home

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# name → ("module:attribute" of the click command or group, its one-line help for `cvn --help`).
# Adding a command is one line here; test_cli_startup checks each line's help against the command's.
COMMANDS: dict[str, tuple[str, str]] = {
    "blob": ("cvn_assets.cli.blob:blob_group", "Prediction blobs of the s43 transport."),
    "campaign": ("cvn_assets.cli.campaign_rerun:campaign_group",  # the group with `rerun` added
                 "Discovery campaigns (manual §6.2)."),
    "gate": ("cvn_assets.cli.gate:gate_command", "Re-read the expected cohort of a campaign and print its verdict."),
    "lifecycle": ("cvn_assets.cli.lifecycle:lifecycle_group",
                  "Retention of the transport prefix: the S3 lifecycle rule (show, plan, apply, verify) or the "
                  "local sweep."),
    "s3": ("cvn_assets.cli.s3:s3_group", "The S3 bucket of the s43 prediction transport."),
    "state": ("cvn_assets.cli.state:state_command",
              "Morning check: global state GREEN / YELLOW / ORANGE / RED, fired rules, golden signals."),
    "model": ("cvn_assets.cli.model:model_group",
              "Registered models (manual §4, §10): the registry lifecycle and the model operations."),
    "universes": ("cvn_assets.cli.universes:universes_group", "Crypto groups (manual §11): the table cvntrade_universes, or the YAML file until it is seeded."),
}


class LazyGroup(click.Group):
    """The root group: imports a sub-command's module only when that sub-command runs.

    ``--help`` lists every command with the one-line help of ``COMMANDS`` (nothing imported).
    With ``--json`` anywhere on the line, usage errors too become the one JSON object on stdout.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in COMMANDS:
                text = COMMANDS[name][1]
            else:
                text = self.commands[name].get_short_help_str(limit)
            rows.append((name, click.utils.make_default_short_help(text, limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[JSON_REQUESTED] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if not ctx.meta.get(JSON_REQUESTED):
                raise
            report_error(exc.format_message(), exc.exit_code, as_json=True)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="cvn_assets", prog_name="cvn")
@click.option("-v", "--verbose", is_flag=True,
              help="also show Dagster's run logs (step failures with their stack traces) and the "
                   "libraries' notices on stderr")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Operate CVNTrade s43 campaigns: launch, gate, inspect blobs, check S3 and the global state.

    Configuration comes from the environment: DAGSTER_HOME (a relative path is taken from the
    current directory), CVN_STORAGE_ROOT (local object store) or CVN_S3_BUCKET /
    CVN_S3_ENDPOINT_URL / CVN_S3_PREFIX with the AWS_* credentials, CVN_DIAGNOSTICS_URL,
    MLFLOW_TRACKING_URI and the CVN_*_WEBHOOK_URL alert channels.
    """
    ctx.meta[VERBOSE] = verbose
    try:
        resolve_dagster_home(os.environ)
    except CommandFailed as exc:
        report_error(str(exc), exc.code, bool(ctx.meta.get(JSON_REQUESTED)))


def get_cli() -> click.Group:
    """The root group (tests use it with CliRunner); sub-commands load on first use."""
    return cli


def main() -> None:
    cli(prog_name="cvn")
