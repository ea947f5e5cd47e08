"""`cvn state [--json] [--notify]`: the morning check (manual §0, §6.1).

Prints the global state, every rule that fired with its values, what is unknown and why, and the
golden-signal table with warning / critical marks. Read-only by default; ``--notify`` does what
``global_state_sensor`` does — same alert policy, same memory (the latest ``global_state``
observation), records the state — so an operator's check never double-pages.
Exit 0 whatever the state; 2 on bad configuration (e.g. an alert URL that is not a URL).
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

import click
import dagster as dg

from cvn_assets.cli.common import EXIT_USAGE, emit_json, exit_codes, fail, require_dagster_home, verbose


def _logger() -> logging.Logger:
    """Alert log channel and structured events go to stderr; stdout stays the report (or the JSON)."""
    logger = logging.getLogger("cvn.state")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def diagnostics_resource():
    """The deployment's diagnostics store: CVN_DIAGNOSTICS_URL, else the SQLite file in DAGSTER_HOME."""
    from cvn_assets.diagnostics.resources import DiagnosticsResource, diagnostics_url_from_env

    return DiagnosticsResource(url=diagnostics_url_from_env())


@click.command("state")
@click.option("--json", "as_json", is_flag=True, help="print the check as one JSON object")
@click.option("--notify", is_flag=True,
              help="send through the alert channels with the sensor's policy and memory, and record the state")
@exit_codes
def state_command(as_json: bool, notify: bool) -> None:
    """Morning check: global state GREEN / YELLOW / ORANGE / RED, fired rules, golden signals.

    An unknown signal is shown with its reason and never counts as healthy: GREEN is only
    claimed when every rule input is known. Reads the Dagster instance in DAGSTER_HOME, the
    diagnostics store (CVN_DIAGNOSTICS_URL), the MLflow registry (MLFLOW_TRACKING_URI) and this
    machine; alert channels come from CVN_ALERT_WEBHOOK_URL, CVN_SLACK_WEBHOOK_URL, CVN_SMS_WEBHOOK_URL.
    """
    from cvn_assets.alerts.channels import ChannelConfigError
    from cvn_assets.campaigns.runner import without_library_chatter
    from cvn_assets.alerts.routing import RoutingConfigError
    from cvn_assets.alerts.resources import AlertChannelsResource
    from cvn_assets.state.check import StateRecorder, default_sources, run_state_check
    from cvn_assets.state.report import render_report, report_json
    from cvn_assets.state.sensors import evaluate_and_notify, open_store
    from cvn_assets.state.settings import StateSettings

    require_dagster_home()
    logger = _logger()
    settings = StateSettings()
    channels = AlertChannelsResource()
    if notify:
        try:  # every channel URL checked before anything is read, sent or recorded
            channels.dispatcher(logger)
        except ChannelConfigError as exc:
            fail(str(exc), EXIT_USAGE)
    try:
        diagnostics = diagnostics_resource()
        store, store_error = open_store(diagnostics)  # unreachable → unknown; malformed URL → exit 2
    except ValueError as exc:
        from cvn_assets.redaction import redact_text

        fail(f"diagnostics store (CVN_DIAGNOSTICS_URL): {redact_text(str(exc))}", EXIT_USAGE)
    # The model-freshness signal opens MLflow: no table-creation notices unless -v.
    with without_library_chatter(verbose()), dg.DagsterInstance.get() as instance:
        if notify:
            try:
                outcome, errors = evaluate_and_notify(instance, diagnostics, channels, logger,
                                                      settings=settings, source="cvn state --notify")
            except (ChannelConfigError, RoutingConfigError) as exc:
                fail(str(exc), EXIT_USAGE)
            for error in errors:
                logger.warning(f"state recorded without the diagnostics table: {error}")
        else:
            memory = StateRecorder(instance=instance, store=store).load(None)
            try:
                routing = AlertChannelsResource().routing()
            except RoutingConfigError as exc:
                fail(str(exc), EXIT_USAGE)
            outcome = run_state_check(sources=default_sources(instance, store, os.environ, store_error),
                                      settings=settings, now=datetime.now(UTC), memory=memory, logger=logger,
                                      notify=False, routing=routing)
    if as_json:
        emit_json(report_json(outcome))
    else:
        click.echo(render_report(outcome))
