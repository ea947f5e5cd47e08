"""The registry contract and its lifecycle rules (manual §4, §10) — pure functions, no MLflow, no SQL.

One registered model per crypto, ``cvn-s43-<CRYPTO>``. MLflow aliases carry the roles:

- ``champion``: the version in production (at most one);
- ``previous``: the champion before the last promotion, what a rollback returns to;
- ``challenger-<campaign>``: one alias per version awaiting promotion (its origin campaign);
- ``quarantined``: the most recently killed version. Every killed version also carries the tag
  ``stage=quarantined`` (an alias points at one version only).

Each version carries tags: ``campaign_id`` and ``origin`` (what registered it: ``gate`` or a model
operation), ``diagnostic`` and ``signals`` (the gate's verdict for that crypto), ``stage``, and
who/when of each lifecycle step (``promoted_by``/``promoted_at``, ``quarantined_by``/…,
``decommissioned_by``/…). A version's *stage* is read from the aliases first (champion, previous,
challenger), then from its ``stage`` tag (quarantined, superseded, decommissioned); a version with
neither was not registered by the lifecycle (``none``) and cannot be promoted.

Each action is planned here as an ordered list of ``Change``s, every one idempotent; the plan is
recorded in the audit row before the first change, so a half-done action is completed by running
it again. A guard that does not hold raises ``Refused`` (exit 2, nothing changed, a ``refused``
row). Promotion supersedes the challengers older than the promoted version and the old
``previous``: they leave the waiting line and may be decommissioned.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.contracts.identifiers import CAMPAIGN_ID_PATTERN

MODEL_PREFIX = "cvn-s43-"
CHAMPION = "champion"
PREVIOUS = "previous"
QUARANTINED = "quarantined"
CHALLENGER_PREFIX = "challenger-"

# Version tags (the contract: docs/architecture.md)
TAG_CAMPAIGN = "campaign_id"
TAG_ORIGIN = "origin"
TAG_DIAGNOSTIC = "diagnostic"
TAG_SIGNALS = "signals"
TAG_STAGE = "stage"

VERSION_PATTERN = r"[1-9][0-9]{0,8}"


class Role(StrEnum):
    """Manual §4 roles."""

    OPERATOR = "operator"
    MLOPS_MAINTAINER = "mlops_maintainer"
    ML_OWNER = "ml_owner"
    PLATFORM_OWNER = "platform_owner"


class Action(StrEnum):
    REGISTER = "register"
    APPROVE = "approve"
    PROMOTION = "promotion"
    KILLSWITCH = "killswitch"
    ROLLBACK = "rollback"
    DECOMMISSION = "decommission"
    META_TRAINING = "meta_training"  # a model operation (modelops) that needs an approval


class Stage(StrEnum):
    CHALLENGER = "challenger"
    CHAMPION = "champion"
    PREVIOUS = "previous"
    QUARANTINED = "quarantined"
    SUPERSEDED = "superseded"
    DECOMMISSIONED = "decommissioned"
    NONE = "none"


class Outcome(StrEnum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"


# Who executes each action by the manual §4 (recorded as the audit row's role).
EXECUTOR_ROLE = {
    Action.REGISTER: Role.MLOPS_MAINTAINER,
    Action.PROMOTION: Role.MLOPS_MAINTAINER,
    Action.KILLSWITCH: Role.PLATFORM_OWNER,
    Action.ROLLBACK: Role.PLATFORM_OWNER,
    Action.DECOMMISSION: Role.PLATFORM_OWNER,
    Action.META_TRAINING: Role.MLOPS_MAINTAINER,
}
# What registered a version (tag ``origin``): a discovery gate's PASS, or a retrain of the champion,
# whose gate is a qualifying backtest on a window after its training window (modelops).
ORIGIN_GATE = "gate"
ORIGIN_RETRAIN = "retrain"
# Approvals an action needs, each by a different person (manual §4, §10).
REQUIRED_APPROVALS: dict[str, tuple[Role, ...]] = {
    "promotion": (Role.ML_OWNER, Role.OPERATOR),
    "meta_training": (Role.MLOPS_MAINTAINER,),
}


class Refused(Exception):
    """A guard of the manual does not hold: nothing is changed, the refusal is audited (exit 2)."""


class Change(BaseModel):
    """One idempotent registry change of a plan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["set_alias", "delete_alias", "set_tag", "delete_artifacts"]
    version: str
    key: str = Field(default="", description="alias or tag name")
    value: str = ""

    def describe(self) -> str:
        if self.op == "set_alias":
            return f"alias {self.key} → v{self.version}"
        if self.op == "delete_alias":
            return f"alias {self.key} removed from v{self.version}"
        if self.op == "set_tag":
            return f"v{self.version} tag {self.key}={self.value}"
        return f"v{self.version} artifacts deleted"


