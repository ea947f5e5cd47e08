"""Jobs of a campaign: acquisition per (campaign, crypto), the gate per campaign, and the launch.

``launch_discovery`` is the manual's §6.2 launch from the Dagster launchpad: the launchpad checks
the parameters' types and the group (an enum of the known groups); the run validates the rest,
reads and checks the candles of a ``files`` campaign (pre-flight), registers the campaign
(manifest + partitions) and tags its run with the campaign id;
``campaign_sensor`` then requests the acquisition runs and, once they have all finished, the gate.
"""

import enum
from collections.abc import Sequence
from typing import Literal

import dagster as dg
from pydantic import Field, ValidationError

from cvn_assets.acquisition.assets import MARKET_CANDLES, S43_PREDICTIONS
from cvn_assets.campaigns.preflight import PreflightFailed, preflight_candles
from cvn_assets.campaigns.registration import CampaignConflict, register_campaign
from cvn_assets.contracts.campaign import CampaignSpec, new_campaign_id
from cvn_assets.contracts.timeframes import DEFAULT_TIMEFRAME, Timeframe
from cvn_assets.gate.assets import S43_GATE
from cvn_assets.partitions import acquisition_partitions, campaign_partitions
from cvn_assets.runs import ACQUIRE_JOB, CAMPAIGN_TAG, GATE_JOB, LAUNCH_JOB, STAGE_TAG
from cvn_assets.storage.resources import ObjectStoreResource


# The executor is chosen per deployment in definitions.py (in-process locally, k8s in a cluster).
s43_acquire_job = dg.define_asset_job(
    ACQUIRE_JOB, selection=dg.AssetSelection.assets(MARKET_CANDLES, S43_PREDICTIONS),
    partitions_def=acquisition_partitions,
    description="One acquisition step (campaign × crypto): candles, walk-forward models, blobs.",
)

s43_gate_job = dg.define_asset_job(
    GATE_JOB, selection=dg.AssetSelection.assets(S43_GATE).downstream(),
    partitions_def=campaign_partitions,
    description="The gate of one campaign: pools the expected cohort and gives the verdict.",
)


class LaunchDiscoveryConfig(dg.Config):
    """The manual's §6.2 launch parameters, as `cvn campaign launch` takes them (comma-separated lists
    as in the Airflow launch). ``group`` is typed by ``launch_discovery_job``: an enum of the known
    groups, so that a mistyped group is refused by the launchpad's config validation, before a run."""

    group: str = Field(description="crypto group: btc-core, defi, … (cvn universes show)")
    symbols: str = Field(default="", description="comma-separated subset of the group; empty = whole group")
    timeframe: Timeframe = Field(default=DEFAULT_TIMEFRAME, description="bar length: 1m, 5m, 15m, 30m, 1h, 4h")
    horizons: str = Field(default="H1,H2,H4", description="horizons H<n> (n hours, as bars of the timeframe)")
    sl_range: str = Field(default="1.0,1.5", description="stop-loss ATR multiples")
    tp_range: str = Field(default="1.5,2.0", description="take-profit ATR multiples")
    hpo_trials: int = Field(default=0, description="random-search trials per fold (0 = family defaults)")
    backtest_days: int = Field(default=60, description="days of bars in the window")
    folds: int = Field(default=3, description="walk-forward folds (>= 2)")
    families: str = Field(default="naive,logreg,hgb", description="model families")
    data_source: Literal["synthetic", "files"] = Field(default="synthetic", description="synthetic | files")
    data_dir: str = Field(default="", description="directory of OHLCV files (data_source=files), "
                                                  "as the code location's pods see it")
    campaign_id: str = Field(default="", description="empty = <group>-<UTC timestamp>")
    seed: int = Field(default=7, description="campaign seed")
    planted_signal: float = Field(default=0.0, description="synthetic only: strength 0..1 of a known "
                                                           "predictive signal (demos, tests)")

    def to_spec(self) -> CampaignSpec:
        values = self.model_dump()
        group = values["group"]
        values["group"] = group = group.value if isinstance(group, enum.Enum) else group
        values["campaign_id"] = values["campaign_id"] or new_campaign_id(group)
        values["data_dir"] = values["data_dir"] or None
        values["symbols"] = values["symbols"] or []
        return CampaignSpec(**values)


def launch_config(groups: Sequence[str]) -> type[LaunchDiscoveryConfig]:
    """The launch config with ``group`` restricted to ``groups`` (a config enum the launchpad checks)."""
    if not groups:
        raise ValueError("launch_discovery: expected at least one crypto group (cvn universes show), found none")
    names = enum.Enum("CryptoGroup", {name: name for name in groups}, type=str)  # type: ignore[misc]

    class LaunchDiscoveryGroupConfig(LaunchDiscoveryConfig):
        group: names = Field(description=f"crypto group, one of {', '.join(groups)} (cvn universes show)")  # type: ignore[valid-type]

    LaunchDiscoveryGroupConfig.__name__ = LaunchDiscoveryConfig.__name__
    return LaunchDiscoveryGroupConfig


def launch_discovery_job(groups: Sequence[str]) -> dg.JobDefinition:
    """``launch_discovery`` for the groups known when the definitions are built (reload after `cvn universes sync`)."""
    config_class = launch_config(groups)

    @dg.op(name="register_campaign", description="Check the candles, then register the campaign.",
           out=dg.Out(dg.Nothing))  # the campaign id travels as a run tag: no output to store (or pickle)
    def register_campaign_op(context: dg.OpExecutionContext, config: config_class,  # type: ignore[valid-type]
                             object_store: ObjectStoreResource) -> None:
        try:
            spec = config.to_spec()
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors())
            raise dg.Failure(description=f"invalid launch parameters — {fields}") from None
        checked = preflight_candles(spec)
        for warning in checked.warnings:
            context.log.warning(warning)
        try:
            checked.raise_for_problems()
        except PreflightFailed as exc:
            raise dg.Failure(description=str(exc)) from None
        from cvn_assets.settings import SettingsError, load_settings, preflight

        try:
            preflight(load_settings())  # every setting and backend checked before the manifest is written
            manifest = register_campaign(context.instance, object_store.store(), object_store.prefix, spec)
        except (CampaignConflict, SettingsError) as exc:
            raise dg.Failure(description=str(exc)) from None
        context.instance.add_run_tags(context.run_id, {CAMPAIGN_TAG: spec.campaign_id, STAGE_TAG: "launch"})
        context.log.info(f"registered campaign {spec.campaign_id}: {len(manifest.expected)} expected blobs "
                         f"over {', '.join(spec.cryptos)}; campaign_sensor launches the acquisitions")

    @dg.job(name=LAUNCH_JOB, description="Launch a discovery campaign (manual §6.2) from the launchpad.")
    def launch_discovery() -> None:
        register_campaign_op()

    return launch_discovery
