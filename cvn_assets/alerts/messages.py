"""Alert texts: the runbook's scenarios A–D and the manual's playbooks, with the exact commands.

The runbook (``000_*.txt``) says what each transport failure means and what to do; here each
scenario is one ``Scenario`` whose commands are filled in with the campaign, crypto or key of the
alert, so the person paged can paste them. Global-state alerts carry, for each fired rule, the
next step of the manual (§9 playbooks, §6.2 launch).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from cvn_assets.alerts.alert import Alert, Severity
from cvn_assets.alerts.policy import Decision, NotificationKind
from cvn_assets.contracts.campaign import load_universes
from cvn_assets.contracts.keys import parse_blob_key
from cvn_assets.state.rules import REACTION, State, StateEvaluation



class Scenario(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    title: str
    text: str


SCENARIO_A = Scenario(
    code="A", title="INCONCLUSIVE_TOOLING / cohort incomplete",
    text=("An expected blob is absent (the crypto is simply missing): the verdict degrades to "
          "INCONCLUSIVE_TOOLING, never a partial pool. Re-run the failed acquisitions (clear + rerun: "
          "`cvn campaign rerun ID --failed`); the gate then re-reads the cohort. All cryptos absent = a transport/config problem, "
          "not independent failures: see scenario C."),
)
SCENARIO_B = Scenario(
    code="B", title="s43 npz schema mismatch / missing array / shape mismatch (fail-loud)",
    text=("A present blob is malformed: the gate raises by design (ADR-25, corruption must surface). "
          "Do NOT treat it as a missing pod. Likely causes: a SCHEMA_VERSION bump without a matching "
          "producer, or a partial/truncated write. Inspect the blob, fix the producer, clear + rerun."),
)
SCENARIO_C = Scenario(
    code="C", title="S3 connectivity / wrong prefix",
    text=("Every expected blob is absent: a transport or configuration problem (endpoint, credentials, "
          "bucket, prefix), not independent acquisition failures. Check S3 connectivity and the prefix; "
          "the prefix is run-isolated (s43-predictions/<campaign>/…), the gate reads the same campaign's "
          "prefix as the acquisitions, so a mismatch only comes from a code or configuration change."),
)
SCENARIO_D = Scenario(
    code="D", title="S3 footprint growth",
    text=("The 7-day lifecycle rule on s43-predictions/ bounds the footprint. A bucket has one lifecycle "
          "configuration: merge with the existing xcom/ and l2_events/ rules, never replace them."),
)
SCENARIOS = {s.code: s for s in (SCENARIO_A, SCENARIO_B, SCENARIO_C, SCENARIO_D)}


def runbook(scenario: Scenario) -> str:
    return f"runbook scenario {scenario.code} — {scenario.title}"


def rerun_command(campaign_id: str, cryptos: list[str] | None = None) -> str:
    """The runbook's clear + rerun: the campaign's acquisitions of those cryptos (or the failed ones),
    with the campaign's own spec and tags, then its gate — supervised like a launch."""
    which = f"--cryptos {shlex.quote(','.join(cryptos))}" if cryptos else "--failed"
    return f"cvn campaign rerun {shlex.quote(campaign_id)} {which}"


def gate_command(campaign_id: str) -> str:
    return f"cvn gate --campaign {shlex.quote(campaign_id)}"


def blob_inspect_command(key: str) -> str:
    return f"cvn blob inspect {shlex.quote(key)}"


def blob_ls_command(campaign_id: str) -> str:
    return f"cvn blob ls --campaign {shlex.quote(campaign_id)}"


S3_CHECK_COMMAND = "cvn s3 check"
LIFECYCLE_COMMANDS = ["cvn lifecycle show", "cvn lifecycle plan", "cvn lifecycle verify"]


# ---------------------------------------------------------------------------------------------
# Transport failures (asset checks, gate materializations)


