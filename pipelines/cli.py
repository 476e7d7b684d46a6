"""``cardlake``: the one command for running the platform.

Every path defaults to the environment (``CARDLAKE_SOURCES``, ``CARDLAKE_LAKE``) and then to
``./sources`` and ``./lake``.
"""

from __future__ import annotations

import datetime as dt
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
) -> None:
    """Generate a simulated shop: both shop databases, CRM exports, channel statements, supplier
    batches, and the answer key in `_truth/`.

    Example: `cardlake simulate --seed 7 --start 2026-10-01 --days 30 --orders-per-day 5000`
    """
    from simulator.config import SimConfig
    from simulator.run import simulate as run_simulation

    if mess not in ("none", "realistic", "hostile"):
        raise typer.BadParameter("use none, realistic or hostile", param_hint="--mess")
    cfg = SimConfig(
        seed=seed,
        start=start.date(),
        days=days,
        orders_per_day=orders_per_day,
        skus=skus,
        mess=mess,
    )  # type: ignore[arg-type]
    target = out or _default_sources()
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
        from simulator.live import run_live

        console.print(f"live: adding about {rate:g} orders/s to the shop databases (Ctrl-C stops)")
        stats = run_live(
            cfg,
            summary.out,
            rate=rate,
            seconds=live_seconds,
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
) -> None:
    """Run the daily cycle for those business days: land every source in the lake (validated,
    quarantined, accounted, checked). Exits non-zero when a blocking check fails.

    Without dates it is incremental: it lands from the last day already in the lake (again,
    as that day may have been incomplete) to the last day the sources hold.

    Example: `cardlake run --start 2026-10-01 --end 2026-10-07`
    """
    import sqlalchemy.exc

    from pipelines.resources import default_resources, lake_root, sources_root
    from pipelines.run import pending_days, run_cycle, source_days

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

        outcomes = run_cycle(src, lake_dir, days, shop_db_url, substation_db_url, on_day=on_day)
    failed = [o for o in outcomes if not o.success]
    if failed:
        console.print(
            f"[red]blocking checks failed on {failed[0].day}; later days were not run:[/]"
        )
        for line in failed[0].failures:
            console.print(f"  · {line}")
        raise typer.Exit(1)
    console.print(f"done: {len(outcomes)} days landed in {lake_dir}")


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


if __name__ == "__main__":
    app()
