"""The dbt models as Dagster assets (dagster-dbt): each model an asset downstream of the raw
assets it reads (the dbt sources carry the raw assets' keys), dbt tests as asset checks, and the
daily partition passed to dbt as the business days to (re)build. Publishing follows the marts."""

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from pipelines.defs.ingest.partitions import daily
from pipelines.lib.dbt import ensure_manifest, temporary_environ
from pipelines.lib.publish import publish
from pipelines.resources import LakeResource, ModelsResource, lake_root

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


def partition_days(context: dg.AssetExecutionContext) -> list[str]:
    """The business days of the run's partition range (a backfill may cover many)."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return []
    window = context.partition_time_window
    first = window.start.date()
    n = (window.end.date() - first).days
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(n)]


class DbtBuildConfig(dg.Config):
    """How a run builds the models. The live job leaves out dbt's unit tests: they test the SQL
    on fixed inputs, not the day's data, and run in the nightly build and in CI."""

    unit_tests: bool = True


@dbt_assets(
    manifest=ensure_manifest(lake_root()),
    dagster_dbt_translator=TRANSLATOR,
    partitions_def=daily,
    name="cardlake_models",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def cardlake_models(
    context: dg.AssetExecutionContext, models: ModelsResource, config: DbtBuildConfig
):
    """`dbt build` of the project for the run's business days: staging, intermediate, marts and
    their tests. A failing test fails its asset check, which stops publishing."""
    args = ["build", "--vars", json.dumps({"cardlake_days": partition_days(context)})]
    if not config.unit_tests:
        args += ["--exclude", "resource_type:unit_test"]
    with temporary_environ(models.environment()):
        # one target folder per lake, not one per run: dbt then re-parses only what changed
        # (runs that build the models never overlap: the run queue's cardlake/dbt limit)
        invocation = models.cli_resource().cli(
            args, context=context, target_path=models.target_path()
        )
        yield from invocation.stream()


@dg.asset(
    key="warehouse",
    deps=[cardlake_models],
    partitions_def=daily,
    group_name="serving",
    kinds={"duckdb", "parquet"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def warehouse(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """The published marts: Parquet under lake/marts/ and the read-only serving file
    lake/warehouse.duckdb, swapped in atomically after the models built and passed their tests."""
    days = [dt.date.fromisoformat(d) for d in partition_days(context)] or None
    result = publish(lake.lake.root, changed_days=days, run_id=context.run_id)
    return dg.MaterializeResult(
        metadata={
            "run_id": result.run_id,
            "marts": len(result.marts),
            "rows": dg.MetadataValue.json(result.rows),
            "seconds": result.seconds,
        }
    )
