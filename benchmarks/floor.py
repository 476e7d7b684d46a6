"""Benchmark floor: the four core marts of one new business day (fct_orders, kpi_sales_daily,
kpi_refunds_daily, kpi_inventory_daily) computed by one plain DuckDB script
(``benchmarks/floor.sql``) from the same sources the daily cycle reads, with no framework: the
fastest honest way to the same numbers, against which ``cardlake run`` is measured.

The runner hands the script what DuckDB cannot read here (the shop databases' rows, through ADBC
as Arrow tables, filtered in SQLite to the window the script needs; supplier XLSX files, through
calamine), lists the day's source files with what they say about themselves (a statement's
footer, a supplier's header), points the script at the history it needs in the cycle's lake
(partitions before the day only: the day before's closing stock, the key ledger, older orders;
see the script's header), runs it step by step in one in-memory DuckDB (threads = cores) and
writes the four results as Parquet. Card keys are matched by the keyed hash the lake holds them
as: the script's ``card_key_hash`` is ``pipelines.lib.protect``'s, under the install's key
(``CARDLAKE_SECRETS``, the key the cycle landed the lake with). ``floor_s`` is the wall time of all of it, loading included.

With ``--check-lake`` the results are compared with the marts the cycle published for the day
(``LAKE/marts/<mart>/business_date=<day>/part-0.parquet``): per mart the rows in both and in one
only, and every column whose values differ, with examples; the exit status is 1 when they differ
beyond the columns the floor does not compute (``omitted_columns``). The last line of the output
is the result as one JSON object; ``run_floor`` returns it as a dict.

    python benchmarks/floor.py --sources DIR --day YYYY-MM-DD [--lake LAKE] [--out DIR]
                               [--check-lake LAKE] [--save]

``--lake`` is the cycle's lake whose history (before the day) the floor reads; it defaults to
``--check-lake``, and the day before must have been published in it (the floor does not compute
a lake's first day). The lake and the sources are only read; ``--out`` (default: a temp dir)
receives the Parquet. ``--save`` also writes ``benchmarks/results/<timestamp>-floor.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

# the script's inputs for the day; run as a script, this folder is on the path
from floor_sources import (
    STATEMENT_FILE_SCHEMA,
    SUPPLIER_FILE_SCHEMA,
    lake_files,
    load_databases,
    statement_files,
    supplier_files,
)

from pipelines.lib.calendar import day_start
from pipelines.lib.protect import card_key, hash_trimmed

ROOT = Path(__file__).resolve().parent.parent
SQL = Path(__file__).with_name("floor.sql")
SEEDS = ROOT / "dbt_project" / "seeds"
MARTS = ("fct_orders", "kpi_sales_daily", "kpi_refunds_daily", "kpi_inventory_daily")
#: columns the floor leaves NULL: they need the whole identity graph (every buyer identifier of
#: every system and day, resolved into unified users), which no day's sources give cheaply
OMITTED = {
    "fct_orders": ["user_key"],
    "kpi_sales_daily": ["buyers", "new_buyers", "customer_unit_price_fen"],
    "kpi_refunds_daily": [],
    "kpi_inventory_daily": [],
}
KEYS = {
    "fct_orders": ["order_no"],
    "kpi_sales_daily": ["shop"],
    "kpi_refunds_daily": ["breakdown", "breakdown_value"],
    "kpi_inventory_daily": ["scope", "shop", "sku_code"],
}
#: the shop tables the script has read for the last time after a step (their memory is freed)
RELEASE = {
    "orders": ("src_main_orders", "src_sub_orders", "src_main_goods", "src_sub_commodity"),
    "keys": ("src_main_carmis", "src_sub_card"),
}


class Steps:
    """Wall time per step, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn, *args):
        started = time.perf_counter()
        out = fn(*args)
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)
        return out


# --- running the script ---------------------------------------------------------------------


def _literal(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dt.datetime):
        return f"timestamp '{value:%Y-%m-%d %H:%M:%S}'"
    if isinstance(value, dt.date):
        return f"date '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def steps_of(sql: str) -> list[tuple[str, str]]:
    """The script's ``-- @step <name>`` sections, in order."""
    parts = re.split(r"^-- @step (\w+)\s*$", sql, flags=re.M)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


def _register_card_key_hash(con: duckdb.DuckDBPyConnection) -> None:
    """``card_key_hash(text)``: a card key as the lake holds it (``protect: hmac``: trimmed, then
    the keyed hash; blank stays ''), the cycle's own function under the install's key."""
    key = card_key()

    def card_key_hash(values: pa.Array) -> pa.Array:
        return hash_trimmed(pl.Series(values, dtype=pl.String), key).to_arrow()

    con.create_function(
        "card_key_hash",
        card_key_hash,
        [duckdb.sqltype("VARCHAR")],
        duckdb.sqltype("VARCHAR"),
        type="arrow",
        null_handling="special",
    )


