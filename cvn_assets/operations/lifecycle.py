"""The 7-day lifecycle rule of the transport prefix, merged into the bucket's one configuration (scenario D).

A bucket has exactly one lifecycle configuration: ``put-bucket-lifecycle-configuration`` replaces
it whole, so writing our rule alone would silently drop the ``xcom/`` and ``l2_events/`` rules of
other teams. Everything here therefore works on the full list of rules:

* **ownership** is by scope: a rule is ours when its filter prefix lies inside the transport prefix
  (``s43-predictions/``). Rules outside it belong to someone else and are carried over verbatim.
* **merge** is by rule ID, then by prefix: a desired rule replaces the existing rule with its ID, or
  else the existing rule of ours with exactly its prefix; otherwise it is added.
* a plan that would alter or drop a foreign rule — a desired rule reusing a foreign rule's ID, or a
  desired rule aimed outside our prefix — is **refused**, never applied.
* the plan is idempotent: when every desired rule is already present, ``apply`` writes nothing.

The pure functions take and return plain S3 API dictionaries (as boto3 returns them); only
``read_lifecycle`` / ``write_lifecycle`` / ``apply_lifecycle`` talk to S3.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cvn_assets.contracts.keys import validate_prefix
from cvn_assets.storage.object_store import StorageError

DEFAULT_RETENTION_DAYS = 7
# Parts of a multipart upload that never completed are invisible to listings but billed; a day is
# ample for the few-MB blobs of the transport.
DEFAULT_ABORT_MULTIPART_DAYS = 1

Rule = dict[str, Any]


class LifecycleError(StorageError):
    """The bucket's lifecycle configuration could not be read or written."""


class LifecycleConflict(ValueError):
    """The plan would alter or drop a rule this tool does not own; nothing was written."""

    def __init__(self, conflicts: Sequence[str]):
        self.conflicts = list(conflicts)
        super().__init__("refusing the lifecycle plan: " + "; ".join(self.conflicts))


class _Filter(BaseModel):
    model_config = ConfigDict(extra="allow")

    Prefix: str


class OwnedRule(BaseModel):
    """A rule this tool may write: an ID, a status and a prefix filter (S3 API field names)."""

    model_config = ConfigDict(extra="allow")

    ID: str = Field(min_length=1, max_length=255)
    Status: Literal["Enabled", "Disabled"]
    Filter: _Filter

    @field_validator("ID")
    @classmethod
    def _id(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("rule ID must not start or end with whitespace")
        return value


def owned_scope(prefix: str) -> str:
    """The key prefix whose rules belong to the transport: ``s43-predictions/``."""
    return f"{validate_prefix(prefix)}/"


def rule_id_for(prefix: str) -> str:
    return f"{validate_prefix(prefix).replace('/', '-')}-retention"


def desired_rules(prefix: str, days: int = DEFAULT_RETENTION_DAYS,
                  abort_multipart_days: int = DEFAULT_ABORT_MULTIPART_DAYS) -> list[Rule]:
    """The transport's rule: expire every key under the prefix ``days`` after it was written.

    ``deploy/s3/s3-lifecycle-s43-predictions.json`` is exactly ``{"Rules": desired_rules(DEFAULT_PREFIX)}``
    (a test pins them equal), so the file the runbook names and what `cvn lifecycle` writes never drift.
    """
    if days < 1:
        raise ValueError(f"retention days {days!r} is invalid: expected an integer >= 1")
    if abort_multipart_days < 1:
        raise ValueError(f"abort multipart days {abort_multipart_days!r} is invalid: expected an integer >= 1")
    return [{
        "ID": rule_id_for(prefix),
        "Filter": {"Prefix": owned_scope(prefix)},
        "Status": "Enabled",
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_multipart_days},
    }]


