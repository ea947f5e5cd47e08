"""Failure-alert definitions: failed runs, failed transport checks, stuck runs, runs too long (§9.5).

They need the resources ``alert_channels`` (AlertChannelsResource) and, for the long runs,
``diagnostics``, provided by ``cvn_assets/definitions.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from cvn_assets.alerts.long_runs import build_long_run_sensor
from cvn_assets.alerts.sensors import build_asset_check_sensor, build_run_failure_sensor, build_stuck_run_sensor
from cvn_assets.runs import SUPERVISED_JOBS
from cvn_assets.state.settings import StateSettings


def alert_defs(jobs: Sequence[str] = SUPERVISED_JOBS, *, stuck_after_minutes: float = 15.0,
               settings: StateSettings | None = None) -> dg.Definitions:
    """``stuck_after_minutes``: silence after which a STARTED run is flagged (§17.5 lost 24 minutes);
    ``settings``: the §9.5 / §2 run-duration thresholds."""
    return dg.Definitions(sensors=[
        build_run_failure_sensor(jobs),
        build_asset_check_sensor(),
        build_stuck_run_sensor(jobs, silent_minutes=stuck_after_minutes),
        build_long_run_sensor(jobs, settings, silent_minutes=stuck_after_minutes),
    ])