def malformed_blob_alert(*, key: str, check: str, campaign_id: str | None, crypto: str | None, run_id: str,
                         error: str, created_at: datetime, more_keys: list[str] | None = None) -> Alert:
    """blobs_intact / cohort_intact failed: scenario B, P1."""
    commands = [blob_inspect_command(key)] if key else []
    commands += [blob_inspect_command(k) for k in (more_keys or [])[:4]]
    if campaign_id:  # the rerun re-gates: no separate gate command
        commands.append(rerun_command(campaign_id, [crypto] if crypto else None))
    where = f"campaign {campaign_id}" + (f", crypto {crypto}" if crypto else "") if campaign_id else f"run {run_id}"
    return Alert(
        key=f"check:{check}:{run_id}:{campaign_id}:{crypto}", kind="check_failure", severity=Severity.P1,
        title=f"malformed prediction blob ({check} failed) — {where}",
        text=f"{error}\n{SCENARIO_B.text}",
        scenario=runbook(SCENARIO_B),
        next_steps=["inspect the blob (the exact s43 npz error)", "fix the producer",
                    "re-run the acquisition of that crypto", "re-run the gate"],
        commands=commands,
        facts={"check": check, "campaign": campaign_id, "crypto": crypto, "key": key or None, "run_id": run_id},
        created_at=created_at,
    )


