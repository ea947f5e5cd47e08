"""What model operations read from and write to the MLflow registry (DESIGN.md's alias contract).

One registered model per crypto, ``cvn-s43-<CRYPTO>``; the alias ``champion`` is the model in
production; challengers (versions awaiting promotion) carry an alias ``challenger-<campaign>``
(the lifecycle's contract) or the single ``challenger`` alias a gate sets. A version's recipe is
in its tags: ``family``, ``pte`` (``sl=…,tp=…,horizon=…``), ``threshold`` and ``campaign_id`` —
the campaign whose spec says where its market data comes from (``source_campaign_id`` overrides it
for versions a model operation registered). The estimator itself (skops, no pickle) carries the
hyperparameters: ``sklearn.base.clone`` of it is the recipe, unfitted.

Listing pages through MLflow (100 per page by default) so nothing is missed above a page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cvn_assets.contracts.blob import Pte
from cvn_assets.contracts.identifiers import validate_campaign_id, validate_crypto
from cvn_assets.gate.model_registry import (
    _client, _experiment_id, _trusted_types, challenger_requirements, model_name,
)

CHAMPION = "champion"
CHALLENGER = "challenger"
CHALLENGER_PREFIX = "challenger-"
PAGE_SIZE = 100
VERSION_PATTERN = r"[1-9][0-9]{0,8}"
_PTE_TAG = re.compile(r"sl=(?P<sl>[0-9.]+),tp=(?P<tp>[0-9.]+),horizon=(?P<horizon>[0-9]+)")


class RegistryError(ValueError):
    """The registry does not hold what an operation needs (unknown version, no champion, bad tags)."""


def validate_version(value: object) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if re.fullmatch(VERSION_PATTERN, text) is None:
        raise ValueError(f"model version {value!r} is invalid: expected a positive integer (MLflow version number)")
    return text


class RegisteredVersion(BaseModel):
    """One registered version of a crypto's model, with the recipe a model operation needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crypto: str
    name: str
    version: str
    role: str = Field(description="champion, challenger or other (previous, quarantined, …)")
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


def _pages(search: Callable[..., Any], filter_string: str) -> Iterator[Any]:
    token = None
    while True:
        page = search(filter_string=filter_string, max_results=PAGE_SIZE, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _role(aliases: list[str]) -> str:
    if CHAMPION in aliases:
        return CHAMPION
    if any(alias == CHALLENGER or alias.startswith(CHALLENGER_PREFIX) for alias in aliases):
        return CHALLENGER
    return "other"


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


def _to_version(crypto: str, found: Any, aliases_by_version: Mapping[str, list[str]]) -> RegisteredVersion:
    version = str(found.version)
    tags = dict(found.tags or {})
    where = f"{found.name} v{version}"
    campaign_id = validate_campaign_id(_tag(tags, "campaign_id", where))
    screening = tags.get("screening_f1_buy")
    if screening is None and tags.get("signals"):
        screening = json.loads(tags["signals"]).get("screening_f1_buy")
    try:
        threshold = float(_tag(tags, "threshold", where))
        screening_value = None if screening in (None, "") else float(screening)
    except ValueError as exc:
        raise RegistryError(f"{where}: tags 'threshold'/'screening_f1_buy' expected numbers ({exc})") from None
    aliases = sorted(aliases_by_version.get(version, []))
    return RegisteredVersion(
        crypto=crypto, name=found.name, version=version, role=_role(aliases), aliases=aliases,
        created_at=datetime.fromtimestamp(int(found.creation_timestamp) / 1000, tz=UTC),
        campaign_id=campaign_id,
        source_campaign_id=validate_campaign_id(tags.get("source_campaign_id") or campaign_id),
        origin=tags.get("origin") or "discovery",
        family=_tag(tags, "family", where), pte=parse_pte(_tag(tags, "pte", where), where),
        threshold=threshold, screening_f1_buy=screening_value, tags=tags,
    )


def _aliases(client: Any, name: str) -> dict[str, list[str]]:
    by_version: dict[str, list[str]] = {}
    for alias, version in (client.get_registered_model(name).aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    return by_version


def _exists(client: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def registered_versions(tracking_uri: str, crypto: str) -> list[RegisteredVersion]:
    """Every version of the crypto's model, oldest first (an empty list when it has none)."""
    client, name = _client(tracking_uri), model_name(validate_crypto(crypto))
    if not _exists(client, name):
        return []
    aliases = _aliases(client, name)
    found = list(_pages(client.search_model_versions, f"name='{name}'"))
    return sorted((_to_version(crypto, item, aliases) for item in found), key=lambda v: int(v.version))


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
