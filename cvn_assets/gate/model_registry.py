"""MLflow: every gate evaluation as a run, every PASS candidate as a challenger model version.

Runs go to the experiment ``cvn-s43-gates`` (params: the campaign spec; metrics per crypto, named
``<CRYPTO>.<signal>``; tags: verdict, codes and each crypto's diagnostic). An INCONCLUSIVE gate
logs its verdict and no metric: there is no pooled number to log. A candidate's model is trained
on the campaign's full window with its chosen family, PTE and hyperparameters, saved with skops —
MLflow's serialization that loads without unpickling, trusting only scikit-learn and numpy types
— and registered as ``cvn-s43-<CRYPTO>``, then made a challenger by the lifecycle
(``cvn_assets.models``: alias ``challenger-<campaign>``, tags origin campaign, diagnostic, signals;
an audited ``register`` event). Re-registering the same campaign reuses its version.

With a SQLite tracking store, artifacts live in ``mlflow-artifacts/`` next to the database file
(MLflow's own default is ``./mlruns`` under whatever directory the process started in, which a
pod loses); a tracking server decides its artifact root itself.

A SQLite store is created once, safely, before concurrent use (``models.registry.ensure_store``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from cvn_assets.contracts.blob import PredictionBlob
from cvn_assets.gate.report import GateReport, Verdict
from cvn_assets.home import in_dagster_home
from cvn_assets.models.contract import ORIGIN_GATE, challenger_alias, signals_tag
from cvn_assets.models.registry import TRACKING_ENV, model_name, model_versions, sqlite_database
from cvn_assets.models.registry import mlflow_client as _client

if TYPE_CHECKING:
    from cvn_assets.models.lifecycle import Lifecycle

EXPERIMENT = "cvn-s43-gates"


class RegistryError(ConnectionError):
    """MLflow could not be used (unreachable, refused, failed); the message names no credential."""


def _redacted_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """MLflow's errors echo the tracking URI with its user-info and query: re-raise them redacted,
    without the original as cause (Dagster stores and prints an error's whole chain)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (ValueError, RegistryError):
            raise
        except Exception as exc:
            from cvn_assets.redaction import redact_text

            module = type(exc).__module__
            if not module.startswith(("mlflow", "requests", "urllib3", "sqlalchemy")):
                raise
            raise RegistryError(redact_text(f"MLflow registry ({TRACKING_ENV}): {type(exc).__name__}: {exc}")) from None

    return wrapper


def tracking_uri_from_env(environ: Mapping[str, str] | None = None) -> str:
    """MLFLOW_TRACKING_URI, else a SQLite registry in DAGSTER_HOME (the embedded default)."""
    env = os.environ if environ is None else environ
    if env.get(TRACKING_ENV):
        return env[TRACKING_ENV]
    return f"sqlite:///{in_dagster_home(env, 'mlflow.sqlite', what='MLflow tracking store', instead=TRACKING_ENV)}"


def artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a SQLite store; the server's choice otherwise."""
    database = sqlite_database(tracking_uri)
    if database is None:
        return None
    return (database.resolve().parent / "mlflow-artifacts").as_uri()


def _experiment_id(client: Any, tracking_uri: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=artifact_location(tracking_uri))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(EXPERIMENT).experiment_id  # a concurrent gate created it


def _params(report: GateReport) -> dict[str, str]:
    spec = report.spec.model_dump(mode="json")
    return {name: ",".join(map(str, value)) if isinstance(value, list) else str(value) for name, value in spec.items()}


@_redacted_errors
def log_gate_evaluation(report: GateReport, tracking_uri: str) -> str:
    """Log one gate evaluation as an MLflow run; return its run id."""
    from mlflow.entities import Metric, Param, RunTag

    client = _client(tracking_uri)
    run = client.create_run(_experiment_id(client, tracking_uri), run_name=f"gate-{report.campaign_id}", tags={
        "campaign_id": report.campaign_id, "group": report.group, "verdict": report.verdict.value,
        "codes": ",".join(report.codes) or "none", "transport_suspect": str(report.transport_suspect).lower(),
        "expected_blobs": str(len(report.cohort)), "absent_blobs": str(len(report.missing)),
    })
    timestamp = int(report.evaluated_at.timestamp() * 1000)
    metrics = [Metric(f"{crypto}.{name}", float(value), timestamp, 0)
               for crypto, verdict in sorted((report.cryptos or {}).items())
               for name, value in verdict.signals.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)]
    tags = [RunTag(f"{crypto}.{name}", value) for crypto, verdict in sorted((report.cryptos or {}).items())
            for name, value in (("diagnostic", verdict.diagnostic), ("codes", ",".join(verdict.codes)),
                                ("candidate", str(verdict.candidate).lower()))]
    client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, v) for k, v in _params(report).items()], tags=tags)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _trusted_types(model: Any) -> list[str]:
    """skops loads only the types it is told to trust: scikit-learn's and numpy's, nothing else."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    refused = [name for name in untrusted if not name.startswith(("sklearn.", "numpy."))]
    if refused:
        raise ValueError(f"challenger model holds types skops would have to trust blindly: {refused}")
    return untrusted


def challenger_requirements() -> list[str]:
    """The exact packages a challenger needs, from this environment (MLflow would otherwise import
    the model in a subprocess to guess them — slow, and a guess)."""
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in ("mlflow", "scikit-learn", "numpy", "scipy", "skops")]


@_redacted_errors
def register_challengers(
    report: GateReport,
    lifecycle: Lifecycle,
    pooled: Mapping[str, Sequence[PredictionBlob]],
    candles_loader: Callable[[str], pd.DataFrame],
) -> list[dict[str, Any]]:
    """Register each candidate crypto of a PASS as a challenger version; return what was registered.

    ``pooled`` is the campaign's complete cohort (the chosen family's last fold gives the PTE,
    hyperparameters and threshold); ``candles_loader(crypto)`` the campaign's candles of a crypto.
    """
    if report.verdict != Verdict.PASS or not report.cryptos:
        return []
    import mlflow
    import mlflow.sklearn

    from cvn_assets.acquisition.pipeline import train_full_window

    tracking_uri = lifecycle.tracking_uri
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)  # the fluent log_model below has no per-call URI
    mlflow.set_registry_uri(tracking_uri)
    registered = []
    for crypto, verdict in sorted(report.cryptos.items()):
        if not verdict.candidate:
            continue
        name, family = model_name(crypto), str(verdict.signals["family"])
        chosen = [blob for blob in pooled.get(crypto, ()) if blob.meta.family == family]
        if not chosen:
            raise ValueError(f"register_challengers {report.campaign_id}/{crypto}: expected the {family} blobs "
                             f"of the cohort, found families {sorted({b.meta.family for b in pooled.get(crypto, ())})}")
        last = max(chosen, key=lambda blob: blob.meta.fold)
        existing = model_versions(client, name, f"tags.campaign_id='{report.campaign_id}'")
        if existing:  # the challengers step re-ran: make sure what this campaign registered is a challenger
            version = str(max(int(found.version) for found in existing))
        else:
            model = train_full_window(report.spec, crypto, candles_loader(crypto), family, last.meta.pte,
                                      dict(last.meta.hyperparameters))
            with mlflow.start_run(experiment_id=experiment_id, run_name=f"challenger-{report.campaign_id}-{crypto}",
                                  tags={"campaign_id": report.campaign_id, "crypto": crypto}):
                info = mlflow.sklearn.log_model(model, name="model", serialization_format="skops",
                                                skops_trusted_types=_trusted_types(model),
                                                pip_requirements=challenger_requirements(),
                                                registered_model_name=name)
            version = str(info.registered_model_version)
        view = lifecycle.view(crypto)
        if view.stage_of(version).value in ("none", "challenger"):  # never demote a promoted or killed version
            lifecycle.register_challenger(crypto, version, report.campaign_id, origin=ORIGIN_GATE, tags={
                "diagnostic": verdict.diagnostic, "family": family, "signals": signals_tag(verdict.signals),
                "pte": f"sl={last.meta.pte.sl},tp={last.meta.pte.tp},horizon={last.meta.pte.horizon}",
                "threshold": f"{last.meta.threshold:.6f}"})
        alias = challenger_alias(report.campaign_id)
        registered.append({"crypto": crypto, "model": name, "version": version, "family": family,
                           "model_uri": f"models:/{name}@{alias}"})
    return registered
