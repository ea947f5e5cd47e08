"""Model lifecycle definitions: the five lifecycle jobs and the lifecycle alert sensor.

They need the resources ``model_registry``, ``diagnostics`` and ``alert_channels``, provided by
``cvn_assets/definitions.py``.
"""

from __future__ import annotations

import dagster as dg

from cvn_assets.models.jobs import (
    model_approval_job, model_decommission_job, model_killswitch_job, model_promotion_job, model_rollback_job,
)
from cvn_assets.models.sensors import build_model_alert_sensor


def model_defs() -> dg.Definitions:
    return dg.Definitions(
        jobs=[model_approval_job, model_promotion_job, model_killswitch_job, model_rollback_job,
              model_decommission_job],
        sensors=[build_model_alert_sensor()],
    )
