"""Approvals a model operation needs (manual §4, §10): meta-training needs an ``mlops_maintainer``.

INTERIM — the lifecycle (``cvn model approve``, issue 14) records approvals as rows of
``cvn_model_events``; until that API is in this branch, an approval is a tag on the approved
version, ``approval.<action>.<role>`` = ``<actor>|<ISO time>|<reason>``. Every reader and writer of
approvals in model operations goes through ``approve`` and ``require_approvals`` below, named and
shaped like ``Lifecycle.approve`` / ``Lifecycle.require_approvals`` (``cvn_assets.models``), so
switching to the lifecycle's store is a change of these two bodies only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from cvn_assets.gate.model_registry import _client
from cvn_assets.modelops.registry import RegisteredVersion

META_TRAINING = "meta_training"
MLOPS_MAINTAINER = "mlops_maintainer"
ACTOR_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}"


class Refused(Exception):
    """A guard of the manual does not hold: nothing was changed (exit 2)."""


class Approval(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    role: str
    actor: str
    approved_at: datetime
    reason: str = ""


def validate_actor(value: object) -> str:
    """Identity is what the user states (``--by``): a name or an e-mail, never empty."""
    if not isinstance(value, str) or re.fullmatch(ACTOR_PATTERN, value.strip()) is None:
        raise ValueError(f"actor {value!r} is invalid: expected a name or e-mail (letters, digits, . _ @ + -)")
    return value.strip()


def _tag(action: str, role: str) -> str:
    return f"approval.{action}.{role}"


# Roles each action needs (manual §4, §10), as the lifecycle's REQUIRED_APPROVALS.
REQUIRED_APPROVALS = {META_TRAINING: (MLOPS_MAINTAINER,)}


def approve(tracking_uri: str, version: RegisteredVersion, role: str, actor: str, reason: str = "",
            action: str = META_TRAINING, now: datetime | None = None) -> Approval:
    """Record an approval of ``action`` on ``version`` (at merge: ``Lifecycle.approve``)."""
    approval = Approval(action=action, role=role, actor=validate_actor(actor), approved_at=now or datetime.now(UTC),
                        reason=reason.replace("|", "/"))
    _client(tracking_uri).set_model_version_tag(
        version.name, version.version, _tag(action, role),
        f"{approval.actor}|{approval.approved_at.isoformat(timespec='seconds')}|{approval.reason}")
    return approval


def require_approvals(version: RegisteredVersion, action: str) -> list[Approval]:
    """The recorded approvals ``action`` needs on ``version``, or ``Refused`` naming what is missing
    (at merge: ``Lifecycle.require_approvals``)."""
    found = []
    for role in REQUIRED_APPROVALS[action]:
        recorded = version.tags.get(_tag(action, role))
        if not recorded:
            raise Refused(f"{action} of {version.name} v{version.version} needs an approval by the {role} "
                          f"(manual §4, §10); none recorded — `cvn model approve {version.crypto} {version.version} "
                          f"--role {role} --by NAME`")
        actor, at, reason = (recorded.split("|", 2) + ["", ""])[:3]
        found.append(Approval(action=action, role=role, actor=actor, approved_at=datetime.fromisoformat(at),
                              reason=reason))
    return found


def require_other_person(approvals: list[Approval], executor: str, what: str) -> None:
    """An approval is a second pair of eyes: the person who executes cannot be the one who approved."""
    same = [a for a in approvals if a.actor == executor]
    if same:
        raise Refused(f"{what}: the {same[0].role} approval is by {executor}, who also executes it; "
                      "an approval needs another person")