def run_floor(sources: Path, day: dt.date, out: Path, lake: Path | None = None) -> dict:
    """Compute the four marts of ``day`` into ``out`` (Parquet); ``lake`` is the cycle's lake
    whose history before ``day`` the floor reads. Returns the timings and counts."""
    if lake is None:
        raise ValueError("the floor needs the cycle's lake for the history before the day (--lake)")
    sources, out, lake = Path(sources), Path(out), Path(lake)
    out.mkdir(parents=True, exist_ok=True)
    scratch = out / "_scratch"
    steps = Steps()
    started = time.perf_counter()

    con = duckdb.connect(config={"threads": os.cpu_count() or 1})
    con.execute("set TimeZone = 'UTC'")
    _register_card_key_hash(con)
    tables = steps.run("load_databases", load_databases, sources, day)
    for name, table in tables.items():
        con.register(name, table)
    stmts = steps.run("list_statements", statement_files, sources, day, scratch)
    suppliers, xlsx = steps.run("list_suppliers", supplier_files, sources, day, scratch)
    history = lake_files(lake, day)

    placeholders = _placeholders(scratch)
    con.register("stmt_files_arrow", pa.Table.from_pylist(stmts, schema=STATEMENT_FILE_SCHEMA))
    con.execute("create temp table stmt_files as select * from stmt_files_arrow")
    con.register(
        "supplier_files_arrow", pa.Table.from_pylist(suppliers, schema=SUPPLIER_FILE_SCHEMA)
    )
    con.execute("create temp table supplier_files as select * from supplier_files_arrow")
    con.register("xlsx_supplier_rows", xlsx)

    start = day_start(day).replace(tzinfo=None)  # naive UTC, as the script's timestamps
    variables = {
        "day": day,
        "d_start": start,
        "d_end": start + dt.timedelta(days=1),
        "lo": start - dt.timedelta(hours=1),
        "now_limit": dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1),
        "seeds": str(SEEDS),
        "alipay_pay": "交易".encode("gbk").decode("latin-1"),
        "alipay_refund": "退款".encode("gbk").decode("latin-1"),
        "alipay_files": [s["file"] for s in stmts if s["channel"] == "alipay"]
        or [placeholders["alipay"]],
        "wechat_files": [s["file"] for s in stmts if s["channel"] == "wechat"]
        or [placeholders["wechat"]],
        "supplier_csv_files": [s["read_path"] for s in suppliers if s["read_path"].endswith(".csv")]
        or [placeholders["supplier"]],
        **history,
    }
    for name, value in variables.items():
        con.execute(f"set variable {name} = {_literal(value)}")
    source_rows = {name: table.num_rows for name, table in tables.items()}
    for name, body in steps_of(SQL.read_text(encoding="utf-8")):
        steps.run(name, con.execute, body)
        for done in RELEASE.get(name, ()):  # the rows of the big tables are no longer needed
            con.unregister(done)
            del tables[done]

    def write() -> dict[str, int]:
        rows = {}
        for mart in MARTS:
            path = out / f"{mart}.parquet"
            con.execute(f"copy out_{mart} to {_literal(str(path))} (format parquet)")
            rows[mart] = con.execute(f"select count(*) from out_{mart}").fetchone()[0]
        return rows

    rows = steps.run("write", write)
    floor_s = time.perf_counter() - started
    checks = _self_checks(con)
    con.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "benchmark": "floor",
        "day": day.isoformat(),
        "floor_s": round(floor_s, 3),
        "steps_s": steps.seconds,
        "rows": rows,
        "source_rows": source_rows,
        "files": {
            "statements": len(stmts),
            "suppliers": len(suppliers),
            "supplier_xlsx": sum(1 for s in suppliers if not s["read_path"].endswith(".csv")),
        },
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "omitted_columns": {m: c for m, c in OMITTED.items() if c},
        "self_checks": checks,
        "history_lake": str(lake),
        "out": str(out),
    }


def _placeholders(scratch: Path) -> dict[str, str]:
    """Empty files for a kind the day has none of (a reader needs at least one file)."""
    scratch.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, text in (
        ("alipay", "#empty\n" + ",".join(f"c{i}" for i in range(25)) + "\n"),
        ("wechat", ",".join(f"c{i}" for i in range(27)) + "\n"),
        ("supplier", "c0\n"),
    ):
        path = scratch / f"empty_{kind}.csv"
        path.write_text(text, encoding="utf-8")
        out[kind] = str(path)
    return out


