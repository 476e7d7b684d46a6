"""The daily cycle, declared once.

    land(days) → models(days, selection) → publish(days) → reports(days) → tickets()

``STAGES`` names the stages in the order ``run`` runs them; ``run`` is the one function that
sequences them. Its callers:

- ``cardlake run`` (``pipelines/cli/run.py``): a scope of business days, printed and timed;
- the live session (``pipelines/defs/live/sensors.py``): ``live_scope(today)``, again on every
  change in the shop databases;
- the Dagster assets run one stage each (``land_table``, ``build_models``, ``publish``,
  ``reports``, ``tickets``), their dependencies following ``STAGES``
  (``pipelines/defs/__init__.py`` checks that they do).

Every stage, and ``run`` around them, holds the lake's writer lock (``pipelines.lib.writer``):
whichever path calls them, one writer at a time writes the lake, and a second one waits.

This module imports no Dagster: it is the platform's plain-Python core, and Dagster records what
it did (``pipelines/defs/record.py``) whichever path ran it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipelines.lib import settings
from pipelines.lib.calendar import span
from pipelines.lib.checks import CheckOutcome, check_partition
from pipelines.lib.contracts import Contract, load_contracts
from pipelines.lib.dbt import DbtProject, full_refresh_reason, record_full_build
from pipelines.lib.extract import version_range
from pipelines.lib.ingest import IngestResult, discover, ingest
from pipelines.lib.lake import Lake
from pipelines.lib.live import live_contracts
from pipelines.lib.publish import Publication
from pipelines.lib.publish import publish as publish_marts
from pipelines.lib.settlement import Outcome, ReportKey, produce
from pipelines.lib.tickets import SyncResult, sync
from pipelines.lib.writer import writing

#: the stages of the cycle, in the order they run
STAGES = ("land", "models", "publish", "reports", "tickets")
#: a table whose landing raised (a database briefly away, say) is tried this many more times
RETRIES = 2
#: the models today's shop tables feed, and those over the lake's own accounts of what landed
#: (ingest state, quarantine), with their tests: what a live pass rebuilds
LIVE_SELECTION = ("source:shop+", "source:substation+", "source:lake+")


def _writes(stage: Callable[..., Any]) -> Callable[..., Any]:
    """The stage holds the lake's writer lock while it runs (re-entrant: ``run`` holds it too)."""

    @functools.wraps(stage)
    def locked(cycle: Cycle, *args: Any, **kwargs: Any) -> Any:
        with writing(cycle.lake):
            return stage(cycle, *args, **kwargs)

    return locked


@dataclasses.dataclass(frozen=True)
class Cycle:
    """Where a cycle reads and writes: the lake, the sources, the shop databases, alert routing."""

    lake: Lake
    sources: Path
    urls: Mapping[str, str]
    alerts: settings.AlertRouting

    @classmethod
    def configure(
        cls,
        sources: Path | None = None,
        lake: Lake | Path | None = None,
        shop_db_url: str | None = None,
        substation_db_url: str | None = None,
    ) -> Cycle:
        """The cycle over these paths, each defaulting to the environment (``lib.settings``)."""
        src = Path(sources or settings.sources_root()).resolve()
        return cls(
            lake=Lake.of(lake or settings.lake_root()),
            sources=src,
            urls=settings.shop_db_urls(src, shop_db_url, substation_db_url),
            alerts=settings.AlertRouting.default(),
        )


@dataclasses.dataclass(frozen=True)
class Scope:
    """What one run of the cycle covers: its business days, the tables it lands (None: every
    contract), the models it builds (empty: the whole project), whether it produces reports."""

    days: tuple[dt.date, ...]
    contracts: tuple[Contract, ...] | None = None
    selection: tuple[str, ...] = ()
    full_refresh: bool = False
    build: bool = True
    reports: bool = True
    #: who ran it: ``cli``, ``live``, ``dagster`` (recorded with the run)
    trigger: str = "cli"


def live_scope(day: dt.date) -> Scope:
    """A live pass: today's shop tables, the models they feed, no reports (settlement waits for
    the statements of the day, which arrive the morning after)."""
    return Scope(
        days=(day,),
        contracts=live_contracts(),
        selection=LIVE_SELECTION,
        reports=False,
        trigger="live",
    )


