"""Model families: how a fold turns features into a BUY probability.

A family is one subclass of ``ModelFamily``: a name, default hyperparameters, an HPO search
space and a ``build`` that returns an unfitted scikit-learn estimator. Defining the class
registers it (``__init_subclass__``), so adding a family is adding one class here.

Every family is compared to ``naive`` (always BUY), the manual's baseline (ADR-29): a model
whose ``f1_buy`` does not beat always-BUY has no predictive value (diagnosis ML_USELESS).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

Hyperparameter = float | int | str | bool | None
Hyperparameters = dict[str, Hyperparameter]

_REGISTRY: dict[str, type[ModelFamily]] = {}


class ModelFamily:
    """One way of predicting BUY. Subclasses set ``name`` and implement the three methods."""

    name: ClassVar[str]
    # False for families whose probability carries no ranking (naive): there is nothing to
    # calibrate, the threshold stays at 0.5.
    calibrated: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name in _REGISTRY:
            raise ValueError(f"model family {cls.name!r} is defined twice ({_REGISTRY[cls.name].__qualname__}, {cls.__qualname__})")
        _REGISTRY[cls.name] = cls

    def default_hyperparameters(self) -> Hyperparameters:
        """What the family uses when ``hpo_trials`` is 0."""
        raise NotImplementedError

    def sample_hyperparameters(self, rng: np.random.Generator) -> Hyperparameters:
        """One random-search trial; an empty dict for families without hyperparameters."""
        raise NotImplementedError

    def build(self, hyperparameters: Mapping[str, Hyperparameter], seed: int) -> Pipeline:
        """An unfitted estimator with ``fit(X, y)`` and ``predict_proba(X)`` (column 1 = BUY)."""
        raise NotImplementedError


class AlwaysBuy(ClassifierMixin, BaseEstimator):
    """The naive baseline as a scikit-learn classifier: probability of BUY is 1 for every bar."""

    def fit(self, X: Any, y: Any) -> AlwaysBuy:
        validate_data(self, X, reset=True)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "classes_")
        X = validate_data(self, X, reset=False)
        proba = np.zeros((X.shape[0], 2))
        proba[:, 1] = 1.0
        return proba

    def predict(self, X: Any) -> np.ndarray:
        return np.ones(self.predict_proba(X).shape[0], dtype=np.int64)


class Naive(ModelFamily):
    """Always BUY: the baseline every other family must beat (manual ADR-29)."""

    name = "naive"
    calibrated = False

    def default_hyperparameters(self) -> Hyperparameters:
        return {}

    def sample_hyperparameters(self, rng: np.random.Generator) -> Hyperparameters:
        return {}

    def build(self, hyperparameters: Mapping[str, Hyperparameter], seed: int) -> Pipeline:
        return Pipeline([("model", AlwaysBuy())])


class LogReg(ModelFamily):
    """Standardised features into an L2 logistic regression: a linear, hard-to-overfit reference."""

    name = "logreg"

    def default_hyperparameters(self) -> Hyperparameters:
        return {"C": 1.0, "class_weight": None}

    def sample_hyperparameters(self, rng: np.random.Generator) -> Hyperparameters:
        return {
            "C": float(10 ** rng.uniform(-3.0, 1.0)),
            "class_weight": [None, "balanced"][int(rng.integers(2))],
        }

    def build(self, hyperparameters: Mapping[str, Hyperparameter], seed: int) -> Pipeline:
        params = {**self.default_hyperparameters(), **hyperparameters}
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=params["C"], class_weight=params["class_weight"], max_iter=500, random_state=seed)),
            ]
        )


class Hgb(ModelFamily):
    """scikit-learn HistGradientBoosting: non-linear interactions between features, fast on 10^4 rows."""

    name = "hgb"

    def default_hyperparameters(self) -> Hyperparameters:
        return {"learning_rate": 0.05, "max_iter": 100, "max_leaf_nodes": 7, "min_samples_leaf": 100, "l2_regularization": 1.0}

    def sample_hyperparameters(self, rng: np.random.Generator) -> Hyperparameters:
        return {
            "learning_rate": float(10 ** rng.uniform(-2.0, -0.5)),
            "max_iter": int(rng.choice([50, 100, 200])),
            "max_leaf_nodes": int(rng.choice([7, 15, 31])),
            "min_samples_leaf": int(rng.choice([20, 40, 100, 200])),
            "l2_regularization": float(10 ** rng.uniform(-3.0, 1.0)),
        }

    def build(self, hyperparameters: Mapping[str, Hyperparameter], seed: int) -> Pipeline:
        params = {**self.default_hyperparameters(), **hyperparameters}
        # early_stopping=False: an internal random split would both make training depend on
        # row order and hold out bars adjacent to training labels (look-ahead inside the fold).
        model = HistGradientBoostingClassifier(
            learning_rate=params["learning_rate"],
            max_iter=params["max_iter"],
            max_leaf_nodes=params["max_leaf_nodes"],
            min_samples_leaf=params["min_samples_leaf"],
            l2_regularization=params["l2_regularization"],
            early_stopping=False,
            random_state=seed,
        )
        return Pipeline([("model", model)])


def family_names() -> frozenset[str]:
    """Names accepted in ``CampaignSpec.families``."""
    return frozenset(_REGISTRY)


def get_family(name: str) -> ModelFamily:
    """The family called ``name``; ``ValueError`` naming the allowed values otherwise."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ValueError(f"unknown model family {name!r}: expected one of {sorted(_REGISTRY)}") from None
