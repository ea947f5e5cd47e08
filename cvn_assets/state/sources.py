"""Reading every golden signal at once, from the systems that hold them.

``collect_signals`` asks each source in turn. A source that cannot be reached — the diagnostics
database down, the MLflow registry unreachable, the Kubernetes API refusing — yields unknown
measures that carry the error, never a default value: the global state then shows what is blind.
Errors that are not about reaching a source (a bug) propagate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from cvn_assets.redaction import redact_text
from cvn_assets.state.infra import InfraProbe, infra_health
from cvn_assets.state.settings import StateSettings
from cvn_assets.state.signals import (
    CryptoRecord, GateHistory, GateRecord, GoldenSignals, Measure, crypto_signals, gate_history, pipeline_latency,
    pipeline_success_rate,
)


def source_unreachable(exc: Exception) -> bool:
    """Errors that mean 'this source cannot be read now', by the library that raised them."""
    module = type(exc).__module__
    return isinstance(exc, OSError) or module.startswith(("sqlalchemy", "mlflow", "psycopg2", "requests", "urllib3"))


def describe_error(exc: Exception) -> str:
    """One line naming the error, safe to show in the state (metadata, logs, --json)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return redact_text(f"{type(exc).__name__}: {text}")[:300]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _finite(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _no_candidates_relaunch(row: Mapping[str, Any]) -> str | None:
    """§9.3 relaunch of a FAIL gate's own campaign (group, symbols, data source, timeframe)."""
    if row["verdict"] != "FAIL":
        return None
    from cvn_assets.contracts.campaign import STORED, CampaignSpec
    from cvn_assets.gate.playbook import no_candidates_relaunch

    return no_candidates_relaunch(CampaignSpec.model_validate_json(row["spec"], context=STORED))


class StoreDiagnostics:
    """The state's view of ``cvn_assets.diagnostics.store.DiagnosticsStore``.

    ``latest_gate_verdicts`` rows (``cvn_gate_verdicts`` + each gate's ``cryptos`` signals) give the
    gate history; ``latest_crypto_signals`` the latest gate of each crypto.
    """

    def __init__(self, store: Any):
        self.store = store

    def gate_records(self, limit: int) -> list[GateRecord]:
        return [
            GateRecord(
                campaign_id=row["campaign_id"], evaluated_at=_utc(row["evaluated_at"]), verdict=str(row["verdict"]),
                candidates=row["n_candidates"],
                sortinos={crypto: _finite(signals.get("sortino")) for crypto, signals in row["cryptos"].items()},
                relaunch=_no_candidates_relaunch(row),
            )
            for row in self.store.latest_gate_verdicts(limit)
        ]

    def crypto_records(self) -> dict[str, CryptoRecord]:
        return {
            row["crypto"]: CryptoRecord(
                crypto=row["crypto"], campaign_id=row["campaign_id"], evaluated_at=_utc(row["evaluated_at"]),
                diagnostic=row["diagnostic"], signals=dict(row["signals"]),
            )
            for row in self.store.latest_crypto_signals()
        }

    def drift(self) -> dict[str, Measure]:
        """Each monitored crypto's drift at its latest monitoring run (``cvn_model_drift``)."""
        from cvn_assets.modelops.monitoring_signal import drift_measures

        return drift_measures(self.store)


class MlflowRegistry:
    """The state's view of the MLflow registry (``cvn_assets.models``: champion, challengers)."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri

    def freshness_days(self, crypto: str, now: datetime) -> Measure:
        from cvn_assets.models.registry import mlflow_client, read_view
        from cvn_assets.models.supervision import freshness

        days, note = freshness(read_view(mlflow_client(self.tracking_uri), crypto), now)
        if days is None:
            return Measure.missing(note)
        return Measure.of(days, note)

    def challengers(self) -> Measure:
        from cvn_assets.models.registry import mlflow_client
        from cvn_assets.models.supervision import challenger_total

        return Measure.of(float(challenger_total(mlflow_client(self.tracking_uri))),
                          "versions awaiting promotion (stage challenger), all cvn-s43 models")


@dataclass
class SignalSources:
    """Where each golden signal is read. ``None`` for a source means it is not configured (unknown)."""

    instance: dg.DagsterInstance
    diagnostics: StoreDiagnostics | None
    registry: MlflowRegistry | None
    probe: InfraProbe
    universes: Mapping[str, Any]
    missing: Mapping[str, str] | None = None  # source → why it is not configured


def _read(what: str, read: Callable[[], Any], fallback: Callable[[str], Any]) -> Any:
    try:
        return read()
    except Exception as exc:
        if not source_unreachable(exc):
            raise
        return fallback(f"{what} unreadable — {describe_error(exc)}")


def collect_signals(sources: SignalSources, settings: StateSettings, now: datetime) -> GoldenSignals:
    missing = sources.missing or {}
    # Diagnostics store: gate history and the latest signals of each crypto
    gates: Sequence[GateRecord] = []
    latest: Mapping[str, CryptoRecord] = {}
    drift: Mapping[str, Measure] = {}
    diagnostics_error: str | None = None
    if sources.diagnostics is None:
        diagnostics_error = missing.get("diagnostics", "diagnostics store not configured (CVN_DIAGNOSTICS_URL)")
    else:
        store = sources.diagnostics
        outcome = _read("diagnostics store", lambda: (store.gate_records(settings.gate_history_limit),
                                                      store.crypto_records(), store.drift()), lambda reason: reason)
        if isinstance(outcome, str):
            diagnostics_error = outcome
        else:
            gates, latest, drift = outcome
    if diagnostics_error is None:
        history = gate_history(gates, settings, now)
    else:
        history = GateHistory(zero_pass_streak=Measure.missing(diagnostics_error),
                              days_without_candidate=Measure.missing(diagnostics_error))

    # Model registry: freshness per crypto, challengers
    symbols = sorted({s for universe in sources.universes.values() for s in universe.symbols} | set(latest))
    if sources.registry is None:
        reason = missing.get("registry", "model registry not configured (MLFLOW_TRACKING_URI)")
        freshness = {crypto: Measure.missing(reason) for crypto in symbols}
        challengers = Measure.missing(reason)
    else:
        registry = sources.registry
        freshness = {crypto: _read(f"MLflow registry ({crypto})", lambda c=crypto: registry.freshness_days(c, now),
                                   Measure.missing) for crypto in symbols}
        challengers = _read("MLflow registry", registry.challengers, Measure.missing)

    cryptos = crypto_signals(sources.universes, latest, gates, freshness, drift)
    if diagnostics_error is not None:
        cryptos = {
            crypto: row.model_copy(update={name: Measure.missing(diagnostics_error) for name in (
                "f1_buy_delta_vs_baseline", "screening_testing_gap", "std_f1_buy", "sortino", "sl_pct",
                "timeout_pct", "negative_sortino_streak")})
            for crypto, row in cryptos.items()
        }
    return GoldenSignals(
        evaluated_at=now,
        infra_health=infra_health(sources.probe, settings, now),
        pipeline_success_rate=pipeline_success_rate(sources.instance, settings, now),
        pipeline_latency=pipeline_latency(sources.instance, settings, now),
        gates=history,
        cryptos=cryptos,
        challenger_count=challengers,
    )
