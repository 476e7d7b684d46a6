"""What the cycle did, as Dagster events: one translation for every path that runs it.

The Dagster assets yield these events from the stage they run; ``cardlake run`` and the live
session run the cycle (``pipelines.cycle``) and record the same events in the project's Dagster
instance, so the asset catalogue shows every landed partition, model, publication, report and
ticket sync, with every check's result, whichever path ran them:

- ``DagsterRecorder`` (for ``cardlake run``) collects the events while the cycle runs and records
  them as one run of the job ``cardlake_run`` when it ends (failures included);
- ``OpRecorder`` (for the live session) logs them into the session's own run as each stage ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import shutil
from collections.abc import Iterable, Iterator
from typing import Any

import dagster as dg

from pipelines import cycle
from pipelines.lib.checks import CheckOutcome
from pipelines.lib.publish import Publication
from pipelines.lib.settings import ROOT, dagster_home
from pipelines.lib.settlement import Outcome
from pipelines.lib.tickets import SyncResult

Event = dg.AssetMaterialization | dg.AssetCheckEvaluation


def _metadata(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values as Dagster metadata (dicts and lists as JSON)."""
    return {
        k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in values.items()
    }


# ------------------------------------------------------------------------------------ land
def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=outcome.name,
        asset_key=outcome.contract.asset_name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
        metadata=_metadata(outcome.metadata),
    )


def landing_metadata(t: cycle.TableLanding) -> dict[str, Any]:
    r = t.result
    assert r is not None
    meta: dict[str, Any] = {
        "read": r.read,
        "landed": r.landed,
        "quarantined": r.quarantined,
        "skipped": r.skipped,
        "dagster/row_count": r.landed,
        "quarantine_rules": dg.MetadataValue.json(r.detail.get("rules", {})),
        # where a landing's time goes (the daily cycle's benchmark splits landing from checks)
        "land_s": t.land_s,
        "checks_s": t.checks_s,
    }
    if "files" in r.detail:
        meta["files"] = dg.MetadataValue.json(r.detail["files"])
    if r.detail.get("window"):
        meta["window"] = r.detail["window"]
        meta["watermark"] = str(r.detail.get("watermark"))
    return meta


def landing_events(landings: Iterable[cycle.DayLanding], trigger: str) -> Iterator[Event]:
    for day in landings:
        for t in day.tables:
            if t.result is None:
                continue
            yield dg.AssetMaterialization(
                asset_key=t.contract.asset_name,
                partition=t.day.isoformat(),
                metadata={**landing_metadata(t), "trigger": trigger},
            )
            for c in t.checks:
                result = check_result(c)
                yield dg.AssetCheckEvaluation(
                    asset_key=result.asset_key,
                    check_name=c.name,
                    passed=c.passed,
                    metadata=result.metadata,
                    severity=result.severity,
                    blocking=c.blocking,
                    partition=t.day.isoformat(),
                )


# ---------------------------------------------------------------------------------- models
@functools.cache
def _manifest() -> dict:
    from pipelines.lib.dbt import ensure_manifest
    from pipelines.lib.settings import lake_root

    return json.loads(ensure_manifest(lake_root()).read_text())


def dbt_check_key(test_unique_id: str) -> dg.AssetCheckKey | None:
    """The asset check dagster-dbt made of a dbt test (None: a test with no single model)."""
    from dagster_dbt.asset_utils import get_asset_check_key_for_test

    from pipelines.defs.models.assets import TRANSLATOR

    if test_unique_id not in _manifest().get("nodes", {}):
        return None
    return get_asset_check_key_for_test(_manifest(), TRANSLATOR, test_unique_id, None)


def dbt_test_passed(node: dict) -> bool:
    return node["status"] in ("pass", "success")


def model_events(nodes: Iterable[dict], days: Iterable[dt.date]) -> Iterator[Event]:
    """A materialization of every model (and seed) built, for each of the run's days, and the
    result of every data test."""
    days = list(days)
    for node in nodes:
        kind, *_, name = node["node"].split(".")
        if kind in ("model", "seed") and node["status"] == "success":
            for day in days or [None]:
                yield dg.AssetMaterialization(
                    asset_key=name,
                    partition=day.isoformat() if day else None,
                    metadata={"dbt_seconds": node.get("seconds") or 0.0},
                )
        elif kind == "test" and (key := dbt_check_key(node["node"])) is not None:
            yield dg.AssetCheckEvaluation(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=dbt_test_passed(node),
                metadata={"status": node["status"], "message": node.get("message") or ""},
                severity=dg.AssetCheckSeverity.ERROR,
            )


