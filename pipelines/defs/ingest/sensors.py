"""Files arrive when their senders send them: a sensor lands each day whose files changed, and
rebuilds that day's models and publishes them in the same run (a statement that arrives the
morning after its day must reach the day's models: the incremental models rebuild only the days a
run names), so the reports that wait for it follow (the settlement sensor)."""

import hashlib

import dagster as dg

from pipelines.defs.alerts.assets import alert_tickets
from pipelines.defs.daily import daily_cycle_job
from pipelines.defs.models.assets import cardlake_models, warehouse
from pipelines.lib.contracts import load_contracts
from pipelines.lib.ingest import discover
from pipelines.resources import LakeResource, SourcesResource


def file_contracts():
    return [c for c in load_contracts().values() if c.source["kind"] != "database"]


@dg.sensor(
    job=daily_cycle_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lands the day of any statement, CRM export or supplier file that is new or "
    "changed since that day was last landed (re-sends and corrections included), then rebuilds "
    "and publishes that day's models.",
)
def new_files_sensor(
    context: dg.SensorEvaluationContext, sources: SourcesResource, lake: LakeResource
):
    changed: dict = {}  # day -> {dataset: (asset name, fingerprint of its files)}
    for contract in file_contracts():
        landed_states = lake.lake.states(contract.dataset)
        for day, paths in sorted(discover(sources.path, contract).items()):
            seen = {
                f["file"]: f.get("bytes") for f in (landed_states.get(day) or {}).get("files", [])
            }
            current = {str(p.relative_to(sources.path)): p.stat().st_size for p in paths}
            if current == seen:
                continue
            fingerprint = hashlib.sha1(repr(sorted(current.items())).encode()).hexdigest()[:12]
            changed.setdefault(day, {})[contract.dataset] = (contract.asset_name, fingerprint)
    # one run per day (two runs of one day would build the same models side by side)
    for day, datasets in sorted(changed.items()):
        names = sorted(datasets)
        yield dg.RunRequest(
            run_key=f"{day}:" + ",".join(f"{d}={datasets[d][1]}" for d in names),
            partition_key=day.isoformat(),
            asset_selection=[
                *(dg.AssetKey(datasets[d][0]) for d in names),
                *sorted(cardlake_models.keys, key=lambda k: k.to_user_string()),
                warehouse.key,
                alert_tickets.key,
            ],
            tags={"cardlake/trigger": "new_files"},
        )