class VersionView(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    created_ms: int
    tags: dict[str, str] = Field(default_factory=dict)


class RegistryView(BaseModel):
    """One crypto's registered model: its aliases and versions, as read from MLflow."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    name: str
    exists: bool
    aliases: dict[str, str]
    versions: dict[str, VersionView]

    @property
    def champion(self) -> str | None:
        return self.aliases.get(CHAMPION)

    @property
    def previous(self) -> str | None:
        return self.aliases.get(PREVIOUS)

    def aliases_of(self, version: str) -> list[str]:
        return sorted(alias for alias, target in self.aliases.items() if target == version)

    def stage_of(self, version: str) -> Stage:
        if version not in self.versions:
            raise KeyError(version)
        if self.champion == version:
            return Stage.CHAMPION
        if self.previous == version:
            return Stage.PREVIOUS
        tagged = self.versions[version].tags.get(TAG_STAGE)
        if tagged in (Stage.QUARANTINED, Stage.DECOMMISSIONED, Stage.SUPERSEDED):
            return Stage(tagged)
        if any(alias.startswith(CHALLENGER_PREFIX) for alias in self.aliases_of(version)):
            return Stage.CHALLENGER
        return Stage.NONE

    def in_stage(self, stage: Stage) -> list[str]:
        return sorted((v for v in self.versions if self.stage_of(v) == stage), key=int)

    @property
    def challengers(self) -> list[str]:
        return self.in_stage(Stage.CHALLENGER)

    @property
    def quarantined(self) -> list[str]:
        return self.in_stage(Stage.QUARANTINED)

    def ever_promoted(self) -> bool:
        return any("promoted_at" in v.tags for v in self.versions.values())


class Approval(BaseModel):
    """A recorded approval of an action on a version (``cvn model approve``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    version: str
    action: str
    role: Role
    actor: str
    reason: str = ""
    approved_at: datetime


class Plan(BaseModel):
    """What an action will change, in order (recorded in the audit row before the first change)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    crypto: str
    version: str
    changes: list[Change]
    note: str = ""


def validate_version(value: object) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if re.fullmatch(VERSION_PATTERN, text) is None:
        raise ValueError(f"model version {value!r} is invalid: expected a positive integer (MLflow version number)")
    return text


def validate_actor(value: object) -> str:
    """Identity is what the user states (``--by`` / CVN_ACTOR): a name, never empty."""
    if not isinstance(value, str) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}", value.strip()) is None:
        raise ValueError(f"actor {value!r} is invalid: expected a name or e-mail (letters, digits, . _ @ + -; "
                         "from --by or CVN_ACTOR)")
    return value.strip()


def challenger_alias(campaign_id: str) -> str:
    if re.fullmatch(CAMPAIGN_ID_PATTERN, campaign_id) is None:
        raise ValueError(f"campaign_id {campaign_id!r} is invalid: expected ^{CAMPAIGN_ID_PATTERN}$")
    return f"{CHALLENGER_PREFIX}{campaign_id}"


def confirmed_version(crypto: str, confirm: str | None, expected: str | None, what: str) -> str:
    """The version a ``--confirm CRYPTO@VERSION`` names, when it names exactly ``expected``."""
    if expected is None:
        raise Refused(f"{crypto} has no {what}: nothing to confirm")
    wanted = f"{crypto}@{expected}"
    if (confirm or "").strip() != wanted:
        raise Refused(f"--confirm must name the {what} exactly: expected {wanted!r}, found {confirm!r}")
    return expected


def _stamp(version: str, verb: str, actor: str, now: datetime, **more: str) -> list[Change]:
    tags = {f"{verb}_by": actor, f"{verb}_at": now.isoformat(timespec="seconds"), **more}
    return [Change(op="set_tag", version=version, key=key, value=value) for key, value in tags.items()]


def _stage(version: str, stage: Stage) -> Change:
    return Change(op="set_tag", version=version, key=TAG_STAGE, value=stage.value)


def _drop_aliases(view: RegistryView, version: str, prefix: str) -> list[Change]:
    return [Change(op="delete_alias", version=version, key=alias)
            for alias in view.aliases_of(version) if alias.startswith(prefix)]


def check_approvals(action: str, approvals: Iterable[Approval]) -> list[Approval]:
    """The approvals that satisfy ``action``: one per required role, by as many different people."""
    required = REQUIRED_APPROVALS[action]
    by_role: dict[Role, list[Approval]] = {}
    for approval in approvals:
        if approval.action == action:
            by_role.setdefault(approval.role, []).append(approval)
    missing = [role.value for role in required if role not in by_role]
    if missing:
        found = ", ".join(f"{a.role.value} by {a.actor}" for group in by_role.values() for a in group) or "none"
        raise Refused(f"{action} needs approvals by {', '.join(r.value for r in required)}; missing {', '.join(missing)} "
                      f"(recorded: {found}) — `cvn model approve CRYPTO VERSION --role ROLE --by NAME`")
    # one approver per role, all different people (a person holding two roles counts once)
    for chosen in itertools.product(*(by_role[role] for role in required)):
        if len({approval.actor for approval in chosen}) == len(chosen):
            return list(chosen)
    people = sorted({a.actor for group in by_role.values() for a in group})
    raise Refused(f"{action} needs {len(required)} different people for {', '.join(r.value for r in required)}; "
                  f"found approvals by {', '.join(people)} only (the same person cannot approve twice)")


def require_other_person(approvals: Iterable[Approval], executor: str, what: str) -> None:
    """An approval is a second pair of eyes: the person who executes cannot be the one who approved."""
    same = [a for a in approvals if a.actor == executor]
    if same:
        raise Refused(f"{what}: the {same[0].role.value} approval is by {executor}, who also executes it; "
                      "an approval needs another person")


def plan_register(view: RegistryView, version: str, campaign_id: str, origin: str,
                  tags: Mapping[str, str]) -> Plan:
    """A newly registered version joins the challengers (origin campaign, gate diagnostic, signals)."""
    if version not in view.versions:
        raise Refused(f"{view.name} has no version {version} to register as a challenger")
    stage = view.stage_of(version)
    if stage not in (Stage.NONE, Stage.CHALLENGER):
        raise Refused(f"{view.name} v{version} is {stage.value}: only a new version becomes a challenger")
    changes = [Change(op="set_tag", version=version, key=key, value=value)
               for key, value in {TAG_CAMPAIGN: campaign_id, TAG_ORIGIN: origin, **tags}.items()]
    changes += [_stage(version, Stage.CHALLENGER),
                Change(op="set_alias", version=version, key=challenger_alias(campaign_id))]
    return Plan(action=Action.REGISTER, crypto=view.crypto, version=version, changes=changes,
                note=f"challenger from {origin} {campaign_id}")


def plan_promotion(view: RegistryView, version: str, actor: str, now: datetime,
                   approvals: Sequence[Approval], gate_passed: str | None) -> Plan:
    """challenger → champion; the old champion → previous; older challengers and the old previous are superseded.

    ``gate_passed``: None when the version's campaign passed a gate for this crypto, else why not.
    """
    if version not in view.versions:
        raise Refused(f"{view.name} has no version {version} (known: {', '.join(sorted(view.versions, key=int)) or 'none'})")
    stage = view.stage_of(version)
    if stage == Stage.CHAMPION and not _drop_aliases(view, version, CHALLENGER_PREFIX):
        return Plan(action=Action.PROMOTION, crypto=view.crypto, version=version, changes=[],
                    note=f"v{version} is already the champion")
    if stage in (Stage.QUARANTINED, Stage.DECOMMISSIONED):
        raise Refused(f"{view.name} v{version} is {stage.value}: it can never be promoted again")
    if stage == Stage.PREVIOUS:
        raise Refused(f"{view.name} v{version} is the previous champion: use `cvn model rollback`")
    if stage == Stage.NONE or TAG_CAMPAIGN not in view.versions[version].tags:
        raise Refused(f"{view.name} v{version} never passed a gate: it has no origin campaign "
                      "(only versions registered from a PASS are promotable)")
    if gate_passed is not None:
        raise Refused(f"{view.name} v{version} never passed a gate: {gate_passed}")
    chosen = check_approvals("promotion", approvals)
    changes: list[Change] = []
    champion, previous = view.champion, view.previous
    if champion is not None and champion != version:
        if previous is not None and previous != champion:
            changes += [_stage(previous, Stage.SUPERSEDED),
                        Change(op="set_tag", version=previous, key="superseded_by", value=version)]
        changes += [_stage(champion, Stage.PREVIOUS), Change(op="set_alias", version=champion, key=PREVIOUS)]
    approved = ",".join(f"{a.role.value}:{a.actor}" for a in chosen)
    changes += _stamp(version, "promoted", actor, now, approved_by=approved)
    changes += [_stage(version, Stage.CHAMPION), Change(op="set_alias", version=version, key=CHAMPION)]
    changes += _drop_aliases(view, version, CHALLENGER_PREFIX)
    for older in view.challengers:
        if int(older) < int(version):
            changes += [_stage(older, Stage.SUPERSEDED),
                        Change(op="set_tag", version=older, key="superseded_by", value=version)]
            changes += _drop_aliases(view, older, CHALLENGER_PREFIX)
    return Plan(action=Action.PROMOTION, crypto=view.crypto, version=version, changes=changes,
                note=f"v{version} → champion" + (f", v{champion} → previous" if champion and champion != version else ""))


def _quarantine(view: RegistryView, version: str, actor: str, now: datetime, reason: str, action: Action) -> list[Change]:
    return [*_stamp(version, "quarantined", actor, now, quarantine_reason=reason, quarantined_by_action=action.value),
            _stage(version, Stage.QUARANTINED), Change(op="set_alias", version=version, key=QUARANTINED)]


def _require_reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise Refused("a reason is mandatory (--reason TEXT)")
    return reason.strip()


def plan_killswitch(view: RegistryView, confirm: str | None, actor: str, now: datetime, reason: str | None) -> Plan:
    """champion → quarantined; the crypto has no champion until a promotion or a rollback."""
    reason = _require_reason(reason)
    version = confirmed_version(view.crypto, confirm, view.champion, "current champion")
    changes = [*_quarantine(view, version, actor, now, reason, Action.KILLSWITCH),
               Change(op="delete_alias", version=version, key=CHAMPION)]
    return Plan(action=Action.KILLSWITCH, crypto=view.crypto, version=version, changes=changes,
                note=f"v{version} quarantined, no champion")


def plan_rollback(view: RegistryView, confirm: str | None, actor: str, now: datetime, reason: str | None) -> Plan:
    """previous → champion; the bad champion → quarantined. ``--confirm`` names the champion replaced."""
    reason = _require_reason(reason)
    if view.previous is None:
        raise Refused(f"{view.crypto} has no previous champion to roll back to")
    version = confirmed_version(view.crypto, confirm, view.champion, "current champion")
    restored = view.previous
    changes = [*_quarantine(view, version, actor, now, reason, Action.ROLLBACK),
               *_stamp(restored, "restored", actor, now), _stage(restored, Stage.CHAMPION),
               Change(op="set_alias", version=restored, key=CHAMPION),
               Change(op="delete_alias", version=restored, key=PREVIOUS)]
    return Plan(action=Action.ROLLBACK, crypto=view.crypto, version=version, changes=changes,
                note=f"v{restored} → champion, v{version} quarantined")


def plan_decommission(view: RegistryView, version: str, confirm: str | None, actor: str, now: datetime,
                      delete_artifacts: bool) -> Plan:
    """Archive a quarantined or superseded version: aliases removed, stage decommissioned, artifacts per flag."""
    if version not in view.versions:
        raise Refused(f"{view.name} has no version {version}")
    confirmed_version(view.crypto, confirm, version, "version to decommission")
    stage = view.stage_of(version)
    if stage == Stage.DECOMMISSIONED:
        done = view.versions[version].tags.get("artifacts") == "deleted" or not delete_artifacts
        if done:
            return Plan(action=Action.DECOMMISSION, crypto=view.crypto, version=version, changes=[],
                        note=f"v{version} is already decommissioned")
    elif stage not in (Stage.QUARANTINED, Stage.SUPERSEDED):
        raise Refused(f"{view.name} v{version} is {stage.value}: only a quarantined or superseded version is "
                      "decommissioned (never the champion, the previous or a waiting challenger)")
    changes = [Change(op="delete_alias", version=version, key=alias) for alias in view.aliases_of(version)]
    if delete_artifacts:
        changes.append(Change(op="delete_artifacts", version=version))
    changes += [*_stamp(version, "decommissioned", actor, now, artifacts="deleted" if delete_artifacts else "kept"),
                _stage(version, Stage.DECOMMISSIONED)]
    return Plan(action=Action.DECOMMISSION, crypto=view.crypto, version=version, changes=changes,
                note=f"v{version} decommissioned, artifacts {'deleted' if delete_artifacts else 'kept'}")


def signals_tag(signals: Mapping[str, object]) -> str:
    """The gate's numeric signals of a crypto, as one compact JSON tag."""
    kept = {k: round(float(v), 6) for k, v in sorted(signals.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return json.dumps(kept, separators=(",", ":"))
