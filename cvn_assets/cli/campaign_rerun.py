"""`cvn campaign rerun ID [--failed | --cryptos A,B]`: the runbook's "clear + rerun", then the gate.

The acquisitions run with the campaign's own registered spec (its manifest) and its tags, as
Dagster runs on the current instance, exactly like a launch: supervised by the alert sensors,
counted in ``pipeline_success_rate``, then the gate re-reads the cohort. ``--failed`` (the
default) re-runs every crypto whose latest acquisition did not succeed or whose expected blobs
are absent from the store; ``--cryptos`` names them.
"""

from __future__ import annotations


import click

from cvn_assets.cli.campaign import acquire_then_gate, campaign_group
from cvn_assets.cli.common import EXIT_USAGE, exit_codes, fail, progress, require_dagster_home, storage
from cvn_assets.contracts.identifiers import validate_campaign_id, validate_crypto
from cvn_assets.storage.manifests import read_manifest


def failed_cryptos(instance, store, prefix: str, manifest) -> dict[str, str]:
    """Crypto → why it needs a rerun: its latest acquisition did not succeed, or a blob is absent."""
    from cvn_assets.runs import CRYPTO_TAG, acquisition_failure_reasons, campaign_runs

    campaign_id = manifest.spec.campaign_id
    reasons = dict(acquisition_failure_reasons(instance, campaign_id))
    ran = {run.tags.get(CRYPTO_TAG) for run in campaign_runs(instance, campaign_id, "acquire")}
    for crypto in manifest.spec.cryptos:
        if crypto not in ran and crypto not in reasons:
            reasons[crypto] = "never acquired on this instance"
    for ref in manifest.expected:
        if ref.crypto not in reasons and not store.exists(ref.key(prefix)):
            reasons[ref.crypto] = f"blob absent: {ref.key(prefix)}"
    return {crypto: reasons[crypto] for crypto in manifest.spec.cryptos if crypto in reasons}


@campaign_group.command("rerun")
@click.argument("campaign_id")
@click.option("--failed", "only_failed", is_flag=True,
              help="re-run the cryptos whose latest acquisition failed or whose blobs are absent (default)")
@click.option("--cryptos", help="comma-separated cryptos of the campaign to re-run, e.g. SOLUSDC,ADAUSDC")
@click.option("--workers", type=int,
              help="acquisitions run in parallel processes (default: chosen from the machine, as for a launch)")
@click.option("--json", "as_json", is_flag=True, help="print the gate report as one JSON object")
@exit_codes
def rerun_command(campaign_id: str, only_failed: bool, cryptos: str | None, workers: int | None, as_json: bool) -> None:
    """Re-run a campaign's acquisitions (runbook scenario A, "clear + rerun"), then its gate.

    Uses the campaign's registered spec and tags (cvn/campaign=ID), so the runs show in the UI,
    are alerted on and counted like the launch's. Exit 0 whatever the verdict; 1 if the gate fails
    loud on a malformed blob; 2 for an unknown campaign, an unknown crypto or bad options.
    """
    try:
        validate_campaign_id(campaign_id)
        chosen = [validate_crypto(c.strip()) for c in cryptos.split(",") if c.strip()] if cryptos else []
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    if only_failed and cryptos:
        fail("--failed and --cryptos are exclusive: choose the failed cryptos or name them", EXIT_USAGE)
    if cryptos is not None and not chosen:
        fail("--cryptos is empty: expected comma-separated cryptos of the campaign", EXIT_USAGE)
    if workers is not None and workers < 1:
        fail(f"--workers {workers} is invalid: expected at least 1", EXIT_USAGE)
    require_dagster_home()
    store, settings = storage()
    manifest = read_manifest(store, settings.prefix, campaign_id)  # exit 2 when the campaign is unknown
    unknown = sorted(set(chosen) - set(manifest.spec.cryptos))
    if unknown:
        fail(f"--cryptos {','.join(unknown)}: not in campaign {campaign_id} (expected some of "
             f"{', '.join(manifest.spec.cryptos)})", EXIT_USAGE)
    import dagster as dg

    if chosen:
        reasons = {crypto: "named with --cryptos" for crypto in chosen}
    else:
        with dg.DagsterInstance.get() as instance:
            reasons = failed_cryptos(instance, store, settings.prefix, manifest)
    if not reasons:
        progress(f"campaign {campaign_id}: every acquisition succeeded and every expected blob is present; "
                 "nothing to re-run, re-reading the cohort")
    for crypto, reason in reasons.items():
        progress(f"re-running {campaign_id} / {crypto}: {reason}")
    from cvn_assets.campaigns.runner import default_workers

    workers = min(workers, max(1, len(reasons))) if workers is not None else default_workers(len(reasons))
    acquire_then_gate(campaign_id, list(reasons), workers, as_json, extra={"rerun": reasons})
