"""``cardlake report``: the settlement reports finance downloads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.render import LakeOption, console, default_lake, err_console, print_outcomes

report_app = typer.Typer(help="Reports finance downloads (lake/reports/...).", no_args_is_help=True)


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
    lake: LakeOption = None,
) -> None:
    """Regenerate or fetch one settlement report: a channel's statement day (`--channel alipay
    --day 2026-10-01`) or a supplier's month (`--supplier S04 --month 2026-10`); without either,
    every due report. A report is (re)published only when its content changed and it ties out;
    prints where its files are.

    Exit status: 0 published or unchanged, 1 held (does not tie out), 2 not due or unknown."""
    import shutil

    from pipelines.lib.publish import WarehouseMissing
    from pipelines.lib.settlement import ReportKey, SettlementError, latest_files, produce

    lake_dir = (lake or default_lake()).resolve()
    if channel and day:
        keys = [ReportKey("channel", channel, day.date().isoformat())]
    elif supplier and month:
        keys = [ReportKey("supplier", supplier, month.strftime("%Y-%m"))]
    elif channel or day or supplier or month:
        err_console.print("[red]give --channel with --day, or --supplier with --month[/]")
        raise typer.Exit(2)
    else:
        keys = None
    try:
        if version is not None:
            if not keys:
                err_console.print(
                    "[red]--version needs one report (--channel/--day or --supplier/--month)[/]"
                )
                raise typer.Exit(2)
            files = latest_files(lake_dir, keys[0], version)
            outcomes = []
        else:
            outcomes = produce(lake_dir, keys=keys)
            print_outcomes(outcomes, lake_dir)
            files = outcomes[0].files if keys and outcomes else {}
    except (SettlementError, WarehouseMissing) as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    for kind, path in files.items():
        console.print(f"{kind}: {path}", highlight=False, soft_wrap=True)
        if out:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out / path.name)
    if any(o.status == "held" for o in outcomes):
        raise typer.Exit(1)
