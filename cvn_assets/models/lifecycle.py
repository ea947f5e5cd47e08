"""The lifecycle actions, governed and audited: what `cvn model …` and the model jobs call.

``Lifecycle(tracking_uri, store)`` reads a crypto's registry view, plans the action with the pure
rules of ``contract.py``, writes the audit row, applies the changes to MLflow in order and closes
the row. A guard that does not hold raises ``Refused`` after a ``refused`` row (nothing changed);
a registry failure in the middle raises ``LifecycleFailed`` after a ``failed`` row naming the
changes applied; running the same action again completes it (the recorded plan is re-applied,
each change idempotent). While a crypto has such an unfinished action, any other action on it is
refused until that one is completed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from cvn_assets.contracts.identifiers import validate_campaign_id, validate_crypto

from cvn_assets.diagnostics.store import DiagnosticsStore
from cvn_assets.diagnostics.tables import model_backtests
from cvn_assets.models import registry
from cvn_assets.models.audit import ModelAudit
from cvn_assets.models.contract import (
    EXECUTOR_ROLE, ORIGIN_RETRAIN, REQUIRED_APPROVALS, TAG_CAMPAIGN, TAG_ORIGIN, Action, Approval, Outcome, Plan,
    Refused, RegistryView, Role, Stage, check_approvals, plan_decommission, plan_killswitch, plan_promotion,
    plan_register, plan_rollback, require_other_person, validate_actor, validate_version,
)


class LifecycleFailed(Exception):
    """The registry failed in the middle of an action: the audit row says what moved; re-run to complete."""


class ActionResult(BaseModel):
    """What one action did (also the ``--json`` of the commands)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: int
    action: Action
    crypto: str
    version: str | None
    outcome: Outcome
    detail: str
    before: dict[str, str]
    after: dict[str, str] | None
    changes: list[str]


def _now() -> datetime:
    return datetime.now(UTC)


def _approval_entries(approvals: list[tuple[int, Approval]]) -> list[dict[str, Any]]:
    return [{"id": ident, "role": a.role.value, "actor": a.actor, "at": a.approved_at.isoformat()}
            for ident, a in approvals]


def gate_passed_reason(store: DiagnosticsStore, campaign_id: str, crypto: str) -> str | None:
    """None when ``campaign_id``'s gate is PASS with ``crypto`` a candidate; otherwise what was found."""
    verdict, signals = store.gate_rows(campaign_id)
    if verdict is None:
        return f"no gate verdict recorded for campaign {campaign_id} (cvn_gate_verdicts)"
    if verdict["verdict"] != "PASS":
        return f"the gate of campaign {campaign_id} is {verdict['verdict']}, not PASS"
    row = next((r for r in signals if r["crypto"] == crypto), None)
    if row is None or not row["candidate"]:
        return f"{crypto} was not a candidate of campaign {campaign_id}'s PASS"
    return None


def backtest_qualified_reason(store: DiagnosticsStore, crypto: str, version: str) -> str | None:
    """None when the version's latest backtest (``cvn_model_backtests``) qualifies it; otherwise why not.

    A challenger registered by retrain has no discovery gate of its own: its backtest on a window
    after its training window (a backtest refuses an in-sample window) is the gate it passed, or not.
    """
    with store.engine.connect() as connection:
        row = connection.execute(
            sa.select(model_backtests).where((model_backtests.c.crypto == crypto) & (model_backtests.c.version == version)
                                             & (model_backtests.c.kind == "backtest"))
            .order_by(model_backtests.c.evaluated_at.desc()).limit(1)).mappings().first()
    if row is None:
        return f"{crypto} v{version} has no backtest recorded (cvn model backtest --crypto {crypto} --version {version})"
    if not row["qualifies"]:
        return f"{crypto} v{version} did not qualify at its latest backtest {row['run_id']} ({row['diagnostic']})"
    return None


