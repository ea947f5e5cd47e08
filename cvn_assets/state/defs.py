"""Operating-state definitions: the ``global_state`` asset, its sensor, the morning-check job and schedule.

They need the resources ``diagnostics`` (DiagnosticsResource) and ``alert_channels``
(AlertChannelsResource), provided by ``cvn_assets/definitions.py``.
"""

from __future__ import annotations

import dagster as dg

from cvn_assets.state.recording import global_state_spec
from cvn_assets.state.schedules import build_morning_check_job, build_morning_check_schedule
from cvn_assets.state.sensors import build_global_state_sensor
from cvn_assets.state.settings import StateSettings


def state_defs(settings: StateSettings | None = None, *, sensor_interval_seconds: int = 300) -> dg.Definitions:
    settings = settings or StateSettings()
    job = build_morning_check_job(settings)
    return dg.Definitions(
        assets=[global_state_spec],
        sensors=[build_global_state_sensor(settings, minimum_interval_seconds=sensor_interval_seconds)],
        jobs=[job],
        schedules=[build_morning_check_schedule(job)],
    )
