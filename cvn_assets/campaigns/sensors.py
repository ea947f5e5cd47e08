"""``campaign_sensor``: drives a campaign through Dagster when it was launched from the UI.

- a successful ``launch_discovery`` run with no acquisition yet → one acquisition run per crypto;
- every crypto's latest acquisition run finished (success, failure or cancel) and no gate run
  since the last of them ended → the gate run. Failed acquisitions count as finished: the gate
  then says INCONCLUSIVE_TOOLING for them (runbook scenario A) instead of waiting forever; an
  operator re-running one acquisition gets a fresh gate when it ends;
- a rerun of a campaign's partitions from the asset page (``__ASSET_JOB``, no campaign tag) is
  recognised by its partition keys and tagged as that campaign's acquisition (or gate), so it is
  supervised like any campaign run (alerts, success rate) and re-gated as above.

Run keys make every request idempotent across ticks and restarts.
"""


from datetime import UTC, datetime, timedelta

import dagster as dg

from cvn_assets.campaigns.jobs import s43_acquire_job, s43_gate_job
from cvn_assets.partitions import acquisition_partition_key
from cvn_assets.runs import (
    ASSET_JOB, CAMPAIGN_TAG, CRYPTO_TAG, FINISHED, LAUNCH_JOB, RERUN_TAG, STAGE_TAG, acquisition_tags,
    campaign_runs, campaign_scope, gate_tags,
)
from cvn_assets.storage.manifests import CampaignNotRegistered, read_manifest
from cvn_assets.storage.resources import ObjectStoreResource

LOOKBACK = timedelta(days=3)


def _recent(instance: dg.DagsterInstance, **filters) -> list[dg.RunRecord]:
    since = datetime.now(UTC) - LOOKBACK
    return list(instance.get_run_records(filters=dg.RunsFilter(updated_after=since, **filters)))


def acquisition_requests(instance: dg.DagsterInstance, store, prefix: str) -> list[dg.RunRequest]:
    requests = []
    launches = _recent(instance, job_name=LAUNCH_JOB, statuses=[dg.DagsterRunStatus.SUCCESS])
    for record in launches:
        campaign_id = record.dagster_run.tags.get(CAMPAIGN_TAG)
        if not campaign_id or campaign_runs(instance, campaign_id, "acquire"):
            continue
        manifest = read_manifest(store, prefix, campaign_id)
        for crypto in manifest.spec.cryptos:
            requests.append(dg.RunRequest(
                job_name=s43_acquire_job.name,
                partition_key=acquisition_partition_key(campaign_id, crypto),
                run_key=f"acquire:{campaign_id}:{crypto}",
                tags=acquisition_tags(campaign_id, crypto),
            ))
    return requests


def adopt_asset_page_runs(instance: dg.DagsterInstance, store, prefix: str) -> list[str]:
    """Tag the asset page's reruns of a registered campaign's partitions as that campaign's runs."""
    adopted = []
    for record in _recent(instance, job_name=ASSET_JOB):
        run = record.dagster_run
        if run.tags.get(CAMPAIGN_TAG):
            continue
        campaign_id, crypto, stage = campaign_scope(run.tags)
        if campaign_id is None:
            continue
        try:
            spec = read_manifest(store, prefix, campaign_id).spec
        except CampaignNotRegistered:
            continue
        if stage == "acquire" and crypto in spec.cryptos:
            tags = acquisition_tags(campaign_id, crypto)
        elif stage == "gate":
            tags = gate_tags(campaign_id)
        else:
            continue
        instance.add_run_tags(run.run_id, {**tags, RERUN_TAG: "ui"})
        adopted.append(f"{campaign_id}/{crypto or 'gate'}")
    return adopted


def gate_requests(instance: dg.DagsterInstance, store, prefix: str) -> tuple[list[dg.RunRequest], list[str]]:
    """Gate runs due, and a line per campaign still waiting (for the skip reason)."""
    acquisitions = _recent(instance, tags={STAGE_TAG: "acquire"})
    by_campaign: dict[str, dict[str, dg.RunRecord]] = {}
    for record in acquisitions:  # newest first: keep each crypto's latest run
        tags = record.dagster_run.tags
        by_campaign.setdefault(tags.get(CAMPAIGN_TAG, ""), {}).setdefault(tags.get(CRYPTO_TAG, ""), record)
    requests, waiting = [], []
    for campaign_id, latest in sorted(by_campaign.items()):
        try:
            expected = set(read_manifest(store, prefix, campaign_id).spec.cryptos)
        except CampaignNotRegistered:
            continue
        unfinished = sorted(c for c in expected if c not in latest or latest[c].dagster_run.status not in FINISHED)
        if unfinished:
            waiting.append(f"{campaign_id}: waiting for {', '.join(unfinished)}")
            continue
        last_end = max(latest[c].end_time or 0.0 for c in expected)
        gates = _recent(instance, tags={CAMPAIGN_TAG: campaign_id, STAGE_TAG: "gate"})
        if gates and gates[0].create_timestamp.timestamp() >= last_end:
            continue  # gated since its last acquisition ended
        requests.append(dg.RunRequest(
            job_name=s43_gate_job.name, partition_key=campaign_id,
            run_key=f"gate:{campaign_id}:{last_end:.3f}", tags=gate_tags(campaign_id),
        ))
    return requests, waiting


@dg.sensor(
    name="campaign_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=[s43_acquire_job, s43_gate_job],
    description=("Launches a campaign's acquisitions after launch_discovery, and its gate once all have finished; "
                 "recognises reruns from the asset page by their partition keys."),
)
def campaign_sensor(context: dg.SensorEvaluationContext, object_store: ObjectStoreResource):
    store, prefix = object_store.store(), object_store.prefix
    adopted = adopt_asset_page_runs(context.instance, store, prefix)
    if adopted:
        context.log.info(f"asset-page reruns recognised as campaign runs: {', '.join(adopted)}")
    requests = acquisition_requests(context.instance, store, prefix)
    gates, waiting = gate_requests(context.instance, store, prefix)
    requests += gates
    if not requests:
        return dg.SkipReason("; ".join(waiting) or "no campaign launched, and no finished acquisition left ungated")
    return requests
