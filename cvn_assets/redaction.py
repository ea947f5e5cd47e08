"""One redaction for every URL we print or store: messages, logs, metadata, run storage.

Configured URLs carry secrets in three places: the user-info (``https://user:SECRET@host``), the
query (``?token=SECRET``, ``?X-Amz-Signature=…``) and, for webhooks, the path
(``/services/T0/B0/SECRET``). ``redact_url`` keeps what a person needs to recognise an endpoint
— scheme, host, port, and the path unless it is a webhook's — and hides the rest;
``redact_text`` applies it to every URL inside a message (an exception text that echoes its
request) and replaces the value of every secret-bearing variable found verbatim. Messages are
redacted where they are made, so no caller has to remember to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"

# Variables whose values may hold a secret (a URL with credentials or a token).
SECRET_VARIABLES = (
    "CVN_ALERT_WEBHOOK_URL", "CVN_SLACK_WEBHOOK_URL", "CVN_SMS_WEBHOOK_URL", "CVN_DIAGNOSTICS_URL",
    "CVN_DAGSTER_POSTGRES_URL", "CVN_S3_ENDPOINT_URL", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
)
WEBHOOK_VARIABLES = ("CVN_ALERT_WEBHOOK_URL", "CVN_SLACK_WEBHOOK_URL", "CVN_SMS_WEBHOOK_URL")

_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>`]+", re.IGNORECASE)
_QUERY = re.compile(r"\?[^\s'\"<>`]+")


def redact_url(url: str | None, *, webhook: bool = False) -> str:
    """An endpoint as it may be shown: scheme, host, port and path; user-info, query and fragment
    dropped (and the path hidden for a webhook, whose path is its token)."""
    if not url:
        return "(not set)"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<not a URL>"
    if not parts.scheme or not (host or parts.path):
        return "<not a URL>"
    netloc = host + (f":{port}" if port else "")
    path = (f"/{HIDDEN}" if parts.path.strip("/") else "") if webhook else parts.path
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def redact_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every configured secret value, URL credential and query string hidden."""
    env = os.environ if environ is None else environ
    for name in SECRET_VARIABLES:
        value = (env.get(name) or "").strip()
        if len(value) > 3:
            # A configured URL stays recognisable (its redacted form); any other secret becomes its name.
            shown = redact_url(value, webhook=name in WEBHOOK_VARIABLES) if _URL.fullmatch(value) else f"${name}"
            text = text.replace(value, shown)
    text = _URL.sub(_redacted_match, text)
    return _QUERY.sub("?" + HIDDEN, text)


def _redacted_match(match: re.Match[str]) -> str:
    """A URL found in prose: punctuation that ends a sentence or a clause is not part of it."""
    url = match.group(0)
    core = url.rstrip(".,;:)]}")
    return redact_url(core) + url[len(core):]
