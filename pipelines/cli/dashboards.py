"""``cardlake dashboards``: Superset's dashboards as code (provision, export)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.render import HomeOption, LakeOption, console, default_lake, err_console

dashboards_app = typer.Typer(
    help="Superset's dashboards, kept as code in `dashboards/` (an unzipped export bundle).",
    no_args_is_help=True,
)


def open_superset(lake: Path | None, home: Path | None):
    from pipelines.lib.settings import superset_home
    from pipelines.lib.superset import Superset

    return Superset(
        home=(home or superset_home()).resolve(), lake=(lake or default_lake()).resolve()
    )


@dashboards_app.command("provision")
def dashboards_provision(
    lake: LakeOption = None,
    home: HomeOption = None,
    demo_users: Annotated[
        bool,
        typer.Option(help="Create one demo login per role (user `ops`, password `ops-demo`, ...)."),
    ] = True,
) -> None:
    """Import `dashboards/` into Superset (idempotent: assets are matched by UUID), rebuild the
    roles of `dashboards/roles.yml` with their row-level security, and create the users."""
    from pipelines.lib.superset import SupersetError

    superset = open_superset(lake, home)
    try:
        console.print(superset.provision(demo_users=demo_users), markup=False)
    except SupersetError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None


@dashboards_app.command("export")
def dashboards_export(lake: LakeOption = None, home: HomeOption = None) -> None:
    """Write the dashboards, charts, datasets and database as Superset holds them now back into
    `dashboards/`, normalised so that `git diff` shows only what was changed in the UI."""
    from pipelines.lib.superset import SupersetError

    try:
        changed = open_superset(lake, home).export()
    except SupersetError as exc:
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    console.print("\n".join(changed) if changed else "no changes", markup=False)
