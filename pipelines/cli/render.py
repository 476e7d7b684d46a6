"""What the ``cardlake`` commands share: the consoles, the progress bar, the default paths, the
options several commands take, and the printing helpers more than one command uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
err_console = Console(stderr=True)

LakeOption = Annotated[
    Path | None, typer.Option(help="Lake root [default: $CARDLAKE_LAKE or ./lake].")
]
HomeOption = Annotated[
    Path | None,
    typer.Option(
        help="Superset's state folder [default: $CARDLAKE_SUPERSET_HOME or ./.state/superset]."
    ),
]


def progress_bar(label: str) -> Progress:
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


def default_sources() -> Path:
    return Path(os.environ.get("CARDLAKE_SOURCES", "sources"))


def default_lake() -> Path:
    return Path(os.environ.get("CARDLAKE_LAKE", "lake"))


def yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}"


def print_tickets(r, seconds: float) -> None:
    """One line for a ticket sync (``pipelines.lib.tickets.SyncResult``), and its notes."""
    console.print(
        f"[green]✓[/] alerts: {r.opened} new tickets, {r.resolved} resolved, {r.reopened} "
        f"reopened; messages {r.sent} sent, {r.failed} failed, {r.pending} owed in "
        f"{seconds:.1f} s → [bold]cardlake tickets list[/]"
    )
    for note in r.notes:
        console.print(f"  · {note}", highlight=False, markup=False)


def print_outcomes(outcomes, lake_dir: Path) -> None:
    """One line per settlement report (published, unchanged or held) and why a held one is."""
    for o in outcomes:
        mark = {"published": "[green]✓[/]", "unchanged": "·", "held": "[red]✗[/]"}[o.status]
        version = f"v{o.version}" if o.version else "—"
        line = f"{mark} {o.key}  {o.status} {version}"
        if o.change_summary:
            line += f"  ({o.change_summary})"
        console.print(line, highlight=False)
        for problem in o.problems:
            console.print(f"    does not tie out: {problem}", highlight=False, markup=False)
