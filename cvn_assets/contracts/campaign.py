"""The campaign: what an operator launches (manual §6.2) and the cohort it promises.

``CampaignSpec`` is validated once, at the boundary (CLI, Dagster launchpad), with messages that
name the field and the allowed values. ``CampaignManifest`` is the expected cohort: it is written
to storage before any blob, and the gate pools exactly what it lists.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from cvn_assets.contracts.identifiers import CampaignId, Crypto, Family
from cvn_assets.contracts.keys import BlobRef
from cvn_assets.contracts.timeframes import DEFAULT_TIMEFRAME, Timeframe, bar_minutes, bars_per_day, hours_to_bars

# The reference timeframe (5-minute bars): the walk-forward floors of folds.py are counted in its bars.
BAR_MINUTES = bar_minutes(DEFAULT_TIMEFRAME)
BARS_PER_HOUR = 60 // BAR_MINUTES
BARS_PER_DAY = bars_per_day(DEFAULT_TIMEFRAME)
UNIVERSES_ENV = "CVN_UNIVERSES_FILE"
DEFAULT_UNIVERSES_FILE = Path(__file__).with_name("universes.yaml")
MANIFEST_SCHEMA_VERSION = 1
# Validation context of a spec re-read from a stored manifest: it was fully validated when the
# campaign was registered, and checks that depend on this machine (the universes file, data_dir,
# the family registry) must not reject it on another pod. Identifiers are always re-checked.
STORED = {"stored": True}


def _is_stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def producer_version() -> str:
    from importlib.metadata import version

    return f"cvn_assets {version('cvn_assets')}"


class Universe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    core: bool = False
    symbols: list[Crypto] = Field(min_length=1)


def universes_file() -> Path:
    return Path(os.environ.get(UNIVERSES_ENV) or DEFAULT_UNIVERSES_FILE)


def load_universes(path: Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Universe]:
    """Crypto groups by name (manual §11), from their source of truth (``universes_source``)."""
    return universes_source(path, environ)[0]


def universes_source(path: Path | None = None,
                     environ: Mapping[str, str] | None = None) -> tuple[dict[str, Universe], str]:
    """(groups, where they come from): ``path`` when given; else the table ``cvntrade_universes`` when the
    diagnostics database holds it with rows; else ``$CVN_UNIVERSES_FILE`` or the embedded YAML default."""
    if path is None:
        from cvn_assets.diagnostics.universes import table_universes

        table = table_universes(environ)
        if table is not None:
            return table
    path = path or universes_file()
    return load_universes_file(path), f"file {path}"


def load_universes_file(path: Path) -> dict[str, Universe]:
    """Crypto groups of a universes YAML file (``groups: {name: {core: bool, symbols: [...]}}``)."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"universes file {path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"universes file {path}: invalid YAML ({exc})") from None
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, dict) or not groups:
        raise ValueError(f"universes file {path}: expected a mapping 'groups: {{name: {{symbols: [...]}}}}'")
    return {name: Universe.model_validate(body) for name, body in groups.items()}


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _parse_horizon(value: Any) -> Any:
    """``H<n>`` means n hours of bars (manual §6.2); plain integers are hours too."""
    if isinstance(value, str):
        text = value.strip()
        if not text.upper().startswith("H") or not text[1:].isdigit():
            raise ValueError(f"horizon {value!r} is invalid: expected H<n> with n hours, e.g. H1,H2,H4")
        return int(text[1:])
    return value


Hours = Annotated[int, BeforeValidator(_parse_horizon), Field(ge=1, le=48)]


