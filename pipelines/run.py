"""``cardlake run``: the whole daily cycle in-process, one business day after another.

The cycle lands every source for each day (validated, accounted, checked), then runs the dbt
models and their tests once over the lake, then publishes the marts (Parquet under lake/marts and
the serving file lake/warehouse.duckdb). Reports join it when they are built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg

from pipelines.defs.ingest.assets import raw_assets
from pipelines.lib.contracts import load_contracts
from pipelines.lib.dbt import run_dbt
from pipelines.lib.extract import version_range
from pipelines.lib.ingest import discover
from pipelines.lib.lake import Lake
from pipelines.lib.publish import Publication, publish
from pipelines.resources import default_resources


@dataclasses.dataclass
class DayOutcome:
    day: dt.date
    success: bool
    seconds: float
    landed: int
    quarantined: int
    skipped: int
    failures: list[str]
    #: seconds the day's landing steps spent reading, validating and writing, and checking (summed
    #: over the tables: two lanes run side by side, so these add up to more than ``seconds``)
    land_s: float = 0.0
    checks_s: float = 0.0


def _innermost(error) -> str:
    """The message of the root cause of a Dagster error info, in one line."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return " ".join(str(error.message).split())


def pending_days(
    sources: Path, lake: Path, urls: dict[str, str], now: dt.datetime | None = None
) -> list[dt.date]:
    """The days an incremental run lands: from the last day already landed (again, as it may
    have been landed before it was complete) to the last day the sources hold; every source day
    when the lake is empty."""
    days = source_days(sources, urls, now)
    store = Lake(lake)
    landed = [d for c in load_contracts().values() for d in store.states(c.dataset)]
    if not landed:
        return days
    resume = max(landed)
    return [d for d in days if d >= resume]


def source_days(
    sources: Path, urls: dict[str, str], now: dt.datetime | None = None
) -> list[dt.date]:
    """Every business day the sources hold data for, from the first to the last."""
    now = now or dt.datetime.now(dt.UTC)
    days: set[dt.date] = set()
    for contract in load_contracts().values():
        if contract.source["kind"] == "database":
            span = version_range(contract, urls[contract.source["database"]], now)
            if span:
                days.update(span)
        else:
            days.update(discover(sources, contract))
    if not days:
        return []
    first, last = min(days), max(days)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


#: the console logger of a run: one line a day from cardlake, the event log stays in the instance
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _lanes(assets: list[dg.AssetsDefinition]) -> list[list[dg.AssetsDefinition]]:
    """Two lanes of about equal work, run side by side on the two cores: the main shop's tables
    in one, the substation's and the files in the other."""
    main = [a for a in assets if a.key.to_user_string().startswith("raw_shop__")]
    rest = [a for a in assets if a not in main]
    return [main, rest]


#: what a day's outcome adds up over its tables' materializations
_TOTALS = ("landed", "quarantined", "skipped", "land_s", "checks_s")


def _materialize_day(assets, day: dt.date, resources) -> tuple[list[str], dict[str, float]]:
    # an instance per lane, created and disposed in the lane's thread (its SQLite storage may
    # only be touched by the thread that opened it)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            assets,
            partition_key=day.isoformat(),
            resources=resources,
            instance=instance,
            raise_on_error=False,
            tags={"cardlake/run": "cli"},
            run_config=QUIET,
        )
        return _outcome(result)


