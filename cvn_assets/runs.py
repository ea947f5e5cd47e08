"""How runs of our jobs are recognised: job names and run tags shared by assets, sensors and CLI."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

ACQUIRE_JOB = "s43_acquire_job"
GATE_JOB = "s43_gate_job"
LAUNCH_JOB = "launch_discovery"
# Model operations (manual §10, cvn_assets/modelops): counted like the discovery's runs.
BACKTEST_JOB = "backtest_job"
WALKFORWARD_JOB = "walkforward_job"
RETRAIN_JOB = "retrain_job"
MONITORING_JOB = "monitoring_job"
META_TRAINING_JOB = "meta_training_job"
MODEL_OPS_JOBS = (BACKTEST_JOB, WALKFORWARD_JOB, RETRAIN_JOB, MONITORING_JOB, META_TRAINING_JOB)
OUR_JOBS = (ACQUIRE_JOB, GATE_JOB, LAUNCH_JOB, *MODEL_OPS_JOBS)
# Dagster's implicit asset job: what "Materialize" on the asset page launches. Every materializable
# asset of this code location is partitioned by campaign, so its runs are campaign reruns.
ASSET_JOB = "__ASSET_JOB"
SUPERVISED_JOBS = (*OUR_JOBS, ASSET_JOB)

CAMPAIGN_TAG = "cvn/campaign"
CRYPTO_TAG = "cvn/crypto"
STAGE_TAG = "cvn/stage"  # acquire | gate | launch | backtest | walkforward | retrain | monitoring | meta_training
RERUN_TAG = "cvn/rerun"  # cli | ui: a rerun of a campaign's partitions
PARTITION_TAG = "dagster/partition"

FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


def acquisition_tags(campaign_id: str, crypto: str) -> dict[str, str]:
    return {CAMPAIGN_TAG: campaign_id, CRYPTO_TAG: crypto, STAGE_TAG: "acquire"}


def gate_tags(campaign_id: str) -> dict[str, str]:
    return {CAMPAIGN_TAG: campaign_id, STAGE_TAG: "gate"}


def campaign_scope(tags: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(campaign, crypto, stage) of a run: our tags, else its partition keys.

    A rerun launched from the asset page (``__ASSET_JOB``) carries no campaign tag, only Dagster's
    partition tags: ``dagster/partition/campaign`` + ``/crypto`` for an acquisition step, a bare
    ``dagster/partition`` holding a campaign id for the gate.
    """
    from cvn_assets.contracts.identifiers import validate_campaign_id

    if tags.get(CAMPAIGN_TAG):
        return tags[CAMPAIGN_TAG], tags.get(CRYPTO_TAG), tags.get(STAGE_TAG)
    campaign = tags.get(f"{PARTITION_TAG}/campaign")
    if campaign:
        crypto = tags.get(f"{PARTITION_TAG}/crypto")
        return campaign, crypto, "acquire" if crypto else "gate"
    partition = tags.get(PARTITION_TAG)
    if partition:
        try:
            return validate_campaign_id(partition), None, "gate"
        except ValueError:
            return None, None, None
    return None, None, None


def campaign_runs(instance: dg.DagsterInstance, campaign_id: str, stage: str) -> list[dg.DagsterRun]:
    """Runs of one stage of a campaign, newest first."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={CAMPAIGN_TAG: campaign_id, STAGE_TAG: stage})
    )
    return [record.dagster_run for record in records]


def current_step(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The step the run is in: the latest started step that has not finished."""
    started: list[str] = []
    finished: set[str] = set()
    for record in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                                                     dg.DagsterEventType.STEP_FAILURE,
                                                     dg.DagsterEventType.STEP_SKIPPED}):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started.append(event.step_key)
        else:
            finished.add(event.step_key)
    running = [step for step in started if step not in finished]
    return running[-1] if running else None


