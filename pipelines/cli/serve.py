"""``cardlake serve``: Superset and the Dagster UI on a lake, until Ctrl-C.

(`pipelines/cli/__init__.py` registers the command on the app.)
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.dashboards import open_superset
from pipelines.cli.render import HomeOption, LakeOption, console, err_console

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def serve(
    lake: LakeOption = None,
    home: HomeOption = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Demo mode: one login per role with a known password (`ops` / `ops-demo`, …), "
            "printed with the admin's. Without it no demo login exists (any a demo left is "
            "removed) and no password is printed.",
        ),
    ] = False,
    host: Annotated[
        str, typer.Option(help="Interface Superset listens on (loopback unless --expose).")
    ] = "127.0.0.1",
    expose: Annotated[
        bool,
        typer.Option(
            "--expose",
            help="Allow a --host other than loopback: Superset is then reachable from the "
            "network (its logins throttled); the Dagster UI, which has no login, stays on "
            "loopback.",
        ),
    ] = False,
    behind_proxy: Annotated[
        bool,
        typer.Option(
            "--behind-proxy",
            help="Served through a reverse proxy that terminates HTTPS: trust its "
            "X-Forwarded-* headers (client address, scheme) and send cookies Secure only.",
        ),
    ] = False,
    superset_port: Annotated[int, typer.Option(help="Superset's port.")] = 8088,
    dagster_port: Annotated[int, typer.Option(help="Dagster UI's port (0: no Dagster UI).")] = 3000,
) -> None:
    """Provision Superset and start it with the Dagster UI (schedules, sensors, runs); print the
    URLs (and in demo mode the logins), and keep serving until Ctrl-C."""
    import signal
    import subprocess
    import sys

    from pipelines.lib.superset import ADMIN, SupersetError, demo_logins, stop, wait_ready

    if host not in LOOPBACK and not expose:
        err_console.print(
            f"[red]--host {host} would serve Superset to the network[/]: add --expose to mean "
            "it (docs/security.md says what that exposes), or serve on loopback behind a proxy"
        )
        raise typer.Exit(2)
    superset = dataclasses.replace(open_superset(lake, home), demo=demo, behind_proxy=behind_proxy)
    procs: list[subprocess.Popen] = []
    try:
        console.print(f"provisioning Superset ({superset.home}) …")
        console.print(superset.provision(), markup=False)
        web = superset.start(host=host, port=superset_port)
        procs.append(web)
        if dagster_port:
            from pipelines.lib.settings import ROOT as root
            from pipelines.lib.settings import dagster_home

            # the instance `cardlake run` records its runs in, so the UI shows them
            env = {**os.environ, "CARDLAKE_LAKE": str(superset.lake)}
            env["DAGSTER_HOME"] = str(dagster_home())
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
                        "127.0.0.1",  # no login of its own: never beyond loopback
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
        url = f"http://{'127.0.0.1' if host in LOOPBACK else host}:{superset_port}"
        wait_ready(url, web)
    except SupersetError as exc:
        for proc in procs:
            stop(proc)
        err_console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None

    table = Table(title="cardlake is serving", show_lines=False)
    table.add_column("what")
    table.add_column("where / login")
    table.add_row("Superset (dashboards, SQL Lab)", url)
    if dagster_port:
        table.add_row("Dagster (pipelines; loopback only)", f"http://127.0.0.1:{dagster_port}")
    if demo:
        table.add_row("admin", f"{ADMIN} / {superset.admin_password()}")
        for role, (user, password) in demo_logins().items():
            table.add_row(role, f"{user} / {password}")
    else:
        table.add_row("admin", f"{ADMIN}, password in {superset.admin_password_file} (mode 600)")
    console.print(table)
    if host not in LOOPBACK:
        err_console.print(
            f"[yellow]Superset listens on {host}: reachable from the network[/] "
            "(plain HTTP unless a proxy in front terminates HTTPS: --behind-proxy)"
        )
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
