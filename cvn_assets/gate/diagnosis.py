"""Per-crypto diagnosis of a complete cohort (manual §7 decision tree, §9 playbooks).

Every code whose signal fires is listed in ``codes``; the principal ``diagnostic`` is the first
of this precedence, from "nothing to exploit" to "exploit it":

1. ML_USELESS (delta <= 0): nothing downstream matters;
2. ML_UNSTABLE (std_f1_buy > 0.10): the level cannot be trusted across periods;
3. SCREENING_OVERFIT (gap > 0.30): the chosen PTE does not hold out of sample;
4. when delta > +5 pts and Sortino < 0: the exit code that explains it (SL_TOO_TIGHT, then
   TP_TOO_AMBITIOUS, then HORIZON_TOO_SHORT — the manual's order), else EXECUTION_MISMATCH;
5. otherwise the ML level: ML_MARGINAL (0, 5], ML_EXPLOITABLE (5, 10], ML_SOLID > 10 points.

A crypto is a candidate when it beats always-BUY by more than +5 points, is neither unstable nor
overfit, trades at least ``candidate_min_trades`` times, and its Sortino is positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.contracts.blob import PredictionBlob
from cvn_assets.contracts.campaign import CampaignSpec
from cvn_assets.gate.playbook import ACTIONS, no_candidates_relaunch, relaunch_for
from cvn_assets.gate.settings import GateSettings
from cvn_assets.gate.signals import CryptoSignals, compute_crypto_signals

EXIT_CODES = ("SL_TOO_TIGHT", "TP_TOO_AMBITIOUS", "HORIZON_TOO_SHORT")
NO_CANDIDATES = "NO_CANDIDATES"


class CryptoVerdict(BaseModel):
    """What the gate concludes for one crypto: its signals, diagnostic code and next step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signals: dict[str, float | int | str | None] = Field(description="golden signals of this crypto (ADR-27)")
    diagnostic: str = Field(description="principal diagnostic code (manual §7)")
    codes: list[str] = Field(default_factory=list, description="every code that fired, principal first")
    candidate: bool = Field(description="passes the gate: a strategy worth registering as challenger")
    reasons: list[str] = Field(default_factory=list, description="why it passed or was rejected")
    action: str = Field(description="recommended next step (manual §9)")
    relaunch: str | None = Field(default=None, description="ready `cvn campaign launch …` command, if any")


def ml_level(delta_points: float, settings: GateSettings) -> str:
    if delta_points <= 0:
        return "ML_USELESS"
    if delta_points <= settings.exploitable_delta_points:
        return "ML_MARGINAL"
    if delta_points <= settings.solid_delta_points:
        return "ML_EXPLOITABLE"
    return "ML_SOLID"


def fired_codes(signals: CryptoSignals, settings: GateSettings) -> list[str]:
    """Every code whose signal fires, in precedence order (principal first)."""
    level = ml_level(signals.f1_buy_delta, settings)
    unstable = signals.std_f1_buy > settings.unstable_std_f1
    overfit = signals.screening_testing_gap is not None and signals.screening_testing_gap > settings.overfit_gap
    mismatch = (signals.f1_buy_delta > settings.exploitable_delta_points and signals.sortino is not None
                and signals.sortino < settings.execution_mismatch_sortino)
    exits = [code for code, fires in (
        ("SL_TOO_TIGHT", signals.sl_pct is not None and signals.sl_pct > settings.sl_too_tight_pct),
        ("TP_TOO_AMBITIOUS", signals.tp_pct is not None and signals.tp_pct < settings.tp_too_ambitious_pct),
        ("HORIZON_TOO_SHORT", signals.timeout_pct is not None and signals.timeout_pct > settings.horizon_too_short_pct),
    ) if fires]
    codes: list[str] = []
    if level == "ML_USELESS":
        codes.append(level)
    if unstable:
        codes.append("ML_UNSTABLE")
    if overfit:
        codes.append("SCREENING_OVERFIT")
    if mismatch:
        codes += exits + ["EXECUTION_MISMATCH"]
    if level != "ML_USELESS":
        codes.append(level)
    codes += [code for code in exits if code not in codes]
    return codes


def candidacy(signals: CryptoSignals, codes: list[str], settings: GateSettings) -> tuple[bool, list[str]]:
    reasons = []
    if signals.f1_buy_delta <= settings.candidate_min_delta_points:
        reasons.append(f"f1_buy beats always-BUY by {signals.f1_buy_delta:+.1f} pts, "
                       f"needs > {settings.candidate_min_delta_points:+.1f}")
    if "ML_UNSTABLE" in codes:
        reasons.append(f"std_f1_buy {signals.std_f1_buy:.3f} > {settings.unstable_std_f1}")
    if "SCREENING_OVERFIT" in codes:
        reasons.append(f"screening/testing gap {signals.screening_testing_gap:.3f} > {settings.overfit_gap}")
    if signals.n_trades < settings.candidate_min_trades:
        reasons.append(f"{signals.n_trades} trades, needs >= {settings.candidate_min_trades}")
    if signals.sortino is None or signals.sortino <= settings.candidate_min_sortino:
        shown = "n/a" if signals.sortino is None else f"{signals.sortino:.3f}"
        reasons.append(f"Sortino {shown}, needs > {settings.candidate_min_sortino}")
    if reasons:
        return False, reasons
    return True, [f"beats always-BUY by {signals.f1_buy_delta:+.1f} pts with Sortino {signals.sortino:.3f} "
                  f"over {signals.n_trades} trades"]


def diagnose(signals: CryptoSignals, spec: CampaignSpec, crypto: str, settings: GateSettings | None = None) -> CryptoVerdict:
    settings = settings or GateSettings()
    codes = fired_codes(signals, settings)
    principal = codes[0]
    candidate, reasons = candidacy(signals, codes, settings)
    return CryptoVerdict(
        signals=signals.model_dump(),
        diagnostic=principal,
        codes=codes,
        candidate=candidate,
        reasons=reasons,
        action=ACTIONS[principal],
        relaunch=None if candidate else relaunch_for(principal, spec, crypto),
    )


def evaluate_cryptos(
    pooled: Mapping[str, Sequence[PredictionBlob]], spec: CampaignSpec, settings: GateSettings | None = None
) -> dict[str, CryptoVerdict]:
    """Diagnose each crypto of a complete pooled cohort, within that crypto only (ADR-27)."""
    return {crypto: diagnose(compute_crypto_signals(blobs), spec, crypto, settings)
            for crypto, blobs in sorted(pooled.items())}


def run_level_codes(verdicts: Mapping[str, CryptoVerdict]) -> list[str]:
    return [] if any(verdict.candidate for verdict in verdicts.values()) else [NO_CANDIDATES]


def run_level_relaunch(spec: CampaignSpec) -> str:
    return no_candidates_relaunch(spec)
