"""``cardlake sql``: query the published marts, read-only, once or in a shell.

(`pipelines/cli/__init__.py` registers the command on the app.)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.render import LakeOption, console, default_lake, err_console

SQL_FORMATS = ("table", "csv", "json")
SQL_SHELL_HELP = (
    "end a statement with ;  ·  .tables  the marts  ·  .schema NAME  its columns  ·  "
    ".help  ·  .quit"
)
_SQL_TABLES = (
    "select table_name as name, column_count as columns, comment from duckdb_tables() "
    "where database_name = current_database() and schema_name = 'main' order by 1"
)
_SQL_SCHEMA = (
    "select column_name as name, data_type as type, comment from duckdb_columns() "
    "where database_name = current_database() and table_name = ? order by column_index"
)


def sql(
    query: Annotated[
        str | None, typer.Argument(help="SQL to run; without it, an interactive shell starts.")
    ] = None,
    lake: LakeOption = None,
    output: Annotated[
        str, typer.Option("--format", "-f", help="How to print results: table, csv or json.")
    ] = "table",
    max_rows: Annotated[
        int, typer.Option(min=1, help="Rows a table shows at most (csv and json print every row).")
    ] = 1000,
) -> None:
    """Query the published marts in `lake/warehouse.duckdb`, read-only: reading or writing
    files, ATTACH and changing settings are all disabled.

    Example: `cardlake sql "select * from _publication"` · `cardlake sql -f csv "..." > out.csv`

    Without a query it is a shell: end statements with `;`, `.tables` lists the marts,
    `.schema NAME` shows a mart's columns, `.quit` leaves.
    """
    import duckdb
    from rich.markup import escape

    from pipelines.lib.publish import WarehouseMissing, open_warehouse

    if output not in SQL_FORMATS:
        raise typer.BadParameter("use table, csv or json", param_hint="--format")
    lake_dir = (lake or default_lake()).resolve()
    try:
        con = open_warehouse(lake_dir)
    except WarehouseMissing as exc:
        err_console.print(f"[red]{escape(str(exc))}[/]", highlight=False)
        raise typer.Exit(2) from None
    except duckdb.Error as exc:
        _sql_error(exc)
        raise typer.Exit(2) from None
    if query is None:
        con.close()
        _sql_shell(lake_dir, output, max_rows)
        return
    try:
        _print_result(con, query, output, max_rows)
    except duckdb.Error as exc:
        _sql_error(exc)
        raise typer.Exit(1) from None
    finally:
        con.close()


def statement_complete(text: str) -> bool:
    """True when ``text`` ends with a ``;`` that is not inside a string, a quoted name or a
    comment: the shell then runs what it has read."""
    last, i, n = "", 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = text.find(ch, i + 1)
            while end != -1 and text[end + 1 : end + 2] == ch:  # doubled quote
                end = text.find(ch, end + 2)
            if end == -1:
                return False
            last, i = ch, end + 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                return False
            i = end + 2
            continue
        if not ch.isspace():
            last = ch
        i += 1
    return last == ";"


def _sql_shell(lake_dir: Path, output: str, max_rows: int) -> None:
    """The interactive shell. It reopens the warehouse when a newer publication has been swapped
    in, so every statement reads the latest complete publication."""
    import contextlib
    import sys

    import duckdb

    from pipelines.lib.publish import open_warehouse, warehouse_path

    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):  # line editing and history for input()
            import readline  # noqa: F401
    path = warehouse_path(lake_dir)
    opened = path.stat().st_ino  # before opening: a swap in between is caught on the next query
    con = open_warehouse(lake_dir)
    if interactive:
        console.print(f"cardlake sql · {path} · read-only\n{SQL_SHELL_HELP}", highlight=False)
    buffer: list[str] = []
    params: list[object] = []
    try:
        while True:
            try:
                line = input(("   ...> " if buffer else "cardlake> ") if interactive else "")
            except EOFError:
                break
            except KeyboardInterrupt:
                buffer = []
                console.print()
                continue
            command = line.strip()
            if not buffer and command.startswith("."):
                name, _, arg = command.partition(" ")
                if name in (".quit", ".exit", ".q"):
                    break
                if name == ".help":
                    console.print(SQL_SHELL_HELP, highlight=False)
                    continue
                if name == ".tables":
                    query, params = _SQL_TABLES, []
                elif name == ".schema" and arg.strip():
                    query, params = _SQL_SCHEMA, [arg.strip()]
                else:
                    err_console.print(f"[red]unknown command {command!r}[/]: {SQL_SHELL_HELP}")
                    continue
            else:
                buffer.append(line)
                query, params = "\n".join(buffer), []
                if not query.strip():
                    buffer = []
                    continue
                if not statement_complete(query):
                    continue
                buffer = []
            if path.stat().st_ino != opened:
                con.close()
                opened = path.stat().st_ino
                con = open_warehouse(lake_dir)
                console.print("(a newer publication is in: reopened the warehouse)", style="dim")
            try:
                _print_result(con, query, output, max_rows, params)
            except duckdb.Error as exc:
                _sql_error(exc)
    finally:
        con.close()


def _print_result(con, query: str, output: str, max_rows: int, params=None) -> None:
    import csv
    import json
    import sys

    from rich.text import Text

    con.execute(query, params or [])
    if con.description is None:
        console.print("ok", style="dim")
        return
    columns = [d[0] for d in con.description]
    if output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        while batch := con.fetchmany(10_000):
            writer.writerows(batch)
        return
    if output == "json":
        first = True
        sys.stdout.write("[")
        while batch := con.fetchmany(10_000):
            for row in batch:
                record = json.dumps(
                    dict(zip(columns, row, strict=True)), ensure_ascii=False, default=_json_value
                )
                sys.stdout.write(("\n" if first else ",\n") + record)
                first = False
        sys.stdout.write("\n]\n")
        return
    rows = con.fetchmany(max_rows + 1)
    table = Table(header_style="bold", show_edge=False)
    for i, name in enumerate(columns):
        numeric = any(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows)
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows[:max_rows]:
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(_cell(v)) for v in row))
    console.print(table)
    shown = min(len(rows), max_rows)
    more = " (more not shown: raise --max-rows or use --format csv)" if len(rows) > max_rows else ""
    console.print(f"{shown:,} row{'s' if shown != 1 else ''}{more}", style="dim", highlight=False)


def _cell(value: object) -> str:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)


def _json_value(value: object) -> object:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _sql_error(exc: Exception) -> None:
    """A DuckDB error as one clear message (no traceback), with why the warehouse refuses."""
    from rich.markup import escape

    err_console.print(f"[red]error:[/] {escape(str(exc).strip())}", highlight=False)
    text = str(exc)
    if "Out of Memory" in text:
        from pipelines.lib.settings import ReaderLimits

        bounds = ReaderLimits.from_env()
        err_console.print(
            f"a reader may use {bounds.memory} of memory, {bounds.threads} threads and "
            f"{bounds.temp} of spill (CARDLAKE_READER_MEMORY, _THREADS, _TEMP), so that no query "
            "starves the pipelines: aggregate or filter before joining",
            style="yellow",
            highlight=False,
        )
    if "disabled by configuration" in text or "configuration has been locked" in text:
        err_console.print(
            "the warehouse is read-only: reading or writing files, ATTACH and settings are "
            "disabled; query the marts it holds (`.tables`)",
            style="yellow",
            highlight=False,
        )
