"""``cardlake report``: the settlement reports finance downloads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.render import LakeOption, console, default_lake, err_console, print_outcomes

report_app = typer.Typer(help="Reports finance downloads (lake/reports/...).", no_args_is_help=True)

#: known codes an error lists at most (a lake may know hundreds of suppliers)
_LISTED = 20


def _listing(values: list[str]) -> str:
    shown = ", ".join(values[:_LISTED])
    return shown + (f", … ({len(values)} in all)" if len(values) > _LISTED else "")


def _check_request(lake_dir: Path, key, version: int | None) -> None:
    """The options name a report of this lake, or ``typer.BadParameter`` names the option and
    the rule: a channel of the published ``dim_channels``; a supplier code of the strict form
    (``SUPPLIER_CODE``) that the published ``dim_suppliers`` knows; a report folder inside the
    lake's settlement reports folder; with ``--version``, a version that was published."""
    from pipelines.lib.publish import open_warehouse
    from pipelines.lib.settlement import SettlementError, inside_reports, published_versions
    from pipelines.lib.settlement_content import SUPPLIER_CODE, known_channels, known_suppliers

    option = f"--{key.kind}"
    if key.kind == "supplier" and not SUPPLIER_CODE.fullmatch(key.subject):
        raise typer.BadParameter(
            f"{key.subject!r} is not a supplier code: 1 to 32 letters, digits, _ or -, "
            "starting with a letter or digit (e.g. S04)",
            param_hint=option,
        )
    con = open_warehouse(lake_dir)
    try:
        known = known_channels(con) if key.kind == "channel" else known_suppliers(con)
    finally:
        con.close()
    if key.subject not in known:
        raise typer.BadParameter(
            f"{key.subject!r} is not a {key.kind} of this lake: use one of {_listing(known)}",
            param_hint=option,
        )
    try:
        inside_reports(lake_dir, key.folder(lake_dir))
    except SettlementError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None
    if version is not None:
        versions = published_versions(lake_dir, key)
        if not versions:
            raise typer.BadParameter(
                f"{key} has no published version yet (leave out --version to produce it)",
                param_hint="--version",
            )
        if version not in versions:
            raise typer.BadParameter(
                f"{key} has no version {version}: the published versions are "
                + ", ".join(str(v) for v in versions),
                param_hint="--version",
            )


@report_app.command("settlement")
def report_settlement(
    channel: Annotated[
        str | None, typer.Option(help="Channel code (one of the lake's dim_channels), e.g. alipay.")
    ] = None,
    day: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Statement day.")
    ] = None,
    supplier: Annotated[
        str | None, typer.Option(help="Supplier code (one of the lake's dim_suppliers), e.g. S04.")
    ] = None,
    month: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m"], help="Calendar month, e.g. 2026-10.")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(
            min=1, help="Fetch this published version instead of (re)generating the report."
        ),
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

    The channel must be one the lake's marts know, the supplier a code they know (letters,
    digits, _ or -), the version one that was published; every path stays inside the lake's
    settlement reports folder.

    Exit status: 0 published or unchanged, 1 held (does not tie out), 2 not due, unknown or
    an option that breaks a rule, 3 another writer kept the lake (`CARDLAKE_LOCK_WAIT`)."""
    import shutil

    from pipelines.lib.publish import WarehouseMissing
    from pipelines.lib.settlement import ReportKey, SettlementError, latest_files, produce
    from pipelines.lib.writer import LakeBusy, writing

    lake_dir = (lake or default_lake()).resolve()
    if (channel or day) and (supplier or month):
        err_console.print("[red]give one report: --channel/--day or --supplier/--month[/]")
        raise typer.Exit(2)
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
        if keys:
            _check_request(lake_dir, keys[0], version)
        if version is not None:
            if not keys:
                err_console.print(
                    "[red]--version needs one report (--channel/--day or --supplier/--month)[/]"
                )
                raise typer.Exit(2)
            files = latest_files(lake_dir, keys[0], version)
            outcomes = []
        else:
            with writing(lake_dir, what="cardlake report settlement"):
                outcomes = produce(lake_dir, keys=keys)
            print_outcomes(outcomes, lake_dir)
            files = outcomes[0].files if keys and outcomes else {}
    except (SettlementError, WarehouseMissing) as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    except LakeBusy as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(3) from None
    for kind, path in files.items():
        console.print(f"{kind}: {path}", highlight=False, soft_wrap=True)
        if out:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out / path.name)
    if any(o.status == "held" for o in outcomes):
        raise typer.Exit(1)
