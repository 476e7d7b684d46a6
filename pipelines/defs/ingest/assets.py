"""One partitioned asset per source table or file kind, built from its data contract; each runs
the cycle's landing stage for its table and day (``pipelines.cycle.land_table``)."""

import datetime as dt

import dagster as dg

from pipelines import cycle
from pipelines.defs.ingest import checks
from pipelines.defs.ingest.partitions import daily
from pipelines.defs.record import check_result, landing_metadata
from pipelines.lib.contracts import Contract, load_contracts
from pipelines.resources import (
    AlertsResource,
    LakeResource,
    ShopDatabasesResource,
    SourcesResource,
    as_cycle,
)

KINDS = {
    "database": {"sql", "parquet"},
    "alipay": {"csv", "parquet"},
    "wechat": {"csv", "parquet"},
    "supplier": {"csv", "excel", "parquet"},
    "crm": {"json", "parquet"},
}
#: raw data a day late is stale: the daily schedule runs at 00:30, the statements arrive by morning
FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=30), warn_window=dt.timedelta(hours=26)
)
RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)


def _column_schema(contract: Contract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.landed_name,
                str(c.landed_dtype),
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
                description=("PII · " if c.pii else "")
                + (f"keyed hash ({c.protect.form}) · " if c.protect else "")
                + (f"source: {', '.join(c.source_names)}" if c.source_names else c.type),
            )
            for c in contract.columns
        ]
    )


def raw_asset(contract: Contract) -> dg.AssetsDefinition:
    @dg.asset(
        name=contract.asset_name,
        description=contract.description,
        group_name=contract.group,
        owners=[contract.owner],
        kinds=KINDS[contract.source["kind"]],
        partitions_def=daily,
        check_specs=checks.check_specs(contract),
        retry_policy=RETRY,
        freshness_policy=FRESHNESS,
        code_version=f"contract-v{contract.version}",
        metadata={
            "contract": str(contract.path.name),
            "dagster/column_schema": _column_schema(contract),
            "source": dg.MetadataValue.json(contract.source),
        },
    )
    def _raw(
        context: dg.AssetExecutionContext,
        sources: SourcesResource,
        shop_dbs: ShopDatabasesResource,
        lake: LakeResource,
        alerting: AlertsResource,
    ) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        run = as_cycle(sources, shop_dbs, lake, alerting)
        # retried by the asset's retry policy, not inside the stage
        t = cycle.land_table(run, contract, day, retries=0)
        r = t.result
        context.log.info(
            f"{contract.dataset} {day}: read {r.read}, landed {r.landed}, "
            f"quarantined {r.quarantined}, skipped {r.skipped}"
        )
        meta = landing_metadata(t)
        meta["path"] = dg.MetadataValue.path(
            str(lake.lake.partition_dir("raw", contract.dataset, day))
        )
        return dg.MaterializeResult(
            metadata=meta, check_results=[check_result(c) for c in t.checks]
        )

    return _raw


def raw_assets() -> list[dg.AssetsDefinition]:
    return [raw_asset(c) for c in load_contracts().values()]
