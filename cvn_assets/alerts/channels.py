"""Where alerts go: the log (always), a generic JSON webhook, Slack, an SMS gateway, Prometheus Alertmanager.

Each HTTP channel reads its URL from an environment variable when the channels are built (at run
time, never at import) and keeps it private: the URL — which carries the token — never appears
in a log line, an error message, event metadata or a repr; channels are named by their variable.
Deliveries retry with exponential backoff on connection errors, timeouts, 429 and 5xx (a 4xx is a
configuration error and is not retried). Channels are tried in parallel and independently, so a
dead or slow channel never delays or blocks another. Which channels an alert goes to is the
routing table's decision (``routing.py``: severity × family → role and channels), and each
channel still keeps its own minimum severity.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from cvn_assets.alerts.alert import Alert, Severity
from cvn_assets.alerts.routing import RoutingDecision, RoutingTable, family_of
from cvn_assets.events import Event, log_event
from cvn_assets.state.rules import State

WEBHOOK_ENV = "CVN_ALERT_WEBHOOK_URL"
SLACK_ENV = "CVN_SLACK_WEBHOOK_URL"
SMS_ENV = "CVN_SMS_WEBHOOK_URL"
ALERTMANAGER_ENV = "CVN_ALERTMANAGER_URL"

SMS_MAX_CHARS = 300


class DeliveryError(Exception):
    """A channel did not accept the alert; the message never contains the channel's URL."""