def _self_checks(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Counts of rows that would break one of the script's assumptions (all 0 when they hold)."""
    return {
        # a payment on the day of an order the order window did not read (created > 1 h before)
        "payments_of_unread_orders": con.execute(
            "select count(*) from statement_lines where not is_read and line_type = 'payment' "
            "and bdate(completed_at) = getvariable('day')"
        ).fetchone()[0],
        # a refund settled on the day whose order was found neither read nor in the lake
        "refunds_without_order": con.execute(
            "select count(*) from (select 'M-' || upper(trim(order_sn)) as order_no "
            "from src_main_refunds where p_ts(succeeded_at) >= getvariable('d_start') "
            "and p_ts(succeeded_at) < getvariable('d_end')) as r "
            "anti join refunds using (order_no)"
        ).fetchone()[0],
        # keys whose cost was found neither in the ledger nor in the delivery file of the day they
        # were imported (the cycle looks in every delivery file; it may find one elsewhere)
        "keys_without_cost": con.execute(
            "select count(*) from keys_costed where cost_fen is null"
        ).fetchone()[0],
    }


# --- the check against the cycle's marts ----------------------------------------------------


def check_lake(out: Path, lake: Path, day: dt.date, examples: int = 3) -> dict:
    """Compare the floor's results with the marts the cycle published for ``day``."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    report = {}
    for mart in MARTS:
        published = lake / "marts" / mart / f"business_date={day.isoformat()}" / "part-0.parquet"
        if not published.exists():
            report[mart] = {"error": f"no published partition {published}"}
            continue
        con.execute(f"create or replace view lake_v as select * from read_parquet('{published}')")
        con.execute(
            f"create or replace view floor_v as select * from read_parquet('{out / mart}.parquet')"
        )
        lake_cols = {r[0]: r[1] for r in con.execute("describe lake_v").fetchall()}
        floor_cols = {r[0]: r[1] for r in con.execute("describe floor_v").fetchall()}
        keys = KEYS[mart]
        on = " and ".join(f"l.{k} is not distinct from f.{k}" for k in keys)
        counts = con.execute(
            f"select count(*) filter (where l.k and f.k), count(*) filter (where f.k is null), "
            f"count(*) filter (where l.k is null) from (select *, true as k from lake_v) as l "
            f"full join (select *, true as k from floor_v) as f on {on}"
        ).fetchone()
        entry = {"rows_both": counts[0], "rows_only_lake": counts[1], "rows_only_floor": counts[2]}
        for side, (a, b) in {"only_lake": ("l", "f"), "only_floor": ("f", "l")}.items():
            if entry[f"rows_{side}"]:
                cols = ", ".join(f"{a}.{k}" for k in keys)
                entry[f"examples_{side}"] = [
                    list(map(str, r))
                    for r in con.execute(
                        f"select {cols} from (select *, true as k from lake_v) as l full join "
                        f"(select *, true as k from floor_v) as f on {on} where {b}.k is null "
                        f"order by all limit {examples}"
                    ).fetchall()
                ]
        differ = {}
        for col, ctype in lake_cols.items():
            if col in keys or col in OMITTED[mart] or col == "business_date":
                continue
            if col not in floor_cols:
                differ[col] = {"rows": None, "note": "missing in the floor's output"}
                continue
            if ctype in ("DOUBLE", "FLOAT"):
                same = (
                    f"(l.{col} is null and f.{col} is null) or abs(l.{col} - f.{col}) "
                    f"<= 1e-9 * greatest(1, abs(l.{col}))"
                )
            else:
                same = f"l.{col} is not distinct from f.{col}"
            where = f"not coalesce({same}, false)"
            n = con.execute(
                f"select count(*) from lake_v as l join floor_v as f on {on} where {where}"
            ).fetchone()[0]
            if n:
                cols = ", ".join(f"l.{k}" for k in keys)
                differ[col] = {
                    "rows": n,
                    "examples": [
                        {"key": list(map(str, r[:-2])), "lake": str(r[-2]), "floor": str(r[-1])}
                        for r in con.execute(
                            f"select {cols}, l.{col}, f.{col} from lake_v as l join floor_v as f "
                            f"on {on} where {where} order by all limit {examples}"
                        ).fetchall()
                    ],
                }
        entry["columns_differ"] = differ
        entry["omitted"] = OMITTED[mart]
        entry["agree"] = not (entry["rows_only_lake"] or entry["rows_only_floor"] or differ)
        report[mart] = entry
    con.close()
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", type=Path, required=True, help="the sources folder")
    ap.add_argument("--day", type=dt.date.fromisoformat, required=True, help="YYYY-MM-DD")
    ap.add_argument("--lake", type=Path, help="the cycle's lake (history before the day)")
    ap.add_argument("--out", type=Path, help="where the four marts go (default: a temp dir)")
    ap.add_argument("--check-lake", type=Path, help="compare with the marts published here")
    ap.add_argument("--save", action="store_true", help="also write benchmarks/results/…")
    args = ap.parse_args()
    lake = args.lake or args.check_lake
    if lake is None:
        ap.error("--lake (or --check-lake) is required: the floor reads the history before the day")
    out = args.out or Path(tempfile.mkdtemp(prefix="cardlake-floor-"))
    result = run_floor(args.sources, args.day, out, lake)
    status = 0
    if args.check_lake:
        result["check"] = check_lake(out, args.check_lake, args.day)
        result["agree"] = all(m.get("agree") for m in result["check"].values())
        status = 0 if result["agree"] else 1
    if args.save:
        from benchlib import machine, save

        result["machine"] = machine()
        save(result)
    summary = ", ".join(f"{k} {v:.2f}" for k, v in result["steps_s"].items())
    print(f"floor for {args.day}: {result['floor_s']:.2f} s ({summary})", file=sys.stderr)
    print(json.dumps(result, default=str))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
