"""``cardlake run``: the daily cycle (``pipelines.cycle``) for a range of business days. This
module chooses the days; the cycle decides the order of its stages; ``cycle_report`` prints,
times and records what they did.

(`pipelines/cli/__init__.py` registers the command on the app.)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.cycle_report import run_and_report
from pipelines.cli.render import console


def run(
    sources: Annotated[
        Path | None, typer.Option(help="Sources folder [default: $CARDLAKE_SOURCES or ./sources].")
    ] = None,
    lake: Annotated[
        Path | None, typer.Option(help="Lake root [default: $CARDLAKE_LAKE or ./lake].")
    ] = None,
    start: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="First business day [default: the first day the sources hold].",
        ),
    ] = None,
    end: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Last business day [default: the last day the sources hold]."
        ),
    ] = None,
    shop_db_url: Annotated[
        str | None,
        typer.Option(help="Main shop database URL [default: the SQLite file in the sources]."),
    ] = None,
    substation_db_url: Annotated[str | None, typer.Option(help="Substation database URL.")] = None,
    all_days: Annotated[
        bool,
        typer.Option(
            "--all", help="Land every day the sources hold, not just the days since the last run."
        ),
    ] = False,
    skip_models: Annotated[
        bool, typer.Option("--skip-models", help="Only land the sources; no models, no publishing.")
    ] = False,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild the incremental models from the whole lake and republish every mart "
            "(after an upgrade that changed one of them).",
        ),
    ] = False,
    timings: Annotated[
        Path | None,
        typer.Option(
            help="Write the wall time of each stage (land, models, publish, reports, tickets) "
            "to this JSON file, as the run goes.",
        ),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Seconds to wait while another writer (a run, a Dagster run, the live session) "
            "holds the lake, then give up [default: $CARDLAKE_LOCK_WAIT or 600].",
        ),
    ] = None,
) -> None:
    """Run the daily cycle for those business days: land every source in the lake (validated,
    quarantined, accounted, checked), build the dbt models and their tests, publish the marts to
    lake/marts and lake/warehouse.duckdb, produce the settlement reports that are due and sync the
    alert tickets. Exits non-zero when a blocking check or test fails. The run is recorded in the
    project's Dagster instance (job `cardlake_run`), so the Dagster UI shows what it did.

    Without dates it is incremental: it lands from the last day already in the lake (again,
    as that day may have been incomplete) to the last day the sources hold.

    One writer at a time: while another holds the lake, the run waits (`--wait`), then exits 3
    naming the holder.

    Example: `cardlake run --start 2026-10-01 --end 2026-10-07`
    """
    from pipelines import cycle
    from pipelines.lib.writer import LakeBusy, writing

    run_on = cycle.Cycle.configure(sources, lake, shop_db_url, substation_db_url)
    if not run_on.sources.exists():
        console.print(
            f"[red]no sources at {run_on.sources}[/]: run `cardlake simulate` or point --sources "
            "at them"
        )
        raise typer.Exit(2)
    try:
        with writing(run_on.lake, what="cardlake run", wait=wait):
            code = _run_days(run_on, start, end, all_days, full_refresh, skip_models, timings)
    except LakeBusy as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(3) from None
    if code:
        raise typer.Exit(code)
    console.print("query it: [bold]cardlake sql[/] (read-only)")


def _run_days(run_on, start, end, all_days, full_refresh, skip_models, timings) -> int:
    """Choose the days (under the lock: what is pending is what no other writer is landing) and
    run the cycle over them; the exit code."""
    import sqlalchemy.exc

    from pipelines import cycle
    from pipelines.lib.calendar import day_range

    try:
        if start and end:
            days = day_range(start.date(), end.date())
        elif start or end or all_days:
            days = [
                d
                for d in cycle.source_days(run_on)
                if (start is None or d >= start.date()) and (end is None or d <= end.date())
            ]
        else:
            days = cycle.pending_days(run_on)
    except (FileNotFoundError, OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        console.print(f"[red]cannot read the sources:[/] {exc}")
        return 2
    if not days:
        console.print("[yellow]nothing to do: no business day in range[/]")
        return 0
    scope = cycle.Scope(days=tuple(days), full_refresh=full_refresh, build=not skip_models)
    console.print(
        f"cardlake run · {len(days)} business day{'s' if len(days) != 1 else ''} "
        f"{days[0]}..{days[-1]} · lake {run_on.lake.root}"
    )
    return run_and_report(run_on, scope, timings)
