"""What to do about each diagnostic code (manual §9), with a ready relaunch where §9 gives one.

A relaunch keeps the campaign's spec and changes only what the playbook says, so it can be
pasted as is: ``cvn campaign launch --group defi --symbols SOLUSDC … --sl-range 1.2,1.5,1.8,2.0``.
When the change needs a longer window (longer horizons, more folds), ``--backtest-days`` is
raised to the campaign's floor so the command is accepted as printed.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from cvn_assets.contracts.campaign import CampaignSpec
from cvn_assets.contracts.timeframes import DEFAULT_TIMEFRAME, bar_minutes, hours_to_bars

WIDER_SL_RANGE = [1.2, 1.5, 1.8, 2.0]  # §9.1 "si sl_pct > 50 % : relancer avec sl_range 1.2,1.5,1.8,2.0"
NARROWER_TP_RANGE = [1.5, 2.0, 2.5]  # §9.1 "si tp_pct < 20 % : réduire tp_range 1.5,2.0,2.5"
MAX_HOURS = 48  # the longest horizon a campaign accepts (CampaignSpec.horizons)
HPO_TRIALS_NORMAL, HPO_TRIALS_SUSPECT = 50, 100  # §9.5: 50 trials is normal, more than 100 is suspect
DEFAULT_SEED = 7  # CampaignSpec.seed's default: printed only when the campaign used another one

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

# A crypto whose ML level is exploitable or solid but that the gate still rejects: the action
# follows the rejection, not the level (an operator must never read "register it" for a reject).
REJECTED_ACTIONS = {
    "delta": "§7: the gain over always-BUY is below the gate's bar (GateSettings.candidate_min_delta_points). "
             "Widen the HPO search, then review features.",
    "n_trades": "§9.3: rejected by n_trades — the model is too conservative (threshold too high) or the "
                "window too short. Relaunch on a longer window.",
    "sortino": "§9.1: the ML signal is there but trades do not pay (Sortino not above 0). Check sl/tp/timeout "
               "shares; widen the stop-loss first.",
    "screening": "the blobs carry no screening_f1_buy: SCREENING_OVERFIT cannot be ruled out. Fix the "
                 "producer (blob meta), then re-run the campaign.",
}


def _number(value: float) -> str:
    text = f"{value:g}"
    return text if any(mark in text for mark in ".en") else text + ".0"  # 2.0, as the manual writes it


def _csv(values: Sequence[object]) -> str:
    return ",".join(_number(value) if isinstance(value, float) else str(value) for value in values)


def _minimum_days(folds: int, hours: Sequence[int], timeframe: str) -> int:
    from cvn_assets.acquisition.folds import minimum_days

    return minimum_days(folds, hours_to_bars(max(hours), timeframe), timeframe)


def relaunch_command(spec: CampaignSpec, symbols: Sequence[str] | None = None, **changes: object) -> str:
    """The `cvn campaign launch` line of ``spec`` with ``changes`` applied (field names of the spec)."""
    unknown = sorted(set(changes) - set(CampaignSpec.model_fields))
    if unknown:
        raise ValueError(f"relaunch_command: expected CampaignSpec fields, found {unknown}")
    values = {**spec.model_dump(), **changes}
    # The launch validator refuses a window too short for the folds and horizons: print one it accepts.
    backtest_days = max(int(values["backtest_days"]), _minimum_days(int(values["folds"]), values["horizons"],
                                                                          values["timeframe"]))
    parts = ["cvn", "campaign", "launch", "--group", values["group"],
             "--symbols", _csv(list(symbols) if symbols is not None else (list(values["symbols"]) or spec.cryptos)),
             "--folds", str(values["folds"]), "--families", _csv(values["families"]),
             "--horizons", ",".join(f"H{hours}" for hours in values["horizons"]),
             "--sl-range", _csv([float(v) for v in values["sl_range"]]),
             "--tp-range", _csv([float(v) for v in values["tp_range"]]),
             "--hpo-trials", str(values["hpo_trials"]), "--backtest-days", str(backtest_days)]
    if values["timeframe"] != DEFAULT_TIMEFRAME:
        parts += ["--timeframe", values["timeframe"]]
    if values["data_source"] == "files":
        parts += ["--data-source", "files", "--data-dir", str(values["data_dir"])]
    if values["seed"] != DEFAULT_SEED:
        parts += ["--seed", str(values["seed"])]
    if values["planted_signal"]:
        parts += ["--planted-signal", _number(float(values["planted_signal"]))]
    return shlex.join(parts)


def longer_horizons(hours: Sequence[int], timeframe: str = DEFAULT_TIMEFRAME) -> list[int]:
    """§9.1 "augmenter horizons": each horizon doubled, plus the longest + 2 h (at most 48 h).

    On bars longer than two hours the step is one bar, so that every horizon stays whole bars.
    """
    step = max(2, bar_minutes(timeframe) // 60)
    return sorted({min(MAX_HOURS, hour * 2) for hour in hours} | {min(MAX_HOURS, max(hours) + step)})


def more_hpo_trials(trials: int) -> int:
    """Twice the search (0 = family defaults counts as none), at least the normal 50, at most 100."""
    return max(HPO_TRIALS_NORMAL, min(HPO_TRIALS_SUSPECT, 2 * trials))


def relaunch_for(code: str, spec: CampaignSpec, crypto: str) -> str | None:
    """The relaunch the playbook gives for ``code`` on ``crypto``, or None where it gives none."""
    if code in {"SL_TOO_TIGHT", "EXECUTION_MISMATCH"}:
        return relaunch_command(spec, [crypto], sl_range=WIDER_SL_RANGE)
    if code == "TP_TOO_AMBITIOUS":
        return relaunch_command(spec, [crypto], tp_range=NARROWER_TP_RANGE)
    if code in {"HORIZON_TOO_SHORT", "ML_USELESS"}:
        return relaunch_command(spec, [crypto], horizons=longer_horizons(spec.horizons, spec.timeframe))
    if code == "ML_MARGINAL":
        return relaunch_command(spec, [crypto], hpo_trials=more_hpo_trials(spec.hpo_trials))
    if code == "ML_UNSTABLE":
        return relaunch_command(spec, [crypto], folds=spec.folds + 2, backtest_days=spec.backtest_days + 30)
    if code == "SCREENING_OVERFIT":
        return relaunch_command(spec, [crypto], backtest_days=spec.backtest_days * 2)
    return None


def rejected_playbook(rejection: str, spec: CampaignSpec, crypto: str) -> tuple[str, str | None]:
    """Action and relaunch for an exploitable/solid crypto the gate rejected, by its first rejection."""
    if rejection == "delta":
        return REJECTED_ACTIONS[rejection], relaunch_command(spec, [crypto], hpo_trials=more_hpo_trials(spec.hpo_trials))
    if rejection == "n_trades":
        return REJECTED_ACTIONS[rejection], relaunch_command(spec, [crypto], backtest_days=spec.backtest_days * 2)
    if rejection == "sortino":
        return REJECTED_ACTIONS[rejection], relaunch_command(spec, [crypto], sl_range=WIDER_SL_RANGE)
    if rejection == "screening":
        return REJECTED_ACTIONS[rejection], None
    raise ValueError(f"rejected_playbook: expected one of {sorted(REJECTED_ACTIONS)}, found {rejection!r}")


def no_candidates_relaunch(spec: CampaignSpec) -> str:
    """§9.3: the whole campaign on a wider grid — longer horizons, wider stops, closer targets."""
    return relaunch_command(
        spec,
        horizons=longer_horizons(spec.horizons, spec.timeframe),
        sl_range=sorted({*map(float, spec.sl_range), *WIDER_SL_RANGE}),
        tp_range=sorted({*map(float, spec.tp_range), *NARROWER_TP_RANGE}),
    )