def _outcome(result: dg.ExecuteInProcessResult) -> tuple[list[str], dict[str, float]]:
    failures = [
        f"{e.asset_key.to_user_string()} · {e.check_name}: "
        + ", ".join(
            f"{k}={v.value}"
            for k, v in e.metadata.items()
            if k in ("read", "landed", "quarantined", "skipped", "duplicate_keys", "failed")
        )
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    causes: dict[str, str] = {}  # the error behind a step's retries, not "retries exceeded"
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if event.event_type_value == "STEP_UP_FOR_RETRY" and error is not None:
            causes[event.step_key] = _innermost(error)
        elif event.is_step_failure and error is not None:
            failures.append(f"{event.step_key}: {causes.get(event.step_key) or _innermost(error)}")
    totals: dict[str, float] = dict.fromkeys(_TOTALS, 0)
    for mat in result.get_asset_materialization_events():
        meta = mat.materialization.metadata
        for key in totals:
            if key in meta:
                totals[key] += meta[key].value
    if not result.success and not failures:
        failures.append("the run failed without a step error (see the Dagster event log)")
    return failures, totals


def run_cycle(
    sources: Path,
    lake: Path,
    days: list[dt.date],
    shop_db_url: str | None = None,
    substation_db_url: str | None = None,
    on_day: Callable[[DayOutcome], None] | None = None,
) -> list[DayOutcome]:
    """Materialise every raw asset for each day in order; stop at the first day that fails.

    Each day runs as two Dagster runs side by side (threads: the heavy work is in polars, DuckDB
    and the database drivers, which release the GIL), each on its own ephemeral instance.
    """
    resources = default_resources(sources, lake, shop_db_url, substation_db_url)
    lanes = _lanes(raw_assets())
    outcomes = []
    with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="cardlake-lane") as pool:
        for day in days:
            started = dt.datetime.now()
            results = list(
                pool.map(lambda lane, d=day: _materialize_day(lane, d, resources), lanes)
            )
            failures = [f for fs, _ in results for f in fs]
            totals = {k: sum(t[k] for _, t in results) for k in _TOTALS}
            outcome = DayOutcome(
                day,
                not failures,
                (dt.datetime.now() - started).total_seconds(),
                landed=int(totals["landed"]),
                quarantined=int(totals["quarantined"]),
                skipped=int(totals["skipped"]),
                failures=failures,
                land_s=round(totals["land_s"], 3),
                checks_s=round(totals["checks_s"], 3),
            )
            outcomes.append(outcome)
            if on_day:
                on_day(outcome)
            if not outcome.success:
                break
    return outcomes


class Stages:
    """The wall clock of a run's stages (ingest, models, publish, reports, tickets), written as
    JSON when the run ends, however it ends: ``cardlake run --timings FILE``. Each stage has its
    start and end (Unix time, so a sampler outside the process can attribute memory to it), its
    seconds and what the stage reported about itself."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.stages: list[dict] = []

    @contextlib.contextmanager
    def stage(self, name: str, **detail) -> Iterator[dict]:
        """Time the block as stage ``name``; the block may add to the yielded detail."""
        entry = {"stage": name, "start": time.time(), **detail}
        started = time.perf_counter()
        try:
            yield entry
        finally:
            entry["seconds"] = round(time.perf_counter() - started, 3)
            entry["end"] = time.time()
            self.stages.append(entry)
            self.write()

    def write(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"stages": self.stages}, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)


@dataclasses.dataclass
class ModelsOutcome:
    """What modelling and publishing did after the days were landed."""

    models: int
    tests: int
    dbt_seconds: float
    publication: Publication


def model_and_publish(
    lake: Path, days: list[dt.date], full_refresh: bool = False, stages: Stages | None = None
) -> ModelsOutcome:
    """``dbt build`` (every model and test) on the lake, then publish the marts for ``days`` (and
    any other day whose marts changed, e.g. through a late refund). A failing model or test raises
    ``DbtError`` and nothing is published: readers keep the previous snapshot. ``full_refresh``
    rebuilds the incremental models from all of the lake and republishes everything (after an
    upgrade that changed one of them, or to check the incremental state)."""
    stages = stages or Stages(None)
    args = ["--full-refresh"] if full_refresh else []
    with stages.stage("models") as built:
        nodes = run_dbt(lake, "build", args, days=[d.isoformat() for d in days])
        built["models"] = sum(n["node"].startswith("model.") for n in nodes)
        built["tests"] = sum(n["node"].startswith(("test.", "unit_test.")) for n in nodes)
        # the slowest nodes, as dbt timed them
        built["slowest"] = {
            n["node"]: round(n["seconds"], 2)
            for n in sorted(nodes, key=lambda n: n.get("seconds") or 0, reverse=True)[:15]
            if n.get("seconds") is not None
        }
    with stages.stage("publish") as detail:
        publication = publish(lake, changed_days=None if full_refresh else days)
        detail["files_written"] = publication.files_written
        detail["phases"] = publication.phases
    return ModelsOutcome(
        models=built["models"],
        tests=built["tests"],
        dbt_seconds=built["seconds"],
        publication=publication,
    )