def source_days(cycle: Cycle, now: dt.datetime | None = None) -> list[dt.date]:
    """Every business day the sources hold data for, from the first to the last."""
    now = now or dt.datetime.now(dt.UTC)
    days: set[dt.date] = set()
    for contract in load_contracts().values():
        if contract.source["kind"] == "database":
            days.update(version_range(contract, cycle.urls[contract.source["database"]], now) or [])
        else:
            days.update(discover(cycle.sources, contract))
    return span(days)


def pending_days(cycle: Cycle, now: dt.datetime | None = None) -> list[dt.date]:
    """The days an incremental run lands: from the last day already landed (again, as it may
    have been landed before it was complete) to the last day the sources hold; every source day
    when the lake is empty."""
    days = source_days(cycle, now)
    landed = [d for c in load_contracts().values() for d in cycle.lake.states(c.dataset)]
    return [d for d in days if d >= max(landed)] if landed else days


# ------------------------------------------------------------------------------------- land
@dataclasses.dataclass
class TableLanding:
    """One table (or file kind) landed for one day, with its checks."""

    contract: Contract
    day: dt.date
    result: IngestResult | None
    checks: list[CheckOutcome]
    land_s: float
    checks_s: float
    error: str | None = None

    @property
    def failures(self) -> list[str]:
        """Why this landing blocks the cycle (a blocking check failed, or landing raised)."""
        out = [c.describe() for c in self.checks if c.blocking and not c.passed]
        return out + ([f"{self.contract.dataset} {self.day}: {self.error}"] if self.error else [])


@dataclasses.dataclass
class DayLanding:
    """Every table of one business day landed."""

    day: dt.date
    tables: list[TableLanding]
    seconds: float

    @property
    def failures(self) -> list[str]:
        return [f for t in self.tables for f in t.failures]

    @property
    def success(self) -> bool:
        return not self.failures

    def total(self, field: str) -> int:
        return sum(getattr(t.result, field) for t in self.tables if t.result is not None)

    @property
    def land_s(self) -> float:
        return sum(t.land_s for t in self.tables)

    @property
    def checks_s(self) -> float:
        return sum(t.checks_s for t in self.tables)


@_writes
def land_table(cycle: Cycle, contract: Contract, day: dt.date, retries: int = 0) -> TableLanding:
    """Land ``day`` of one contract's dataset (the partition replaced whole) and check it; a
    landing that raises is tried ``retries`` more times, then raises."""
    started = time.perf_counter()
    for attempt in range(retries + 1):
        try:
            result = ingest(contract, day, cycle.lake, cycle.sources, dict(cycle.urls))
            break
        except Exception:
            if attempt == retries:
                raise
            time.sleep(2 * 2**attempt)
    landed = time.perf_counter()
    checks = check_partition(contract, cycle.lake, day)
    return TableLanding(
        contract,
        day,
        result,
        checks,
        land_s=round(landed - started, 3),
        checks_s=round(time.perf_counter() - landed, 3),
    )


def _lanes(contracts: Sequence[Contract]) -> list[list[Contract]]:
    """Two lanes of about equal work, run side by side on the two cores: the main shop's tables
    in one, the substation's and the files in the other (the heavy work is in polars, DuckDB and
    the database drivers, which release the GIL)."""
    main = [c for c in contracts if c.asset_name.startswith("raw_shop__")]
    return [main, [c for c in contracts if c not in main]]


def _land_lane(cycle: Cycle, contracts: list[Contract], day: dt.date) -> list[TableLanding]:
    out = []
    for contract in contracts:
        try:
            out.append(land_table(cycle, contract, day, retries=RETRIES))
        except Exception as exc:  # reported as the day's failure; the other tables still land
            message = " ".join(str(exc).split()) or type(exc).__name__
            out.append(TableLanding(contract, day, None, [], 0.0, 0.0, error=message))
    return out


@_writes
def land(
    cycle: Cycle,
    days: Sequence[dt.date],
    contracts: Sequence[Contract] | None = None,
    on_day: Callable[[DayLanding], None] | None = None,
) -> list[DayLanding]:
    """Land every table for each day in order, checking each; stop after the first day whose
    landing failed a blocking check (the days after it would build on a hole)."""
    lanes = _lanes(list(contracts if contracts is not None else load_contracts().values()))
    out = []
    with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="cardlake-lane") as pool:
        for day in days:
            started = time.perf_counter()
            done = pool.map(lambda lane, d=day: _land_lane(cycle, lane, d), lanes)
            tables = [t for lane in done for t in lane]
            landing = DayLanding(day, tables, time.perf_counter() - started)
            out.append(landing)
            if on_day:
                on_day(landing)
            if not landing.success:
                break
    return out


