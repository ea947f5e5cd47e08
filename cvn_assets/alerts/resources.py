"""``alert_channels``: the alert channels and the alert policy of a deployment, as a Dagster resource.

The resource holds the *names* of the environment variables, never their values: the URLs carry
tokens and Dagster shows resource configuration in its UI. Channels are built from the process
environment when a sensor, schedule or command asks for them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from cvn_assets.alerts.alert import Severity
from cvn_assets.alerts.channels import (
    ALERTMANAGER_ENV, SLACK_ENV, SMS_ENV, WEBHOOK_ENV, AlertDispatcher, RetryPolicy, build_channels,
)
from cvn_assets.alerts.routing import ROUTING_FILE_ENV, RoutingTable, load_routing
from cvn_assets.alerts.policy import AlertPolicy


class AlertChannelsResource(dg.ConfigurableResource):
    """Log channel always; webhook, Slack, SMS and Alertmanager when their variables are set (SMS: P0/P1 only).

    Which of them an alert reaches, and which role it pages, is the routing table's decision
    (``routing_file``, else the manual's default: alerts/routing.py).
    """

    webhook_url_env: str = Field(default=WEBHOOK_ENV, description="variable holding the generic JSON webhook URL")
    slack_url_env: str = Field(default=SLACK_ENV, description="variable holding the Slack incoming-webhook URL")
    sms_url_env: str = Field(default=SMS_ENV, description="variable holding the SMS gateway URL")
    alertmanager_url_env: str = Field(default=ALERTMANAGER_ENV,
                                      description="variable holding the Alertmanager base URL (http://host:9093)")
    alertmanager_hold_hours: float = Field(
        default=25.0, gt=0, description="a firing alert stays active in Alertmanager this long unless re-sent or resolved")
    routing_file: str | None = Field(
        default=None, description="YAML/JSON routing table (severity × family → role, channels); default: the manual's")
    routing_file_env: str = Field(default=ROUTING_FILE_ENV,
                                  description="variable naming the routing file when routing_file is not set")
    webhook_min_severity: Severity = Field(default=Severity.P3, description="lowest severity sent to the webhook")
    slack_min_severity: Severity = Field(default=Severity.P3, description="lowest severity sent to Slack")
    sms_min_severity: Severity = Field(default=Severity.P1, description="lowest severity sent by SMS")
    max_attempts: int = Field(default=3, ge=1, le=10, description="HTTP attempts per channel and alert")
    backoff_seconds: float = Field(default=1.0, ge=0, description="first retry delay, doubled each attempt")
    timeout_seconds: float = Field(default=5.0, gt=0, description="HTTP timeout per attempt")
    repeat_p0_minutes: float = Field(default=60.0, gt=0, description="unchanged RED re-notified after")
    repeat_p1_minutes: float = Field(default=240.0, gt=0, description="unchanged ORANGE re-notified after")
    repeat_p2_minutes: float = Field(default=1440.0, gt=0, description="unchanged YELLOW re-notified after")

    def dispatcher(self, logger: logging.Logger | Any, environ: Mapping[str, str] | None = None) -> AlertDispatcher:
        return build_channels(
            os.environ if environ is None else environ, logger,
            retry=RetryPolicy(max_attempts=self.max_attempts, backoff_seconds=self.backoff_seconds,
                              timeout_seconds=self.timeout_seconds),
            minimums={"webhook": self.webhook_min_severity, "slack": self.slack_min_severity,
                      "sms": self.sms_min_severity},
            env_vars={"webhook": self.webhook_url_env, "slack": self.slack_url_env, "sms": self.sms_url_env,
                      "alertmanager": self.alertmanager_url_env},
            routing=self.routing(environ), alertmanager_hold=timedelta(hours=self.alertmanager_hold_hours),
        )

    def routing(self, environ: Mapping[str, str] | None = None) -> RoutingTable:
        environ = os.environ if environ is None else environ
        path = self.routing_file or (environ.get(self.routing_file_env) or "").strip()
        return load_routing(path) if path else RoutingTable()

    def policy(self) -> AlertPolicy:
        return AlertPolicy(repeat_minutes={Severity.P0: self.repeat_p0_minutes, Severity.P1: self.repeat_p1_minutes,
                                           Severity.P2: self.repeat_p2_minutes, Severity.P3: self.repeat_p2_minutes})
