"""Concurrent evaluators of the global state send each notification once: the claim is atomic.

Three `cvn state --notify` started together (two real processes, a loopback webhook receiver) both
decide the same *firing* notification; before the fix each sent it. The diagnostics database
(SQLite file, then PostgreSQL) holds the claim: one insert wins, one post is made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cvn_assets.diagnostics.store import DiagnosticsStore

CVN = str(Path(sys.executable).with_name("cvn"))


def _fresh_home(root: Path) -> Path:
    home = root / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def _notify_together(env: dict[str, str], count: int = 2) -> list[subprocess.CompletedProcess]:
    processes = [subprocess.Popen([CVN, "state", "--notify", "--json"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for _ in range(count)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_notify_processes_at_once_send_the_transition_exactly_once(database, tmp_path, http_receiver, request):
    url = (request.getfixturevalue("postgres_url") if database == "postgresql"
           else f"sqlite:///{tmp_path / 'diagnostics.sqlite'}")
    env = {**os.environ, "DAGSTER_HOME": str(_fresh_home(tmp_path)), "CVN_DIAGNOSTICS_URL": url,
           "CVN_ALERT_WEBHOOK_URL": http_receiver.url("/hook")}
    DiagnosticsStore(url).migrate()  # the database exists, as in a deployment; the race is the claim
    # …and so does the Dagster instance: a read-only check creates its storage (Dagster's own SQLite
    # migration is not safe for two processes on a fresh DAGSTER_HOME) and sends nothing.
    first = subprocess.run([CVN, "state"], capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert http_receiver.accepted() == []

    results = _notify_together(env, count=3)
    for result in results:
        assert result.returncode == 0, result.stderr
    assert len(http_receiver.accepted()) == 1, [r.json()["title"] for r in http_receiver.accepted()]
    notifications = [json.loads(result.stdout)["notification"] for result in results]
    assert sorted(str(n["kind"]) for n in notifications) == ["None", "None", "firing"]

    again = subprocess.run([CVN, "state", "--notify", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(http_receiver.accepted()) == 1, "the state was told once; a later check must not re-send it"


def test_a_claim_is_won_by_exactly_one_caller(tmp_path):
    store = DiagnosticsStore(f"sqlite:///{tmp_path / 'claims.sqlite'}")
    store.migrate()
    first_at, second_at = datetime(2026, 12, 5, 6, 0, tzinfo=UTC), datetime(2026, 12, 5, 6, 1, tzinfo=UTC)
    assert store.claim_alert("k" * 64, "firing", "RED", "a", first_at) == (True, first_at)
    assert store.claim_alert("k" * 64, "firing", "RED", "b", second_at) == (False, first_at)
    assert store.claim_alert("j" * 64, "firing", "RED", "b", second_at) == (True, second_at)