class ChannelConfigError(ValueError):
    """A channel's environment variable is set but unusable (the message names the variable only)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    timeout_seconds: float = 5.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        delay = min(self.backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
        if retry_after is not None:
            delay = min(max(delay, retry_after), self.max_backoff_seconds)
        return delay


class LogChannel:
    """The default channel: the alert as a structured log line plus its full text."""

    name = "log"

    def __init__(self, logger: logging.Logger | Any, min_severity: Severity = Severity.P3):
        self.logger = logger
        self.min_severity = min_severity

    def __repr__(self) -> str:
        return f"LogChannel(min_severity={self.min_severity.value})"

    def send(self, alert: Alert) -> int:
        level = logging.ERROR if alert.severity.at_least(Severity.P1) else logging.WARNING
        if alert.kind == "resolved":
            level = logging.INFO
        text = alert.render_text()
        if level >= logging.ERROR:
            self.logger.error(text)
        elif level >= logging.WARNING:
            self.logger.warning(text)
        else:
            self.logger.info(text)
        return 1


def validate_channel_url(url: str, env_var: str) -> None:
    """An http(s) URL that urllib can send to, or ChannelConfigError naming the variable (never the value)."""
    problem = None
    if any(character.isspace() or not character.isprintable() for character in url):
        problem = "it contains whitespace or control characters"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 — raises ValueError on a port that is not a number
        except ValueError:
            problem = "it cannot be parsed as a URL"
        else:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problem = "expected http(s)://host/…"
    if problem:
        raise ChannelConfigError(f"{env_var} is set but is not a usable http(s) URL: {problem} "
                                 "(its value is not shown: it is a secret)")


class HttpChannel:
    """POST one JSON document per alert to a URL held privately."""

    name = "http"

    def __init__(self, url: str, env_var: str, min_severity: Severity, retry: RetryPolicy):
        validate_channel_url(url, env_var)
        self.__url = url
        self.env_var = env_var
        self.min_severity = min_severity
        self.retry = retry

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env={self.env_var}, min_severity={self.min_severity.value})"

    def payload(self, alert: Alert) -> Any:
        raise NotImplementedError

    def _scrub(self, message: str) -> str:
        """Remove the URL and its parts from a message (an exception could echo them)."""
        parts = urlsplit(self.__url)
        for secret in sorted({self.__url, parts.netloc + parts.path, parts.path, parts.query, parts.netloc},
                             key=len, reverse=True):
            if secret and len(secret) > 1:
                message = message.replace(secret, "***")
        return message

    def send(self, alert: Alert) -> int:
        """Deliver with retries; return the number of attempts, or raise DeliveryError."""
        body = json.dumps(self.payload(alert), default=str).encode()
        last = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            request = urllib.request.Request(self.__url, data=body, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "cvn-assets-alerts"})
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.retry.timeout_seconds) as response:
                    response.read()
                return attempt
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                exc.close()
                if exc.code != 429 and exc.code < 500:
                    raise DeliveryError(f"{self.name}: rejected with {last} — check {self.env_var}") from None
                header = exc.headers.get("Retry-After") if exc.headers else None
                retry_after = float(header) if header and header.isdigit() else None
            except urllib.error.URLError as exc:
                reason = exc.reason
                last = self._scrub(f"{type(reason).__name__}: {getattr(reason, 'strerror', None) or reason}")
            except (TimeoutError, ConnectionError) as exc:
                last = self._scrub(f"{type(exc).__name__}: {exc}")
            except (http.client.HTTPException, ValueError) as exc:  # e.g. InvalidURL: not retried
                raise DeliveryError(f"{self.name}: cannot send ({type(exc).__name__}) — check {self.env_var}") from None
            if attempt < self.retry.max_attempts:
                time.sleep(self.retry.delay(attempt, retry_after))
        raise DeliveryError(f"{self.name}: not delivered after {self.retry.max_attempts} attempt(s) ({last}; "
                            f"endpoint from {self.env_var})")


class WebhookChannel(HttpChannel):
    """A generic JSON webhook (Alertmanager-style receivers, PagerDuty/Opsgenie bridges, n8n, …)."""

    name = "webhook"

    def payload(self, alert: Alert) -> dict[str, Any]:
        return {"source": "cvn_assets", **alert.model_dump(mode="json"), "message": alert.render_text()}


class SlackChannel(HttpChannel):
    """A Slack incoming webhook: one mrkdwn message."""

    name = "slack"
    ICONS = {Severity.P0: ":red_circle:", Severity.P1: ":large_orange_circle:",
             Severity.P2: ":large_yellow_circle:", Severity.P3: ":information_source:"}

    def payload(self, alert: Alert) -> dict[str, Any]:
        icon = ":white_check_mark:" if alert.kind == "resolved" else self.ICONS[alert.severity]
        lines = [f"{icon} *[{alert.severity.value}] {alert.title}*", alert.text]
        if alert.scenario:
            lines.append(f"_{alert.scenario}_")
        lines += [f"• {step}" for step in alert.next_steps]
        if alert.commands:
            lines.append("```" + "\n".join(alert.commands) + "```")
        return {"text": "\n".join(line for line in lines if line)}


class SmsChannel(HttpChannel):
    """An HTTP SMS gateway: a short text, P0/P1 only by default (nobody is woken up for a P2)."""

    name = "sms"

    def payload(self, alert: Alert) -> dict[str, Any]:
        text = f"[{alert.severity.value}] {alert.title}"
        if alert.commands:
            text += f" | {alert.commands[0]}"
        if len(text) > SMS_MAX_CHARS:
            text = text[: SMS_MAX_CHARS - 1] + "…"
        return {"message": text, "severity": alert.severity.value, "key": alert.key}


class AlertmanagerChannel(HttpChannel):
    """Prometheus Alertmanager's v2 API (``POST /api/v2/alerts``): its grouping, inhibition and silences.

    Alertmanager knows an alert by its labels, so the labels are the incident's identity —
    alertname, severity, and the global ``state`` or the family with the campaign / crypto / check /
    job — never a run id (except for per-run alerts: stuck, too long). A firing alert holds until ``hold`` (longer
    than the longest repeat interval, so our repeats keep it alive and a dead sensor lets it
    expire); a resolve sends the same labels with ``endsAt`` = now. A change of global state
    resolves the previous state's alert in the same post.
    """

    name = "alertmanager"
    PATH = "/api/v2/alerts"
    SCOPE_FACTS = ("campaign", "crypto", "check", "job")
    PER_RUN_KINDS = ("stuck_run", "long_run")

    def __init__(self, url: str, env_var: str, min_severity: Severity, retry: RetryPolicy,
                 hold: timedelta = timedelta(hours=25)):
        base = url.rstrip("/")
        super().__init__(base if base.endswith(self.PATH) else base + self.PATH, env_var, min_severity, retry)
        self.hold = hold

    @staticmethod
    def alertname(alert: Alert) -> str:
        base = "global_state" if alert.key == "global_state" else str(alert.facts.get("incident_kind") or alert.kind)
        return "Cvn" + "".join(part.capitalize() for part in base.split("_"))

    def labels(self, alert: Alert, severity: Severity, state: str | None) -> dict[str, str]:
        labels = {"alertname": self.alertname(alert), "severity": severity.value, "source": "cvn_assets"}
        if state:
            labels["state"] = state  # the global state: its rules (and so its family) change under it
        else:
            labels["family"] = family_of(alert).value
        # An incident (incidents.py) is one Alertmanager alert: its key's scope only, whichever
        # crypto or run failed this time.
        scope = ("campaign", "check", "job") if alert.facts.get("incident") else self.SCOPE_FACTS
        for fact in scope:
            value = alert.facts.get(fact)
            if value not in (None, "") and "," not in str(value):
                labels[fact] = str(value)
        if str(alert.facts.get("incident_kind") or alert.kind) in self.PER_RUN_KINDS and alert.facts.get("run_id"):
            labels["run_id"] = str(alert.facts["run_id"])
        return labels

    def payload(self, alert: Alert) -> list[dict[str, Any]]:
        at = alert.created_at
        annotations = {"summary": alert.title, "description": alert.render_text()}
        if alert.scenario:
            annotations["runbook"] = alert.scenario
        is_state = alert.key == "global_state"
        resolved = alert.kind == "resolved"
        state = None
        if is_state:
            state = str(alert.facts.get("previous_state") if resolved else alert.facts.get("state"))
        entry = {"labels": self.labels(alert, alert.severity, state), "annotations": annotations,
                 "startsAt": at.isoformat(), "endsAt": (at if resolved else at + self.hold).isoformat()}
        entries = [entry]
        previous = alert.facts.get("previous_state")
        if is_state and alert.kind == "changed" and previous in State.__members__ and State(previous).severity:
            entries.append({"labels": self.labels(alert, Severity(State(previous).severity), str(previous)),
                            "annotations": {**annotations, "summary": f"superseded: {alert.title}"},
                            "startsAt": at.isoformat(), "endsAt": at.isoformat()})
        return entries


@dataclass
class DeliveryReport:
    """Outcome of one alert over its channels."""

    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # not routed there, or below the channel's minimum
    routing: RoutingDecision | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


class AlertDispatcher:
    """Routes an alert to every channel whose minimum severity it meets; records ``alert_sent``."""

    def __init__(self, channels: Iterable[LogChannel | HttpChannel], logger: logging.Logger | Any,
                 routing: RoutingTable | None = None):
        self.channels = list(channels)
        self.logger = logger
        self.routing = routing or RoutingTable()
        names = [channel.name for channel in self.channels]
        if len(names) != len(set(names)):
            raise ValueError(f"alert channels must have distinct names, found {names}")

    @property
    def names(self) -> list[str]:
        return [channel.name for channel in self.channels]

    @property
    def minimums(self) -> Mapping[str, Severity]:
        return {channel.name: channel.min_severity for channel in self.channels}

    def route(self, alert: Alert) -> RoutingDecision:
        """The routing table's decision for this alert (role paged, channels)."""
        return self.routing.decide(alert.severity, family_of(alert))

    def deliver(self, alert: Alert, only: Iterable[str] | None = None) -> DeliveryReport:
        """Send to the routed channels (``only``: a subset, for retries), in parallel, independently."""
        wanted = set(only) if only is not None else None
        decision = self.route(alert)
        report = DeliveryReport(routing=decision)
        targets = []
        for channel in self.channels:
            if wanted is not None and channel.name not in wanted:
                continue
            if channel.name not in decision.channels or not alert.severity.at_least(channel.min_severity):
                report.skipped.append(channel.name)
                continue
            targets.append(channel)
        if not targets:
            return report
        # HTTP channels in parallel threads; the log channel in the caller's thread (Dagster loggers
        # belong to the sensor or step that owns them).
        remote = [channel for channel in targets if isinstance(channel, HttpChannel)]
        outcomes: dict[str, tuple[int, str | None]] = {}
        if remote:
            with ThreadPoolExecutor(max_workers=len(remote), thread_name_prefix="cvn-alert") as pool:
                futures = {channel.name: pool.submit(self._send_one, channel, alert) for channel in remote}
            outcomes = {name: future.result() for name, future in futures.items()}
        for channel in targets:
            if channel.name not in outcomes:
                outcomes[channel.name] = self._send_one(channel, alert)
        for channel in targets:
            attempts, error = outcomes[channel.name]
            if error is None:
                report.delivered.append(channel.name)
            else:
                report.failed[channel.name] = error
            log_event(self.logger, Event.ALERT_SENT, logging.INFO if error is None else logging.ERROR,
                      channel=channel.name, status="delivered" if error is None else "failed",
                      severity=alert.severity.value, kind=alert.kind, key=alert.key, attempts=attempts,
                      role=decision.role.value, family=decision.family.value,
                      title=alert.title, **({"error": error} if error else {}))
        return report

    @staticmethod
    def _send_one(channel: LogChannel | HttpChannel, alert: Alert) -> tuple[int, str | None]:
        try:
            return channel.send(alert), None
        except DeliveryError as exc:
            attempts = channel.retry.max_attempts if isinstance(channel, HttpChannel) else 1
            return attempts, str(exc)


