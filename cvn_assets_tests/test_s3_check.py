"""`cvn s3 check` (runbook scenario C): one distinct diagnosis per broken link, against real S3 endpoints.

Every case runs the installed command against a moto server over HTTP: the shared one, a private
one that is stopped, and a private one with IAM authentication switched on
(``INITIAL_NO_AUTH_ACTION_COUNT``) so that wrong credentials are really rejected.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import click
import pytest
from click.testing import CliRunner

from cvn_assets.cli.s3 import s3_group
from cvn_assets.contracts.blob import encode_blob
from cvn_assets.contracts.campaign import CampaignManifest, CampaignSpec
from cvn_assets.operations.s3_check import Finding, S3Facts, diagnose, redact_text, redact_url
from cvn_assets.storage.manifests import write_manifest
from cvn_assets.storage.factory import build_object_store
from cvn_assets.storage.settings import StorageSettings
from cvn_assets_tests.fixtures.blobs import sample_blob
from cvn_assets_tests.fixtures.s3 import MotoServer, start_moto_server


def run_check(*args: str):
    result = CliRunner().invoke(s3_group, ["check", *args])
    return result


def run_check_json():
    result = run_check("--json")
    assert result.stdout.strip(), f"no JSON on stdout (exit {result.exit_code}): {result.output}"
    return result.exit_code, json.loads(result.stdout)


def point_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str, key_id: str = "testing",
             secret: str = "testing") -> None:
    monkeypatch.setenv("CVN_S3_BUCKET", bucket)
    monkeypatch.setenv("CVN_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def write_campaign(prefix: str, campaign_id: str) -> None:
    """A registered campaign with one blob, written through the production object store."""
    settings = StorageSettings.from_env().model_copy(update={"prefix": prefix})
    store = build_object_store(settings)
    spec = CampaignSpec(campaign_id=campaign_id, group="defi", symbols=["SOLUSDC"], folds=2, families=["naive"],
                        horizons=[1], sl_range=[1.0], tp_range=[2.0], backtest_days=10)
    manifest = CampaignManifest.for_spec(spec)
    write_manifest(store, prefix, manifest)
    ref = manifest.expected[0]
    blob = sample_blob(campaign_id=campaign_id, crypto=ref.crypto, fold=ref.fold, family=ref.family)
    store.put(ref.key(prefix), encode_blob(blob))


# ---------------------------------------------------------------------------------------------
# healthy bucket and prefix findings (shared moto server)


def test_a_prefix_holding_campaigns_passes_with_its_object_count_and_campaigns(s3_bucket):
    write_campaign("s43-predictions", "defi-20261123-031500")
    result = run_check()
    assert result.exit_code == 0, result.output
    assert "objects under s43-predictions/: 2" in result.output
    assert "s43-predictions/defi-20261123-031500/  2 objects, manifest" in result.output
    code, report = run_check_json()
    assert (code, report["finding"], report["ok"]) == (0, "ok", True)
    assert report["facts"]["objects"] == 2
    assert report["facts"]["campaigns"] == [{"campaign_id": "defi-20261123-031500", "objects": 2, "manifest": True}]


def test_an_empty_prefix_is_its_own_finding_and_names_what_the_bucket_holds(s3_bucket, moto_server):
    moto_server.client().put_object(Bucket=s3_bucket, Key="xcom/run-1/value.json", Body=b"{}")
    code, report = run_check_json()
    assert (code, report["finding"], report["ok"]) == (1, Finding.EMPTY_PREFIX, False)
    assert report["facts"]["objects"] == 0
    assert "xcom/" in report["message"]
    assert "s43_pred_persist_failed" in report["next_step"]


def test_campaigns_under_another_prefix_are_diagnosed_as_a_wrong_prefix(s3_bucket):
    write_campaign("s43-staging", "defi-20261123-040000")
    result = run_check()
    assert result.exit_code == 1
    assert "WRONG_PREFIX" in result.output
    assert "CVN_S3_PREFIX=s43-staging" in result.output


def test_a_missing_bucket_is_its_own_finding(s3_bucket, monkeypatch):
    monkeypatch.setenv("CVN_S3_BUCKET", f"cvn-absent-{uuid.uuid4().hex[:8]}")
    code, report = run_check_json()
    assert (code, report["finding"], report["facts"]["error_code"]) == (1, Finding.MISSING_BUCKET, "NoSuchBucket")
    assert "CVN_S3_BUCKET" in report["next_step"]


# ---------------------------------------------------------------------------------------------
# the endpoint itself


def test_a_stopped_server_is_diagnosed_as_unreachable(monkeypatch):
    server = start_moto_server()
    server.client().create_bucket(Bucket="cvn-stopped")
    point_at(monkeypatch, server.endpoint_url, "cvn-stopped")
    server.stop()
    code, report = run_check_json()
    assert (code, report["finding"]) == (1, Finding.UNREACHABLE)
    assert server.endpoint_url in report["message"]
    assert "reachable" in report["next_step"]


def test_a_host_name_that_does_not_resolve_is_diagnosed_as_dns(monkeypatch):
    point_at(monkeypatch, "http://cvn-s3.invalid:9000", "cvn-dns")  # .invalid never resolves (RFC 6761)
    code, report = run_check_json()
    assert (code, report["finding"]) == (1, Finding.DNS)
    assert "cvn-s3.invalid" in report["message"]


def test_no_credentials_at_all_is_its_own_finding(s3_bucket, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    # Nothing else in boto3's chain may answer: no shared files, no instance metadata service.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, report = run_check_json()
    assert (code, report["finding"]) == (1, Finding.NO_CREDENTIALS)
    assert "AWS_ACCESS_KEY_ID" in report["next_step"]


# ---------------------------------------------------------------------------------------------
# credentials, on a moto server that authenticates every request


@dataclass
class AuthServer:
    server: MotoServer
    bucket: str
    key_id: str
    secret: str
    reader_key_id: str
    reader_secret: str


@pytest.fixture(scope="module")
def auth_server() -> Iterator[AuthServer]:
    """moto with IAM auth on: the first 4 requests (IAM setup) are free, every later one is checked."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "4")
        server = start_moto_server()
    try:
        def iam(key_id: str = "bootstrap", secret: str = "bootstrap"):
            return boto3.client("iam", endpoint_url=server.endpoint_url, region_name="us-east-1",
                                aws_access_key_id=key_id, aws_secret_access_key=secret)

        admin = iam()
        admin.create_user(UserName="cvn")
        key = admin.create_access_key(UserName="cvn")["AccessKey"]
        admin.put_user_policy(UserName="cvn", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        signed = iam(key["AccessKeyId"], key["SecretAccessKey"])
        signed.create_user(UserName="reader")  # 4th free action; from here on every request is checked
        reader = signed.create_access_key(UserName="reader")["AccessKey"]
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        s3.create_bucket(Bucket="cvn-auth")
        yield AuthServer(server, "cvn-auth", key["AccessKeyId"], key["SecretAccessKey"],
                         reader["AccessKeyId"], reader["SecretAccessKey"])
    finally:
        server.stop()


def test_valid_credentials_on_an_authenticating_server_reach_the_prefix(auth_server, monkeypatch):
    point_at(monkeypatch, auth_server.server.endpoint_url, auth_server.bucket, auth_server.key_id, auth_server.secret)
    code, report = run_check_json()
    assert (code, report["finding"]) == (1, Finding.EMPTY_PREFIX)  # past credentials and bucket


def test_a_wrong_secret_is_diagnosed_as_bad_credentials(auth_server, monkeypatch):
    point_at(monkeypatch, auth_server.server.endpoint_url, auth_server.bucket, auth_server.key_id, "not-the-secret")
    code, report = run_check_json()
    assert (code, report["finding"], report["facts"]["error_code"]) == (
        1, Finding.BAD_CREDENTIALS, "SignatureDoesNotMatch")
    assert "not-the-secret" not in json.dumps(report)


def test_an_unknown_access_key_is_diagnosed_as_bad_credentials(auth_server, monkeypatch):
    point_at(monkeypatch, auth_server.server.endpoint_url, auth_server.bucket, "AKIAUNKNOWN0000", "whatever")
    code, report = run_check_json()
    assert (code, report["finding"], report["facts"]["error_code"]) == (
        1, Finding.BAD_CREDENTIALS, "InvalidAccessKeyId")


def test_valid_credentials_without_permission_are_diagnosed_as_access_denied(auth_server, monkeypatch):
    point_at(monkeypatch, auth_server.server.endpoint_url, auth_server.bucket, auth_server.reader_key_id,
             auth_server.reader_secret)
    code, report = run_check_json()
    assert (code, report["finding"]) == (1, Finding.ACCESS_DENIED)
    assert "s3:ListBucket" in report["next_step"]


# ---------------------------------------------------------------------------------------------
# configuration and the pure diagnosis


def test_without_a_bucket_the_check_is_a_configuration_error():
    result = run_check()
    assert result.exit_code == 2
    assert "CVN_S3_BUCKET is not set" in result.output


def test_every_finding_has_its_own_message_and_next_step():
    base = dict(endpoint="https://s3.example", bucket="cvn-b", prefix="s43-predictions")
    facts = [S3Facts(**base, failure=f, error_detail="x") for f in (
        Finding.DNS, Finding.UNREACHABLE, Finding.NO_CREDENTIALS, Finding.BAD_CREDENTIALS,
        Finding.ACCESS_DENIED, Finding.MISSING_BUCKET, Finding.S3_ERROR)]
    facts.append(S3Facts(**base))  # empty prefix
    facts.append(S3Facts(**base, campaigns_elsewhere={"s43-old": ["defi-20260101-000000"]}))
    diagnoses = [diagnose(f) for f in facts]
    assert [d.finding for d in diagnoses][-2:] == [Finding.EMPTY_PREFIX, Finding.WRONG_PREFIX]
    assert len({d.finding for d in diagnoses}) == len(diagnoses)
    assert len({d.message for d in diagnoses}) == len(diagnoses)
    assert len({d.next_step for d in diagnoses}) == len(diagnoses)


def test_endpoints_and_error_texts_are_printed_without_credentials():
    assert redact_url("https://AKIA123:s3cr3t@s3.fr-par.scw.cloud:443/path?X-Amz-Signature=abc") == (
        "https://s3.fr-par.scw.cloud:443/path")
    assert "s3cr3t" not in redact_text('Could not connect to "https://AKIA123:s3cr3t@s3.example/"')


def test_the_cvn_command_offers_s3_and_lifecycle():
    from cvn_assets.cli.main import get_cli

    result = CliRunner().invoke(get_cli(), ["--help"])
    assert result.exit_code == 0, result.output
    assert {"s3", "lifecycle"} <= set(get_cli().list_commands(click.Context(get_cli())))
    assert "  s3 " in result.stdout and "  lifecycle " in result.stdout
