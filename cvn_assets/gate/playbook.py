"""What to do about each diagnostic code (manual §9), with a ready relaunch where §9 gives one.

A relaunch keeps the campaign's spec and changes only what the playbook says, so it can be
pasted as is: ``cvn campaign launch --group defi --symbols SOLUSDC … --sl-range 1.2,1.5,1.8,2.0``.
"""

from __future__ import annotations

import shlex

from cvn_assets.contracts.campaign import CampaignSpec

WIDER_SL_RANGE = [1.2, 1.5, 1.8, 2.0]  # §9.1 "si sl_pct > 50 %"
NARROWER_TP_RANGE = [1.5, 2.0, 2.5]  # §9.1 "si tp_pct < 20 %"
MAX_HOURS = 48

ACTIONS = {
    "ML_USELESS": "§9.2: no better than always-BUY. Check buy_rate (> 50 % = a labelling problem), "
                  "test another horizon, review the HPO objective; features last.",
    "ML_MARGINAL": "§7: gain too small to survive execution. Widen the HPO search, then review features.",
    "ML_EXPLOITABLE": "§7: exploitable signal; keep it if the execution envelope holds (Sortino > 0).",
    "ML_SOLID": "§7: solid signal; register the challenger and review it in MLflow.",
    "ML_UNSTABLE": "§7: unstable across periods (std_f1_buy > 0.10). Re-run with more folds before trusting it.",
    "EXECUTION_MISMATCH": "§9.1: the model finds BUYs but trades lose. Check sl/tp/timeout shares; "
                          "widen the stop-loss first.",
    "SL_TOO_TIGHT": "§9.1: more than half the trades hit the stop-loss. Relaunch with wider stops.",
    "TP_TOO_AMBITIOUS": "§9.1: under 20 % of trades reach the take-profit. Relaunch with closer targets.",
    "HORIZON_TOO_SHORT": "§9.1: over 40 % of trades time out. Relaunch with longer horizons.",
    "SCREENING_OVERFIT": "§7: screening and testing diverge (gap > 0.30): the chosen PTE does not hold "
                         "out of sample. Relaunch on a longer window.",
    "NO_CANDIDATES": "§9.3: no viable strategy. Read the rejection reasons per crypto; relaunch with a "
                     "wider grid (more horizons, wider ATR ranges) or another crypto of the group.",
}


def _csv(values: list[float] | list[int] | list[str]) -> str:
    return ",".join(f"{value:g}" if isinstance(value, float) else str(value) for value in values)


def relaunch_command(spec: CampaignSpec, symbols: list[str] | None = None, **changes: object) -> str:
    """The `cvn campaign launch` line of ``spec`` with ``changes`` applied (field names of the spec)."""
    values = {**spec.model_dump(), **changes}
    parts = ["cvn", "campaign", "launch", "--group", values["group"],
             "--symbols", _csv(symbols if symbols is not None else list(values["symbols"]) or spec.cryptos),
             "--folds", str(values["folds"]), "--families", _csv(values["families"]),
             "--horizons", ",".join(f"H{hours}" for hours in values["horizons"]),
             "--sl-range", _csv([float(v) for v in values["sl_range"]]),
             "--tp-range", _csv([float(v) for v in values["tp_range"]]),
             "--hpo-trials", str(values["hpo_trials"]), "--backtest-days", str(values["backtest_days"])]
    if values["data_source"] == "files":
        parts += ["--data-source", "files", "--data-dir", str(values["data_dir"])]
    return shlex.join(parts)


def longer_horizons(hours: list[int]) -> list[int]:
    return sorted({min(MAX_HOURS, hour * 2) for hour in hours} | {min(MAX_HOURS, max(hours) + 2)})


def relaunch_for(code: str, spec: CampaignSpec, crypto: str) -> str | None:
    """The relaunch the playbook gives for ``code`` on ``crypto``, or None where it gives none."""
    if code in {"SL_TOO_TIGHT", "EXECUTION_MISMATCH"}:
        return relaunch_command(spec, [crypto], sl_range=WIDER_SL_RANGE)
    if code == "TP_TOO_AMBITIOUS":
        return relaunch_command(spec, [crypto], tp_range=NARROWER_TP_RANGE)
    if code in {"HORIZON_TOO_SHORT", "ML_USELESS"}:
        return relaunch_command(spec, [crypto], horizons=longer_horizons(list(spec.horizons)))
    if code == "ML_MARGINAL":
        return relaunch_command(spec, [crypto], hpo_trials=max(spec.hpo_trials, 50))
    if code == "ML_UNSTABLE":
        return relaunch_command(spec, [crypto], folds=spec.folds + 2, backtest_days=spec.backtest_days + 30)
    if code == "SCREENING_OVERFIT":
        return relaunch_command(spec, [crypto], backtest_days=spec.backtest_days * 2)
    return None


def no_candidates_relaunch(spec: CampaignSpec) -> str:
    return relaunch_command(
        spec,
        horizons=longer_horizons(list(spec.horizons)),
        sl_range=sorted({*map(float, spec.sl_range), *WIDER_SL_RANGE}),
        tp_range=sorted({*map(float, spec.tp_range), *NARROWER_TP_RANGE}),
    )