def load_rules_file(path: str | Path) -> list[Rule]:
    """Rules from a JSON file in the S3 API shape ``{"Rules": [...]}``, each with ID, Status, Filter.Prefix."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"lifecycle rules file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"lifecycle rules file {path} is not JSON: {exc}") from None
    rules = document.get("Rules") if isinstance(document, dict) else None
    if not isinstance(rules, list) or not rules:
        raise ValueError(f"lifecycle rules file {path}: expected an object with a non-empty 'Rules' list")
    for index, rule in enumerate(rules):
        try:
            OwnedRule.model_validate(rule)
        except ValidationError as exc:
            fields = "; ".join(f"Rules[{index}].{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"lifecycle rules file {path}: {fields}") from None
    return rules


def rule_prefix(rule: Rule) -> str | None:
    """The prefix of a rule filtered by prefix alone ('' = whole bucket); None for tag/size/And filters."""
    if "Filter" in rule:
        flt = rule["Filter"] or {}
        if not flt:
            return ""
        if set(flt) == {"Prefix"}:
            return flt["Prefix"]
        return None
    return rule.get("Prefix", "")  # legacy V1 rule shape, or no filter at all (whole bucket)


def rule_scope(rule: Rule) -> str:
    """The key prefix a rule can act on at most ('' = anywhere in the bucket)."""
    prefix = rule_prefix(rule)
    if prefix is not None:
        return prefix
    flt = rule.get("Filter") or {}
    if "Prefix" in flt:
        return flt["Prefix"]
    return (flt.get("And") or {}).get("Prefix", "")


def canonical_rule(rule: Rule) -> Rule:
    """A rule in one comparable form: legacy top-level Prefix moved into Filter, empty parts dropped."""
    result = copy.deepcopy(rule)
    if "Filter" not in result and "Prefix" in result:
        result["Filter"] = {"Prefix": result.pop("Prefix")}
    return _drop_empty(result)


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and not value and not path:
        return {}
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key in sorted(value):
            flat.update(_flatten(value[key], f"{path}.{key}" if path else key))
        return flat
    return {path: json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value}


def rule_differences(before: Rule, after: Rule) -> list[str]:
    """Field-level differences ``path: old → new`` between two rules (canonical forms)."""
    old, new = _flatten(canonical_rule(before)), _flatten(canonical_rule(after))
    lines = []
    for path in sorted(set(old) | set(new)):
        if old.get(path, _ABSENT) != new.get(path, _ABSENT):
            lines.append(f"{path}: {_show(old.get(path, _ABSENT))} → {_show(new.get(path, _ABSENT))}")
    return lines


_ABSENT = object()


def _show(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(value) if not isinstance(value, str) else value


Action = Literal["add", "update", "unchanged", "keep"]


@dataclass(frozen=True)
class RuleChange:
    """What the plan does with one rule; ``owned`` = inside the transport prefix (ours to change)."""

    action: Action
    rule_id: str
    prefix: str
    owned: bool
    before: Rule | None
    after: Rule | None
    differences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "rule_id": self.rule_id, "prefix": self.prefix, "owned": self.owned,
                "differences": self.differences, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class LifecyclePlan:
    """The merged configuration to write, the per-rule changes, and the reasons to refuse it (if any)."""

    scope: str
    changes: list[RuleChange]
    merged: list[Rule]
    conflicts: list[str]
    notes: list[str]

    @property
    def changed(self) -> bool:
        return any(change.action in ("add", "update") for change in self.changes)

    @property
    def refused(self) -> bool:
        return bool(self.conflicts)

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "changed": self.changed, "refused": self.refused,
                "conflicts": self.conflicts, "notes": self.notes,
                "changes": [change.to_dict() for change in self.changes], "merged": self.merged}


def _is_owned(rule: Rule, scope: str) -> bool:
    return rule_scope(rule).startswith(scope)


def plan_lifecycle(existing: Sequence[Rule], desired: Sequence[Rule], prefix: str) -> LifecyclePlan:
    """Merge ``desired`` (our rules) into ``existing`` (the bucket's rules) by rule ID, then by prefix.

    Foreign rules keep their position and content byte for byte; ours are replaced in place or
    appended. ``conflicts`` lists every reason the merge would touch a rule we do not own.
    """
    scope = owned_scope(prefix)
    conflicts: list[str] = []
    notes: list[str] = []
    desired_ids = [rule.get("ID", "") for rule in desired]
    for rule_id in sorted({i for i in desired_ids if desired_ids.count(i) > 1}):
        conflicts.append(f"desired rule ID {rule_id!r} appears more than once")
    for rule in desired:
        target = rule_scope(rule)
        if not _is_owned(rule, scope):
            conflicts.append(f"desired rule {rule.get('ID')!r} targets prefix {target!r}, outside {scope!r}: "
                             "this tool only writes rules for the transport prefix")

    matches: dict[int, int] = {}  # existing index → desired index
    for d_index, rule in enumerate(desired):
        by_id = [i for i, e in enumerate(existing) if e.get("ID") and e.get("ID") == rule.get("ID")]
        for i in by_id:
            if not _is_owned(existing[i], scope):
                conflicts.append(f"bucket rule {existing[i].get('ID')!r} (prefix {rule_scope(existing[i])!r}) "
                                 f"has the ID of our rule but is not inside {scope!r}: applying would alter a "
                                 "rule this tool does not own")
        candidates = by_id or [
            i for i, e in enumerate(existing)
            if _is_owned(e, scope) and rule_prefix(e) is not None and rule_prefix(e) == rule_prefix(rule)
        ]
        if len(candidates) > 1:
            conflicts.append(f"{len(candidates)} bucket rules match desired rule {rule.get('ID')!r} "
                             f"({', '.join(repr(existing[i].get('ID')) for i in candidates)}): resolve by hand")
            continue
        if candidates:
            if candidates[0] in matches:
                conflicts.append(f"bucket rule {existing[candidates[0]].get('ID')!r} matches two desired rules")
                continue
            matches[candidates[0]] = d_index

    changes: list[RuleChange] = []
    merged: list[Rule] = []
    for i, rule in enumerate(existing):
        target = rule_scope(rule)
        owned = _is_owned(rule, scope)
        if i in matches:
            wanted = desired[matches[i]]
            differences = rule_differences(rule, wanted)
            action: Action = "update" if differences else "unchanged"
            merged.append(copy.deepcopy(wanted) if differences else copy.deepcopy(rule))
            changes.append(RuleChange(action, str(wanted.get("ID")), rule_scope(wanted), True, rule, wanted,
                                      differences))
            continue
        merged.append(copy.deepcopy(rule))
        changes.append(RuleChange("keep", str(rule.get("ID", "")), target, owned, rule, rule))
        if owned:
            notes.append(f"rule {rule.get('ID')!r} (prefix {target!r}) lies inside {scope!r} but is not managed "
                         "here; it is kept as is")
        elif scope.startswith(target):
            what = f"keys under {target!r}" if target else "keys anywhere in the bucket"
            notes.append(f"foreign rule {rule.get('ID')!r} applies to {what}, which includes {scope!r}")
    matched = set(matches.values())
    for d_index, rule in enumerate(desired):
        if d_index not in matched:
            merged.append(copy.deepcopy(rule))
            changes.append(RuleChange("add", str(rule.get("ID")), rule_scope(rule), True, None, rule,
                                      rule_differences({}, rule)))
    return LifecyclePlan(scope=scope, changes=changes, merged=merged, conflicts=conflicts, notes=notes)


def verify_lifecycle(existing: Sequence[Rule], desired: Sequence[Rule], prefix: str,
                     expect_prefixes: Iterable[str] = ()) -> list[str]:
    """Drift between the bucket and our rules: each line names a missing or edited rule (empty = in sync).

    ``expect_prefixes`` are foreign prefixes (e.g. ``xcom/``) that must still have a rule — the check
    that someone did not replace the whole configuration with ours.
    """
    plan = plan_lifecycle(existing, desired, prefix)
    drift = [f"refused: {conflict}" for conflict in plan.conflicts]
    for change in plan.changes:
        if change.action == "add":
            drift.append(f"rule {change.rule_id!r} (prefix {change.prefix!r}) is missing from the bucket")
        elif change.action == "update":
            drift.append(f"rule {change.rule_id!r} was edited: {'; '.join(change.differences)}")
    prefixes = {rule_scope(rule) for rule in existing}
    for expected in expect_prefixes:
        if expected not in prefixes:
            drift.append(f"no rule for prefix {expected!r} (expected to be kept by every merge)")
    return drift


# ---------------------------------------------------------------------------------------------
# S3 calls


@dataclass(frozen=True)
class BucketLifecycle:
    """The bucket's whole lifecycle configuration, as S3 returned it."""

    rules: list[Rule]
    transition_default_minimum_object_size: str | None = None


def _where(client: Any, bucket: str) -> str:
    from cvn_assets.operations.s3_check import endpoint_text

    return f"s3://{bucket} at {endpoint_text(client.meta.endpoint_url)}"


def read_lifecycle(client: Any, bucket: str) -> BucketLifecycle:
    try:
        response = client.get_bucket_lifecycle_configuration(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
            return BucketLifecycle(rules=[])
        raise _error("read the lifecycle configuration of", client, bucket, exc) from exc
    except BotoCoreError as exc:
        raise _error("read the lifecycle configuration of", client, bucket, exc) from exc
    return BucketLifecycle(rules=list(response.get("Rules", [])),
                           transition_default_minimum_object_size=response.get("TransitionDefaultMinimumObjectSize"))


def write_lifecycle(client: Any, bucket: str, lifecycle: BucketLifecycle) -> None:
    """Replace the bucket's configuration with ``lifecycle`` (the caller merged it first)."""
    if not lifecycle.rules:
        raise ValueError("refusing to write an empty lifecycle configuration: it would delete every rule")
    kwargs: dict[str, Any] = {"Bucket": bucket, "LifecycleConfiguration": {"Rules": lifecycle.rules}}
    if lifecycle.transition_default_minimum_object_size:
        # Sent back only when S3 reported it, so providers without this field never receive it.
        kwargs["TransitionDefaultMinimumObjectSize"] = lifecycle.transition_default_minimum_object_size
    try:
        client.put_bucket_lifecycle_configuration(**kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise _error("write the lifecycle configuration of", client, bucket, exc) from exc


def _error(action: str, client: Any, bucket: str, exc: Exception) -> LifecycleError:
    from cvn_assets.redaction import redact_text

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        detail = f"{error.get('Code', '')} {error.get('Message', '')}".strip()
    else:
        detail = str(exc)
    return LifecycleError(f"cannot {action} {_where(client, bucket)}: {redact_text(detail)} "
                          "(run `cvn s3 check` to diagnose the endpoint, credentials and bucket)")


@dataclass(frozen=True)
class ApplyResult:
    plan: LifecyclePlan
    written: bool
    after: BucketLifecycle


def apply_lifecycle(client: Any, bucket: str, desired: Sequence[Rule], prefix: str) -> ApplyResult:
    """Read, merge, refuse or write, then read back and check that the bucket holds exactly the merge."""
    before = read_lifecycle(client, bucket)
    plan = plan_lifecycle(before.rules, desired, prefix)
    if plan.refused:
        raise LifecycleConflict(plan.conflicts)
    if not plan.changed:
        return ApplyResult(plan=plan, written=False, after=before)
    write_lifecycle(client, bucket, BucketLifecycle(plan.merged, before.transition_default_minimum_object_size))
    after = read_lifecycle(client, bucket)
    expected = [canonical_rule(rule) for rule in plan.merged]
    found = [canonical_rule(rule) for rule in after.rules]
    if sorted(map(_key, expected)) != sorted(map(_key, found)):
        raise LifecycleError(
            f"the lifecycle configuration of {_where(client, bucket)} read back after writing differs from the "
            f"merge that was written (another writer at the same time?): expected {json.dumps(expected)}, "
            f"found {json.dumps(found)}; run `cvn lifecycle verify` and re-apply"
        )
    return ApplyResult(plan=plan, written=True, after=after)


def _key(rule: Rule) -> str:
    return json.dumps(rule, sort_keys=True)


def summarize_rule(rule: Rule) -> str:
    """One line an operator reads: status and actions of a rule."""
    parts = [str(rule.get("Status", "?"))]
    expiration = rule.get("Expiration") or {}
    if "Days" in expiration:
        parts.append(f"expire after {expiration['Days']} d")
    if "Date" in expiration:
        parts.append(f"expire on {expiration['Date']}")
    if expiration.get("ExpiredObjectDeleteMarker"):
        parts.append("remove expired delete markers")
    abort = rule.get("AbortIncompleteMultipartUpload") or {}
    if "DaysAfterInitiation" in abort:
        parts.append(f"abort multipart uploads after {abort['DaysAfterInitiation']} d")
    noncurrent = rule.get("NoncurrentVersionExpiration") or {}
    if "NoncurrentDays" in noncurrent:
        parts.append(f"expire old versions after {noncurrent['NoncurrentDays']} d")
    for transition in rule.get("Transitions") or []:
        parts.append(f"to {transition.get('StorageClass')} after {transition.get('Days', transition.get('Date'))} d")
    return ", ".join(parts)
