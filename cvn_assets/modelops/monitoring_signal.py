"""The ``drift`` golden signal: each crypto's drift at its champion's latest monitoring run.

The measure's value is the crypto's band (0 ok, 1 warning, 2 critical, ``drift.crypto_band``) read
back from the rows of ``cvn_model_drift``; its detail names the version, the run and what drifted.
"""

from __future__ import annotations

from typing import Any

from cvn_assets.modelops.drift import DriftKind, DriftMeasure, crypto_band
from cvn_assets.modelops.records import latest_drift
from cvn_assets.state.signals import Measure

_MEASURE_FIELDS = ("kind", "statistic", "value", "band", "ks_statistic", "ks_pvalue", "wasserstein",
                   "reference_rows", "current_rows", "reference_mean", "current_mean")


def _measure(row: dict[str, Any]) -> DriftMeasure:
    return DriftMeasure(name=row["feature"], **{name: row[name] for name in _MEASURE_FIELDS})


def drift_measure(rows: list[dict[str, Any]]) -> Measure:
    measures = [_measure(row) for row in rows]
    by_kind = {kind: [m for m in measures if m.kind == kind] for kind in DriftKind}
    if len(by_kind[DriftKind.PREDICTION]) != 1 or len(by_kind[DriftKind.LABEL]) != 1:
        raise ValueError(f"drift run {rows[0]['run_id']}: expected one prediction and one label row, found "
                         f"{len(by_kind[DriftKind.PREDICTION])} and {len(by_kind[DriftKind.LABEL])}")
    band, critical = crypto_band(by_kind[DriftKind.FEATURE], by_kind[DriftKind.PREDICTION][0],
                                 by_kind[DriftKind.LABEL][0])
    worst = sorted(measures, key=lambda m: -m.value)[:3]
    detail = (f"{band.value} at monitoring {rows[0]['run_id']} of v{rows[0]['version']}"
              + (f": {', '.join(critical[:5])}" if critical else "")
              + f"; highest PSI {', '.join(f'{m.name} {m.value:.2f}' for m in worst)}")
    return Measure.of(float(band.rank), detail)


def drift_measures(store: Any) -> dict[str, Measure]:
    return {crypto: drift_measure(rows) for crypto, rows in latest_drift(store).items()}