def incomplete_cohort_alert(*, campaign_id: str, missing: list[str], run_id: str, created_at: datetime,
                            absence_causes: str | None = None, next_step: str | None = None) -> Alert:
    """cohort_complete WARN: scenario A, P2 — re-run the acquisitions of the absent cryptos.

    When every blob is absent because every acquisition failed with a recorded cause of its own
    (``absence_causes``: data, configuration, code), the alert says that cause and its next step.
    """
    cryptos = sorted({crypto_of(key) for key in missing if crypto_of(key)})
    commands = [blob_ls_command(campaign_id), rerun_command(campaign_id, cryptos or None)]
    absent = ("\nabsent: " + ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")) if missing else ""
    explained = absence_causes not in (None, "", "none")
    if explained:
        title = (f"cohort absent — campaign {campaign_id}: every acquisition failed ({absence_causes}, not "
                 f"transport), verdict INCONCLUSIVE_TOOLING")
        text = f"Every expected blob is absent because every acquisition failed ({absence_causes}).{absent}"
        steps = [next_step or "read why each acquisition failed (`cvn gate --campaign ID`)"]
    else:
        title = (f"cohort incomplete — campaign {campaign_id}: {len(missing)} blob(s) absent "
                 f"({', '.join(cryptos) or 'unknown cryptos'}), verdict INCONCLUSIVE_TOOLING")
        text = SCENARIO_A.text + absent
        steps = ["see why each acquisition failed (event s43_acquire_outcome / s43_pred_persist_failed)",
                 "re-run the failed acquisitions", "re-run the gate"]
    return Alert(
        key=f"check:cohort_complete:{run_id}:{campaign_id}", kind="check_failure", severity=Severity.P2,
        title=title, text=text, scenario=runbook(SCENARIO_A), next_steps=steps, commands=commands,
        facts={"campaign": campaign_id, "absent": len(missing), "run_id": run_id,
               **({"absence_causes": absence_causes} if explained else {})},
        created_at=created_at,
    )


def transport_suspect_alert(*, campaign_id: str, absent: int | None, run_id: str, created_at: datetime) -> Alert:
    """Every blob absent: scenario C, P1 — S3 connectivity or prefix, not N independent failures."""
    return Alert(
        key=f"transport:{run_id}:{campaign_id}", kind="check_failure", severity=Severity.P1,
        title=f"transport suspect — campaign {campaign_id}: every expected blob is absent",
        text=SCENARIO_C.text,
        scenario=runbook(SCENARIO_C),
        next_steps=["check S3 connectivity, credentials, bucket and prefix",
                    "fix the configuration, re-run the acquisitions, then the gate"],
        commands=[S3_CHECK_COMMAND, blob_ls_command(campaign_id), gate_command(campaign_id)],
        facts={"campaign": campaign_id, "absent": absent, "run_id": run_id},
        created_at=created_at,
    )


def crypto_of(key: str) -> str | None:
    """The crypto of a blob key, or None when the text is not a valid key."""
    try:
        return parse_blob_key(key)[1].crypto
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Runs: failures and stuck runs


def run_failure_alert(*, job: str, run_id: str, campaign_id: str | None, crypto: str | None, stage: str | None,
                      errors: list[str], created_at: datetime) -> Alert:
    """A run of our jobs failed. A fail-loud ``s43 npz`` error is scenario B (P1); otherwise P2."""
    malformed = any("s43 npz" in error for error in errors)
    scenario = None
    if malformed:
        scenario = runbook(SCENARIO_B)
        steps = ["inspect the malformed blob (do NOT treat it as a missing pod)", "fix the producer",
                 "re-run the acquisition, then the gate"]
    elif stage == "acquire" or job == "s43_acquire_job":
        scenario = runbook(SCENARIO_A)
        steps = ["read the root cause below (or the run's logs in the Dagster UI)",
                 "fix it and re-run this acquisition; the gate then re-reads the cohort"]
    elif stage == "gate" or job == "s43_gate_job":
        steps = ["read the root cause below", "list the campaign's blobs", "re-run the gate once fixed"]
    else:
        steps = ["read the root cause below (invalid launch parameters are named field by field)",
                 "relaunch with corrected parameters"]
    commands: list[str] = []
    in_campaign = campaign_id is not None and (stage in ("acquire", "gate") or malformed)
    if in_campaign:
        commands.append(blob_ls_command(campaign_id))
    if malformed:
        commands += [blob_inspect_command(key) for key in _npz_keys(errors)[:3]]
    if campaign_id and (crypto or in_campaign):
        commands.append(rerun_command(campaign_id, [crypto] if crypto else None))
    where = ", ".join(part for part in (f"campaign {campaign_id}" if campaign_id else "",
                                        f"crypto {crypto}" if crypto else "") if part)
    return Alert(
        key=f"run_failure:{run_id}", kind="run_failure", severity=Severity.P1 if malformed else Severity.P2,
        title=f"run failed: {job} {run_id[:8]}" + (f" ({where})" if where else ""),
        text="root cause: " + ("\n  ".join(errors) if errors else "no step failure recorded (see the run's logs)"),
        scenario=scenario, next_steps=steps, commands=commands,
        facts={"job": job, "run_id": run_id, "campaign": campaign_id, "crypto": crypto, "stage": stage},
        created_at=created_at,
    )


def _npz_keys(errors: list[str]) -> list[str]:
    """Blob keys named in fail-loud errors (they name the key: DESIGN.md)."""
    keys: list[str] = []
    for error in errors:
        for word in error.split():
            word = word.strip("'\"():,;")
            if word.endswith(".npz") and crypto_of(word) and word not in keys:
                keys.append(word)
    return keys


def stuck_run_alert(*, job: str, run_id: str, campaign_id: str | None, crypto: str | None,
                    silent_minutes: float, last_event: str, created_at: datetime) -> Alert:
    """A run reports STARTED but has written nothing for N minutes (§17.5: 'Running' but deadlocked)."""
    where = ", ".join(part for part in (f"campaign {campaign_id}" if campaign_id else "",
                                        f"crypto {crypto}" if crypto else "") if part)
    # No Dagster CLI terminates a run: the UI does (Runs → run → Terminate); in a cluster the pods
    # of the run carry the dagster-k8s label dagster/run-id.
    commands = [f"kubectl get pods -l dagster/run-id={run_id} -o wide"]
    if campaign_id:
        commands.append(rerun_command(campaign_id, [crypto] if crypto else None))
    return Alert(
        key=f"stuck_run:{run_id}", kind="stuck_run", severity=Severity.P1,
        title=f"run stuck: {job} {run_id[:8]} silent for {silent_minutes:.0f} min" + (f" ({where})" if where else ""),
        text=(f"The run is STARTED but its last event ({last_event}) is {silent_minutes:.1f} minutes old: alive "
              "but not progressing (manual §17.5: a gRPC fork deadlock looked exactly like this for 24 minutes)."),
        scenario="manual §17.5 / §9.5",
        next_steps=["look at the run's last logs and the process or pod (CPU, memory, threads)",
                    "qualify the cause before killing anything (§9.4: destructive action only once qualified)",
                    f"terminate the run (Dagster UI: Runs → {run_id} → Terminate), then re-run that step"],
        commands=commands,
        facts={"job": job, "run_id": run_id, "campaign": campaign_id, "crypto": crypto,
               "silent_minutes": round(silent_minutes, 1)},
        created_at=created_at,
    )


# §9.5 checks by the step a long run is in (the product's step keys: assets of the acquisition and gate).
LONG_RUN_CHECKS = {
    "market_candles": ["data fetch: check the exchange API / candle files and the object store connectivity "
                       f"(`{S3_CHECK_COMMAND}`)"],
    "s43_predictions": ["HPO: check hpo_trials (50 = normal, > 100 = suspect)",
                        "backtest: check the number of candles (60 d × 5 min = 17 K = normal)"],
    "s43_gate": ["gate: pooling the cohort reads every blob — check the object store connectivity "
                 f"(`{S3_CHECK_COMMAND}`) and the cohort size (`cvn blob ls`)"],
}


def long_run_alert(*, job: str, run_id: str, campaign_id: str | None, crypto: str | None, severity: Severity,
                   elapsed_seconds: float, p95_seconds: float | None, reason: str, step: str | None,
                   created_at: datetime) -> Alert:
    """§9.5: a run still logging but longer than its p95 + 30 % (P3), or than 3 h / p95 + 100 % (P2)."""
    where = ", ".join(part for part in (f"campaign {campaign_id}" if campaign_id else "",
                                        f"crypto {crypto}" if crypto else "") if part)
    base = (step or "").split(".")[0].split("[")[0]
    checks = ["identify the blocking step (Dagster UI: Runs → run → the step still running)",
              *LONG_RUN_CHECKS.get(base, [])]
    commands = [f"kubectl get pods -l dagster/run-id={run_id} -o wide", "cvn state"]
    return Alert(
        key=f"long_run:{run_id}:{severity.value}", kind="long_run", severity=severity,
        title=(f"run too long: {job} {run_id[:8]} running for {elapsed_seconds / 60:.0f} min"
               + (f" in step {step}" if step else "") + (f" ({where})" if where else "")),
        text=(f"{reason}. The run is still writing events (a silent one is stuck_run_sensor's). "
              "Exit criterion (§9.5): duration back under the historical p95."),
        scenario="manual §9.5 run too long", next_steps=checks, commands=commands,
        facts={"job": job, "run_id": run_id, "campaign": campaign_id, "crypto": crypto, "step": step,
               "elapsed_minutes": round(elapsed_seconds / 60, 1),
               "p95_minutes": round(p95_seconds / 60, 1) if p95_seconds else None},
        created_at=created_at, family="pipeline",
    )


def group_alerts(alerts: list[Alert], limit: int = 10) -> list[Alert]:
    """One alert per (kind, job, root cause): a storm of identical failures is one incident (§17.4)."""
    groups: dict[tuple[str, str, str], list[Alert]] = {}
    for alert in alerts:
        cause = alert.text.splitlines()[0] if alert.text else ""
        # the step key differs per crypto; the cause after it is what repeats
        cause = cause.split(": ", 2)[-1] if cause.startswith("root cause: ") else cause
        groups.setdefault((alert.kind, str(alert.facts.get("job")), cause), []).append(alert)
    grouped = []
    for (kind, job, cause), members in groups.items():
        if len(members) == 1:
            grouped.append(members[0])
            continue
        first = members[0]
        runs = [str(m.facts.get("run_id")) for m in members]
        commands: list[str] = []
        for member in members:
            commands += [c for c in member.commands if c not in commands]
        severity = max((m.severity for m in members), key=lambda s: s.urgency)
        cryptos = sorted({str(m.facts["crypto"]) for m in members if m.facts.get("crypto")})
        grouped.append(first.model_copy(update={
            "created_at": max(m.created_at for m in members),
            "key": f"{kind}:{job}:" + ",".join(r[:8] for r in runs[:limit]),
            "severity": severity,
            "title": f"{len(members)} runs of {job} failed with the same cause: {cause}"[:300],
            "text": first.text + "\nruns: " + ", ".join(runs[:limit]) + (" …" if len(runs) > limit else ""),
            "commands": commands[: 2 * limit],
            "facts": {**first.facts, "runs": len(members), "run_id": ",".join(runs[:limit]),
                      "crypto": ",".join(cryptos) or None},
        }))
    return grouped


# ---------------------------------------------------------------------------------------------
# Global state


def _group_of(crypto: str) -> str | None:
    try:
        universes = load_universes()
    except ValueError:
        return None
    return next((name for name, universe in universes.items() if crypto in universe.symbols), None)


def rule_next_steps(rule_id: str, relaunches: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(next steps, commands) for one fired rule: the manual's playbook for that condition.

    ``relaunches`` are the rule's own ready commands (FiredRule.commands): for the no-candidate
    rules, the §9.3 relaunch of each failed campaign with its own group, symbols and data source.
    """
    kind, _, scope = rule_id.partition(":")
    if kind == "infra_critical":
        return (["§9.4 INFRA_SATURATED: identify the pod or volume; OOMKill recurring → raise the memory "
                 "limits in the Helm values; volume > 85 % → clean old artifacts (MLflow / object store)",
                 "escalate to the platform owner"], [*LIFECYCLE_COMMANDS[:1], "cvn state"])
    if kind == "success_rate":
        return (["PIPELINE_DEGRADED: open the failed runs of s43_acquire_job / s43_gate_job / "
                 "launch_discovery in the Dagster UI (Runs, status Failure) and read their root cause",
                 "MLOps maintainer investigates within the hour (§8 P1)"], ["cvn state --json"])
    if kind in ("zero_pass_gates", "no_candidates"):
        return (["§9.3 NO_CANDIDATES: read the rejection reasons of the last gates (Grafana Testing & Backtest, "
                 "`cvn gate --campaign ID`); rejected by Sortino → PTE (§9.1); by f1 → ML (§9.2)",
                 "relaunch with a wider grid (more horizons, wider ATR ranges) or another crypto of the group"
                 + ("" if relaunches else " (`cvn gate --campaign ID` prints the ready relaunch of each campaign)")],
                list(relaunches))
    if kind in ("core_model_stale", "noncore_model_stale"):
        group = _group_of(scope) or "GROUP"
        return ([f"{scope} has no useful model younger than the limit: relaunch a discovery for its group "
                 "(§6.2); a PASS registers a new challenger"],
                [f"cvn campaign launch --group {shlex.quote(group)} --symbols {shlex.quote(scope)}"])
    if kind == "negative_sortino":
        group = _group_of(scope) or "GROUP"
        return ([f"§9.1 EXECUTION_MISMATCH on {scope}: check sl_pct / tp_pct / timeout_pct; sl_pct > 50 % → "
                 "wider stop-loss; escalate to the ML owner after 3 attempts"],
                [f"cvn campaign launch --group {shlex.quote(group)} --symbols {shlex.quote(scope)} "
                 "--sl-range 1.2,1.5,1.8,2.0"])
    if kind == "signals_unknown":
        return (["read which signals are unknown and why (`cvn state`); configure the missing source "
                 "(CVN_DIAGNOSTICS_URL, MLFLOW_TRACKING_URI, Kubernetes access) or run the missing campaign"],
                ["cvn state"])
    return ([], [])


def state_alert(evaluation: StateEvaluation, decision: Decision, created_at: datetime) -> Alert:
    """The global-state notification: firing / changed / updated / repeat / resolved."""
    kind = decision.kind or NotificationKind.REPEAT
    previous = decision.previous_state or State.GREEN
    severity = decision.severity or Severity.P3
    if kind == NotificationKind.RESOLVED:
        return Alert(
            key="global_state", kind=kind.value, severity=severity,
            title=f"RESOLVED: global state back to GREEN (was {previous.value})",
            text="Every §0 rule reads healthy and every rule input is known.",
            scenario="manual §0", next_steps=["close the incident; note it in the incident log (§17)"],
            commands=["cvn state"],
            facts={"state": State.GREEN.value, "previous_state": previous.value, "kind": kind.value},
            created_at=created_at,
        )
    steps: list[str] = []
    commands: list[str] = []
    for rule in evaluation.rules:
        rule_steps, rule_commands = rule_next_steps(rule.id, rule.commands)
        steps += [step for step in rule_steps if step not in steps]
        commands += [command for command in rule_commands if command not in commands]
    headline = {
        NotificationKind.FIRING: f"global state {evaluation.state.value}",
        NotificationKind.CHANGED: f"global state {previous.value} → {evaluation.state.value}",
        NotificationKind.UPDATED: f"global state {evaluation.state.value}: new rule fired",
        NotificationKind.REPEAT: f"global state still {evaluation.state.value}",
    }[kind]
    lines = [f"{REACTION[evaluation.state]}.", "rules fired:"]
    lines += [f"- [{rule.state.value}] {rule.reason}" for rule in evaluation.rules]
    return Alert(
        key="global_state", kind=kind.value, severity=severity,
        title=f"{headline} — {evaluation.rules[0].reason if evaluation.rules else ''}"[:300],
        text="\n".join(lines), scenario="manual §0 / §8 / §9", next_steps=steps, commands=commands,
        facts={"state": evaluation.state.value, "previous_state": previous.value, "kind": kind.value,
               "rules": ", ".join(rule.id for rule in evaluation.rules)},
        created_at=created_at,
    )
