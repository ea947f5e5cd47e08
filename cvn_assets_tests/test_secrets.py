"""Secrets in configured URLs never reach stdout, stderr, run logs, compute logs or run storage.

Each test plants a recognisable secret in a URL (user-info, query token, webhook path), runs the
real command or job, then greps everything a person or a log collector can see — including every
file under DAGSTER_HOME (run and event-log storage, compute logs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cvn_assets.cli.main import get_cli
from cvn_assets.redaction import redact_text, redact_url
from cvn_assets.storage.factory import build_object_store
from cvn_assets.storage.object_store import StorageError
from cvn_assets.storage.settings import StorageSettings

SECRET = "S3KRET-9f8e7d"
CVN = str(Path(sys.executable).with_name("cvn"))


def files_containing(root: Path, needle: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


def test_one_redaction_hides_user_info_query_and_webhook_paths():
    assert redact_url(f"http://user:{SECRET}@mlflow.internal:5000/base?token={SECRET}#x") == "http://mlflow.internal:5000/base"
    assert redact_url(f"https://hooks.slack.com/services/T0/B0/{SECRET}", webhook=True) == "https://hooks.slack.com/***"
    text = (f'API request to http://user:{SECRET}@10.0.0.1:9/x?token={SECRET}/api/2.0 failed: '
            f'Max retries exceeded with url: /x?token={SECRET}/api/2.0')
    assert SECRET not in redact_text(text, environ={})
    assert redact_text(f"endpoint {SECRET}-value", environ={"CVN_S3_ENDPOINT_URL": f"{SECRET}-value"}) == \
        "endpoint $CVN_S3_ENDPOINT_URL"


def test_storage_errors_never_carry_the_endpoint_query_token(dagster_home, monkeypatch):
    monkeypatch.setenv("CVN_S3_BUCKET", "cvn-test-bucket")
    monkeypatch.setenv("CVN_S3_ENDPOINT_URL", f"http://127.0.0.1:9/?token={SECRET}")
    monkeypatch.setenv("CVN_S3_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = build_object_store(StorageSettings.from_env())
    assert SECRET not in store.describe()
    with pytest.raises(StorageError) as raised:
        store.put("s43-predictions/x/_manifest.json", b"{}")
    assert SECRET not in str(raised.value) and raised.value.__cause__ is None

    for command in (["s3", "check"], ["s3", "check", "--json"], ["gate", "--campaign", "secret-001"]):
        result = subprocess.run([CVN, *command], capture_output=True, text=True, env=dict(os.environ), timeout=120)
        assert result.returncode != 0 and SECRET not in result.stdout + result.stderr, result.stdout + result.stderr


def test_a_webhook_url_with_whitespace_is_a_configuration_error_naming_the_variable(dagster_home, monkeypatch):
    monkeypatch.setenv("CVN_SLACK_WEBHOOK_URL", f"https://hooks.slack.com/services/T0/B0/{SECRET} extra")
    result = CliRunner().invoke(get_cli(), ["state", "--notify"])
    assert result.exit_code == 2, result.output
    assert "CVN_SLACK_WEBHOOK_URL" in result.stderr and "whitespace" in result.stderr
    assert SECRET not in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_mlflow_credentials_stay_out_of_stderr_run_logs_and_run_storage(instance, dagster_home, storage_root,
                                                                          monkeypatch, capfd):
    from cvn_assets.definitions import build_defs
    from cvn_assets_tests.fixtures.campaigns import CampaignHarness, logged_lines, small_spec

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://cvn:{SECRET}@127.0.0.1:9/mlflow?token={SECRET}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    defs = build_defs()
    harness = CampaignHarness(instance=instance, defs=defs, store=defs.resources["object_store"].store(),
                              prefix="s43-predictions")
    harness.register(small_spec("secret-001", symbols=["SOLUSDC"], families=["naive"]))
    assert harness.acquire("secret-001", "SOLUSDC").success
    gate = harness.gate("secret-001")
    assert not gate.success  # the registry is unreachable: the gate fails loud …
    from cvn_assets.runs import step_failures

    failures = step_failures(gate)
    assert any("MLflow registry (MLFLOW_TRACKING_URI)" in failure for failure in failures), failures  # names the variable
    lines = logged_lines(instance, gate.run_id) + failures
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err
    assert SECRET not in "\n".join(lines)
    assert files_containing(dagster_home, SECRET) == []  # run storage, event logs, compute logs
