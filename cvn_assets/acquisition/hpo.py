"""HPO: a bounded random search of a family's hyperparameters on a fold's validation slice.

Trial 0 is the family's defaults; ``hpo_trials`` more trials are drawn from the family's search
space with a generator seeded by (campaign seed, crypto, fold, family), so the same campaign
draws the same trials. Each trial is trained on the core training slice and scored by
``f1_buy`` at its threshold calibrated on the validation slice; the best trial wins (ties keep
the earlier trial, so defaults win unless beaten). ``hpo_trials = 0`` means the defaults only.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.pipeline import Pipeline

from cvn_assets.acquisition.calibration import calibrate_threshold, f1_buy
from cvn_assets.acquisition.families import Hyperparameters, ModelFamily

NAIVE_THRESHOLD = 0.5


def derive_seed(*parts: object) -> int:
    """A 32-bit seed from the campaign seed and names, stable across processes and machines."""
    digest = hashlib.sha256("/".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big")


class Trial(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    hyperparameters: Hyperparameters
    threshold: float
    validation_f1_buy: float


class SearchResult(BaseModel):
    """The winning trial, its fitted model and every trial tried (for the logs)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    best: Trial
    model: Pipeline
    trials: list[Trial]


def fit_and_calibrate(
    family: ModelFamily,
    hyperparameters: Hyperparameters,
    model_seed: int,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_validation: pd.DataFrame,
    y_validation: np.ndarray,
    where: str,
) -> tuple[Pipeline, Trial]:
    """Train on core training, calibrate the BUY threshold on validation (never on training)."""
    model = family.build(hyperparameters, model_seed).fit(x_train, y_train)
    if family.calibrated:
        proba = model.predict_proba(x_validation)[:, 1]
        threshold, score = calibrate_threshold(y_validation, proba, where)
    else:
        threshold = NAIVE_THRESHOLD
        score = f1_buy(y_validation, model.predict_proba(x_validation)[:, 1] >= threshold)
    return model, Trial(hyperparameters=hyperparameters, threshold=threshold, validation_f1_buy=score)


def search(
    family: ModelFamily,
    trials: int,
    search_seed: int,
    model_seed: int,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_validation: pd.DataFrame,
    y_validation: np.ndarray,
    where: str,
) -> SearchResult:
    """Defaults plus ``trials`` random draws; the best validation ``f1_buy`` wins (module docstring)."""
    rng = np.random.default_rng(search_seed)
    candidates = [family.default_hyperparameters()]
    for _ in range(trials):
        sample = family.sample_hyperparameters(rng)
        if not sample:  # a family without hyperparameters has nothing to search
            break
        candidates.append(sample)
    best_model, best = None, None
    tried = []
    for index, hyperparameters in enumerate(candidates):
        model, trial = fit_and_calibrate(
            family, hyperparameters, model_seed, x_train, y_train, x_validation, y_validation, f"{where} trial {index}"
        )
        tried.append(trial)
        if best is None or trial.validation_f1_buy > best.validation_f1_buy:
            best_model, best = model, trial
    assert best is not None and best_model is not None  # candidates always holds the defaults
    return SearchResult(best=best, model=best_model, trials=tried)
