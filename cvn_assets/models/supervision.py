"""The lifecycle golden signals (manual §2): ``model_freshness`` and ``challenger_count``.

``model_freshness`` is the age of the crypto's champion — the model in production. Only when no
champion was ever promoted for that crypto does it fall back to the newest challenger (a fresh
deployment); a crypto whose champion was killed has no freshness until a promotion or rollback
(unknown, with the reason: the state cannot be GREEN on a crypto with no model in production).
``challenger_count`` counts versions awaiting promotion over every registered model (all pages).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cvn_assets.models import registry
from cvn_assets.models.contract import Stage, RegistryView


def freshness(view: RegistryView, now: datetime) -> tuple[float | None, str]:
    """(age in days or None, what it is the age of — or why there is none)."""
    def age(version: str) -> float:
        return max(now.timestamp() * 1000 - view.versions[version].created_ms, 0) / 86_400_000

    if view.champion is not None:
        return age(view.champion), f"champion v{view.champion} of {view.name}"
    if view.ever_promoted():
        killed = view.quarantined
        return None, (f"{view.name} has no champion (quarantined: "
                      f"{', '.join('v' + v for v in killed) or 'none'}) — promote or roll back")
    if view.challengers:
        newest = max(view.challengers, key=lambda v: view.versions[v].created_ms)
        return age(newest), f"no champion ever promoted: newest challenger v{newest} of {view.name}"
    return None, f"no champion and no challenger registered for {view.crypto} ({view.name})"


def challenger_total(client: Any) -> int:
    """Versions awaiting promotion (stage challenger) over every cvn-s43 registered model."""
    return sum(len(registry.read_view(client, crypto).in_stage(Stage.CHALLENGER))
               for crypto in registry.our_cryptos(client))
