"""The gate asset [campaign] and its checks.

``s43_gate`` pools exactly the expected cohort (loaded by the s43 IO manager) and records the
verdict. ``cohort_complete`` (WARN) flags absent blobs. ``cohort_intact`` (ERROR) reads storage
itself in its own step with no dependency on the gate, so it reports corruption even when the
gate's input load raised — that is the run an operator opens first (runbook scenario B).
"""


import logging

import dagster as dg

import io

import pandas as pd

from cvn_assets.acquisition.assets import S43_PREDICTIONS
from cvn_assets.contracts.blob import BlobError
from cvn_assets.contracts.campaign import STORED
from cvn_assets.diagnostics.resources import DiagnosticsResource
from cvn_assets.gate.model_registry import log_gate_evaluation, register_challengers
from cvn_assets.gate.resources import ModelRegistryResource
from cvn_assets.models.lifecycle import Lifecycle
from cvn_assets.storage.candles_io_manager import candles_key
from cvn_assets.events import Event, log_event
from cvn_assets.gate.cohort import Cohort, load_cohort
from cvn_assets.gate.report import GateReport, Verdict, report_key
from cvn_assets.gate.verdict import evaluate_gate
from cvn_assets.partitions import CAMPAIGN_DIMENSION, campaign_partitions
from cvn_assets.runs import acquisition_failures
from cvn_assets.storage.object_store import StorageError
from cvn_assets.storage.resources import ObjectStoreResource

S43_GATE = "s43_gate"
CHALLENGERS = "challengers"
COHORT_COMPLETE = "cohort_complete"
COHORT_INTACT = "cohort_intact"
ML_BEATS_BASELINE = "ml_beats_baseline"
GATE_GROUP = "gate"


def _markdown_table(report: GateReport) -> str:
    if report.cryptos is None:
        lines = ["| crypto | fold | family | status | reason |", "|---|---|---|---|---|"]
        lines += [f"| {e.crypto} | {e.fold} | {e.family} | {e.status} | {e.reason or ''} |"
                  for e in report.cohort if e.status == "absent"]
        return "\n".join(lines)
    lines = ["| crypto | diagnostic | candidate | family | f1_buy | baseline | delta | sortino | action |",
             "|---|---|---|---|---|---|---|---|---|"]
    for crypto, verdict in sorted(report.cryptos.items()):
        s = verdict.signals
        lines.append(
            f"| {crypto} | {verdict.diagnostic} | {'yes' if verdict.candidate else 'no'} | {s.get('family', '')} "
            f"| {_fmt(s.get('f1_buy'))} | {_fmt(s.get('baseline_f1_buy'))} | {_fmt(s.get('f1_buy_delta'))} "
            f"| {_fmt(s.get('sortino'))} | {verdict.action} |"
        )
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value if value is not None else "")


def ml_beats_baseline_result(report: GateReport) -> dg.AssetCheckResult:
    """WARN listing the cryptos whose f1_buy does not beat always-BUY; never passes without evidence."""
    if report.cryptos is None:
        return dg.AssetCheckResult(
            check_name=ML_BEATS_BASELINE, passed=False, severity=dg.AssetCheckSeverity.WARN,
            metadata={"evaluated": False, "reason": "no pooled metric: the cohort is incomplete (see cohort_complete)"},
        )
    deltas = {crypto: float(verdict.signals["f1_buy_delta"]) for crypto, verdict in sorted(report.cryptos.items())}
    behind = [crypto for crypto, delta in deltas.items() if delta <= 0]
    return dg.AssetCheckResult(
        check_name=ML_BEATS_BASELINE, passed=not behind, severity=dg.AssetCheckSeverity.WARN,
        metadata={"evaluated": True, "not_beating_baseline": dg.MetadataValue.json(behind),
                  "f1_buy_delta_points": dg.MetadataValue.json({c: round(d, 2) for c, d in deltas.items()})},
    )


def cohort_next_step(report: GateReport) -> str:
    """What to do about absent blobs: the recorded cause's step, scenario C, or scenario A."""
    if not report.missing:
        return "none"
    if report.next_step:
        return report.next_step
    if report.transport_suspect:
        return "runbook scenario C: cvn s3 check (connectivity, credentials, bucket, prefix)"
    return f"runbook scenario A: re-run the failed acquisitions, then cvn gate --campaign {report.campaign_id}"


def gate_metadata(report: GateReport) -> dict[str, object]:
    metadata: dict[str, object] = {
        "verdict": report.verdict.value,
        "transport_suspect": report.transport_suspect,
        "absence_causes": ", ".join(report.absence_causes) or "none",
        "summary": report.summary,
        "expected_blobs": len(report.cohort),
        "absent_blobs": len(report.missing),
        "missing": dg.MetadataValue.json(report.missing),
        "codes": ", ".join(report.codes) or "none",
        "cryptos": dg.MetadataValue.md(_markdown_table(report)),
    }
    for crypto, verdict in (report.cryptos or {}).items():
        for name, value in verdict.signals.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metadata[f"{crypto}/{name}"] = float(value)
    return metadata


