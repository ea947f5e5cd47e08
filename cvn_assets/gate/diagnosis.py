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
overfit (which needs a screening F1 to compare with), trades at least ``candidate_min_trades``
times, and its Sortino is positive. The readings of the manual are in docs/diagnostics.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.contracts.blob import PredictionBlob
from cvn_assets.contracts.campaign import CampaignSpec
from cvn_assets.gate.playbook import ACTIONS, no_candidates_relaunch, rejected_playbook, relaunch_for
from cvn_assets.gate.settings import GateSettings
from cvn_assets.gate.signals import CryptoSignals, compute_crypto_signals

ML_LEVELS = ("ML_USELESS", "ML_MARGINAL", "ML_EXPLOITABLE", "ML_SOLID")
EXIT_CODES = ("SL_TOO_TIGHT", "TP_TOO_AMBITIOUS", "HORIZON_TOO_SHORT")
CRYPTO_CODES = (*ML_LEVELS, "ML_UNSTABLE", "EXECUTION_MISMATCH", *EXIT_CODES, "SCREENING_OVERFIT")
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
    """§7 step 1, bands (a, b] in F1 points: <= 0 useless, (0, 5] marginal, (5, 10] exploitable."""
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


def rejections(signals: CryptoSignals, codes: Sequence[str], settings: GateSettings) -> list[tuple[str, str]]:
    """Why the gate refuses this crypto, as (kind, sentence); empty for a candidate."""
    found: list[tuple[str, str]] = []
    if signals.screening_f1_buy is None:
        found.append(("screening", "no screening_f1_buy in the blob meta: SCREENING_OVERFIT cannot be ruled out"))
    if signals.f1_buy_delta <= settings.candidate_min_delta_points:
        found.append(("delta", f"f1_buy beats always-BUY by {signals.f1_buy_delta:+.1f} pts, "
                               f"needs > {settings.candidate_min_delta_points:+.1f}"))
    if "ML_UNSTABLE" in codes:
        found.append(("unstable", f"std_f1_buy {signals.std_f1_buy:.3f} > {settings.unstable_std_f1}"))
    if "SCREENING_OVERFIT" in codes:
        found.append(("overfit", f"screening/testing gap {signals.screening_testing_gap:.3f} > {settings.overfit_gap}"))
    if signals.n_trades < settings.candidate_min_trades:
        found.append(("n_trades", f"{signals.n_trades} trades, needs >= {settings.candidate_min_trades}"))
    if signals.sortino is None or signals.sortino <= settings.candidate_min_sortino:
        shown = "n/a" if signals.sortino is None else f"{signals.sortino:.3f}"
        found.append(("sortino", f"Sortino {shown}, needs > {settings.candidate_min_sortino}"))
    return found


def candidacy(signals: CryptoSignals, codes: Sequence[str], settings: GateSettings) -> tuple[bool, list[str]]:
    """Whether the crypto passes the gate, with the gate's reasons either way."""
    refused = rejections(signals, codes, settings)
    if refused:
        return False, [sentence for _, sentence in refused]
    return True, [f"beats always-BUY by {signals.f1_buy_delta:+.1f} pts with Sortino {signals.sortino:.3f} "
                  f"over {signals.n_trades} trades"]


def diagnose(signals: CryptoSignals, spec: CampaignSpec, settings: GateSettings | None = None) -> CryptoVerdict:
    """The §7 diagnostic, the gate's decision and the §9 next step for one crypto's signals."""
    settings = settings or GateSettings()
    codes = fired_codes(signals, settings)
    principal = codes[0]
    refused = rejections(signals, codes, settings)
    candidate, reasons = candidacy(signals, codes, settings)
    action, relaunch = ACTIONS[principal], None if candidate else relaunch_for(principal, spec, signals.crypto)
    if not candidate and principal in {"ML_EXPLOITABLE", "ML_SOLID"}:
        # The level says "exploit it" but the gate said no: the next step answers the refusal.
        kinds = [kind for kind, _ in refused]
        first = next(kind for kind in ("screening", "delta", "n_trades", "sortino") if kind in kinds)
        action, relaunch = rejected_playbook(first, spec, signals.crypto)
    return CryptoVerdict(
        signals=signals.model_dump(),
        diagnostic=principal,
        codes=codes,
        candidate=candidate,
        reasons=reasons,
        action=action,
        relaunch=relaunch,
    )


def evaluate_cryptos(
    pooled: Mapping[str, Sequence[PredictionBlob]], spec: CampaignSpec, settings: GateSettings | None = None
) -> dict[str, CryptoVerdict]:
    """Diagnose each crypto of a complete pooled cohort, within that crypto only (ADR-27)."""
    verdicts = {}
    for crypto, blobs in sorted(pooled.items()):
        signals = compute_crypto_signals(blobs)
        if signals.crypto != crypto:
            raise ValueError(f"evaluate_cryptos: pool {crypto!r} holds the blobs of {signals.crypto!r}")
        verdicts[crypto] = diagnose(signals, spec, settings)
    return verdicts


def run_level_codes(verdicts: Mapping[str, CryptoVerdict]) -> list[str]:
    """NO_CANDIDATES when no crypto of a complete cohort passes the gate (§7, §9.3)."""
    return [] if any(verdict.candidate for verdict in verdicts.values()) else [NO_CANDIDATES]


def run_level_relaunch(spec: CampaignSpec) -> str:
    return no_candidates_relaunch(spec)
