"""Drift statistics: has the market a model sees moved away from the market it learned on?

For each compared quantity (a model input, the model's ``proba_buy``, the label's buy rate) the
reference sample is the model's training window and the current sample the latest window. Three
well-kept statistics are computed, one decides:

* **PSI** (Population Stability Index) over ten bins cut at the reference's deciles:
  ``Σ (current% − reference%) · ln(current% / reference%)``. It **decides the band** with the usual
  marks — below 0.10 stable, 0.10 to 0.25 warning, 0.25 and above critical — because it measures
  *how much* the distribution moved in a unit that does not depend on the feature's scale or on the
  number of bars, so one pair of thresholds holds for every input and every crypto.
* **Kolmogorov–Smirnov** (statistic as ``scipy.stats.ks_2samp``, p-value from Kolmogorov's limiting
  distribution ``scipy.stats.kstwobign``): reported, never
  used to decide: on 17,000 serially correlated 5-minute bars the p-value is ~0 for shifts no
  model notices (too many bars, and they are not independent, which the test assumes).
* **Wasserstein** (as ``scipy.stats.wasserstein_distance``): how far the mass moved, in the feature's
  own unit (for the ML owner who asks "by how much").

The **crypto's drift** (the golden signal) aggregates the per-quantity bands: critical when the
model's answer moved (``proba_buy``) or its labels moved (``buy_rate``) critically, or when at least
a quarter of its inputs did; warning when any quantity is at least in warning. One slow input alone
(``vol_288``, ``ret_288``: one-day windows, so a 20-day window holds some 20 independent values)
swings past 0.25 by chance between two windows of the same market; the model's output and a broad
move of its inputs do not.

Empty bins are floored at ``PSI_FLOOR`` so that a category absent on one side gives a large but
finite PSI. Non-finite values are refused, never dropped (a NaN feature is a bug upstream).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

PSI_BINS = 10
PSI_FLOOR = 1e-4
PSI_WARNING = 0.10
PSI_CRITICAL = 0.25
DECIDING_STATISTIC = "psi"


class Band(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {Band.OK: 0, Band.WARNING: 1, Band.CRITICAL: 2}[self]


class DriftKind(StrEnum):
    FEATURE = "feature"
    PREDICTION = "prediction"
    LABEL = "label"


class DriftThresholds(BaseModel):
    """The PSI marks of the bands (the usual 0.1 / 0.25)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warning: float = Field(default=PSI_WARNING, gt=0)
    critical: float = Field(default=PSI_CRITICAL, gt=0)

    def band(self, psi: float) -> Band:
        if psi >= self.critical:
            return Band.CRITICAL
        if psi >= self.warning:
            return Band.WARNING
        return Band.OK


class DriftMeasure(BaseModel):
    """One compared quantity: the deciding PSI, its band and the two reported statistics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="feature name, 'proba_buy' or 'buy_rate'")
    kind: DriftKind
    statistic: str = Field(default=DECIDING_STATISTIC, description="the statistic that decides the band")
    value: float = Field(description="the deciding statistic's value (PSI)")
    band: Band
    ks_statistic: float
    ks_pvalue: float
    wasserstein: float
    reference_rows: int
    current_rows: int
    reference_mean: float
    current_mean: float


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"drift {what}: expected at least one value, found none")
    if not np.isfinite(array).all():
        raise ValueError(f"drift {what}: expected finite values, found {int((~np.isfinite(array)).sum())} NaN/inf")
    return array


def _quantile_edges(ordered: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the deciles of an already sorted sample (numpy's default 'linear' quantiles)."""
    positions = np.linspace(0.0, 1.0, bins + 1)[1:-1] * (ordered.size - 1)
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    return ordered[low] + (positions - low) * (ordered[high] - ordered[low])


