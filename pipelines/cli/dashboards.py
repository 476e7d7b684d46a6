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
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Create one demo login per role (user `ops`, password `ops-demo`, …); without "
            "it any such login a demo left is removed.",
        ),
    ] = False,
    rotate_admin_password: Annotated[
        bool,
        typer.Option(
            "--rotate-admin-password",
            help="Give the admin a fresh password, written to the state folder's admin_password "
            "file (mode 600; never printed).",
        ),
    ] = False,
) -> None:
    """Import `dashboards/` into Superset (idempotent: assets are matched by UUID), rebuild the
    roles of `dashboards/roles.yml` with their row-level security, and create the users."""
    import dataclasses

    from pipelines.lib.superset import SupersetError

    superset = dataclasses.replace(open_superset(lake, home), demo=demo)
    try:
        console.print(superset.provision(rotate_admin_password=rotate_admin_password), markup=False)
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
