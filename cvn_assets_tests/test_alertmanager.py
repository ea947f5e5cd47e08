"""Our alerts through a real Prometheus Alertmanager: received once, resolved, silenced, forwarded.

The Alertmanager process is Debian's binary on loopback (fixtures/alertmanager.py); it forwards
to a loopback webhook receiver, the way it would forward to a team's pager.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from cvn_assets.alerts.alert import Alert, Severity
from cvn_assets.alerts.channels import RetryPolicy, build_channels

FAST = RetryPolicy(max_attempts=2, backoff_seconds=0.05, timeout_seconds=5.0)
LOGGER = logging.getLogger("cvn.test.alertmanager")


def state_alert(kind: str, state: str, previous: str, severity: Severity) -> Alert:
    return Alert(key="global_state", kind=kind, severity=severity, title=f"global state {state}",
                 text="rules fired:\n- [ORANGE] pipeline success rate 60 % < 70 %", scenario="manual §0",
                 facts={"state": state, "previous_state": previous, "kind": kind, "rules": "success_rate"},
                 created_at=datetime.now(UTC))


def check_alert(campaign: str) -> Alert:
    return Alert(key=f"incident:check:cohort_intact:{campaign}", kind="check_failure", severity=Severity.P1,
                 title=f"malformed prediction blob — campaign {campaign}", text="s43 npz schema mismatch",
                 facts={"campaign": campaign, "check": "cohort_intact", "run_id": "abcdef12"},
                 created_at=datetime.now(UTC))


def ours(manager, alertname: str) -> list[dict]:
    return [a for a in manager.alerts() if a["labels"].get("alertname") == alertname]


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def forwarded(receiver, alertname: str, status: str) -> list[dict]:
    found = []
    for request in receiver.accepted("/alertmanager"):
        for alert in request.json()["alerts"]:
            if alert["labels"].get("alertname") == alertname and alert["status"] == status:
                found.append(alert)
    return found


def test_a_firing_alert_appears_once_and_a_resolve_ends_it(alertmanager, http_receiver):
    dispatcher = build_channels({"CVN_ALERTMANAGER_URL": alertmanager.url}, LOGGER, retry=FAST)
    firing = state_alert("firing", "ORANGE", "GREEN", Severity.P1)
    assert dispatcher.deliver(firing).delivered == ["log", "alertmanager"]
    assert dispatcher.deliver(firing.model_copy(update={"kind": "repeat"})).delivered == ["log", "alertmanager"]

    active = wait_for(lambda: ours(alertmanager, "CvnGlobalState"))
    assert len(active) == 1  # the repeat is the same alert, deduplicated by its labels
    labels = active[0]["labels"]
    assert labels["severity"] == "P1" and labels["state"] == "ORANGE" and labels["source"] == "cvn_assets"
    assert active[0]["status"]["state"] == "active"
    assert active[0]["annotations"]["summary"] == "global state ORANGE"
    assert datetime.fromisoformat(active[0]["endsAt"].replace("Z", "+00:00")) > datetime.now(UTC) + timedelta(hours=24)
    assert len(wait_for(lambda: forwarded(http_receiver, "CvnGlobalState", "firing"))) >= 1

    resolved = state_alert("resolved", "GREEN", "ORANGE", Severity.P1)
    assert dispatcher.deliver(resolved).delivered == ["log", "alertmanager"]
    assert wait_for(lambda: not ours(alertmanager, "CvnGlobalState"))
    assert forwarded(http_receiver, "CvnGlobalState", "resolved") or \
        wait_for(lambda: forwarded(http_receiver, "CvnGlobalState", "resolved"))


def test_a_change_of_state_resolves_the_previous_states_alert(alertmanager, http_receiver):
    dispatcher = build_channels({"CVN_ALERTMANAGER_URL": alertmanager.url}, LOGGER, retry=FAST)
    dispatcher.deliver(state_alert("firing", "YELLOW", "GREEN", Severity.P2))
    assert wait_for(lambda: [a for a in ours(alertmanager, "CvnGlobalState") if a["labels"]["state"] == "YELLOW"])
    dispatcher.deliver(state_alert("changed", "RED", "YELLOW", Severity.P0))
    states = wait_for(lambda: [a["labels"]["state"] for a in ours(alertmanager, "CvnGlobalState")] == ["RED"])
    assert states, [a["labels"] for a in ours(alertmanager, "CvnGlobalState")]


def test_a_silence_created_in_alertmanager_suppresses_delivery_to_its_receiver(alertmanager, http_receiver):
    now = datetime.now(UTC)
    silence = alertmanager.post("/api/v2/silences", {
        "matchers": [{"name": "campaign", "value": "defi-silenced", "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "operator", "comment": "known malformed blob, producer fix in progress"})
    assert silence["silenceID"]
    dispatcher = build_channels({"CVN_ALERTMANAGER_URL": alertmanager.url}, LOGGER, retry=FAST)
    dispatcher.deliver(check_alert("defi-silenced"))
    dispatcher.deliver(check_alert("defi-loud"))

    loud = wait_for(lambda: [a for a in forwarded(http_receiver, "CvnCheckFailure", "firing")
                             if a["labels"]["campaign"] == "defi-loud"])
    assert loud and loud[0]["labels"]["check"] == "cohort_intact" and "run_id" not in loud[0]["labels"]
    assert loud[0]["labels"]["family"] == "pipeline" and loud[0]["labels"]["severity"] == "P1"
    time.sleep(2.5)  # two group intervals: the silenced one would have been forwarded by now
    assert [a for a in forwarded(http_receiver, "CvnCheckFailure", "firing")
            if a["labels"]["campaign"] == "defi-silenced"] == []
    suppressed = [a for a in ours(alertmanager, "CvnCheckFailure") if a["labels"]["campaign"] == "defi-silenced"]
    assert len(suppressed) == 1 and suppressed[0]["status"]["state"] == "suppressed"
    assert suppressed[0]["status"]["silencedBy"] == [silence["silenceID"]]