# ----------------------------------------------------------------------------------- models
@dataclasses.dataclass
class ModelsBuilt:
    """What ``dbt build`` did: its nodes (``pipelines.lib.dbt``) and its wall time."""

    days: tuple[dt.date, ...]
    nodes: list[dict]
    seconds: float
    #: why every model was rebuilt from the whole lake (None: an incremental build)
    full_refresh: str | None = None

    @property
    def models(self) -> list[str]:
        """The models built, by name."""
        return [
            n["node"].split(".")[-1]
            for n in self.nodes
            if n["node"].startswith("model.") and n["status"] == "success"
        ]

    @property
    def tests(self) -> int:
        return sum(n["node"].startswith(("test.", "unit_test.")) for n in self.nodes)

    def slowest(self, n: int = 15) -> dict[str, float]:
        timed = [x for x in self.nodes if x.get("seconds") is not None]
        timed.sort(key=lambda x: x["seconds"], reverse=True)
        return {x["node"]: round(x["seconds"], 2) for x in timed[:n]}


@_writes
def build_models(
    cycle: Cycle,
    days: Sequence[dt.date],
    selection: Sequence[str] = (),
    full_refresh: bool = False,
) -> ModelsBuilt:
    """``dbt build`` of ``selection`` (default: every model) for ``days``, with the data tests;
    raises ``DbtError`` when a model or test fails (nothing is published then).

    The safety valve: the build is a full refresh when asked, when the models, macros or seeds
    changed since the last full build (incremental runs never revisit history, and a new coding
    rule or model changes it), or when the run's days hold most of the lake's rows (a catch-up:
    most keys would be rebuilt anyway); ``ModelsBuilt.full_refresh`` says why. Only a full build
    of the whole project lets incremental runs follow."""
    started = time.perf_counter()
    reason = "asked for (--full-refresh)" if full_refresh else full_refresh_reason(cycle.lake, days)
    nodes = DbtProject(cycle.lake).build(
        days, select=selection, full_refresh=reason is not None, unit_tests=full_refresh
    )
    if reason is not None and not selection:
        record_full_build(cycle.lake)
    return ModelsBuilt(tuple(days), nodes, time.perf_counter() - started, reason)


# ---------------------------------------------------------------- publish, reports, tickets
@_writes
def publish(cycle: Cycle, days: Sequence[dt.date] | None, run_id: str | None = None) -> Publication:
    """Publish the marts for ``days`` (and any day whose marts changed); None: every day."""
    return publish_marts(cycle.lake, changed_days=days, run_id=run_id)


@_writes
def reports(
    cycle: Cycle, days: Sequence[dt.date] | None = None, keys: Sequence[ReportKey] | None = None
) -> list[Outcome]:
    """The settlement reports that are due among those of ``days`` (and any earlier one whose
    data changed), or exactly ``keys``: each published anew when its content changed and it ties
    out, held when it does not."""
    return produce(cycle.lake, keys=keys, days=days)


@_writes
def tickets(cycle: Cycle) -> SyncResult:
    """Tickets and messages for the published alerts; raises ``RouteConfigError`` for a
    malformed routing file (before anything is changed)."""
    routes, _skipped = cycle.alerts.routes()
    return sync(cycle.lake, routes, delivery=cycle.alerts.delivery(), link=cycle.alerts.link())


# -------------------------------------------------------------------------------- the cycle
@dataclasses.dataclass
class StageRecord:
    """A stage as it ran: wall-clock start and end (Unix time, so that a sampler outside the
    process can attribute memory to it), seconds, and what the stage says about itself."""

    stage: str
    start: float
    end: float
    seconds: float
    detail: dict[str, Any]


class Observer:
    """Told what the cycle does as it goes (printing, timing files, the Dagster record)."""

    def stage_started(self, name: str, scope: Scope) -> None:
        """Before each stage."""

    def day_landed(self, landing: DayLanding) -> None:
        """After each business day is landed."""

    def stage_finished(self, record: StageRecord, outcome: Any, scope: Scope) -> None:
        """After each stage that completed."""