# ------------------------------------------------------------- publish, reports, tickets
def publication_metadata(p: Publication) -> dict[str, Any]:
    return {
        "run_id": p.run_id,
        "marts": len(p.marts),
        "rows": dg.MetadataValue.json(p.rows),
        "files_written": p.files_written,
        "seconds": round(p.seconds, 3),
        "from_change_logs": dg.MetadataValue.json(list(p.from_logs)),
        "digested": dg.MetadataValue.json(p.digested),
        "compacted": p.compacted,
    }


def report_metadata(outcomes: list[Outcome], waiting: list[str] = ()) -> dict[str, Any]:
    return {
        "published": dg.MetadataValue.json(
            [f"{o.key} v{o.version}" for o in outcomes if o.status == "published"]
        ),
        "unchanged": len([o for o in outcomes if o.status == "unchanged"]),
        "waiting": dg.MetadataValue.json(list(waiting)),
        "changes": dg.MetadataValue.json(
            {str(o.key): o.change_summary for o in outcomes if o.change_summary}
        ),
    }


def tickets_metadata(r: SyncResult) -> dict[str, Any]:
    return {
        "opened": r.opened,
        "resolved": r.resolved,
        "reopened": r.reopened,
        "updated": r.updated,
        "messages_sent": r.sent,
        "messages_failed": r.failed,
        "messages_pending": r.pending,
    }


def _per_day(key: str, days, metadata) -> Iterator[Event]:
    for day in days or [None]:
        partition = day.isoformat() if day else None
        yield dg.AssetMaterialization(asset_key=key, partition=partition, metadata=metadata)


def stage_events(name: str, outcome: Any, scope: cycle.Scope) -> Iterator[Event]:
    """The events of one completed stage of the cycle."""
    if name == "land":
        yield from landing_events(outcome, scope.trigger)
    elif name == "models":
        yield from model_events(outcome.nodes, scope.days)
    elif name == "publish":
        yield from _per_day("warehouse", scope.days, publication_metadata(outcome))
    elif name == "reports":
        for o in outcome:
            if o.status == "held":
                continue
            kind = o.key.kind
            yield dg.AssetMaterialization(
                asset_key="settlement_channel_reports"
                if kind == "channel"
                else "settlement_supplier_statements",
                partition=o.key.period if kind == "channel" else f"{o.key.period}-01",
                metadata=report_metadata([o]),
            )
    elif name == "tickets":
        yield from _per_day("alert_tickets", scope.days, tickets_metadata(outcome))


# --------------------------------------------------------------------------------- recorders
def _targeted(instance: dg.DagsterInstance, event: dg.AssetCheckEvaluation, seen: dict):
    """The evaluation pointing at the materialization it checked (of its partition, else the
    asset's latest), as Dagster links a check run in the asset's own step: the UI shows a check's
    result against the materialization it belongs to."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )
    from dagster._core.storage.event_log.base import AssetRecordsFilter

    if (event.asset_key, event.partition) not in seen:
        partitions = [event.partition] if event.partition else None
        found = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=event.asset_key, asset_partitions=partitions), limit=1
        ).records
        seen[event.asset_key, event.partition] = found[0] if found else None
    if (mat := seen[event.asset_key, event.partition]) is None:
        return event
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=mat.storage_id, run_id=mat.event_log_entry.run_id, timestamp=mat.timestamp
    )
    return dg.AssetCheckEvaluation(
        asset_key=event.asset_key,
        check_name=event.check_name,
        passed=event.passed,
        metadata=event.metadata,
        target_materialization_data=target,
        severity=event.severity,
        description=event.description,
        blocking=event.blocking,
        partition=event.partition,
    )


class OpRecorder(cycle.Observer):
    """Logs each stage's events into the running op (the live session): every materialization
    and the raw tables' checks. A live pass runs every few seconds, and its dbt tests (some 300
    results a pass) gate its publication whatever is logged: a failing one fails the session's
    run with the test named; the nightly run records every test's result."""

    def __init__(self, context: dg.OpExecutionContext) -> None:
        self.context = context

    def stage_finished(self, record: cycle.StageRecord, outcome: Any, scope: cycle.Scope) -> None:
        for event in stage_events(record.stage, outcome, scope):
            if record.stage == "models" and isinstance(event, dg.AssetCheckEvaluation):
                continue
            self.context.log_event(event)


