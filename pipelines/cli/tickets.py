"""``cardlake tickets``: the tickets (工单) the alerts open, and their sync."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.render import LakeOption, console, default_lake, err_console, print_tickets

tickets_app = typer.Typer(
    help="Tickets (工单) the alerts open: list, show, acknowledge, close.", no_args_is_help=True
)


def sync_tickets(lake_dir: Path):
    """The cycle's tickets stage on its own: tickets and messages for the published alerts;
    prints one line (and what went wrong)."""
    from pipelines import cycle
    from pipelines.lib.notify import RouteConfigError
    from pipelines.lib.writer import LakeBusy

    run_on = cycle.Cycle.configure(lake=lake_dir)
    started = time.perf_counter()
    try:
        r = cycle.tickets(run_on)
    except RouteConfigError as exc:
        err_console.print(
            f"[red]alert routing in {run_on.alerts.config_path}: {exc}[/]", highlight=False
        )
        raise typer.Exit(1) from None
    except LakeBusy as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(3) from None
    print_tickets(r, time.perf_counter() - started)
    return r


@tickets_app.command("list")
def tickets_list(
    state: Annotated[
        str, typer.Option(help="open, acknowledged, resolved, active (open + acknowledged), all.")
    ] = "active",
    role: Annotated[
        str | None, typer.Option(help="Only this role: ops, finance, customer_service, tech.")
    ] = None,
    lake: LakeOption = None,
) -> None:
    """The tickets, newest first (default: those not yet resolved)."""
    from pipelines.lib.tickets import ROLE_LABELS, STATE_LABELS, load_tickets

    wanted = {"active": {"open", "acknowledged"}, "all": set(STATE_LABELS)}.get(state, {state})
    if not wanted <= set(STATE_LABELS):
        raise typer.BadParameter(
            "use open, acknowledged, resolved, active or all", param_hint="--state"
        )
    lake_dir = (lake or default_lake()).resolve()
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
    lake: LakeOption = None,
) -> None:
    """One ticket: its incident and its whole history."""
    from pipelines.lib.tickets import STATE_LABELS, load_tickets

    lake_dir = (lake or default_lake()).resolve()
    t = load_tickets(lake_dir).get(ticket.strip().upper())
    if t is None:
        err_console.print(f"[red]no ticket {ticket!r}[/]")
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
    from pipelines.lib.writer import LakeBusy

    lake_dir = (lake or default_lake()).resolve()
    try:
        t = change_state(lake_dir, ticket, state, by, note)
    except TicketError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    except LakeBusy as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(3) from None
    console.print(f"{t.ticket_id}: {t.state} {STATE_LABELS[t.state]}")


_By = Annotated[str, typer.Option("--by", help="Who does it (kept in the ticket's history).")]


@tickets_app.command("ack")
def tickets_ack(
    ticket: Annotated[str, typer.Argument(help="Ticket id.")],
    by: _By,
    note: Annotated[str, typer.Option(help="A note for the history.")] = "",
    lake: LakeOption = None,
) -> None:
    """Acknowledge a ticket: someone is on it (open → acknowledged)."""
    _move(ticket, "acknowledged", by, note, lake)


@tickets_app.command("close")
def tickets_close(
    ticket: Annotated[str, typer.Argument(help="Ticket id.")],
    by: _By,
    note: Annotated[str, typer.Option(help="What was done (kept in the history).")],
    lake: LakeOption = None,
) -> None:
    """Resolve a ticket (open or acknowledged → resolved), saying what was done."""
    _move(ticket, "resolved", by, note, lake)


@tickets_app.command("reopen")
def tickets_reopen(
    ticket: Annotated[str, typer.Argument(help="Ticket id.")],
    by: _By,
    note: Annotated[str, typer.Option(help="Why (kept in the history).")],
    lake: LakeOption = None,
) -> None:
    """Reopen a resolved ticket."""
    _move(ticket, "open", by, note, lake)


@tickets_app.command("sync")
def tickets_sync(lake: LakeOption = None) -> None:
    """Open and resolve tickets for the published alerts and send the messages still owed (the
    pipelines do this after every publication; this is for a retry by hand)."""
    sync_tickets((lake or default_lake()).resolve())