class CampaignSpec(BaseModel):
    """A discovery campaign: universe, walk-forward folds, model families and the PTE grid.

    Field names follow the manual's launch parameters (§6.2); lists also accept the
    comma-separated strings of the Airflow launch (``"0.8,1.0,1.2"``, ``"H1,H2"``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    campaign_id: CampaignId
    group: str = Field(description="crypto group (manual §11: cvntrade_universes or the universes file), e.g. defi")
    symbols: Annotated[list[Crypto], BeforeValidator(_split_csv)] = Field(
        default_factory=list, description="subset of the group's symbols; empty = the whole group"
    )
    folds: int = Field(default=3, ge=2, le=20, description="walk-forward folds (>= 2)")
    families: Annotated[list[Family], BeforeValidator(_split_csv)] = Field(
        default_factory=lambda: ["naive", "logreg", "hgb"], min_length=1, description="model families"
    )
    timeframe: Timeframe = Field(
        default=DEFAULT_TIMEFRAME, description="bar length of the candles: 1m, 5m, 15m, 30m, 1h or 4h"
    )
    horizons: Annotated[list[Hours], BeforeValidator(_split_csv)] = Field(
        default_factory=lambda: [1, 2, 4], min_length=1, description="PTE horizons in hours (H1 = 12 bars of 5m, 1 bar of 1h)"
    )
    sl_range: Annotated[list[Annotated[float, Field(gt=0, le=20)]], BeforeValidator(_split_csv)] = Field(
        default_factory=lambda: [1.0, 1.5], min_length=1, description="stop-loss ATR multiples to screen"
    )
    tp_range: Annotated[list[Annotated[float, Field(gt=0, le=20)]], BeforeValidator(_split_csv)] = Field(
        default_factory=lambda: [1.5, 2.0], min_length=1, description="take-profit ATR multiples to screen"
    )
    hpo_trials: int = Field(default=0, ge=0, le=500, description="random-search trials per fold; 0 = family defaults")
    backtest_days: int = Field(default=60, ge=1, le=3650, description="days of bars in the window")
    data_source: Literal["synthetic", "files"] = "synthetic"
    data_dir: Path | None = Field(
        default=None,
        validate_default=True,
        description="directory of OHLCV files, one per symbol (data_source=files)",
    )
    seed: int = Field(default=7, ge=0, description="campaign seed: synthetic data, HPO and models")
    fees_bps: float = Field(default=10.0, ge=0, le=500, description="round-trip fees in basis points")
    planted_signal: float = Field(
        default=0.0, ge=0, le=1, description="synthetic only: strength of a known predictive signal (tests)"
    )

    @field_validator("symbols", "families", "horizons", "sl_range", "tp_range")
    @classmethod
    def _unique(cls, values: list[Any], info: Any) -> list[Any]:
        if len(set(values)) != len(values):
            raise ValueError(f"{info.field_name} has duplicates: {values}")
        return values

    @field_validator("group")
    @classmethod
    def _known_group(cls, group: str, info: ValidationInfo) -> str:
        if _is_stored(info):
            return group
        universes, where = universes_source()
        if group not in universes:
            raise ValueError(f"unknown group {group!r}: expected one of {sorted(universes)} ({where})")
        return group

    @field_validator("families")
    @classmethod
    def _known_families(cls, families: list[str], info: ValidationInfo) -> list[str]:
        if _is_stored(info):
            return families
        from cvn_assets.acquisition.families import family_names

        unknown = [family for family in families if family not in family_names()]
        if unknown:
            raise ValueError(f"unknown families {unknown}: expected any of {sorted(family_names())}")
        return families

    @field_validator("horizons")
    @classmethod
    def _whole_bars(cls, horizons: list[int], info: ValidationInfo) -> list[int]:
        timeframe = info.data.get("timeframe")
        if timeframe is not None:  # a bad timeframe is reported on its own field
            for hours in horizons:
                hours_to_bars(hours, timeframe)
        return horizons

    @field_validator("backtest_days")
    @classmethod
    def _long_enough(cls, backtest_days: int, info: ValidationInfo) -> int:
        folds, horizons, timeframe = info.data.get("folds"), info.data.get("horizons"), info.data.get("timeframe")
        if _is_stored(info) or folds is None or not horizons or timeframe is None:
            return backtest_days  # folds/horizons/timeframe errors: reported on their own fields
        from cvn_assets.acquisition.folds import minimum_days

        needed = minimum_days(folds, hours_to_bars(max(horizons), timeframe), timeframe)
        if backtest_days < needed:
            raise ValueError(
                f"backtest_days {backtest_days} is too short for {folds} folds of {timeframe} bars with horizons "
                f"up to H{max(horizons)}: expected at least {needed}"
            )
        return backtest_days

    @field_validator("data_dir")
    @classmethod
    def _data_dir_matches_source(cls, data_dir: Path | None, info: ValidationInfo) -> Path | None:
        if _is_stored(info):
            return data_dir
        source = info.data.get("data_source")
        if source == "files":
            if data_dir is None:
                raise ValueError("data_dir is required when data_source is 'files'")
            if not data_dir.is_dir():
                raise ValueError(f"data_dir {str(data_dir)!r} is not a directory")
        elif data_dir is not None:
            raise ValueError("data_dir is only allowed with data_source 'files'")
        return data_dir

    @field_validator("planted_signal")
    @classmethod
    def _planted_only_in_synthetic(cls, planted_signal: float, info: ValidationInfo) -> float:
        # A planted signal is mixed into generated candles; real files carry whatever signal they have.
        if not _is_stored(info) and planted_signal and info.data.get("data_source") == "files":
            raise ValueError(f"planted_signal {planted_signal} is only for data_source 'synthetic': "
                             "files hold real candles, no signal is planted in them")
        return planted_signal

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> CampaignSpec:
        if _is_stored(info):
            return self
        group_symbols = load_universes()[self.group].symbols
        outside = [symbol for symbol in self.symbols if symbol not in group_symbols]
        # Files may hold any market; synthetic symbols must come from the group.
        if outside and self.data_source == "synthetic":
            raise ValueError(f"symbols {outside} are not in group {self.group!r}: expected any of {group_symbols}")
        return self

    @property
    def cryptos(self) -> list[str]:
        """The campaign's universe: the chosen symbols, else the whole group."""
        return list(self.symbols) or list(load_universes()[self.group].symbols)

    @property
    def horizon_bars(self) -> list[int]:
        """The horizons in bars of the campaign's timeframe."""
        return [hours_to_bars(hours, self.timeframe) for hours in self.horizons]

    def expected_cohort(self) -> list[BlobRef]:
        return [
            BlobRef(campaign_id=self.campaign_id, crypto=crypto, fold=fold, family=family)
            for crypto in self.cryptos
            for family in self.families
            for fold in range(self.folds)
        ]


def new_campaign_id(group: str, now: datetime | None = None) -> str:
    """A readable, sortable id: ``<group>-<UTC timestamp>``, within the campaign_id pattern."""
    now = now or datetime.now(UTC)
    return f"{group.lower().replace('_', '-')}-{now:%Y%m%d-%H%M%S}"[:63]


class CampaignManifest(BaseModel):
    """The expected cohort of a campaign, written before any blob and read by the gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest_version: int = MANIFEST_SCHEMA_VERSION
    spec: CampaignSpec
    expected: list[BlobRef]
    created_at: datetime
    producer_version: str

    @classmethod
    def for_spec(cls, spec: CampaignSpec) -> CampaignManifest:
        return cls(
            spec=spec,
            expected=spec.expected_cohort(),
            created_at=datetime.now(UTC),
            producer_version=producer_version(),
        )

    @property
    def campaign_id(self) -> str:
        return self.spec.campaign_id
