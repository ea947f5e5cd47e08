"""Every threshold of the gate's diagnosis, in one settings model (manual §2 and §7 defaults).

Readings of the manual where it is ambiguous (docs/diagnostics.md pins each one with a test):
- deltas are in F1 *points* (f1 × 100): "delta +5 à +10 pts";
- a band "+a à +b" is (a, b]: exactly +5 is ML_MARGINAL, exactly +10 is ML_EXPLOITABLE;
- the manual's ">" and "<" are strict: sl_pct exactly 50 % is not SL_TOO_TIGHT, std_f1_buy exactly
  0.10 is not ML_UNSTABLE, a gap of exactly 0.30 is not SCREENING_OVERFIT.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GateSettings(BaseModel):
    """Thresholds of the decision tree (§7) and of candidacy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exploitable_delta_points: float = Field(default=5.0, description="delta above this: ML_EXPLOITABLE")
    solid_delta_points: float = Field(default=10.0, description="delta above this: ML_SOLID")
    unstable_std_f1: float = Field(default=0.10, description="std_f1_buy above this: ML_UNSTABLE")
    overfit_gap: float = Field(default=0.30, description="screening_f1_buy - last_fold_f1_buy above this: SCREENING_OVERFIT")
    execution_mismatch_sortino: float = Field(default=0.0, description="Sortino below this with delta > +5 pts")
    sl_too_tight_pct: float = Field(default=0.50, description="share of stop-loss exits above this: SL_TOO_TIGHT")
    tp_too_ambitious_pct: float = Field(default=0.20, description="share of take-profit exits below this")
    horizon_too_short_pct: float = Field(default=0.40, description="share of timeout exits above this")
    candidate_min_delta_points: float = Field(default=5.0, description="a candidate beats always-BUY by more than this")
    candidate_min_sortino: float = Field(default=0.0, description="a candidate's per-trade Sortino is above this")
    candidate_min_trades: int = Field(default=30, ge=1, description="a candidate trades at least this often")
