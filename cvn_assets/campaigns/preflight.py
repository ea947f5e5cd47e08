"""Pre-flight: every symbol's candles read and checked before a campaign is registered.

A campaign on user files that cannot run (a missing, empty, too short or wrongly spaced file)
must be refused at launch, naming the symbol, the file, what was expected and what was found —
not registered, run to failure and gated INCONCLUSIVE with a transport misdiagnosis. Gaps stay
warnings: the models treat bars as consecutive, which a few gaps do not invalidate.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.acquisition.market_data import check_candles, load_candles, symbol_files
from cvn_assets.contracts.campaign import CampaignSpec


class PreflightFailed(ValueError):
    """The candles of at least one symbol cannot carry the campaign: nothing may be registered."""


class Preflight(BaseModel):
    """What the pre-flight read: bars per symbol, the problems that refuse the campaign, the warnings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: str
    bars: dict[str, int] = Field(default_factory=dict, description="symbol → bars in the campaign window")
    problems: list[str] = Field(default_factory=list, description="'SYMBOL (files): expected …, found …'")
    warnings: list[str] = Field(default_factory=list, description="'SYMBOL (files): warning', e.g. gaps")

    def raise_for_problems(self) -> None:
        if self.problems:
            raise PreflightFailed(f"the candles cannot carry campaign {self.campaign_id}; nothing was registered:"
                                  "\n  " + "\n  ".join(self.problems))


def _files(spec: CampaignSpec, symbol: str) -> str:
    if spec.data_dir is None:
        return "no data_dir"
    names = [path.name for path in symbol_files(Path(spec.data_dir), symbol)]
    return ", ".join(str(Path(spec.data_dir) / name) for name in names)


def preflight_candles(spec: CampaignSpec) -> Preflight:
    """Read and check every symbol's candles of a ``files`` campaign against its timeframe, folds and horizons.

    A synthetic campaign has nothing to read: its bars are generated to the spec by construction.
    """
    if spec.data_source != "files":
        return Preflight(campaign_id=spec.campaign_id)
    problems: list[str] = []
    bars: dict[str, int] = {}
    warnings: list[str] = []
    for symbol in spec.cryptos:
        try:
            candles = load_candles(spec, symbol)
        except ValueError as exc:  # the reader names the file, what it expected and what it found
            problems.append(f"{symbol}: {exc}")
            continue
        report = check_candles(candles, spec)
        bars[symbol] = report.n_bars
        where = f"{symbol} ({_files(spec, symbol)})"
        warnings += [f"{where}: {warning}" for warning in report.warnings]
        problems += [f"{where}: {problem}" for problem in report.problems]
    return Preflight(campaign_id=spec.campaign_id, bars=bars, problems=problems, warnings=warnings)
