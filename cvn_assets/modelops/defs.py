"""Model-operations definitions: the five §10 jobs, a weekly retrain per group, the daily monitoring.

They need the resources ``object_store``, ``diagnostics`` and ``model_registry``, provided by
``cvn_assets/definitions.py``.
"""

from __future__ import annotations

import dagster as dg

from cvn_assets.modelops.jobs import (
    backtest_job, build_monitoring_schedule, build_retrain_schedules, meta_training_job, monitoring_job, retrain_job,
    walkforward_job,
)


def modelops_defs() -> dg.Definitions:
    return dg.Definitions(
        jobs=[backtest_job, walkforward_job, retrain_job, monitoring_job, meta_training_job],
        schedules=[*build_retrain_schedules(), build_monitoring_schedule()],
    )