class Observers(Observer):
    """Several observers, told in turn."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def stage_started(self, name: str, scope: Scope) -> None:
        for o in self.observers:
            o.stage_started(name, scope)

    def day_landed(self, landing: DayLanding) -> None:
        for o in self.observers:
            o.day_landed(landing)

    def stage_finished(self, record: StageRecord, outcome: Any, scope: Scope) -> None:
        for o in self.observers:
            o.stage_finished(record, outcome, scope)


@dataclasses.dataclass
class CycleResult:
    scope: Scope
    landings: list[DayLanding] = dataclasses.field(default_factory=list)
    models: ModelsBuilt | None = None
    publication: Publication | None = None
    reports: list[Outcome] = dataclasses.field(default_factory=list)
    tickets: SyncResult | None = None
    stages: list[StageRecord] = dataclasses.field(default_factory=list)

    @property
    def failed_landing(self) -> DayLanding | None:
        return next((d for d in self.landings if not d.success), None)

    @property
    def held(self) -> list[Outcome]:
        return [o for o in self.reports if o.status == "held"]


def stage_detail(name: str, outcome: Any) -> dict[str, Any]:
    """What a stage reports about itself (the timings file, Dagster's metadata)."""
    if name == "land":
        return {
            "days": len(outcome),
            "landed": sum(d.total("landed") for d in outcome),
            "quarantined": sum(d.total("quarantined") for d in outcome),
            # step time summed over the tables of both lanes: landing vs the blocking checks
            "land_step_s": round(sum(d.land_s for d in outcome), 2),
            "checks_step_s": round(sum(d.checks_s for d in outcome), 2),
        }
    if name == "models":
        return {
            "models": len(outcome.models),
            "tests": outcome.tests,
            "full_refresh": outcome.full_refresh,
            "slowest": outcome.slowest(),
        }
    if name == "publish":
        return {
            "files_written": outcome.files_written,
            "phases": outcome.phases,
            "from_logs": list(outcome.from_logs),
            "digested": outcome.digested,
            "compacted": outcome.compacted,
        }
    if name == "reports":
        return {s: sum(o.status == s for o in outcome) for s in ("published", "unchanged", "held")}
    if name == "tickets":
        return {"opened": outcome.opened, "resolved": outcome.resolved, "sent": outcome.sent}
    return {}


@_writes
def run(cycle: Cycle, scope: Scope, observer: Observer | None = None) -> CycleResult:
    """Run the cycle's stages in order over ``scope``. Stops after landing when a day failed a
    blocking check (``result.failed_landing``); a failing model or test raises ``DbtError`` and
    nothing is published. Reports that do not tie out are held (``result.held``) and the tickets
    still follow."""
    observer = observer or Observer()
    result = CycleResult(scope)
    days = list(scope.days)

    def stage(name: str, call: Callable[[], Any]) -> Any:
        observer.stage_started(name, scope)
        start, started = time.time(), time.perf_counter()
        outcome = call()
        seconds = time.perf_counter() - started
        record = StageRecord(
            name, start, time.time(), round(seconds, 3), stage_detail(name, outcome)
        )
        result.stages.append(record)
        observer.stage_finished(record, outcome, scope)
        return outcome

    steps: dict[str, Callable[[], Any]] = {
        "land": lambda: land(cycle, days, scope.contracts, on_day=observer.day_landed),
        "models": lambda: build_models(cycle, days, scope.selection, scope.full_refresh),
        "publish": lambda: publish(cycle, None if _rebuilt_in_full(result) else days),
        "reports": lambda: reports(cycle, days),
        "tickets": lambda: tickets(cycle),
    }
    assert tuple(steps) == STAGES
    for name in STAGES:
        if name != "land" and not scope.build:
            break
        if name == "reports" and not scope.reports:
            continue
        setattr(result, _RESULT_FIELD[name], stage(name, steps[name]))
        if result.failed_landing:
            break
    return result


def _rebuilt_in_full(result: CycleResult) -> bool:
    """Whether this run rebuilt the models in full (then every day is published again)."""
    return result.scope.full_refresh or bool(result.models and result.models.full_refresh)


#: where each stage's outcome goes in a ``CycleResult``
_RESULT_FIELD = {
    "land": "landings",
    "models": "models",
    "publish": "publication",
    "reports": "reports",
    "tickets": "tickets",
}
