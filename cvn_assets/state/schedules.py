"""The daily morning check (manual §6.1) as a Dagster job and schedule.

The run does what ``cvn state --notify`` does — evaluate, notify with the same policy and memory
as ``global_state_sensor``, record — and writes the full report (state, rules, golden-signal
table) to its logs, so the morning's check is one run in the UI.
"""


import dagster as dg

from cvn_assets.state.report import render_report
from cvn_assets.state.sensors import evaluate_and_notify
from cvn_assets.state.settings import StateSettings

MORNING_CHECK_JOB = "morning_check_job"
MORNING_CHECK_SCHEDULE = "morning_check_schedule"


def build_morning_check_job(settings: StateSettings | None = None) -> dg.JobDefinition:
    settings = settings or StateSettings()

    @dg.op(name="morning_check", required_resource_keys={"diagnostics", "alert_channels"},
           description="Global state, fired rules and golden-signal table; notifies per the alert policy.")
    def morning_check(context: dg.OpExecutionContext) -> None:
        outcome, errors = evaluate_and_notify(
            context.instance, context.resources.diagnostics, context.resources.alert_channels, context.log,
            settings=settings, source=MORNING_CHECK_JOB,
        )
        for error in errors:
            context.log.warning(f"global state recorded without the diagnostics table: {error}")
        context.log.info("morning check\n" + render_report(outcome))

    @dg.job(name=MORNING_CHECK_JOB, description="Manual §6.1 morning check: the global state and the golden signals.")
    def morning_check_job() -> None:
        morning_check()

    return morning_check_job


def build_morning_check_schedule(
    job: dg.JobDefinition,
    *,
    cron_schedule: str = "30 7 * * *",
    execution_timezone: str = "Europe/Paris",
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=MORNING_CHECK_SCHEDULE, job=job, cron_schedule=cron_schedule,
        execution_timezone=execution_timezone, default_status=default_status,
        description="Every morning: the §6.1 check, notified with the global-state alert policy.",
    )
