"""The dbt models as Dagster assets: dagster-dbt declares each model an asset downstream of the
raw assets it reads (the dbt sources carry the raw assets' keys) and each data test an asset
check; the cycle's one dbt runner (``pipelines.cycle.build_models``) builds them for the daily
partition's business days. Publishing follows the marts."""

import datetime as dt
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from pipelines import cycle
from pipelines.defs.ingest.partitions import daily
from pipelines.defs.record import dbt_check_key, dbt_test_passed, publication_metadata
from pipelines.lib.calendar import day_range
from pipelines.lib.dbt import DbtError, ensure_manifest
from pipelines.lib.settings import lake_root
from pipelines.resources import (
    AlertsResource,
    LakeResource,
    ShopDatabasesResource,
    SourcesResource,
    as_cycle,
    lake_cycle,
)

MODELS_GROUP = {"staging": "staging", "intermediate": "intermediate", "marts": "marts"}


class CardlakeTranslator(DagsterDbtTranslator):
    """A model's asset key is its name (the names are unique and say what the data is); each model
    is grouped by its layer (staging, intermediate, marts), seeds go with the rules."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "rules"
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] == "model" and len(fqn) > 1:
            return MODELS_GROUP.get(fqn[1], "models")
        return super().get_group_name(dbt_resource_props)


TRANSLATOR = CardlakeTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=False)
)


def partition_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The business days of the run's partition range (a backfill may cover many)."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return []
    window = context.partition_time_window
    return day_range(window.start.date(), window.end.date() - dt.timedelta(days=1))


def _selection(context: dg.AssetExecutionContext) -> list[str]:
    """dbt's ``--select`` for the run's subset of the models (empty: all of them)."""
    if context.selected_asset_keys >= set(cardlake_models.keys):
        return []
    return sorted(key.path[-1] for key in context.selected_asset_keys)


def _dbt_events(context: dg.AssetExecutionContext, nodes: list[dict]):
    """A materialization per model built and a check result per data test (dagster-dbt's asset
    checks), from the one dbt runner's node results."""
    selected, checks = context.selected_asset_keys, context.selected_asset_check_keys
    for node in nodes:
        kind, *_, name = node["node"].split(".")
        if kind in ("model", "seed") and node["status"] == "success":
            if dg.AssetKey(name) not in selected:
                continue
            yield dg.MaterializeResult(
                asset_key=name, metadata={"dbt_seconds": node.get("seconds") or 0.0}
            )
        elif kind == "test" and (key := dbt_check_key(node["node"])) in checks:
            yield dg.AssetCheckResult(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=dbt_test_passed(node),
                metadata={"status": node["status"], "message": node.get("message") or ""},
            )


@dbt_assets(
    manifest=ensure_manifest(lake_root()),
    dagster_dbt_translator=TRANSLATOR,
    partitions_def=daily,
    name="cardlake_models",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def cardlake_models(
    context: dg.AssetExecutionContext,
    sources: SourcesResource,
    shop_dbs: ShopDatabasesResource,
    lake: LakeResource,
    alerting: AlertsResource,
):
    """The cycle's models stage (``pipelines.cycle.build_models``): `dbt build` of the project for
    the run's business days, staging, intermediate, marts and their data tests. A failing test
    fails its asset check, which stops publishing."""
    run = as_cycle(sources, shop_dbs, lake, alerting)
    try:
        built = cycle.build_models(run, partition_days(context), _selection(context))
    except DbtError as exc:
        yield from _dbt_events(context, exc.nodes)
        raise dg.Failure(description=str(exc)) from exc
    yield from _dbt_events(context, built.nodes)


@dg.asset(
    key="warehouse",
    deps=[cardlake_models],
    partitions_def=daily,
    group_name="serving",
    kinds={"duckdb", "parquet"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def warehouse(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """The cycle's publish stage: the marts as Parquet under lake/marts/ and the read-only
    serving file lake/warehouse.duckdb, swapped in atomically after the models built and passed
    their tests."""
    result = cycle.publish(lake_cycle(lake), partition_days(context) or None, run_id=context.run_id)
    return dg.MaterializeResult(metadata=publication_metadata(result))