# What made an acquisition fail, as far as its recorded error says (gate report, alerts):
# data = the step refused its candles or labels (ValueError, a failed blocking candle check);
# configuration = the campaign or a setting cannot be read; transport = the object store;
# code = any other exception (a bug); unknown = the run failed with no step failure recorded.
TRANSPORT_ERRORS = frozenset({"StorageError", "ObjectNotFound", "IntegrityError", "EndpointConnectionError",
                              "ConnectTimeoutError", "ReadTimeoutError", "ConnectionError", "ConnectionRefusedError",
                              "ClientError", "NoCredentialsError", "TimeoutError"})
CONFIGURATION_ERRORS = frozenset({"CampaignNotRegistered", "ValidationError", "DagsterInvalidConfigError",
                                  "DagsterResourceFunctionError", "DagsterInvalidDefinitionError"})
BLOB_CONTRACT_ERRORS = frozenset({"BlobError", "BlobSchemaMismatch", "BlobMissingArray", "BlobShapeMismatch",
                                  "BlobCorrupt"})
DATA_STEPS = ("market_candles", "s43_predictions")


@dataclass(frozen=True)
class AcquisitionFailure:
    """Why a crypto's latest acquisition did not succeed: the sentence and its kind of cause."""

    reason: str
    cause: str  # data | configuration | code | transport | unknown


def failure_cause(step_key: str | None, error_class: str | None) -> str:
    """The kind of cause of an acquisition step failure, from the step and the root error's class."""
    if error_class is None:
        return "unknown"
    if error_class in TRANSPORT_ERRORS:
        return "transport"
    if error_class in CONFIGURATION_ERRORS:
        return "configuration"
    if error_class in BLOB_CONTRACT_ERRORS:
        return "code"  # the producer wrote what the blob contract refuses
    step = (step_key or "").split("[", 1)[0]
    if step in DATA_STEPS and error_class in ("ValueError", "DagsterAssetCheckFailedError"):
        return "data"
    return "code"


def acquisition_failures(instance: dg.DagsterInstance, campaign_id: str) -> dict[str, AcquisitionFailure]:
    """For each crypto whose latest acquisition run did not succeed: why, from its event log."""
    latest: dict[str, dg.DagsterRun] = {}
    for run in campaign_runs(instance, campaign_id, "acquire"):
        latest.setdefault(run.tags.get(CRYPTO_TAG, ""), run)
    failures = {}
    for crypto, run in latest.items():
        if run.status == dg.DagsterRunStatus.SUCCESS or not crypto:
            continue
        message = f"acquisition run {run.run_id} is {run.status.value}"
        cause = "unknown"
        records = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        steps = [record.dagster_event for record in records if record.dagster_event]
        if steps and steps[0].step_failure_data.error is not None:
            error = root_error(steps[0].step_failure_data.error)
            message += f": {root_cause(error)}"
            cause = failure_cause(steps[0].step_key, error.cls_name)
        failures[crypto] = AcquisitionFailure(reason=message, cause=cause)
    return failures


def acquisition_failure_reasons(instance: dg.DagsterInstance, campaign_id: str) -> dict[str, str]:
    """For each crypto whose latest acquisition run did not succeed: the sentence saying why."""
    return {crypto: failure.reason for crypto, failure in acquisition_failures(instance, campaign_id).items()}


def root_error(error):
    """The user error under Dagster's wrappers (a SerializableErrorInfo chain)."""
    cause = error
    while cause.cause is not None and "dagster" in cause.cls_name.lower():
        cause = cause.cause
    return cause


def root_cause(error) -> str:
    """First line of the user error under Dagster's wrappers (a SerializableErrorInfo chain)."""
    cause = root_error(error)
    lines = cause.message.strip().splitlines()
    if not lines:
        return cause.cls_name
    qualified, _, text = lines[0].partition(": ")  # Dagster writes "pkg.module.Class: message"
    return text if qualified.rsplit(".", 1)[-1] == cause.cls_name and text else lines[0]


def step_failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """Root causes of the failed steps of an in-process run, in order."""
    return [
        f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