class DagsterRecorder(cycle.Observer):
    """Collects the events of a ``cardlake run`` and records them, when the run ends, as one run
    of the job ``cardlake_run`` in the project's Dagster instance (``DAGSTER_HOME``, default
    ``dagster_home/``), tagged with the days it covered and how it ended."""

    JOB = "cardlake_run"

    def __init__(self, instance: dg.DagsterInstance | None = None) -> None:
        self.instance = instance
        self.events: list[Event] = []
        self.stages: list[cycle.StageRecord] = []

    def stage_finished(self, record: cycle.StageRecord, outcome: Any, scope: cycle.Scope) -> None:
        self.stages.append(record)
        self.events.extend(stage_events(record.stage, outcome, scope))

    def record(self, scope: cycle.Scope, error: str | None = None) -> str:
        """Record the run (``error``: why it stopped short); returns the Dagster run id."""
        stages = list(self.stages)
        materializations = [e for e in self.events if isinstance(e, dg.AssetMaterialization)]
        checks = [e for e in self.events if isinstance(e, dg.AssetCheckEvaluation)]

        @dg.op(name="materializations", description="What the stages built, as they built it.")
        def record_materializations(context) -> bool:  # (unannotated: strings here)
            for record in stages:
                context.log.info(f"{record.stage}: {record.seconds:.1f} s {record.detail}")
            for event in materializations:
                context.log_event(event)
            return True

        @dg.op(name="checks", description="Every check's result, on what it checked.")
        def record_checks(context, _after: bool) -> None:
            seen: dict = {}
            for event in checks:
                context.log_event(_targeted(context.instance, event, seen))
            if error:
                raise dg.Failure(description=error)

        @dg.job(name=self.JOB, description="A run of the daily cycle by `cardlake run`.")
        def job() -> None:
            record_checks(record_materializations())

        days = [d.isoformat() for d in scope.days]
        tags = {
            # a record, not work to do again: the instance's run retries must leave it alone
            "dagster/max_retries": "0",
            "cardlake/trigger": scope.trigger,
            "cardlake/days": f"{days[0]}..{days[-1]}" if days else "",
            "cardlake/stages": ",".join(s.stage for s in stages),
        }
        with sqlite_normal_sync():
            instance = self.instance or _instance()
            try:
                result = job.execute_in_process(
                    instance=instance,
                    tags=tags,
                    raise_on_error=False,
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
            finally:
                if self.instance is None:
                    instance.dispose()
        return result.run_id


def _instance() -> dg.DagsterInstance:
    """The project's instance (``DAGSTER_HOME``); a new home gets the project's settings (run
    queue, retries, no telemetry) from ``dagster_home/dagster.yaml``."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config, project = home / "dagster.yaml", ROOT / "dagster_home" / "dagster.yaml"
    if not config.exists() and project.exists():
        shutil.copyfile(project, config)
    return dg.DagsterInstance.from_config(str(home))


@contextlib.contextmanager
def sqlite_normal_sync() -> Iterator[None]:
    """While recording, Dagster's SQLite storage (WAL) commits without an fsync per event
    (``synchronous=NORMAL``: a power cut may lose the last events of the record, never corrupt
    it); with an fsync per event, recording one business day took twice as long. Dagster exposes
    no setting for it, so the pragma is set on each SQLite connection opened meanwhile."""
    import sqlalchemy as sa

    def normal(dbapi_connection, _record) -> None:
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    sa.event.listen(sa.engine.Engine, "connect", normal)
    try:
        yield
    finally:
        sa.event.remove(sa.engine.Engine, "connect", normal)