def qualified_reason(store: DiagnosticsStore, crypto: str, version: str, tags: Mapping[str, str]) -> str | None:
    """None when the version passed its gate; otherwise why not (the promotion guard).

    A version from a discovery campaign passed that campaign's gate; a retrained version (origin
    ``retrain``) passed a qualifying backtest of its own.
    """
    campaign = tags.get(TAG_CAMPAIGN)
    if not campaign:  # plan_promotion refuses a version without an origin campaign
        return None
    if tags.get(TAG_ORIGIN) == ORIGIN_RETRAIN:
        reason = backtest_qualified_reason(store, crypto, version)
        return None if reason is None else f"a retrained version's gate is a qualifying backtest: {reason}"
    return gate_passed_reason(store, campaign, crypto)


@dataclass
class Lifecycle:
    """The registry lifecycle over one MLflow store and one (migrated) diagnostics store."""

    tracking_uri: str
    store: DiagnosticsStore
    origin: str = "cli"
    now: Callable[[], datetime] = field(default=_now)

    def __post_init__(self) -> None:
        self.audit = ModelAudit(self.store)
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = registry.mlflow_client(self.tracking_uri)
        return self._client

    # reading ------------------------------------------------------------------------------------

    def view(self, crypto: str) -> RegistryView:
        return registry.read_view(self.client, validate_crypto(crypto))

    def cryptos(self) -> list[str]:
        return registry.our_cryptos(self.client)

    def roles(self, crypto: str) -> dict[str, Any]:
        """Public API (a): a crypto's champion, challengers, previous and quarantined versions."""
        view = self.view(crypto)
        now_ms = self.now().timestamp() * 1000

        def describe(version: str | None) -> dict[str, Any] | None:
            if version is None:
                return None
            found = view.versions[version]
            tags = found.tags
            signals = json.loads(tags["signals"]) if tags.get("signals", "").startswith("{") else {}
            return {"version": version, "stage": view.stage_of(version).value,
                    "age_days": round(max(now_ms - found.created_ms, 0) / 86_400_000, 3),
                    "campaign_id": tags.get(TAG_CAMPAIGN), "origin": tags.get("origin"),
                    "diagnostic": tags.get("diagnostic"), "signals": signals,
                    **{key: tags[key] for key in ("promoted_by", "promoted_at", "quarantined_by", "quarantined_at",
                                                  "quarantine_reason", "decommissioned_by", "decommissioned_at")
                       if key in tags}}

        pending = self.audit.pending_approvals(crypto=crypto)
        unfinished = self.audit.unfinished(crypto)
        return {
            "crypto": crypto, "model": view.name,
            "champion": describe(view.champion),
            "challengers": [describe(v) for v in view.challengers],
            "previous": describe(view.previous),
            "quarantined": [describe(v) for v in view.quarantined],
            "superseded": view.in_stage(Stage.SUPERSEDED),
            "decommissioned": view.in_stage(Stage.DECOMMISSIONED),
            "approvals": [{"id": i, "version": a.version, "action": a.action, "role": a.role.value, "actor": a.actor,
                           "reason": a.reason, "approved_at": a.approved_at.isoformat()} for i, a in pending],
            "unfinished": ({"event_id": unfinished["id"], "action": unfinished["action"],
                            "version": unfinished["version"], "outcome": unfinished["outcome"],
                            "detail": unfinished["detail"]} if unfinished else None),
        }

    # approvals (public API (c)) -----------------------------------------------------------------

    def approve(self, crypto: str, version: str, role: str, actor: str, reason: str = "",
                action: str = "promotion") -> ActionResult:
        """Record an approval (`cvn model approve`); refused for an unknown, killed or retired version."""
        crypto, version, actor = validate_crypto(crypto), validate_version(version), validate_actor(actor)
        if action not in REQUIRED_APPROVALS:
            raise ValueError(f"approval action {action!r} is invalid: expected one of {', '.join(REQUIRED_APPROVALS)}")
        try:
            role_value = Role(role)
        except ValueError:
            raise ValueError(f"role {role!r} is invalid: expected one of "
                             f"{', '.join(r.value for r in Role)} (manual §4)") from None
        view = self.view(crypto)
        now = self.now()
        common = dict(action=Action.APPROVE, crypto=crypto, version=version, actor=actor, role=role_value.value,
                      reason=reason, before=view.aliases, origin=self.origin, now=now)
        refusal = None
        if version not in view.versions:
            refusal = f"{view.name} has no version {version}"
        elif view.stage_of(version) in (Stage.QUARANTINED, Stage.DECOMMISSIONED) or (
                action == "promotion" and view.stage_of(version) == Stage.CHAMPION):
            refusal = f"{view.name} v{version} is {view.stage_of(version).value}: nothing to approve for {action}"
        if refusal is not None:
            self.audit.start(**common, approvals=[], plan=None, outcome=Outcome.REFUSED, detail=refusal)
            raise Refused(refusal)
        already = [i for i, a in self.audit.pending_approvals(crypto, version, action)
                   if a.role == role_value and a.actor == actor]
        approval = Approval(crypto=crypto, version=version, action=action, role=role_value, actor=actor,
                            reason=reason, approved_at=now)
        detail = (f"{action} of v{version} approved as {role_value.value} by {actor}"
                  + (" (already recorded)" if already else ""))
        event_id = self.audit.start(**common, approvals=[{"role": role_value.value, "actor": actor, "action": action}],
                                    plan=None, outcome=Outcome.DONE, detail=detail)
        if not already:
            self.audit.add_approval(approval, event_id)
        return ActionResult(event_id=event_id, action=Action.APPROVE, crypto=crypto, version=version,
                            outcome=Outcome.DONE, detail=detail, before=view.aliases, after=view.aliases, changes=[])

    def check_approved(self, action: Action, crypto: str, version: str, actor: str, reason: str = ""
                       ) -> list[tuple[int, Approval]]:
        """The pending approvals that let ``actor`` run ``action`` on the version, with their ids.

        Refused — with a ``refused`` row of ``cvn_model_events`` — when a required approval is
        missing or is by ``actor`` (the approver is never the person who runs it).
        """
        crypto, version, actor = validate_crypto(crypto), validate_version(version), validate_actor(actor)
        pending = self.audit.pending_approvals(crypto, version, action.value)
        try:
            used = check_approvals(action.value, [a for _, a in pending])
            require_other_person(used, actor, f"{action.value} of {registry.model_name(crypto)} v{version}")
        except Refused as exc:
            event_id = self.audit.start(action=action, crypto=crypto, version=version, actor=actor,
                                        role=EXECUTOR_ROLE[action].value, reason=reason, approvals=[], before={},
                                        plan=None, origin=self.origin, now=self.now(), outcome=Outcome.REFUSED,
                                        detail=str(exc))
            raise Refused(f"{exc} (refused, audit event #{event_id})") from None
        return [(i, a) for i, a in pending if a in used]

    def run_approved(self, action: Action, crypto: str, version: str, actor: str,
                     work: Callable[[list[Approval]], tuple[Any, str]], reason: str = "") -> tuple[Any, int]:
        """Run an approved action outside the registry lifecycle (meta-training), audited.

        The approvals are checked (``check_approved``: refused row, ``Refused``), a ``started`` row
        is written, ``work(approvals)`` runs and returns (its result, a detail for the row); the row
        is closed ``done`` and the approvals consumed by it — or ``failed`` with the error, the
        approvals kept for a re-run. Returns (the result, the audit event id).
        """
        chosen = self.check_approved(action, crypto, version, actor, reason)
        event_id = self.audit.start(action=action, crypto=crypto, version=version, actor=actor,
                                    role=EXECUTOR_ROLE[action].value, reason=reason,
                                    approvals=_approval_entries(chosen), before={}, plan=None, origin=self.origin,
                                    now=self.now())
        try:
            result, detail = work([a for _, a in chosen])
        except Exception as exc:  # recorded, then raised: the row must not stay "started"
            self.audit.finish(event_id, outcome=Outcome.FAILED, applied=0, after=None, now=self.now(),
                              detail=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
            raise
        self.audit.finish(event_id, outcome=Outcome.DONE, applied=1, after=None, detail=detail, now=self.now(),
                          consume=[i for i, _ in chosen])
        return result, event_id

    # registration (public API (b)) --------------------------------------------------------------

    def register_challenger(self, crypto: str, version: str, campaign_id: str, origin: str,
                            tags: Mapping[str, str] | None = None, actor: str = "gate") -> ActionResult:
        """Make a registered version a challenger (its origin campaign and tags), audited; idempotent."""
        campaign_id = validate_campaign_id(campaign_id)
        return self._execute(Action.REGISTER, crypto, version, actor, f"registered by {origin} {campaign_id}",
                             lambda view: plan_register(view, version, campaign_id, origin, dict(tags or {})),
                             resumable=False)

    # the pipelines ------------------------------------------------------------------------------

    def promote(self, crypto: str, version: str, actor: str) -> ActionResult:
        version = validate_version(version)
        crypto = validate_crypto(crypto)
        chosen: list[tuple[int, Approval]] = []

        def plan(view: RegistryView) -> Plan:
            tags = view.versions[version].tags if version in view.versions else {}
            reason = qualified_reason(self.store, crypto, version, tags)
            pending = self.audit.pending_approvals(crypto, version, "promotion")
            result = plan_promotion(view, version, actor, self.now(), [a for _, a in pending], reason)
            if result.changes:
                used = check_approvals("promotion", [a for _, a in pending])
                chosen.extend((i, a) for i, a in pending if a in used)
            return result

        return self._execute(Action.PROMOTION, crypto, version, actor, "", plan, approvals=chosen)

    def killswitch(self, crypto: str, confirm: str | None, reason: str | None, actor: str) -> ActionResult:
        return self._execute(Action.KILLSWITCH, crypto, _confirm_version(confirm), actor, reason or "",
                             lambda view: plan_killswitch(view, confirm, actor, self.now(), reason), confirm=confirm)

    def rollback(self, crypto: str, confirm: str | None, reason: str | None, actor: str) -> ActionResult:
        return self._execute(Action.ROLLBACK, crypto, _confirm_version(confirm), actor, reason or "",
                             lambda view: plan_rollback(view, confirm, actor, self.now(), reason), confirm=confirm)

    def decommission(self, crypto: str, version: str, confirm: str | None, actor: str,
                     delete_artifacts: bool = False) -> ActionResult:
        version = validate_version(version)
        return self._execute(Action.DECOMMISSION, crypto, version, actor,
                             "artifacts deleted" if delete_artifacts else "artifacts kept",
                             lambda view: plan_decommission(view, version, confirm, actor, self.now(), delete_artifacts),
                             confirm=confirm)

    # the audited execution ----------------------------------------------------------------------

    def _execute(self, action: Action, crypto: str, version: str | None, actor: str, reason: str,
                 make_plan: Callable[[RegistryView], Plan], *, approvals: list[tuple[int, Approval]] | None = None,
                 confirm: str | None = None, resumable: bool = True) -> ActionResult:
        crypto, actor = validate_crypto(crypto), validate_actor(actor)
        approvals = approvals if approvals is not None else []
        role = EXECUTOR_ROLE[action].value
        view = self.view(crypto)
        now = self.now()
        unfinished = self.audit.unfinished(crypto) if resumable else None
        resumes = None
        try:
            if unfinished is not None:
                plan = self._resumable_plan(unfinished, action, crypto, version, confirm)
                resumes = unfinished["id"]
                approvals = [(entry["id"], None) for entry in unfinished["approvals"]]  # type: ignore[misc]
            else:
                plan = make_plan(view)
        except Refused as exc:
            event_id = self.audit.start(action=action, crypto=crypto, version=version, actor=actor, role=role,
                                        reason=reason, approvals=[], before=view.aliases, plan=None,
                                        origin=self.origin, now=now, outcome=Outcome.REFUSED, detail=str(exc))
            raise Refused(f"{exc} (refused, audit event #{event_id})") from None
        entries = (unfinished["approvals"] if unfinished is not None
                   else _approval_entries([(i, a) for i, a in approvals if a is not None]))
        event_id = self.audit.start(action=action, crypto=crypto, version=plan.version, actor=actor, role=role,
                                    reason=reason, approvals=entries, before=view.aliases, plan=plan,
                                    origin=self.origin, now=now, resumes=resumes)
        applied = 0
        try:
            for change in plan.changes:
                registry.apply(self.client, view.name, change)
                applied += 1
        except Exception as exc:  # recorded, then raised: the row must say what moved before the failure
            moved = [c.describe() for c in plan.changes[:applied]]
            detail = (f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''} — "
                      f"{applied}/{len(plan.changes)} change(s) applied ({'; '.join(moved) or 'none'}); "
                      f"re-run the same command to complete")
            self.audit.finish(event_id, outcome=Outcome.FAILED, applied=applied, after=None, detail=detail,
                              now=self.now())
            raise LifecycleFailed(f"{action.value} of {crypto} v{plan.version} failed (audit event #{event_id}): "
                                  f"{detail}") from exc
        try:
            after = self.view(crypto)
        except Exception as exc:  # every change applied, the read-back failed: say so, re-run to close
            self.audit.finish(event_id, outcome=Outcome.FAILED, applied=applied, after=None, now=self.now(),
                              detail=f"all {applied} change(s) applied; reading the registry back failed "
                                     f"({type(exc).__name__}) — re-run the same command to confirm")
            raise LifecycleFailed(f"{action.value} of {crypto} v{plan.version}: changes applied, registry read-back "
                                  f"failed (audit event #{event_id}); re-run to confirm") from exc
        detail = plan.note if resumes is None else f"{plan.note} (completes event #{resumes})"
        consumed = [entry["id"] for entry in entries]
        if action == Action.PROMOTION:  # the version's other promotion approvals are spent with it
            consumed += [i for i, _ in self.audit.pending_approvals(crypto, plan.version, "promotion")]
        self.audit.finish(event_id, outcome=Outcome.DONE, applied=applied, after=after.aliases, detail=detail,
                          now=self.now(), consume=sorted(set(consumed)))
        self.audit.sync_roles(after, self.now())
        return ActionResult(event_id=event_id, action=action, crypto=crypto, version=plan.version,
                            outcome=Outcome.DONE, detail=detail, before=view.aliases, after=after.aliases,
                            changes=[c.describe() for c in plan.changes])

    @staticmethod
    def _resumable_plan(unfinished: dict[str, Any], action: Action, crypto: str, version: str | None,
                        confirm: str | None) -> Plan:
        """The recorded plan of the unfinished action, when this call is that same action re-run."""
        same = unfinished["action"] == action.value and unfinished["version"] == version
        if not same or unfinished["plan"] is None:
            raise Refused(f"{crypto} has an unfinished {unfinished['action']} of v{unfinished['version']} "
                          f"(audit event #{unfinished['id']}, {unfinished['outcome']}: {unfinished['detail']}); "
                          f"re-run that {unfinished['action']} to complete it before anything else")
        return Plan.model_validate(unfinished["plan"])


def _confirm_version(confirm: str | None) -> str | None:
    """The version a ``CRYPTO@VERSION`` names (for the audit row), None when it names none."""
    if not confirm or "@" not in confirm:
        return None
    try:
        return validate_version(confirm.rsplit("@", 1)[1])
    except ValueError:
        return None
