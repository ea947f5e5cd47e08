"""The one assembly point of the code location (``[tool.dagster] module_name``).

Nothing is read from the environment at import: ``build_defs`` decides the deployment (object
store backend, executor) when Dagster asks for the definitions, and the `cvn` command calls the
same function, so the UI and the command always run the same graph.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from cvn_assets.acquisition.assets import market_candles, s43_predictions
from cvn_assets.alerts.defs import alert_defs
from cvn_assets.alerts.resources import AlertChannelsResource
from cvn_assets.campaigns.jobs import launch_discovery_job, s43_acquire_job, s43_gate_job
from cvn_assets.contracts.campaign import load_universes
from cvn_assets.campaigns.sensors import campaign_sensor
from cvn_assets.diagnostics.resources import URL_ENV as DIAGNOSTICS_URL_ENV
from cvn_assets.diagnostics.resources import DiagnosticsResource, diagnostics_url_from_env
from cvn_assets.gate.assets import challengers, cohort_intact, s43_gate
from cvn_assets.gate.model_registry import TRACKING_ENV, tracking_uri_from_env
from cvn_assets.gate.resources import ModelRegistryResource
from cvn_assets.models.defs import model_defs
from cvn_assets.modelops.defs import modelops_defs
from cvn_assets.state.defs import state_defs
from cvn_assets.storage.candles_io_manager import CandlesIOManager
from cvn_assets.storage.io_manager import S43PredictionIOManager
from cvn_assets.storage.resources import ObjectStoreResource
from cvn_assets.storage.settings import StorageSettings

EXECUTOR_ENV = "CVN_EXECUTOR"


def _executor(environ: Mapping[str, str]) -> dg.ExecutorDefinition:
    """In-process locally (a step per process would cost more than it runs); k8s in a cluster."""
    choice = environ.get(EXECUTOR_ENV, "in_process")
    if choice == "in_process":
        return dg.in_process_executor
    if choice == "multiprocess":
        return dg.multiprocess_executor
    if choice == "k8s":
        from cvn_assets.operations.k8s import k8s_executor

        return k8s_executor()
    raise ValueError(f"{EXECUTOR_ENV}={choice!r} is invalid: expected in_process, multiprocess or k8s")


def _from_env(environ: Mapping[str, str], name: str, default: str) -> str | dg.EnvVar:
    """A value that may hold a password stays an EnvVar: the UI shows the variable, not the secret."""
    return dg.EnvVar(name) if environ.get(name) else default


def build_resources(environ: Mapping[str, str]) -> dict[str, object]:
    object_store = ObjectStoreResource.from_settings(StorageSettings.from_env(dict(environ)))
    return {
        "object_store": object_store,
        "s43_io_manager": S43PredictionIOManager(object_store=object_store),
        "candles_io_manager": CandlesIOManager(object_store=object_store),
        "diagnostics": DiagnosticsResource(
            url=_from_env(environ, DIAGNOSTICS_URL_ENV, diagnostics_url_from_env(environ))),
        "model_registry": ModelRegistryResource(
            tracking_uri=_from_env(environ, TRACKING_ENV, tracking_uri_from_env(environ))),
        "alert_channels": AlertChannelsResource(),  # holds variable names only, never the URLs
    }


def build_defs(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """Campaigns (acquisition, gate, launch) + operating state + alerts + model lifecycle and operations, on one set of resources."""
    environ = os.environ if environ is None else environ
    campaigns = dg.Definitions(
        assets=[market_candles, s43_predictions, s43_gate, challengers],
        asset_checks=[cohort_intact],
        jobs=[s43_acquire_job, s43_gate_job, launch_discovery_job(sorted(load_universes()))],
        sensors=[campaign_sensor],
        resources=build_resources(environ),
        executor=_executor(environ),
    )
    return dg.Definitions.merge(campaigns, state_defs(), alert_defs(), model_defs(), modelops_defs())


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()
