"""Approvals a model operation needs (manual §4, §10): meta-training needs an ``mlops_maintainer``.

INTERIM — the lifecycle (``cvn model approve``, issue 14) records approvals as rows of
``cvn_model_events``; until that API is in this branch, an approval is a tag on the approved
version, ``approval.<action>.<role>`` = ``<actor>|<ISO time>|<reason>``. Every reader and writer of
approvals in model operations goes through the two functions below, so switching to the lifecycle's
store is a change here only.
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


def record_approval(tracking_uri: str, version: RegisteredVersion, action: str, role: str, actor: str,
                    reason: str = "", now: datetime | None = None) -> Approval:
    approval = Approval(action=action, role=role, actor=validate_actor(actor), approved_at=now or datetime.now(UTC),
                        reason=reason.replace("|", "/"))
    _client(tracking_uri).set_model_version_tag(
        version.name, version.version, _tag(action, role),
        f"{approval.actor}|{approval.approved_at.isoformat(timespec='seconds')}|{approval.reason}")
    return approval


def require_approval(version: RegisteredVersion, action: str, role: str, executor: str) -> Approval:
    """The recorded approval of ``action`` on ``version`` by ``role``, by someone other than ``executor``."""
    recorded = version.tags.get(_tag(action, role))
    command = f"`cvn model approve {version.crypto} {version.version} --role {role} --by NAME`"
    if not recorded:
        raise Refused(f"{action} of {version.name} v{version.version} needs an approval by the {role} "
                      f"(manual §4, §10); none recorded — {command}")
    actor, at, reason = (recorded.split("|", 2) + ["", ""])[:3]
    if actor == executor:
        raise Refused(f"{action} of {version.name} v{version.version}: the {role} approval is by {actor}, who also "
                      "executes it; an approval needs another person")
    return Approval(action=action, role=role, actor=actor, approved_at=datetime.fromisoformat(at), reason=reason)
