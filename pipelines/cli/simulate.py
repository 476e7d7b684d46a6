"""``cardlake simulate``: generate a simulated shop, and keep it selling with ``--live``.

(`pipelines/cli/__init__.py` registers the command on the app.)
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.render import console, default_sources, progress_bar, yuan


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
        str | None,
        typer.Option(
            help="Also write the substation shop to this SQLAlchemy URL; its tables are named "
            "with the URL's ?table_prefix= (acg-faka's default acg_ without one), which is how "
            "cardlake reads them back."
        ),
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
    from simulator.build import STEPS
    from simulator.build import simulate as run_simulation
    from simulator.config import SimConfig

    if mess not in ("none", "realistic", "hostile"):
        raise typer.BadParameter("use none, realistic or hostile", param_hint="--mess")
    target = out or default_sources()
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
    steps = list(STEPS)
    with progress_bar("simulate") as progress:
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
        f"GMV {yuan(s.gmv_fen)} · refunds {s.refunds:,} ({yuan(s.refunds_fen)}) · "
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
