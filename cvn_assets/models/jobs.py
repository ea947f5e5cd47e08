"""The lifecycle pipelines as Dagster jobs (manual §10), launchable from the UI's launchpad.

Each job runs one op over the same ``Lifecycle`` as `cvn model …`, with a typed config the
launchpad shows: the same guards, the same audit row (its origin names the run). A refusal fails
the run with the reason (nothing changed, a ``refused`` row); a registry failure fails it with the
changes applied (re-launch the same config to complete).
"""

from collections.abc import Callable

import dagster as dg
from pydantic import Field

from cvn_assets.diagnostics.resources import DiagnosticsResource
from cvn_assets.gate.resources import ModelRegistryResource
from cvn_assets.models.contract import Refused
from cvn_assets.models.lifecycle import ActionResult, Lifecycle, LifecycleFailed

PROMOTION_JOB = "model_promotion_job"
KILLSWITCH_JOB = "model_killswitch_job"
ROLLBACK_JOB = "model_rollback_job"
DECOMMISSION_JOB = "model_decommission_job"
APPROVAL_JOB = "model_approval_job"
MODEL_JOBS = (APPROVAL_JOB, PROMOTION_JOB, KILLSWITCH_JOB, ROLLBACK_JOB, DECOMMISSION_JOB)

_CRYPTO = "crypto symbol, e.g. SOLUSDC"
_BY = "who acts (your name: identity is what you state; the audit row is the control)"
_CONFIRM = "CRYPTO@VERSION typed exactly (explicit validation, manual §10)"


class ApprovalConfig(dg.Config):
    crypto: str = Field(description=_CRYPTO)
    version: str = Field(description="MLflow version number of cvn-s43-<CRYPTO>")
    role: str = Field(description="operator, mlops_maintainer, ml_owner or platform_owner (manual §4)")
    by: str = Field(description=_BY)
    reason: str = Field(default="", description="why you approve")
    action: str = Field(default="promotion", description="the action approved: promotion or meta_training")


class PromotionConfig(dg.Config):
    crypto: str = Field(description=_CRYPTO)
    version: str = Field(description="the challenger version to promote to champion")
    by: str = Field(description=_BY)


class KillswitchConfig(dg.Config):
    crypto: str = Field(description=_CRYPTO)
    confirm: str = Field(description=f"{_CONFIRM}: the current champion")
    reason: str = Field(description="why the champion is pulled (mandatory)")
    by: str = Field(description=_BY)


class RollbackConfig(dg.Config):
    crypto: str = Field(description=_CRYPTO)
    confirm: str = Field(description=f"{_CONFIRM}: the current (bad) champion")
    reason: str = Field(description="why (mandatory)")
    by: str = Field(description=_BY)


class DecommissionConfig(dg.Config):
    crypto: str = Field(description=_CRYPTO)
    version: str = Field(description="the quarantined or superseded version to archive")
    confirm: str = Field(description=f"{_CONFIRM}: the version archived")
    by: str = Field(description=_BY)
    delete_artifacts: bool = Field(default=False, description="also delete the version's stored files")


def _run(context: dg.OpExecutionContext, model_registry: ModelRegistryResource, diagnostics: DiagnosticsResource,
         act: Callable[[Lifecycle], ActionResult]) -> dg.Output:
    lifecycle = Lifecycle(model_registry.tracking_uri, diagnostics.store(), origin=f"dagster run {context.run_id}")
    try:
        result = act(lifecycle)
    except (Refused, ValueError) as exc:
        raise dg.Failure(description=f"refused: {exc}", metadata={"outcome": "refused"}, allow_retries=False) from None
    except LifecycleFailed as exc:
        raise dg.Failure(description=str(exc), metadata={"outcome": "failed"}, allow_retries=False) from exc
    context.log.info(f"{result.action.value} {result.crypto} v{result.version}: {result.outcome.value} — "
                     f"{result.detail} (audit event #{result.event_id})")
    return dg.Output(result.model_dump(mode="json"), metadata={
        "outcome": result.outcome.value, "detail": result.detail, "audit_event": result.event_id,
        "before": dg.MetadataValue.json(result.before), "after": dg.MetadataValue.json(result.after or {}),
        "changes": dg.MetadataValue.json(result.changes)})


@dg.op(description="Record an approval of a version (cvn model approve).")
def model_approval(context: dg.OpExecutionContext, config: ApprovalConfig, model_registry: ModelRegistryResource,
                   diagnostics: DiagnosticsResource) -> dg.Output[dict]:
    return _run(context, model_registry, diagnostics,
                lambda lc: lc.approve(config.crypto, config.version, config.role, config.by, config.reason,
                                      config.action))


@dg.op(description="Challenger → champion, the old champion → previous (two approvals, a passed gate).")
def model_promotion(context: dg.OpExecutionContext, config: PromotionConfig, model_registry: ModelRegistryResource,
                    diagnostics: DiagnosticsResource) -> dg.Output[dict]:
    return _run(context, model_registry, diagnostics, lambda lc: lc.promote(config.crypto, config.version, config.by))


@dg.op(description="Emergency quarantine of the champion: the crypto has no champion until a promotion or rollback.")
def model_killswitch(context: dg.OpExecutionContext, config: KillswitchConfig, model_registry: ModelRegistryResource,
                     diagnostics: DiagnosticsResource) -> dg.Output[dict]:
    return _run(context, model_registry, diagnostics,
                lambda lc: lc.killswitch(config.crypto, config.confirm, config.reason, config.by))


@dg.op(description="Previous → champion, the bad champion → quarantined.")
def model_rollback(context: dg.OpExecutionContext, config: RollbackConfig, model_registry: ModelRegistryResource,
                   diagnostics: DiagnosticsResource) -> dg.Output[dict]:
    return _run(context, model_registry, diagnostics,
                lambda lc: lc.rollback(config.crypto, config.confirm, config.reason, config.by))


@dg.op(description="Archive a quarantined or superseded version: aliases removed, stage decommissioned.")
def model_decommission(context: dg.OpExecutionContext, config: DecommissionConfig,
                       model_registry: ModelRegistryResource, diagnostics: DiagnosticsResource) -> dg.Output[dict]:
    return _run(context, model_registry, diagnostics,
                lambda lc: lc.decommission(config.crypto, config.version, config.confirm, config.by,
                                           config.delete_artifacts))


def _job(name: str, op: dg.OpDefinition, description: str) -> dg.JobDefinition:
    @dg.job(name=name, description=description, tags={"cvn/domain": "models"},
            executor_def=dg.in_process_executor)  # one short registry step: no process per step
    def _one_step() -> None:
        op()

    return _one_step


model_approval_job = _job(APPROVAL_JOB, model_approval, "Record an approval (manual §4).")
model_promotion_job = _job(PROMOTION_JOB, model_promotion, "pte__promotion: challenger → champion (manual §10).")
model_killswitch_job = _job(KILLSWITCH_JOB, model_killswitch, "pte__7_killswitch: quarantine the champion.")
model_rollback_job = _job(ROLLBACK_JOB, model_rollback, "pte__8_rollback: back to the previous champion.")
model_decommission_job = _job(DECOMMISSION_JOB, model_decommission, "pte__10_decommission: archive a version.")
