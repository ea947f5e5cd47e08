"""The gate report: the verdict of one campaign and the exact cohort it was computed from."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.contracts.campaign import CampaignSpec
from cvn_assets.gate.diagnosis import CryptoVerdict


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE_TOOLING = "INCONCLUSIVE_TOOLING"


class CohortStatus(BaseModel):
    """One expected blob and whether the gate found it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    fold: int
    family: str
    key: str
    status: Literal["present", "absent"]
    reason: str | None = Field(default=None, description="why it is absent, as the acquisition logged it")
    cause: str | None = Field(default=None, description="kind of cause of the failed acquisition: data, "
                                                        "configuration, code, transport or unknown")


class GateReport(BaseModel):
    """Verdict of one campaign (DESIGN.md): PASS, FAIL (NO_CANDIDATES) or INCONCLUSIVE_TOOLING.

    ``cryptos`` is None when the verdict is INCONCLUSIVE_TOOLING: an incomplete cohort yields no
    pooled metric at all, never a partial pool.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: str
    group: str
    verdict: Verdict
    transport_suspect: bool = Field(description="every expected blob is absent and no recorded acquisition "
                                                "failure explains it: runbook scenario C")
    absence_causes: list[str] = Field(default_factory=list, description="every blob absent because every "
                                      "acquisition failed with these recorded causes (data, configuration, code)")
    next_step: str | None = Field(default=None, description="what to do about absence_causes")
    cohort: list[CohortStatus]
    missing: list[str] = Field(description="keys of absent blobs")
    cryptos: dict[str, CryptoVerdict] | None = None
    codes: list[str] = Field(default_factory=list, description="run-level codes, e.g. NO_CANDIDATES")
    summary: str = Field(description="one line an operator reads first")
    evaluated_at: datetime
    spec: CampaignSpec


REPORT_NAME = "_gate_report.json"


def report_key(prefix: str, campaign_id: str) -> str:
    from cvn_assets.contracts.keys import campaign_prefix

    return campaign_prefix(prefix, campaign_id) + REPORT_NAME
