"""Alert channels against a real HTTP receiver on 127.0.0.1: payloads, routing, retries, isolation, secrets."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from cvn_assets.alerts.alert import Alert, Severity
from cvn_assets.alerts.channels import ChannelConfigError, RetryPolicy, build_channels
from cvn_assets.alerts.resources import AlertChannelsResource
from cvn_assets_tests.fixtures.s3 import free_port

TOKEN = "T0KEN-s3cr3t-9f8e7d"
FAST = RetryPolicy(max_attempts=3, backoff_seconds=0.01, timeout_seconds=2.0)


def alert(severity: Severity = Severity.P1, kind: str = "firing") -> Alert:
    return Alert(key="global_state", kind=kind, severity=severity, title="global state ORANGE — success rate 60 %",
                 text="rules fired:\n- [ORANGE] pipeline success rate 60 % < 70 %", scenario="manual §0",
                 next_steps=["open the failed runs"], commands=["cvn state --json"],
                 facts={"state": "ORANGE"}, created_at=datetime(2026, 5, 4, 7, 0, tzinfo=UTC))


@pytest.fixture
def logger(caplog):
    caplog.set_level(logging.INFO, logger="cvn.test.alerts")
    return logging.getLogger("cvn.test.alerts")


def environ_for(receiver) -> dict[str, str]:
    return {
        "CVN_ALERT_WEBHOOK_URL": receiver.url(f"/webhook/{TOKEN}?token={TOKEN}"),
        "CVN_SLACK_WEBHOOK_URL": receiver.url(f"/slack/services/{TOKEN}"),
        "CVN_SMS_WEBHOOK_URL": receiver.url(f"/sms/{TOKEN}"),
    }


def test_each_channel_receives_its_own_format(http_receiver, logger, caplog):
    dispatcher = build_channels(environ_for(http_receiver), logger, retry=FAST)
    report = dispatcher.deliver(alert(Severity.P1))
    assert sorted(report.delivered) == ["log", "slack", "sms", "webhook"] and report.ok
    by_path = {request.path.split("/")[1]: request.json() for request in http_receiver.requests}
    assert by_path["webhook"]["severity"] == "P1" and by_path["webhook"]["commands"] == ["cvn state --json"]
    assert by_path["webhook"]["source"] == "cvn_assets"
    assert by_path["slack"]["text"].startswith(":large_orange_circle: *[P1] global state ORANGE")
    assert "```cvn state --json```" in by_path["slack"]["text"]
    assert by_path["sms"]["message"].startswith("[P1] global state ORANGE") and len(by_path["sms"]["message"]) <= 300
    assert "pipeline success rate 60 %" in caplog.text  # the log channel
    assert "event=alert_sent channel=slack status=delivered" in caplog.text


def test_sms_takes_p0_and_p1_only_by_default(http_receiver, logger):
    dispatcher = build_channels(environ_for(http_receiver), logger, retry=FAST)
    report = dispatcher.deliver(alert(Severity.P2))
    assert "sms" in report.skipped and "sms" not in report.delivered
    assert not [r for r in http_receiver.requests if r.path.startswith("/sms")]
    assert sorted(report.delivered) == ["log", "slack", "webhook"]


def test_server_errors_are_retried_with_backoff(http_receiver, logger):
    http_receiver.fail_next(2, status=503)
    dispatcher = build_channels({"CVN_ALERT_WEBHOOK_URL": http_receiver.url("/webhook")}, logger, retry=FAST)
    report = dispatcher.deliver(alert())
    assert report.delivered == ["log", "webhook"]
    assert [r.status for r in http_receiver.requests] == [503, 503, 200]


def test_client_errors_are_not_retried(http_receiver, logger):
    http_receiver.fail_next(1, status=404)
    dispatcher = build_channels({"CVN_SLACK_WEBHOOK_URL": http_receiver.url(f"/slack/{TOKEN}")}, logger, retry=FAST)
    report = dispatcher.deliver(alert())
    assert len(http_receiver.requests) == 1
    assert report.failed["slack"] == "slack: rejected with HTTP 404 — check CVN_SLACK_WEBHOOK_URL"


def test_a_dead_channel_never_blocks_the_others(http_receiver, logger, caplog):
    dead = f"http://127.0.0.1:{free_port()}/sms/{TOKEN}"  # nothing listens there
    environ = {**environ_for(http_receiver), "CVN_SMS_WEBHOOK_URL": dead}
    http_receiver.hang_next(1, 0.3)  # and one slow answer
    report = build_channels(environ, logger, retry=FAST).deliver(alert(Severity.P0))
    assert sorted(report.delivered) == ["log", "slack", "webhook"]
    assert set(report.failed) == {"sms"}
    assert "not delivered after 3 attempt(s)" in report.failed["sms"]
    assert "event=alert_sent channel=sms status=failed" in caplog.text


def test_a_timeout_is_retried_then_reported(http_receiver, logger):
    http_receiver.hang_next(5, 0.5)
    retry = RetryPolicy(max_attempts=2, backoff_seconds=0.01, timeout_seconds=0.2)
    report = build_channels({"CVN_ALERT_WEBHOOK_URL": http_receiver.url("/webhook")}, logger,
                            retry=retry).deliver(alert())
    assert "webhook" in report.failed and "2 attempt(s)" in report.failed["webhook"]


def test_secrets_never_appear_in_logs_errors_or_reprs(http_receiver, logger, caplog):
    http_receiver.fail_always(503)
    dead = f"http://127.0.0.1:{free_port()}/sms/{TOKEN}"
    environ = {**environ_for(http_receiver), "CVN_SMS_WEBHOOK_URL": dead}
    dispatcher = build_channels(environ, logger, retry=FAST)
    report = dispatcher.deliver(alert(Severity.P0))
    assert set(report.failed) == {"webhook", "slack", "sms"}
    visible = caplog.text + repr(dispatcher.channels) + " ".join(report.failed.values())
    assert TOKEN not in visible
    for url in environ.values():
        assert url not in visible
    assert "CVN_SMS_WEBHOOK_URL" in report.failed["sms"]  # named by its variable instead


def test_an_unusable_url_is_a_configuration_error_that_does_not_echo_it(logger):
    with pytest.raises(ChannelConfigError) as raised:
        build_channels({"CVN_SLACK_WEBHOOK_URL": f"hooks.slack.com/{TOKEN}"}, logger)
    assert "CVN_SLACK_WEBHOOK_URL" in str(raised.value) and TOKEN not in str(raised.value)


def test_without_any_variable_only_the_log_channel_exists(logger):
    assert build_channels({}, logger).names == ["log"]


def test_resource_builds_channels_from_the_environment_at_call_time(http_receiver, logger, monkeypatch):
    resource = AlertChannelsResource(sms_min_severity=Severity.P0, backoff_seconds=0.01)
    assert resource.dispatcher(logger).names == ["log"]
    monkeypatch.setenv("CVN_SMS_WEBHOOK_URL", http_receiver.url(f"/sms/{TOKEN}"))
    dispatcher = resource.dispatcher(logger)
    assert dispatcher.names == ["log", "sms"]
    assert dispatcher.deliver(alert(Severity.P1)).skipped == ["sms"]  # P1 below this deployment's P0 minimum
    assert TOKEN not in str(resource)