def build_channels(
    environ: Mapping[str, str],
    logger: logging.Logger | Any,
    *,
    retry: RetryPolicy | None = None,
    minimums: Mapping[str, Severity] | None = None,
    env_vars: Mapping[str, str] | None = None,
    routing: RoutingTable | None = None,
    alertmanager_hold: timedelta = timedelta(hours=25),
) -> AlertDispatcher:
    """The log channel plus every HTTP channel whose variable is set in ``environ``."""
    retry = retry or RetryPolicy()
    minimums = {"log": Severity.P3, "webhook": Severity.P3, "slack": Severity.P3, "sms": Severity.P1,
                "alertmanager": Severity.P3, **(minimums or {})}
    env_vars = {"webhook": WEBHOOK_ENV, "slack": SLACK_ENV, "sms": SMS_ENV, "alertmanager": ALERTMANAGER_ENV,
                **(env_vars or {})}
    channels: list[LogChannel | HttpChannel] = [LogChannel(logger, minimums["log"])]
    for name, cls in (("webhook", WebhookChannel), ("slack", SlackChannel), ("sms", SmsChannel)):
        url = (environ.get(env_vars[name]) or "").strip()
        if url:
            channels.append(cls(url, env_vars[name], minimums[name], retry))
    url = (environ.get(env_vars["alertmanager"]) or "").strip()
    if url:
        channels.append(AlertmanagerChannel(url, env_vars["alertmanager"], minimums["alertmanager"], retry,
                                            hold=alertmanager_hold))
    return AlertDispatcher(channels, logger, routing)
