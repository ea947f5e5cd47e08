"""One incident, one page: a malformed blob fails the gate on every run, and pages once.

Real campaign, real gate runs on a real instance; the alert sensors read them as in production
and post to a real HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cvn_assets.alerts.incidents import Incident, admit, clear
from cvn_assets.alerts.resources import AlertChannelsResource
from cvn_assets.alerts.sensors import build_asset_check_sensor, build_run_failure_sensor
from cvn_assets.runs import OUR_JOBS
from cvn_assets_tests.fixtures.blobs import rewrite_npz
from cvn_assets_tests.fixtures.campaigns import small_spec
from cvn_assets_tests.test_alert_sensors import received, tick


def _bump_schema(meta: np.ndarray) -> np.ndarray:
    document = json.loads(str(meta))
    document["schema_version"] += 1
    return np.array(json.dumps(document))


@pytest.fixture
def channels(http_receiver, monkeypatch) -> dict[str, AlertChannelsResource]:
    monkeypatch.setenv("CVN_ALERT_WEBHOOK_URL", http_receiver.url("/hook/incidents"))
    return {"alert_channels": AlertChannelsResource(backoff_seconds=0.01, timeout_seconds=2.0)}


def test_one_malformed_blob_across_five_gate_runs_is_one_page_then_one_resolve(pass_harness, http_receiver,
                                                                                channels):
    instance = pass_harness.instance
    checks, runs = build_asset_check_sensor(), build_run_failure_sensor(OUR_JOBS)
    check_cursor, _ = tick(checks, instance, None, channels)
    run_cursor, _ = tick(runs, instance, None, channels)
    manifest = pass_harness.launch(small_spec("incident-001", symbols=["SOLUSDC"]))
    key = pass_harness.blob_keys(manifest)[1]
    original = pass_harness.store.get(key)
    pass_harness.store.put(key, rewrite_npz(original, meta=_bump_schema))  # a producer bumped SCHEMA_VERSION

    messages = []
    for _ in range(5):
        assert not pass_harness.gate("incident-001").success  # fail-loud, every time
        check_cursor, message = tick(checks, instance, check_cursor, channels)
        run_cursor, _ = tick(runs, instance, run_cursor, channels)
        messages.append(message)
    pages = received(http_receiver)
    assert len(pages) == 1, messages
    assert pages[0]["kind"] == "check_failure" and pages[0]["severity"] == "P1"
    assert pages[0]["key"] == "incident:check:cohort_intact:incident-001"
    assert "schema_version" in pages[0]["text"] and f"cvn blob inspect {key}" in pages[0]["commands"]
    assert "counted in an open incident" in messages[-1]

    pass_harness.store.put(key, original)  # producer fixed, blob rewritten: the check passes again
    assert pass_harness.gate("incident-001").success
    tick(checks, instance, check_cursor, channels)
    pages = received(http_receiver)
    assert [p["kind"] for p in pages] == ["check_failure", "resolved"]
    assert pages[1]["key"] == pages[0]["key"] and pages[1]["facts"]["occurrences"] == 5
    assert pages[1]["title"].startswith("RESOLVED: cohort_intact passes again")


def test_an_open_incident_repages_only_after_its_repeat_interval():
    from datetime import UTC, datetime

    from cvn_assets.alerts.alert import Alert, Severity

    def failure(at: float) -> Alert:
        return Alert(key="check:x", kind="check_failure", severity=Severity.P1, title="malformed", text="e",
                     facts={"campaign": "defi-abc", "check": "cohort_intact"},
                     created_at=datetime.fromtimestamp(at, UTC))

    incidents: dict[str, Incident] = {}
    sent, incidents = admit(incidents, failure(100.0), ["defi-abc"], now=100.0, repeat_seconds=3600)
    assert sent is not None and sent.facts["occurrences"] == 1
    sent, incidents = admit(incidents, failure(200.0), ["defi-abc"], now=200.0, repeat_seconds=3600)
    assert sent is None  # same incident, within the repeat interval
    sent, incidents = admit(incidents, failure(4000.0), ["defi-abc"], now=4000.0, repeat_seconds=3600)
    assert sent is not None and sent.title.startswith("still failing (3 times since")
    resolved, incidents = clear(incidents, sent.key, "defi-abc", at=3999.0, created_at=datetime.now(UTC))
    assert resolved is None  # a pass older than the last failure resolves nothing
    resolved, incidents = clear(incidents, sent.key, "defi-abc", at=4001.0, created_at=datetime.now(UTC))
    assert resolved is not None and resolved.kind == "resolved" and incidents == {}
