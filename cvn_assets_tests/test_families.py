"""Model families: a registry of scikit-learn estimators, the naive always-BUY baseline included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cvn_assets.acquisition import families
from cvn_assets.acquisition.families import ModelFamily, family_names, get_family
from cvn_assets.contracts.campaign import CampaignSpec


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(600, 4)), columns=["a", "b", "c", "d"])
    y = (x["a"] + 0.5 * rng.normal(size=600) > 0.3).astype(np.int8).to_numpy()
    return x, y


def test_the_registry_holds_the_baseline_and_the_two_learners():
    assert {"naive", "logreg", "hgb"} <= family_names()
    with pytest.raises(ValueError, match=r"unknown model family 'xgb': expected one of \[.*'hgb'.*'logreg'.*'naive'"):
        get_family("xgb")


@pytest.mark.parametrize("name", ["naive", "logreg", "hgb"])
def test_each_family_fits_and_gives_a_buy_probability(name, data):
    x, y = data
    family = get_family(name)
    model = family.build(family.default_hyperparameters(), seed=1).fit(x, y)
    proba = model.predict_proba(x)

    assert proba.shape == (len(x), 2)
    assert ((proba >= 0) & (proba <= 1)).all()
    if name == "naive":
        assert (proba[:, 1] == 1.0).all()
    else:  # the learners find the planted column
        auc_like = proba[y == 1, 1].mean() - proba[y == 0, 1].mean()
        assert auc_like > 0.2


@pytest.mark.parametrize("name", ["logreg", "hgb"])
def test_fits_and_hpo_draws_are_reproducible(name, data):
    x, y = data
    family = get_family(name)
    draws = [family.sample_hyperparameters(np.random.default_rng(42)) for _ in range(2)]
    assert draws[0] == draws[1] and draws[0] != family.default_hyperparameters()
    probas = [family.build(draws[0], seed=5).fit(x, y).predict_proba(x) for _ in range(2)]
    np.testing.assert_array_equal(probas[0], probas[1])


def test_adding_a_family_is_one_class_and_campaigns_accept_it(data):
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import Pipeline

    class GaussianBayes(ModelFamily):
        name = "test_gaussian_nb"

        def default_hyperparameters(self):
            return {}

        def sample_hyperparameters(self, rng):
            return {}

        def build(self, hyperparameters, seed):
            return Pipeline([("model", GaussianNB())])

    try:
        assert "test_gaussian_nb" in family_names()
        x, y = data
        assert get_family("test_gaussian_nb").build({}, 0).fit(x, y).predict_proba(x).shape == (600, 2)
        spec = CampaignSpec(campaign_id="fam-001", group="defi", families="naive,test_gaussian_nb")
        assert spec.families == ["naive", "test_gaussian_nb"]
        with pytest.raises(ValueError, match="defined twice"):
            type("Again", (ModelFamily,), {"name": "test_gaussian_nb"})
    finally:
        families._REGISTRY.pop("test_gaussian_nb")
