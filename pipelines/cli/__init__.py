"""``cardlake``: the one command for running the platform.

Every path defaults to the environment (``CARDLAKE_SOURCES``, ``CARDLAKE_LAKE``) and then to
``./sources`` and ``./lake``.

One module per command or group of commands; what they share (consoles, progress bar, default
paths, common options) is in ``render``. This module makes the app and registers them all: the
order here is the order of ``cardlake --help``.
"""

from __future__ import annotations

import typer

from pipelines.cli import dashboards, report, run, serve, simulate, sql, tickets

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


@app.callback()
def main() -> None:
    """cardlake — the data platform for 卡密/发卡 shops."""
    from pipelines.lib import settings

    settings.load_env_file()  # .env: robots, secrets and settings (never over the environment)
    settings.private_files()  # what it writes is the owner's alone (docs/security.md)


app.command()(simulate.simulate)
app.command()(run.run)
app.command()(sql.sql)
app.command()(serve.serve)
app.add_typer(dashboards.dashboards_app, name="dashboards")
app.add_typer(report.report_app, name="report")
app.add_typer(tickets.tickets_app, name="tickets")

__all__ = ["app"]
