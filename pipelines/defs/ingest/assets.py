"""One partitioned asset per source table or file kind, built from its data contract."""

import datetime as dt
import time

import dagster as dg

from pipelines.defs.ingest import checks
from pipelines.defs.ingest.partitions import daily
from pipelines.lib.contracts import Contract, load_contracts
from pipelines.lib.ingest import ingest
from pipelines.resources import LakeResource, ShopDatabasesResource, SourcesResource

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
    ) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        started = time.perf_counter()
        result = ingest(contract, day, lake.lake, sources.path, shop_dbs.urls())
        landed_at = time.perf_counter()
        context.log.info(
            f"{contract.dataset} {day}: read {result.read}, landed {result.landed}, "
            f"quarantined {result.quarantined}, skipped {result.skipped}"
        )
        meta = {
            "read": result.read,
            "landed": result.landed,
            "quarantined": result.quarantined,
            "skipped": result.skipped,
            "dagster/row_count": result.landed,
            "quarantine_rules": dg.MetadataValue.json(result.detail.get("rules", {})),
            "path": dg.MetadataValue.path(
                str(lake.lake.partition_dir("raw", contract.dataset, day))
            ),
        }
        if "files" in result.detail:
            meta["files"] = dg.MetadataValue.json(result.detail["files"])
        if result.detail.get("window"):
            meta["window"] = result.detail["window"]
            meta["watermark"] = str(result.detail.get("watermark"))
        check_results = [
            checks.row_accounting(contract, lake.lake, day),
            checks.contract_gx(contract, lake.lake, day),
            checks.volume(contract, lake.lake, day),
        ]
        # where a landing's time goes (the daily cycle's benchmark splits landing from checks)
        meta["land_s"] = round(landed_at - started, 3)
        meta["checks_s"] = round(time.perf_counter() - landed_at, 3)
        return dg.MaterializeResult(metadata=meta, check_results=check_results)

    return _raw


def raw_assets() -> list[dg.AssetsDefinition]:
    return [raw_asset(c) for c in load_contracts().values()]