def _psi_sorted(reference: np.ndarray, current: np.ndarray, bins: int) -> float:
    starts = np.append(True, reference[1:] != reference[:-1])  # sorted: a new value starts where it differs
    distinct = reference[starts]
    if distinct.size <= bins:
        # Few distinct values (a label, a flag): one bin per reference value, outsiders to the nearest.
        edges = (distinct[:-1] + distinct[1:]) / 2.0
    else:
        edges = np.unique(_quantile_edges(reference, bins))
    # Both samples are sorted: bin counts are differences of insertion points (no per-value binning).
    expected = np.diff(np.concatenate([[0], np.searchsorted(reference, edges, side="right"), [reference.size]]))
    actual = np.diff(np.concatenate([[0], np.searchsorted(current, edges, side="right"), [current.size]]))
    expected = np.maximum(expected / reference.size, PSI_FLOOR)
    actual = np.maximum(actual / current.size, PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population Stability Index of ``current`` against ``reference`` (bins at the reference's deciles)."""
    return _psi_sorted(np.sort(np.asarray(reference, dtype=np.float64)),
                       np.sort(np.asarray(current, dtype=np.float64)), bins)


def _ks_wasserstein(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Both sorted samples, the two-sample KS statistic and the Wasserstein-1 distance, from one sort each.

    The same quantities as ``scipy.stats.ks_2samp`` and ``scipy.stats.wasserstein_distance`` (the
    tests compare them to scipy's): both read the two empirical CDFs on the pooled sorted values.
    Each sample is sorted once (and shared with the PSI); pooling two sorted runs is a linear merge
    (a stable sort finds the runs), which keeps 60 inputs × 17k bars well under half a second where
    three separate scipy calls per input take several (bench/modelops.py).
    """
    ordered_reference, ordered_current = np.sort(reference), np.sort(current)
    pooled = np.concatenate([ordered_reference, ordered_current])
    order = np.argsort(pooled, kind="stable")
    values = pooled[order]
    from_reference = order < reference.size
    gaps = np.abs(np.cumsum(from_reference) / reference.size - np.cumsum(~from_reference) / current.size)
    # The CDFs are right-continuous: read them after the last of equal values (ties add no area).
    last_of_ties = np.append(values[1:] != values[:-1], True)
    return ordered_reference, ordered_current, float(np.max(gaps[last_of_ties])), float(
        np.sum(gaps[:-1] * np.diff(values)))


def _ks_pvalues(statistics: np.ndarray, reference_rows: int, current_rows: int) -> np.ndarray:
    """Two-sided p-values from Kolmogorov's limiting distribution (``scipy.stats.kstwobign``).

    ``ks_2samp(method="asymp")`` evaluates the finite-n ``kstwo`` instead, which costs ~20 ms per
    input; with thousands of bars both agree to the third decimal, and the p-value decides nothing.
    """
    effective = reference_rows * current_rows / (reference_rows + current_rows)
    return np.clip(stats.kstwobign.sf(statistics * np.sqrt(effective)), 0.0, 1.0)


def _measures(pairs: list[tuple[str, DriftKind, np.ndarray, np.ndarray]],
              thresholds: DriftThresholds | None) -> list[DriftMeasure]:
    thresholds = thresholds or DriftThresholds()
    found = []
    for name, kind, reference, current in pairs:
        reference = _finite(reference, f"{name} (training window)")
        current = _finite(current, f"{name} (latest window)")
        ordered_reference, ordered_current, ks, wasserstein = _ks_wasserstein(reference, current)
        found.append((name, kind, reference, current, _psi_sorted(ordered_reference, ordered_current, PSI_BINS),
                      ks, wasserstein))
    pvalues: dict[tuple[int, int], np.ndarray] = {}  # one vectorised scipy call per pair of sample sizes
    for shape in {(item[2].size, item[3].size) for item in found}:
        pvalues[shape] = _ks_pvalues(np.array([item[5] for item in found if (item[2].size, item[3].size) == shape]),
                                     *shape)
    taken: dict[tuple[int, int], int] = {}
    measures = []
    for name, kind, reference, current, value, ks, wasserstein in found:
        shape = (reference.size, current.size)
        index = taken[shape] = taken.get(shape, -1) + 1
        measures.append(DriftMeasure(
            name=name, kind=kind, value=value, band=thresholds.band(value), ks_statistic=ks,
            ks_pvalue=float(pvalues[shape][index]), wasserstein=wasserstein, reference_rows=int(reference.size),
            current_rows=int(current.size), reference_mean=float(reference.mean()),
            current_mean=float(current.mean()),
        ))
    return measures


def measure(name: str, kind: DriftKind, reference: np.ndarray, current: np.ndarray,
            thresholds: DriftThresholds | None = None) -> DriftMeasure:
    """PSI (deciding), KS and Wasserstein of one quantity, latest window against training window."""
    return _measures([(name, kind, reference, current)], thresholds)[0]


def feature_drift(reference: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray],
                  thresholds: DriftThresholds | None = None) -> list[DriftMeasure]:
    """One measure per model input; both windows must hold exactly the same inputs."""
    if set(reference) != set(current):
        raise ValueError(f"feature drift: expected the same inputs in both windows, found only-training "
                         f"{sorted(set(reference) - set(current))}, only-latest {sorted(set(current) - set(reference))}")
    return _measures([(name, DriftKind.FEATURE, reference[name], current[name]) for name in reference], thresholds)


def worst(measures: list[DriftMeasure]) -> Band:
    return max((m.band for m in measures), key=lambda band: band.rank, default=Band.OK)


CRITICAL_INPUT_SHARE = 0.25


def crypto_band(features: list[DriftMeasure], prediction: DriftMeasure, label: DriftMeasure,
                critical_input_share: float = CRITICAL_INPUT_SHARE) -> tuple[Band, list[str]]:
    """The crypto's drift band and what made it critical (module docstring)."""
    critical_inputs = [m.name for m in features if m.band == Band.CRITICAL]
    outputs = [m.name for m in (prediction, label) if m.band == Band.CRITICAL]
    broad = bool(features) and len(critical_inputs) / len(features) >= critical_input_share
    if outputs or broad:
        return Band.CRITICAL, outputs + (critical_inputs if broad else [])
    return (Band.WARNING if worst([*features, prediction, label]) != Band.OK else Band.OK), []
