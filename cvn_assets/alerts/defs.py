"""Failure-alert definitions: failed runs, failed transport checks, stuck runs.

They need the resource ``alert_channels`` (AlertChannelsResource), provided by
``cvn_assets/definitions.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from cvn_assets.alerts.sensors import build_asset_check_sensor, build_run_failure_sensor, build_stuck_run_sensor
from cvn_assets.runs import OUR_JOBS


def alert_defs(jobs: Sequence[str] = OUR_JOBS, *, stuck_after_minutes: float = 15.0) -> dg.Definitions:
    """``stuck_after_minutes``: silence after which a STARTED run is flagged (§17.5 lost 24 minutes)."""
    return dg.Definitions(sensors=[
        build_run_failure_sensor(jobs),
        build_asset_check_sensor(),
        build_stuck_run_sensor(jobs, silent_minutes=stuck_after_minutes),
    ])
