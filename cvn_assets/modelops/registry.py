"""What model operations read from and write to the MLflow registry (the lifecycle's contract).

One registered model per crypto, ``cvn-s43-<CRYPTO>``; each version's role is its lifecycle stage
(``cvn_assets.models``: ``champion`` the model in production, ``challenger`` a version awaiting
promotion, else previous, quarantined, superseded, decommissioned), read through the lifecycle's
own registry view so both sides agree on it. A version's recipe is
in its tags: ``family``, ``pte`` (``sl=…,tp=…,horizon=…``), ``threshold`` and ``campaign_id`` —
the campaign whose spec says where its market data comes from (``source_campaign_id`` overrides it
for versions a model operation registered). The estimator itself (skops, no pickle) carries the
hyperparameters: ``sklearn.base.clone`` of it is the recipe, unfitted.

Listing pages through MLflow (100 per page by default; ``models.registry``) so nothing is missed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.contracts.blob import Pte
from cvn_assets.contracts.identifiers import validate_campaign_id, validate_crypto
from cvn_assets.gate.model_registry import (
    _client, _experiment_id, _trusted_types, challenger_requirements, model_name,
)
from cvn_assets.models.contract import CHAMPION, RegistryView, Stage, validate_version
from cvn_assets.models.registry import read_view

CHALLENGER = Stage.CHALLENGER.value
_PTE_TAG = re.compile(r"sl=(?P<sl>[0-9.]+),tp=(?P<tp>[0-9.]+),horizon=(?P<horizon>[0-9]+)")


class RegistryError(ValueError):
    """The registry does not hold what an operation needs (unknown version, no champion, bad tags)."""


class RegisteredVersion(BaseModel):
    """One registered version of a crypto's model, with the recipe a model operation needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    name: str
    version: str
    role: str = Field(description="its lifecycle stage: champion, challenger, previous, quarantined, superseded, …")
    aliases: list[str]
    created_at: datetime
    campaign_id: str = Field(description="what registered it (a campaign, or a model operation's run id)")
    source_campaign_id: str = Field(description="the campaign whose spec gives the market data source")
    origin: str = Field(description="discovery (a gate PASS) or a model operation (retrain, meta_training)")
    family: str
    pte: Pte
    threshold: float
    screening_f1_buy: float | None
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _tag(tags: Mapping[str, str], key: str, where: str) -> str:
    if not tags.get(key):
        raise RegistryError(f"{where}: expected the version tag {key!r} (the recipe a model operation needs), "
                            f"found tags {sorted(tags)}")
    return tags[key]


def parse_pte(text: str, where: str) -> Pte:
    match = _PTE_TAG.fullmatch(text)
    if match is None:
        raise RegistryError(f"{where}: tag 'pte' expected 'sl=<ATR>,tp=<ATR>,horizon=<bars>', found {text!r}")
    return Pte(sl=float(match["sl"]), tp=float(match["tp"]), horizon=int(match["horizon"]))


def pte_tag(pte: Pte) -> str:
    return f"sl={pte.sl},tp={pte.tp},horizon={pte.horizon}"


def _to_version(view: RegistryView, version: str) -> RegisteredVersion:
    found = view.versions[version]
    tags = dict(found.tags)
    where = f"{view.name} v{version}"
    campaign_id = validate_campaign_id(_tag(tags, "campaign_id", where))
    screening = tags.get("screening_f1_buy")
    if screening is None and tags.get("signals"):
        screening = json.loads(tags["signals"]).get("screening_f1_buy")
    try:
        threshold = float(_tag(tags, "threshold", where))
        screening_value = None if screening in (None, "") else float(screening)
    except ValueError as exc:
        raise RegistryError(f"{where}: tags 'threshold'/'screening_f1_buy' expected numbers ({exc})") from None
    return RegisteredVersion(
        crypto=view.crypto, name=view.name, version=version, role=view.stage_of(version).value,
        aliases=view.aliases_of(version), created_at=datetime.fromtimestamp(found.created_ms / 1000, tz=UTC),
        campaign_id=campaign_id,
        source_campaign_id=validate_campaign_id(tags.get("source_campaign_id") or campaign_id),
        origin=tags.get("origin") or "discovery",
        family=_tag(tags, "family", where), pte=parse_pte(_tag(tags, "pte", where), where),
        threshold=threshold, screening_f1_buy=screening_value, tags=tags,
    )


def registered_versions(tracking_uri: str, crypto: str) -> list[RegisteredVersion]:
    """Every version of the crypto's model, oldest first (an empty list when it has none)."""
    view = read_view(_client(tracking_uri), validate_crypto(crypto))
    return [_to_version(view, version) for version in sorted(view.versions, key=int)]


def champion(tracking_uri: str, crypto: str) -> RegisteredVersion | None:
    return next((v for v in registered_versions(tracking_uri, crypto) if v.role == CHAMPION), None)


def operated_versions(tracking_uri: str, crypto: str, version: str | None = None) -> list[RegisteredVersion]:
    """``version`` alone, or the champion and every challenger (the default of a backtest)."""
    versions = registered_versions(tracking_uri, crypto)
    if version is not None:
        wanted = validate_version(version)
        chosen = [v for v in versions if v.version == wanted]
        if not chosen:
            raise RegistryError(f"{model_name(crypto)} has no version {wanted} "
                                f"(known: {', '.join(v.version for v in versions) or 'none'})")
        return chosen
    chosen = [v for v in versions if v.role in (CHAMPION, CHALLENGER)]
    if not chosen:
        raise RegistryError(f"{model_name(crypto)} has no champion and no challenger "
                            f"(versions: {', '.join(f'v{v.version}={v.role}' for v in versions) or 'none'}); "
                            "a discovery PASS registers challengers")
    return chosen


def require_champion(tracking_uri: str, crypto: str) -> RegisteredVersion:
    found = champion(tracking_uri, crypto)
    if found is None:
        raise RegistryError(f"{model_name(crypto)} has no champion (alias {CHAMPION!r}): promote a challenger first "
                            "(`cvn model promote`)")
    return found


def load_estimator(tracking_uri: str, version: RegisteredVersion) -> Any:
    """The fitted scikit-learn pipeline of a version (skops: loads without unpickling)."""
    import mlflow.sklearn

    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.sklearn.load_model(version.uri)


def register_version(tracking_uri: str, registered_name: str, model: Any, run_name: str,
                     tags: Mapping[str, str], alias: str | None) -> str:
    """Log ``model`` with skops (no pickle), register it under ``registered_name``, tag it, set ``alias``.

    ``alias`` None: the caller gives the version its role (a retrained challenger is made one by
    ``Lifecycle.register_challenger``, audited)."""
    import mlflow
    import mlflow.sklearn

    client = _client(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)  # the fluent log_model has no per-call URI
    mlflow.set_registry_uri(tracking_uri)
    with mlflow.start_run(experiment_id=_experiment_id(client, tracking_uri), run_name=run_name, tags=dict(tags)):
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="skops",
                                        skops_trusted_types=_trusted_types(model),
                                        pip_requirements=challenger_requirements(),
                                        registered_model_name=registered_name)
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(registered_name, version, key, value)
    if alias is not None:
        client.set_registered_model_alias(registered_name, alias, version)
    return version


def set_version_tags(tracking_uri: str, version: RegisteredVersion, tags: Mapping[str, str]) -> None:
    client = _client(tracking_uri)
    for key, value in tags.items():
        client.set_model_version_tag(version.name, version.version, key, value)
