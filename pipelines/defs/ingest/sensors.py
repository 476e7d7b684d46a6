"""Files arrive when their senders send them: a sensor lands each day whose files changed."""

import hashlib

import dagster as dg

from pipelines.defs.ingest.schedules import ingest_job
from pipelines.lib.contracts import load_contracts
from pipelines.lib.ingest import discover
from pipelines.resources import LakeResource, SourcesResource


def file_contracts():
    return [c for c in load_contracts().values() if c.source["kind"] != "database"]


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lands the day of any statement, CRM export or supplier file that is new or "
    "changed since that day was last landed (re-sends and corrections included).",
)
def new_files_sensor(
    context: dg.SensorEvaluationContext, sources: SourcesResource, lake: LakeResource
):
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
            yield dg.RunRequest(
                run_key=f"{contract.dataset}:{day}:{fingerprint}",
                partition_key=day.isoformat(),
                asset_selection=[dg.AssetKey(contract.asset_name)],
                tags={"cardlake/trigger": "new_files"},
            )
