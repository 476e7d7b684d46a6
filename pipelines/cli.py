"""``cardlake``: the one command for running the platform.

Every path defaults to the environment (``CARDLAKE_SOURCES``, ``CARDLAKE_LAKE``) and then to
``./sources`` and ``./lake``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    name="cardlake",
    help=(
        "cardlake — the data platform for 卡密/发卡 (virtual-goods) shops.\n\n"
        "It lands shop orders, CRM members, Alipay/WeChat statements and supplier card-key batches "
        "in a Parquet lake, models them into KPIs, and serves dashboards and settlement reports.\n\n"
        "Start with `cardlake simulate` to generate a realistic demo shop."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
console = Console()


@app.callback()
def main() -> None:
    """cardlake — the data platform for 卡密/发卡 shops."""


def _progress(label: str) -> Progress:
    """A progress bar on a terminal; nothing in a pipe or a CI log."""
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _default_sources() -> Path:
    return Path(os.environ.get("CARDLAKE_SOURCES", "sources"))


@app.command()
def simulate(
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed and options give the same files.")
    ] = 42,
    start: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="First business day (Asia/Shanghai).")
    ] = dt.datetime(2026, 10, 1),
    days: Annotated[int, typer.Option(min=1, help="Number of business days to simulate.")] = 7,
    orders_per_day: Annotated[
        int,
        typer.Option(
            min=1, help="Orders on a typical day (weekends and promotion days are busier)."
        ),
    ] = 2000,
    skus: Annotated[
        int, typer.Option(min=20, help="Canonical products (SKUs) in the catalogue.")
    ] = 300,
    mess: Annotated[
        str, typer.Option(help="How dirty the sources are: none, realistic or hostile.")
    ] = "realistic",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder to write the sources into [default: $CARDLAKE_SOURCES or ./sources]."
        ),
    ] = None,
    shop_db_url: Annotated[
        str | None,
        typer.Option(
            help="Also write the main shop to this SQLAlchemy URL (e.g. mysql+pymysql://u:p@host/db)."
        ),
    ] = None,
    substation_db_url: Annotated[
        str | None, typer.Option(help="Also write the substation shop to this SQLAlchemy URL.")
    ] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="After writing, keep adding orders to the shop databases until stopped (Ctrl-C).",
        ),
    ] = False,
    rate: Annotated[float, typer.Option(min=0.1, help="Orders per second in --live mode.")] = 5.0,
    live_seconds: Annotated[
        float | None,
        typer.Option(help="Stop --live after this many seconds (default: run until stopped)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="With --live: keep adding to the shop already in --out instead of writing it "
            "again (its options come from its _truth/manifest.json).",
        ),
    ] = False,
) -> None:
    """Generate a simulated shop: both shop databases, CRM exports, channel statements, supplier
    batches, and the answer key in `_truth/`.

    Example: `cardlake simulate --seed 7 --start 2026-10-01 --days 30 --orders-per-day 5000`
    """
    from simulator.config import SimConfig
    from simulator.run import simulate as run_simulation

    if mess not in ("none", "realistic", "hostile"):
        raise typer.BadParameter("use none, realistic or hostile", param_hint="--mess")
    target = out or _default_sources()
    if resume:
        if not live:
            raise typer.BadParameter("--resume goes with --live", param_hint="--resume")
        manifest = target / "_truth" / "manifest.json"
        if not manifest.exists():
            raise typer.BadParameter(f"no simulated shop in {target} to resume", param_hint="--out")
        known = json.loads(manifest.read_text())
        cfg = SimConfig(
            seed=known["seed"],
            start=dt.date.fromisoformat(known["start"]),
            days=known["days"],
            orders_per_day=known["orders_per_day"],
            skus=known["skus"],
            mess=known["mess"],
        )
        _run_live(cfg, target, rate, live_seconds, shop_db_url, substation_db_url)
        return
    cfg = SimConfig(
        seed=seed,
        start=start.date(),
        days=days,
        orders_per_day=orders_per_day,
        skus=skus,
        mess=mess,
    )  # type: ignore[arg-type]
    started = time.perf_counter()
    steps = [
        "catalogue",
        "people",
        "orders and payments",
        "supplier batches and keys",
        "refunds",
        "shop databases",
        "channel statements",
        "CRM exports",
        "supplier files",
        "answer key",
    ]
    with _progress("simulate") as progress:
        task = progress.add_task("starting", total=len(steps))

        def step(name: str) -> None:
            progress.update(task, description=name, completed=steps.index(name))
            if not console.is_terminal:
                console.print(f"  … {name}", style="dim")

        summary = run_simulation(
            cfg, target, shop_db_url=shop_db_url, substation_db_url=substation_db_url, step=step
        )
    _print_summary(summary, time.perf_counter() - started)
    if live:
        _run_live(cfg, summary.out, rate, live_seconds, shop_db_url, substation_db_url)


def _run_live(cfg, out: Path, rate: float, seconds, shop_db_url, substation_db_url) -> None:
    from simulator.live import run_live

    console.print(f"live: adding about {rate:g} orders/s to the shop databases (Ctrl-C stops)")
    stats = run_live(
        cfg,
        out,
        rate=rate,
        seconds=seconds,
        shop_db_url=shop_db_url,
        substation_db_url=substation_db_url,
    )
    console.print(
        f"live: stopped after {stats.orders} new orders, {stats.payments} payments, "
        f"{stats.deliveries} deliveries, {stats.refunds} refunds"
    )


@app.command()
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
            help="Write the wall time of each stage (ingest, models, publish, reports, tickets) "
            "to this JSON file, as the run goes.",
        ),
    ] = None,
) -> None:
    """Run the daily cycle for those business days: land every source in the lake (validated,
    quarantined, accounted, checked), build the dbt models and their tests, and publish the marts
    to lake/marts and lake/warehouse.duckdb. Exits non-zero when a blocking check or test fails.

    Without dates it is incremental: it lands from the last day already in the lake (again,
    as that day may have been incomplete) to the last day the sources hold.

    Example: `cardlake run --start 2026-10-01 --end 2026-10-07`
    """
    import sqlalchemy.exc

    from pipelines.resources import default_resources, lake_root, sources_root
    from pipelines.run import Stages, pending_days, run_cycle, source_days

    src = (sources or sources_root()).resolve()
    lake_dir = (lake or lake_root()).resolve()
    if not src.exists():
        console.print(
            f"[red]no sources at {src}[/]: run `cardlake simulate` or point --sources at them"
        )
        raise typer.Exit(2)
    urls = default_resources(src, lake_dir, shop_db_url, substation_db_url)["shop_dbs"].urls()
    try:
        if start and end:
            first, last = start.date(), end.date()
            days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        elif start or end or all_days:
            days = [
                d
                for d in source_days(src, urls)
                if (start is None or d >= start.date()) and (end is None or d <= end.date())
            ]
        else:
            days = pending_days(src, lake_dir, urls)
    except (FileNotFoundError, OSError, sqlalchemy.exc.SQLAlchemyError) as exc:
        console.print(f"[red]cannot read the sources:[/] {exc}")
        raise typer.Exit(2) from None
    if not days:
        console.print("[yellow]nothing to do: no business day in range[/]")
        raise typer.Exit(0)
    console.print(
        f"cardlake run · {len(days)} business day{'s' if len(days) != 1 else ''} {days[0]}..{days[-1]} · lake {lake_dir}"
    )
    with _progress("run") as progress:
        task = progress.add_task(str(days[0]), total=len(days))

        def on_day(o) -> None:
            progress.update(task, advance=1, description=str(o.day + dt.timedelta(days=1)))
            mark = "[green]✓[/]" if o.success else "[red]✗[/]"
            console.print(
                f"{mark} {o.day}  landed {o.landed:,} · quarantined {o.quarantined:,} · "
                f"skipped {o.skipped:,} · {o.seconds:.1f} s"
            )

        stages = Stages(timings)
        with stages.stage("ingest", days=len(days)) as detail:
            outcomes = run_cycle(src, lake_dir, days, shop_db_url, substation_db_url, on_day=on_day)
            detail["landed"] = sum(o.landed for o in outcomes)
            # step time summed over the tables of both lanes: landing vs the blocking checks
            detail["land_step_s"] = round(sum(o.land_s for o in outcomes), 2)
            detail["checks_step_s"] = round(sum(o.checks_s for o in outcomes), 2)
    failed = [o for o in outcomes if not o.success]
    if failed:
        console.print(
            f"[red]blocking checks failed on {failed[0].day}; later days were not run:[/]"
        )
        for line in failed[0].failures:
            console.print(f"  · {line}")
        raise typer.Exit(1)
    console.print(f"landed: {len(outcomes)} days in {lake_dir}")
    if skip_models:
        return
    from pipelines.lib.dbt import DbtError
    from pipelines.lib.publish import PublishError
    from pipelines.run import model_and_publish

    with console.status("models: dbt build (staging → intermediate → marts, with tests)…"):
        try:
            m = model_and_publish(lake_dir, days, full_refresh=full_refresh, stages=stages)
        except (DbtError, PublishError) as exc:
            console.print(f"[red]models failed; nothing was published:[/]\n{exc}")
            if "not found" in str(exc) or "schema" in str(exc).lower():
                console.print(
                    "hint: after an upgrade that changed an incremental model, rebuild it once "
                    "with `cardlake run --full-refresh`"
                )
            raise typer.Exit(1) from None
    p = m.publication
    console.print(
        f"[green]✓[/] models: {m.models} built, {m.tests} tests passed in {m.dbt_seconds:.1f} s"
    )
    console.print(
        f"[green]✓[/] published {len(p.marts)} marts ({sum(p.rows.values()):,} rows, "
        f"{p.files_written} files rewritten) in {p.seconds:.1f} s → {lake_dir / 'warehouse.duckdb'}"
    )
    from pipelines.lib.settlement import produce

    started = time.perf_counter()
    with stages.stage("reports"):
        outcomes = produce(lake_dir, days=days)
    published = [o for o in outcomes if o.status == "published"]
    held = [o for o in outcomes if o.status == "held"]
    console.print(
        f"[green]✓[/] settlement reports: {len(published)} published, "
        f"{len(outcomes) - len(published) - len(held)} unchanged, {len(held)} held in "
        f"{time.perf_counter() - started:.1f} s → {lake_dir / 'reports' / 'settlement'}"
    )
    with stages.stage("tickets"):
        _sync_tickets(lake_dir)
    if held:
        _print_outcomes(held, lake_dir)
        console.print("[red]reports that do not tie out are held, not published[/]")
        raise typer.Exit(1)
    console.print("query it: [bold]cardlake sql[/] (read-only)")


def _sync_tickets(lake_dir: Path):
    """Tickets and messages for the published alerts; prints one line (and what went wrong)."""
    from pipelines.lib.notify import RouteConfigError
    from pipelines.lib.tickets import sync
    from pipelines.resources import AlertsResource, alerts_config_path

    alerting = AlertsResource(config_path=str(alerts_config_path()))
    try:
        routes, _skipped = alerting.routes()
    except RouteConfigError as exc:
        _stderr.print(f"[red]alert routing in {alerting.config_path}: {exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    started = time.perf_counter()
    r = sync(lake_dir, routes, delivery=alerting.delivery(), link=alerting.link())
    console.print(
        f"[green]✓[/] alerts: {r.opened} new tickets, {r.resolved} resolved, {r.reopened} "
        f"reopened; messages {r.sent} sent, {r.failed} failed, {r.pending} owed in "
        f"{time.perf_counter() - started:.1f} s → [bold]cardlake tickets list[/]"
    )
    for note in r.notes:
        console.print(f"  · {note}", highlight=False, markup=False)
    return r


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


def _print_summary(s, seconds: float) -> None:
    table = Table(title=f"Simulated shop in {s.out}", show_header=True, header_style="bold")
    table.add_column("shop")
    table.add_column("orders", justify="right")
    table.add_column("paid", justify="right")
    for shop in ("main", "substation"):
        table.add_row(
            shop, f"{s.orders_by_shop.get(shop, 0):,}", f"{s.paid_by_shop.get(shop, 0):,}"
        )
    console.print(table)
    console.print(
        f"GMV {_yuan(s.gmv_fen)} · refunds {s.refunds:,} ({_yuan(s.refunds_fen)}) · "
        f"card keys {s.keys:,} · {s.files} source files · {seconds:.1f} s"
    )
    if s.bad_supplier:
        console.print(
            f"bad supplier episode: {s.bad_supplier[0]} {s.bad_supplier[1]}..{s.bad_supplier[2]}"
        )
    anomalies = Table(title="Anomalies injected (answer key in _truth/anomalies.parquet)")
    anomalies.add_column("kind")
    anomalies.add_column("count", justify="right")
    for kind, count in s.anomalies.items():
        anomalies.add_row(kind, f"{count:,}")
    console.print(anomalies)


# --- cardlake sql ---------------------------------------------------------------------------

SQL_FORMATS = ("table", "csv", "json")
SQL_SHELL_HELP = (
    "end a statement with ;  ·  .tables  the marts  ·  .schema NAME  its columns  ·  "
    ".help  ·  .quit"
)
_SQL_TABLES = (
    "select table_name as name, column_count as columns, comment from duckdb_tables() "
    "where database_name = current_database() and schema_name = 'main' order by 1"
)
_SQL_SCHEMA = (
    "select column_name as name, data_type as type, comment from duckdb_columns() "
    "where database_name = current_database() and table_name = ? order by column_index"
)


_stderr = Console(stderr=True)


def _default_lake() -> Path:
    return Path(os.environ.get("CARDLAKE_LAKE", "lake"))


@app.command()
def sql(
    query: Annotated[
        str | None, typer.Argument(help="SQL to run; without it, an interactive shell starts.")
    ] = None,
    lake: Annotated[
        Path | None, typer.Option(help="Lake root [default: $CARDLAKE_LAKE or ./lake].")
    ] = None,
    output: Annotated[
        str, typer.Option("--format", "-f", help="How to print results: table, csv or json.")
    ] = "table",
    max_rows: Annotated[
        int, typer.Option(min=1, help="Rows a table shows at most (csv and json print every row).")
    ] = 1000,
) -> None:
    """Query the published marts in `lake/warehouse.duckdb`, read-only: reading or writing
    files, ATTACH and changing settings are all disabled.

    Example: `cardlake sql "select * from _publication"` · `cardlake sql -f csv "..." > out.csv`

    Without a query it is a shell: end statements with `;`, `.tables` lists the marts,
    `.schema NAME` shows a mart's columns, `.quit` leaves.
    """
    import duckdb
    from rich.markup import escape

    from pipelines.lib.publish import WarehouseMissing, open_warehouse

    if output not in SQL_FORMATS:
        raise typer.BadParameter("use table, csv or json", param_hint="--format")
    lake_dir = (lake or _default_lake()).resolve()
    try:
        con = open_warehouse(lake_dir)
    except WarehouseMissing as exc:
        _stderr.print(f"[red]{escape(str(exc))}[/]", highlight=False)
        raise typer.Exit(2) from None
    except duckdb.Error as exc:
        _sql_error(exc)
        raise typer.Exit(2) from None
    if query is None:
        con.close()
        _sql_shell(lake_dir, output, max_rows)
        return
    try:
        _print_result(con, query, output, max_rows)
    except duckdb.Error as exc:
        _sql_error(exc)
        raise typer.Exit(1) from None
    finally:
        con.close()


def statement_complete(text: str) -> bool:
    """True when ``text`` ends with a ``;`` that is not inside a string, a quoted name or a
    comment: the shell then runs what it has read."""
    last, i, n = "", 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = text.find(ch, i + 1)
            while end != -1 and text[end + 1 : end + 2] == ch:  # doubled quote
                end = text.find(ch, end + 2)
            if end == -1:
                return False
            last, i = ch, end + 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                return False
            i = end + 2
            continue
        if not ch.isspace():
            last = ch
        i += 1
    return last == ";"


def _sql_shell(lake_dir: Path, output: str, max_rows: int) -> None:
    """The interactive shell. It reopens the warehouse when a newer publication has been swapped
    in, so every statement reads the latest complete publication."""
    import contextlib
    import sys

    import duckdb

    from pipelines.lib.publish import open_warehouse, warehouse_path

    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):  # line editing and history for input()
            import readline  # noqa: F401
    path = warehouse_path(lake_dir)
    opened = path.stat().st_ino  # before opening: a swap in between is caught on the next query
    con = open_warehouse(lake_dir)
    if interactive:
        console.print(f"cardlake sql · {path} · read-only\n{SQL_SHELL_HELP}", highlight=False)
    buffer: list[str] = []
    params: list[object] = []
    try:
        while True:
            try:
                line = input(("   ...> " if buffer else "cardlake> ") if interactive else "")
            except EOFError:
                break
            except KeyboardInterrupt:
                buffer = []
                console.print()
                continue
            command = line.strip()
            if not buffer and command.startswith("."):
                name, _, arg = command.partition(" ")
                if name in (".quit", ".exit", ".q"):
                    break
                if name == ".help":
                    console.print(SQL_SHELL_HELP, highlight=False)
                    continue
                if name == ".tables":
                    query, params = _SQL_TABLES, []
                elif name == ".schema" and arg.strip():
                    query, params = _SQL_SCHEMA, [arg.strip()]
                else:
                    _stderr.print(f"[red]unknown command {command!r}[/]: {SQL_SHELL_HELP}")
                    continue
            else:
                buffer.append(line)
                query, params = "\n".join(buffer), []
                if not query.strip():
                    buffer = []
                    continue
                if not statement_complete(query):
                    continue
                buffer = []
            if path.stat().st_ino != opened:
                con.close()
                opened = path.stat().st_ino
                con = open_warehouse(lake_dir)
                console.print("(a newer publication is in: reopened the warehouse)", style="dim")
            try:
                _print_result(con, query, output, max_rows, params)
            except duckdb.Error as exc:
                _sql_error(exc)
    finally:
        con.close()


def _print_result(con, query: str, output: str, max_rows: int, params=None) -> None:
    import csv
    import json
    import sys

    from rich.text import Text

    con.execute(query, params or [])
    if con.description is None:
        console.print("ok", style="dim")
        return
    columns = [d[0] for d in con.description]
    if output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        while batch := con.fetchmany(10_000):
            writer.writerows(batch)
        return
    if output == "json":
        first = True
        sys.stdout.write("[")
        while batch := con.fetchmany(10_000):
            for row in batch:
                record = json.dumps(
                    dict(zip(columns, row, strict=True)), ensure_ascii=False, default=_json_value
                )
                sys.stdout.write(("\n" if first else ",\n") + record)
                first = False
        sys.stdout.write("\n]\n")
        return
    rows = con.fetchmany(max_rows + 1)
    table = Table(header_style="bold", show_edge=False)
    for i, name in enumerate(columns):
        numeric = any(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows)
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows[:max_rows]:
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(_cell(v)) for v in row))
    console.print(table)
    shown = min(len(rows), max_rows)
    more = " (more not shown: raise --max-rows or use --format csv)" if len(rows) > max_rows else ""
    console.print(f"{shown:,} row{'s' if shown != 1 else ''}{more}", style="dim", highlight=False)


def _cell(value: object) -> str:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def _json_value(value: object) -> object:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _sql_error(exc: Exception) -> None:
    """A DuckDB error as one clear message (no traceback), with why the warehouse refuses."""
    from rich.markup import escape

    _stderr.print(f"[red]error:[/] {escape(str(exc).strip())}", highlight=False)
    text = str(exc)
    if "disabled by configuration" in text or "configuration has been locked" in text:
        _stderr.print(
            "the warehouse is read-only: reading or writing files, ATTACH and settings are "
            "disabled; query the marts it holds (`.tables`)",
            style="yellow",
            highlight=False,
        )


# ------------------------------------------------------------------------------ dashboards, serve
dashboards_app = typer.Typer(
    help="Superset's dashboards, kept as code in `dashboards/` (an unzipped export bundle).",
    no_args_is_help=True,
)
app.add_typer(dashboards_app, name="dashboards")


def _superset(lake: Path | None, home: Path | None):
    from pipelines.lib.superset import Superset
    from pipelines.resources import superset_home

    return Superset(
        home=(home or superset_home()).resolve(), lake=(lake or _default_lake()).resolve()
    )


_HomeOption = Annotated[
    Path | None,
    typer.Option(
        help="Superset's state folder [default: $CARDLAKE_SUPERSET_HOME or ./.state/superset]."
    ),
]
_LakeOption = Annotated[
    Path | None, typer.Option(help="Lake root [default: $CARDLAKE_LAKE or ./lake].")
]


@dashboards_app.command("provision")
def dashboards_provision(
    lake: _LakeOption = None,
    home: _HomeOption = None,
    demo_users: Annotated[
        bool,
        typer.Option(help="Create one demo login per role (user `ops`, password `ops-demo`, ...)."),
    ] = True,
) -> None:
    """Import `dashboards/` into Superset (idempotent: assets are matched by UUID), rebuild the
    roles of `dashboards/roles.yml` with their row-level security, and create the users."""
    from pipelines.lib.superset import SupersetError

    superset = _superset(lake, home)
    try:
        console.print(superset.provision(demo_users=demo_users), markup=False)
    except SupersetError as exc:
        _stderr.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None


@dashboards_app.command("export")
def dashboards_export(lake: _LakeOption = None, home: _HomeOption = None) -> None:
    """Write the dashboards, charts, datasets and database as Superset holds them now back into
    `dashboards/`, normalised so that `git diff` shows only what was changed in the UI."""
    from pipelines.lib.superset import SupersetError

    try:
        changed = _superset(lake, home).export()
    except SupersetError as exc:
        _stderr.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    console.print("\n".join(changed) if changed else "no changes", markup=False)


@app.command()
def serve(
    lake: _LakeOption = None,
    home: _HomeOption = None,
    host: Annotated[str, typer.Option(help="Interface both UIs listen on.")] = "127.0.0.1",
    superset_port: Annotated[int, typer.Option(help="Superset's port.")] = 8088,
    dagster_port: Annotated[int, typer.Option(help="Dagster UI's port (0: no Dagster UI).")] = 3000,
) -> None:
    """Provision Superset and start it with the Dagster UI (schedules, sensors, runs); print the
    URLs and the demo logins, and keep serving until Ctrl-C."""
    import signal
    import subprocess
    import sys

    from pipelines.lib.superset import ADMIN, SupersetError, demo_logins, stop, wait_ready

    superset = _superset(lake, home)
    procs: list[subprocess.Popen] = []
    try:
        console.print(f"provisioning Superset ({superset.home}) …")
        console.print(superset.provision(), markup=False)
        web = superset.start(host=host, port=superset_port)
        procs.append(web)
        if dagster_port:
            root = Path(__file__).resolve().parents[1]
            env = {**os.environ, "CARDLAKE_LAKE": str(superset.lake)}
            env.setdefault("DAGSTER_HOME", str(root / "dagster_home"))
            log = (superset.home / "dagster.log").open("ab")
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dagster",
                        "dev",
                        "-m",
                        "pipelines.definitions",
                        "-h",
                        host,
                        "-p",
                        str(dagster_port),
                    ],
                    env=env,
                    cwd=root,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        url = f"http://{host}:{superset_port}"
        wait_ready(url, web)
    except SupersetError as exc:
        for proc in procs:
            stop(proc)
        _stderr.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None

    table = Table(title="cardlake is serving", show_lines=False)
    table.add_column("what")
    table.add_column("where / login")
    table.add_row("Superset (dashboards, SQL Lab)", url)
    if dagster_port:
        table.add_row("Dagster (pipelines)", f"http://{host}:{dagster_port}")
    table.add_row("admin", f"{ADMIN} / {superset.admin_password()}")
    for role, (user, password) in demo_logins().items():
        table.add_row(role, f"{user} / {password}")
    console.print(table)
    console.print(f"logs: {superset.home}/superset.log, dagster.log · Ctrl-C stops both")

    stopping = False

    def _stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            stop(proc)
    if not stopping and any(p.returncode not in (None, 0, -15) for p in procs):
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------- reports
report_app = typer.Typer(help="Reports finance downloads (lake/reports/...).", no_args_is_help=True)
app.add_typer(report_app, name="report")


def _print_outcomes(outcomes, lake_dir: Path) -> None:
    for o in outcomes:
        mark = {"published": "[green]✓[/]", "unchanged": "·", "held": "[red]✗[/]"}[o.status]
        version = f"v{o.version}" if o.version else "—"
        line = f"{mark} {o.key}  {o.status} {version}"
        if o.change_summary:
            line += f"  ({o.change_summary})"
        console.print(line, highlight=False)
        for problem in o.problems:
            console.print(f"    does not tie out: {problem}", highlight=False, markup=False)


@report_app.command("settlement")
def report_settlement(
    channel: Annotated[str | None, typer.Option(help="Channel: alipay or wechat.")] = None,
    day: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Statement day.")
    ] = None,
    supplier: Annotated[str | None, typer.Option(help="Supplier code, e.g. S04.")] = None,
    month: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m"], help="Calendar month, e.g. 2026-10.")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(help="Fetch this published version instead of (re)generating the report."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also copy the report's CSV, XLSX and PDF into this folder.")
    ] = None,
    lake: _LakeOption = None,
) -> None:
    """Regenerate or fetch one settlement report: a channel's statement day (`--channel alipay
    --day 2026-10-01`) or a supplier's month (`--supplier S04 --month 2026-10`); without either,
    every due report. A report is (re)published only when its content changed and it ties out;
    prints where its files are.

    Exit status: 0 published or unchanged, 1 held (does not tie out), 2 not due or unknown."""
    import shutil

    from pipelines.lib.publish import WarehouseMissing
    from pipelines.lib.settlement import ReportKey, SettlementError, latest_files, produce

    lake_dir = (lake or _default_lake()).resolve()
    if channel and day:
        keys = [ReportKey("channel", channel, day.date().isoformat())]
    elif supplier and month:
        keys = [ReportKey("supplier", supplier, month.strftime("%Y-%m"))]
    elif channel or day or supplier or month:
        _stderr.print("[red]give --channel with --day, or --supplier with --month[/]")
        raise typer.Exit(2)
    else:
        keys = None
    try:
        if version is not None:
            if not keys:
                _stderr.print(
                    "[red]--version needs one report (--channel/--day or --supplier/--month)[/]"
                )
                raise typer.Exit(2)
            files = latest_files(lake_dir, keys[0], version)
            outcomes = []
        else:
            outcomes = produce(lake_dir, keys=keys)
            _print_outcomes(outcomes, lake_dir)
            files = outcomes[0].files if keys and outcomes else {}
    except (SettlementError, WarehouseMissing) as exc:
        _stderr.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    for kind, path in files.items():
        console.print(f"{kind}: {path}", highlight=False, soft_wrap=True)
        if out:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out / path.name)
    if any(o.status == "held" for o in outcomes):
        raise typer.Exit(1)


# ------------------------------------------------------------------------------------- tickets
tickets_app = typer.Typer(
    help="Tickets (工单) the alerts open: list, show, acknowledge, close.", no_args_is_help=True
)
app.add_typer(tickets_app, name="tickets")


@tickets_app.command("list")
def tickets_list(
    state: Annotated[
        str, typer.Option(help="open, acknowledged, resolved, active (open + acknowledged), all.")
    ] = "active",
    role: Annotated[
        str | None, typer.Option(help="Only this role: ops, finance, customer_service, tech.")
    ] = None,
    lake: _LakeOption = None,
) -> None:
    """The tickets, newest first (default: those not yet resolved)."""
    from pipelines.lib.tickets import ROLE_LABELS, STATE_LABELS, load_tickets

    wanted = {"active": {"open", "acknowledged"}, "all": set(STATE_LABELS)}.get(state, {state})
    if not wanted <= set(STATE_LABELS):
        raise typer.BadParameter(
            "use open, acknowledged, resolved, active or all", param_hint="--state"
        )
    lake_dir = (lake or _default_lake()).resolve()
    tickets = [
        t
        for t in load_tickets(lake_dir).values()
        if t.state in wanted and (role is None or t.fields.get("role") == role)
    ]
    table = Table(box=None, header_style="bold")
    for column in ("ticket", "state", "role", "days", "title"):
        table.add_column(column)
    for t in sorted(tickets, key=lambda t: t.ticket_id, reverse=True):
        f = t.fields
        table.add_row(
            t.ticket_id,
            f"{t.state} {STATE_LABELS[t.state]}",
            ROLE_LABELS.get(f.get("role") or "", f.get("role") or ""),
            f"{f.get('first_day')} ~ {f.get('last_day')}",
            f.get("title") or "",
        )
    console.print(table)
    console.print(f"{len(tickets)} tickets ({state})")


@tickets_app.command("show")
def tickets_show(
    ticket: Annotated[str, typer.Argument(help="Ticket id, e.g. T000012.")],
    lake: _LakeOption = None,
) -> None:
    """One ticket: its incident and its whole history."""
    from pipelines.lib.tickets import STATE_LABELS, load_tickets

    lake_dir = (lake or _default_lake()).resolve()
    t = load_tickets(lake_dir).get(ticket.strip().upper())
    if t is None:
        _stderr.print(f"[red]no ticket {ticket!r}[/]")
        raise typer.Exit(2)
    f = t.fields
    console.print(f"[bold]{t.ticket_id}[/] {t.state} {STATE_LABELS[t.state]} · {f.get('title')}")
    for label, value in (
        ("rule", f.get("rule")),
        ("role", f.get("role")),
        ("severity", f.get("severity")),
        ("days", f"{f.get('first_day')} ~ {f.get('last_day')}"),
        ("alert", f"{t.alert_id} ({'open' if t.is_alert_open else 'over'})"),
        ("summary", f.get("summary")),
        ("main cause", f.get("main_cause")),
    ):
        if value:
            console.print(f"  {label}: {value}", highlight=False, markup=False)
    console.print("history:")
    for e in t.events:
        detail = json.loads(e["detail"] or "{}")
        extra = detail.get("note") or ""
        if e["kind"] in ("notified", "delivery_failed"):
            extra = f"{e['phase']} → {e['route']} ({detail.get('attempts')} attempts) {detail.get('answer') or ''}"
        console.print(
            f"  {e['at']:%Y-%m-%d %H:%M:%S} {e['kind']:<16} {e['actor']:<10} {e['state']:<12} {extra}",
            highlight=False,
            markup=False,
        )


def _move(ticket: str, state: str, by: str, note: str, lake: Path | None) -> None:
    from pipelines.lib.tickets import STATE_LABELS, TicketError, change_state

    lake_dir = (lake or _default_lake()).resolve()
    try:
        t = change_state(lake_dir, ticket, state, by, note)
    except TicketError as exc:
        _stderr.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"{t.ticket_id}: {t.state} {STATE_LABELS[t.state]}")


_By = Annotated[str, typer.Option("--by", help="Who does it (kept in the ticket's history).")]


@tickets_app.command("ack")
def tickets_ack(
    ticket: Annotated[str, typer.Argument(help="Ticket id.")],
    by: _By,
    note: Annotated[str, typer.Option(help="A note for the history.")] = "",
    lake: _LakeOption = None,
) -> None:
    """Acknowledge a ticket: someone is on it (open → acknowledged)."""
    _move(ticket, "acknowledged", by, note, lake)


@tickets_app.command("close")
def tickets_close(
    ticket: Annotated[str, typer.Argument(help="Ticket id.")],
    by: _By,
    note: Annotated[str, typer.Option(help="What was done (kept in the history).")],
    lake: _LakeOption = None,
) -> None:
    """Resolve a ticket (open or acknowledged → resolved), saying what was done."""
    _move(ticket, "resolved", by, note, lake)


@tickets_app.command("reopen")
def tickets_reopen(
    ticket: Annotated[str, typer.Argument(help="Ticket id.")],
    by: _By,
    note: Annotated[str, typer.Option(help="Why (kept in the history).")],
    lake: _LakeOption = None,
) -> None:
    """Reopen a resolved ticket."""
    _move(ticket, "open", by, note, lake)


@tickets_app.command("sync")
def tickets_sync(lake: _LakeOption = None) -> None:
    """Open and resolve tickets for the published alerts and send the messages still owed (the
    pipelines do this after every publication; this is for a retry by hand)."""
    _sync_tickets((lake or _default_lake()).resolve())


if __name__ == "__main__":
    app()
