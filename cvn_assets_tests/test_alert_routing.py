"""Severity routing by role (manual §4, §8): who is paged and on which channels."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from cvn_assets.alerts.alert import Alert, Severity
from cvn_assets.alerts.channels import RetryPolicy, build_channels
from cvn_assets.alerts.resources import AlertChannelsResource
from cvn_assets.alerts.routing import Family, Role, RoutingTable, family_of, load_routing

FAST = RetryPolicy(max_attempts=1, backoff_seconds=0.01, timeout_seconds=2.0)


def alert(severity: Severity, kind: str = "firing", rules: str = "success_rate", **extra) -> Alert:
    return Alert(key="global_state", kind=kind, severity=severity, title="t", text="x",
                 facts={"state": "ORANGE", "rules": rules}, created_at=datetime.now(UTC), **extra)


@pytest.mark.parametrize(("severity", "family", "role", "sms"), [
    (Severity.P0, Family.PIPELINE, Role.PLATFORM_OWNER, True),
    (Severity.P1, Family.PIPELINE, Role.MLOPS_MAINTAINER, True),
    (Severity.P1, Family.INFRA, Role.PLATFORM_OWNER, True),
    (Severity.P2, Family.ML, Role.ML_OWNER, False),
    (Severity.P2, Family.LIFECYCLE, Role.ML_OWNER, False),
    (Severity.P3, Family.PIPELINE, Role.DIGEST, False),
])
def test_the_default_table_is_the_manuals_escalation(severity, family, role, sms):
    decision = RoutingTable().decide(severity, family)
    assert decision.role == role
    assert ("sms" in decision.channels) is sms
    if role == Role.DIGEST:
        assert decision.channels == ["log"]  # P3: the digest only, nobody paged


def test_the_family_comes_from_the_alert_or_its_highest_rule():
    assert family_of(alert(Severity.P0, rules="infra_critical, success_rate")) == Family.INFRA
    assert family_of(alert(Severity.P2, rules="noncore_model_stale:ETHUSDC")) == Family.LIFECYCLE
    assert family_of(alert(Severity.P1, rules="zero_pass_gates")) == Family.ML
    assert family_of(alert(Severity.P2, family="lifecycle")) == Family.LIFECYCLE
    run = Alert(key="run_failure:x", kind="run_failure", severity=Severity.P2, title="t", text="x",
                created_at=datetime.now(UTC))
    assert family_of(run) == Family.PIPELINE


def test_p3_reaches_the_digest_only_and_p2_never_sms(http_receiver):
    environ = {"CVN_ALERT_WEBHOOK_URL": http_receiver.url("/webhook"), "CVN_SMS_WEBHOOK_URL": http_receiver.url("/sms")}
    dispatcher = build_channels(environ, logging.getLogger("cvn.test.routing"), retry=FAST)
    p3 = dispatcher.deliver(alert(Severity.P3))
    assert p3.delivered == ["log"] and p3.routing.role == Role.DIGEST
    p2 = dispatcher.deliver(alert(Severity.P2, rules="negative_sortino:BTCUSDC"))
    assert p2.delivered == ["log", "webhook"] and p2.routing.role == Role.ML_OWNER
    p0 = dispatcher.deliver(alert(Severity.P0, rules="infra_critical"))
    assert p0.delivered == ["log", "webhook", "sms"] and p0.routing.role == Role.PLATFORM_OWNER
    assert sorted(r.path for r in http_receiver.accepted()) == ["/sms", "/webhook", "/webhook"]


def test_a_routing_file_replaces_the_table_and_bad_ones_are_refused(tmp_path, http_receiver):
    path = tmp_path / "routing.yaml"
    path.write_text("routes:\n"
                    "  - {severity: P0, role: platform_owner, channels: [log, webhook]}\n"
                    "  - {severity: P1, role: operator, channels: [log]}\n"
                    "  - {severity: P2, role: ml_owner, channels: [log, webhook]}\n"
                    "  - {severity: P3, role: digest, channels: [log]}\n")
    resource = AlertChannelsResource(routing_file=str(path))
    assert resource.routing().decide(Severity.P1, Family.PIPELINE).role == Role.OPERATOR
    dispatcher = resource.dispatcher(logging.getLogger("cvn.test.routing"),
                                     {"CVN_ALERT_WEBHOOK_URL": http_receiver.url("/webhook")})
    assert dispatcher.deliver(alert(Severity.P1)).delivered == ["log"]

    path.write_text("routes:\n  - {severity: P2, role: ml_owner, channels: [log, sms]}\n")
    with pytest.raises(ValueError, match=r"routing.yaml: routes.0: .*sms is for P0/P1 only"):
        load_routing(path)
    path.write_text("routes:\n  - {severity: P0, role: platform_owner, channels: [log, pager]}\n")
    with pytest.raises(ValueError, match=r"unknown channel\(s\) \['pager'\]"):
        load_routing(path)
    path.write_text("routes:\n  - {severity: P0, role: platform_owner, channels: [log]}\n")
    with pytest.raises(ValueError, match=r"missing for \['P1', 'P2', 'P3'\]"):
        load_routing(path)