@dg.asset(
    name=S43_GATE,
    partitions_def=campaign_partitions,
    group_name=GATE_GROUP,
    ins={"cohort": dg.AssetIn(
        S43_PREDICTIONS,
        partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=CAMPAIGN_DIMENSION),
    )},
    check_specs=[
        dg.AssetCheckSpec(COHORT_COMPLETE, asset=S43_GATE, partitions_def=campaign_partitions,
                          description="every expected blob of the campaign is present"),
        dg.AssetCheckSpec(ML_BEATS_BASELINE, asset=S43_GATE, partitions_def=campaign_partitions,
                          description="every crypto's model beats the naive always-BUY baseline (ADR-29)"),
    ],
    kinds={"python"},
)
def s43_gate(context: dg.AssetExecutionContext, cohort: Cohort, object_store: ObjectStoreResource,
             diagnostics: DiagnosticsResource, model_registry: ModelRegistryResource):
    """Verdict of one campaign: PASS, FAIL (NO_CANDIDATES) or INCONCLUSIVE_TOOLING (incomplete cohort).

    Recorded three ways: the report JSON next to the blobs (what `cvn gate` prints), the
    diagnostics tables (what Grafana shows) and an MLflow run (drill-down, manual §3).
    """
    report = evaluate_gate(cohort)
    store = object_store.store()
    store.put(report_key(object_store.prefix, report.campaign_id), report.model_dump_json(indent=2).encode(),
              content_type="application/json")
    diagnostics.store().replace_gate(report)
    mlflow_run_id = log_gate_evaluation(report, model_registry.tracking_uri)
    log_event(context.log, Event.GATE_VERDICT,
              logging.WARNING if report.verdict == Verdict.INCONCLUSIVE_TOOLING else logging.INFO,
              campaign=report.campaign_id, verdict=report.verdict.value,
              transport_suspect=report.transport_suspect, absent=len(report.missing),
              codes=report.codes)
    return dg.MaterializeResult(
        metadata={**gate_metadata(report), "mlflow_run_id": mlflow_run_id,
                  "diagnostics": diagnostics.store().describe()},
        check_results=[dg.AssetCheckResult(
            check_name=COHORT_COMPLETE,
            passed=cohort.complete,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"absent": len(report.missing), "missing": dg.MetadataValue.json(report.missing),
                      "transport_suspect": report.transport_suspect,
                      "absence_causes": ", ".join(report.absence_causes) or "none",
                      "next_step": cohort_next_step(report)},
        ), ml_beats_baseline_result(report)],
    )


@dg.asset(
    name=CHALLENGERS,
    partitions_def=campaign_partitions,
    group_name=GATE_GROUP,
    deps=[S43_GATE],
    ins={"cohort": dg.AssetIn(
        S43_PREDICTIONS,
        partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=CAMPAIGN_DIMENSION),
    )},
    kinds={"mlflow"},
)
def challengers(context: dg.AssetExecutionContext, cohort: Cohort, object_store: ObjectStoreResource,
                model_registry: ModelRegistryResource, diagnostics: DiagnosticsResource):
    """Each candidate crypto of a PASS, trained on the full window and registered as a challenger
    (alias ``challenger-<campaign>``, an audited ``register`` event)."""
    store, prefix = object_store.store(), object_store.prefix
    report = GateReport.model_validate_json(store.get(report_key(prefix, context.partition_key)), context=STORED)
    if report.verdict != Verdict.PASS:
        return dg.MaterializeResult(metadata={"registered": 0, "reason": f"verdict {report.verdict.value}: no candidate"})

    def candles(crypto: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(store.get(candles_key(prefix, report.campaign_id, crypto))))

    lifecycle = Lifecycle(model_registry.tracking_uri, diagnostics.store(), origin=f"dagster run {context.run_id}")
    registered = register_challengers(report, lifecycle, cohort.pooled(), candles)
    for entry in registered:
        context.log.info(f"registered {entry['model_uri']} (version {entry['version']}, family {entry['family']})")
    return dg.MaterializeResult(metadata={
        "registered": len(registered),
        "models": dg.MetadataValue.json(registered),
    })


def load_failure_next_step(exc: BlobError | StorageError) -> str:
    """A malformed blob is the producer's (scenario B); a store that cannot be read is transport (C)."""
    if isinstance(exc, BlobError):
        return f"runbook scenario B: cvn blob inspect {exc.key}, fix the producer, re-run the acquisition"
    return "runbook scenario C: cvn s3 check (endpoint, credentials, bucket, prefix), then re-run the gate"


@dg.op(
    name=f"{S43_GATE}_{COHORT_INTACT}",
    out={COHORT_INTACT: dg.Out()},  # the returned AssetCheckResult becomes the check evaluation event
    description="Reads the campaign's cohort from storage and fails with ERROR if a present blob is malformed.",
)
def _cohort_intact_op(context: dg.OpExecutionContext, object_store: ObjectStoreResource):
    campaign_id = context.partition_key
    store = object_store.store()
    try:
        cohort = load_cohort(store, object_store.prefix, campaign_id,
                             absence_reasons=lambda: acquisition_failures(context.instance, campaign_id))
    except (BlobError, StorageError) as exc:
        log_event(context.log, Event.PRED_LOAD_FAILED, logging.ERROR, campaign=campaign_id,
                  key=getattr(exc, "key", ""), error=str(exc))
        return dg.AssetCheckResult(
            check_name=COHORT_INTACT, asset_key=S43_GATE, passed=False, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"error": str(exc), "key": getattr(exc, "key", ""), "next_step": load_failure_next_step(exc)},
        )
    return dg.AssetCheckResult(
        check_name=COHORT_INTACT, asset_key=S43_GATE, passed=True, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"present": len(cohort.entries) - len(cohort.absent), "absent": len(cohort.absent)},
    )


# Built from an op with no input so that its step does not depend on the gate's step
# (@asset_check always adds that dependency, and Dagster skips a step whose upstream failed).
cohort_intact = dg.AssetChecksDefinition(
    keys_by_input_name={},
    keys_by_output_name={},
    node_def=_cohort_intact_op,
    partitions_def=campaign_partitions,
    check_specs_by_output_name={COHORT_INTACT: dg.AssetCheckSpec(
        COHORT_INTACT, asset=S43_GATE, partitions_def=campaign_partitions,
        description="no present blob of the cohort is malformed (schema, arrays, shapes, checksum)",
    )},
)
