"""The gate's verdict over a cohort (DESIGN.md): pure logic, no Dagster.

INCONCLUSIVE_TOOLING as soon as one expected blob is absent — with no pooled metric at all.
When every blob is absent, either every acquisition failed with a recorded cause of its own
(data, configuration, code): the report names it and its next step; or nothing explains it:
``transport_suspect`` (runbook scenario C). Otherwise each crypto
is diagnosed within itself (ADR-27) and the campaign passes when at least one crypto qualifies.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cvn_assets.gate.cohort import Cohort
from cvn_assets.gate.diagnosis import NO_CANDIDATES, evaluate_cryptos, run_level_codes, run_level_relaunch
from cvn_assets.gate.report import CohortStatus, GateReport, Verdict
from cvn_assets.gate.settings import GateSettings


# The next step for absences every acquisition explains itself, by kind of cause.
CAUSE_NEXT_STEPS = {
    "data": "fix the candles each acquisition refused (named in its reason), then relaunch — "
            "`cvn campaign launch --data-source files` checks every symbol's candles before registering",
    "configuration": "fix the configuration each acquisition could not read (named in its reason), then "
                     "re-run the acquisitions and the gate",
    "code": "a bug in the acquisition: open the failed acquisition runs in the Dagster UI for the stack trace, "
            "fix it, then re-run the acquisitions and the gate",
}


def absence_next_step(causes: list[str], campaign_id: str) -> str | None:
    """What to do when every blob is absent for ``causes`` (None when nothing explains the absence)."""
    if not causes:
        return None
    steps = "; ".join(f"{cause}: {CAUSE_NEXT_STEPS[cause]}" for cause in causes)
    return f"{steps} (`cvn gate --campaign {campaign_id}` prints each reason)"


def cohort_statuses(cohort: Cohort) -> list[CohortStatus]:
    return [
        CohortStatus(
            crypto=entry.ref.crypto, fold=entry.ref.fold, family=entry.ref.family, key=entry.key,
            status="present" if entry.present else "absent", reason=entry.reason, cause=entry.cause,
        )
        for entry in cohort.entries
    ]


def _absence_summary(cohort: Cohort) -> str:
    absent = cohort.absent
    causes = cohort.absence_causes
    if causes:
        reasons = sorted({f"{entry.ref.crypto}: {entry.reason}" for entry in absent})
        return (
            f"INCONCLUSIVE_TOOLING: all {len(absent)} expected blobs are absent because every acquisition failed "
            f"({', '.join(causes)} — not a transport problem): {'; '.join(reasons[:3])}"
            f"{' …' if len(reasons) > 3 else ''}. Next: {absence_next_step(causes, cohort.campaign_id)}"
        )
    if cohort.transport_suspect:
        return (
            f"INCONCLUSIVE_TOOLING: all {len(absent)} expected blobs are absent — a transport/config "
            f"problem, not independent failures (runbook scenario C: `cvn s3 check`; store: {cohort.store_description})"
        )
    cryptos = sorted({entry.ref.crypto for entry in absent})
    return (
        f"INCONCLUSIVE_TOOLING: {len(absent)} of {len(cohort.entries)} expected blobs absent "
        f"({', '.join(cryptos)}); no metric pooled (runbook scenario A: re-run those acquisitions and the gate: "
        f"`cvn campaign rerun {cohort.campaign_id} --cryptos {','.join(cryptos)}`)"
    )


def evaluate_gate(cohort: Cohort, settings: GateSettings | None = None, now: datetime | None = None) -> GateReport:
    spec = cohort.manifest.spec
    common = dict(
        campaign_id=cohort.campaign_id, group=spec.group, cohort=cohort_statuses(cohort),
        missing=cohort.missing_keys, transport_suspect=cohort.transport_suspect,
        absence_causes=cohort.absence_causes, next_step=absence_next_step(cohort.absence_causes, cohort.campaign_id),
        evaluated_at=now or datetime.now(UTC), spec=spec,
    )
    if not cohort.complete:
        return GateReport(verdict=Verdict.INCONCLUSIVE_TOOLING, cryptos=None, codes=[],
                          summary=_absence_summary(cohort), **common)
    cryptos = evaluate_cryptos(cohort.pooled(), spec, settings)
    codes = run_level_codes(cryptos)
    candidates = sorted(crypto for crypto, verdict in cryptos.items() if verdict.candidate)
    if candidates:
        verdict, summary = Verdict.PASS, f"PASS: {len(candidates)} of {len(cryptos)} cryptos qualify ({', '.join(candidates)})"
    else:
        verdict = Verdict.FAIL
        summary = (f"FAIL: no crypto qualifies ({NO_CANDIDATES}); §9.3 — read the reasons per crypto, or "
                   f"relaunch on a wider grid: {run_level_relaunch(spec)}")
    return GateReport(verdict=verdict, cryptos=cryptos, codes=codes, summary=summary, **common)
