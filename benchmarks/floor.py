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
import hashlib
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
import yaml

from pipelines.lib.calendar import CST, day_start
from pipelines.lib.protect import card_key, hash_trimmed

ROOT = Path(__file__).resolve().parent.parent
SQL = Path(__file__).with_name("floor.sql")
SEEDS = ROOT / "dbt_project" / "seeds"
SUPPLIER_HEADERS = ROOT / "schemas" / "supplier_headers.yml"
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
SUPPLIER_FIELDS = (
    "batch_no",
    "product_name",
    "supplier_sku",
    "face_value",
    "unit_cost",
    "card_no",
    "card_secret",
    "expiry",
)
SUPPLIER_COLUMNS = 10  # c0..c9: the widest supplier file has 8 fields and a remark column

# the shop databases' columns the script needs (every column a contract rule checks, or a mart
# uses), read as text exactly as stored, like the cycle's extraction
MAIN_QUERIES = {
    "src_main_orders": (
        "orders",
        "id order_sn goods_id coupon_id title type goods_price buy_amount coupon_discount_price "
        "wholesale_discount_price total_price actual_price email info pay_id trade_no status "
        "coupon_ret_back created_at updated_at deleted_at",
        "where updated_at >= '{lo_local}'",
    ),
    "src_main_carmis": (
        "carmis",
        "id goods_id status is_loop carmi created_at updated_at deleted_at",
        "where updated_at >= '{lo_local}'",
    ),
    "src_main_goods": (
        "goods",
        "id group_id gd_name retail_price actual_price in_stock sales_volume type is_open "
        "created_at updated_at deleted_at",
        "",
    ),
    "src_main_goods_group": (
        "goods_group",
        "id gp_name is_open ord created_at updated_at deleted_at",
        "",
    ),
    "src_main_pays": ("pays", "id pay_name pay_check pay_method is_open updated_at", ""),
}
#: the main shop's refunds: those of the orders read, and every one requested or settled since lo
#: (driven from the refunds, through the orders' unique index on order_sn: an IN over the orders
#: read would have SQLite index a million order numbers first)
MAIN_REFUNDS = (
    "select {cols} from refunds where created_at >= '{lo_local}' or succeeded_at >= '{lo_local}' "
    "or exists (select 1 from orders as o where o.order_sn = refunds.order_sn "
    "and o.updated_at >= '{lo_local}')"
)
MAIN_REFUND_COLUMNS = "id refund_no order_sn amount reason status created_at succeeded_at"
SUB_QUERIES = {
    "src_sub_orders": (
        "order",
        "id owner user_id trade_no amount commodity_id card_num pay_id create_time create_device "
        "pay_time status contact delivery_status coupon_id",
        "where create_time >= {lo_epoch}",
    ),
    "src_sub_card": (
        "card",
        "id owner commodity_id secret create_time purchase_time order_id status",
        "where purchase_time >= {lo_epoch} or create_time >= {lo_epoch}",
    ),
    "src_sub_commodity": (
        "commodity",
        "id category_id name factory_price price user_price status create_time code delivery_way",
        "",
    ),
    "src_sub_category": ("category", "id name sort create_time status", ""),
    "src_sub_pay": ("pay", "id name code", ""),
}
#: the shop tables the script has read for the last time after a step (their memory is freed)
RELEASE = {
    "orders": ("src_main_orders", "src_sub_orders", "src_main_goods", "src_sub_commodity"),
    "keys": ("src_main_carmis", "src_sub_card"),
}
_VERSION = re.compile(r"(?:\((\d+)\)|_v(\d+)|_(resend))$")
_ALIPAY_FOOTER = re.compile(r"#(交易|退款)合计：(\d+)笔，商家实收共(-?[\d.]+)元")
_ALIPAY_ACCOUNT = re.compile(r"#账号：\[(\d+)\]")


class Steps:
    """Wall time per step, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn, *args):
        started = time.perf_counter()
        out = fn(*args)
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)
        return out


# --- the shop databases ---------------------------------------------------------------------


def _select(source: str, columns: str, where: str = "") -> str:
    """Every column as text, exactly as stored. ADBC types a column from its first rows, so a
    first row of empty texts leads (and is dropped after the read): a column that starts with
    NULLs still arrives as text (the cycle's extraction sends NULL as a marker character instead,
    which costs a pass over every value)."""
    names = columns.split()
    first = ", ".join(f"'' as \"{c}\"" for c in names)
    cols = ", ".join(f'cast("{c}" as text)' for c in names)
    return f"select {first} union all select {cols} from {source} {where}"


#: the big reads, split in halves by row id so that every core reads a share (SQLite reads a
#: query on one core)
SPLIT = ("src_main_orders", "src_main_carmis")


def _read_sqlite(path: Path, query: str) -> pa.Table:
    import adbc_driver_sqlite.dbapi as adbc

    if not path.exists():
        raise FileNotFoundError(f"shop database not found: {path}")
    # read-only and immutable: the sources are a snapshot nothing writes while the floor reads
    # (immutable also keeps SQLite from creating -shm/-wal files beside someone else's database)
    with adbc.connect(f"file:{path}?mode=ro&immutable=1") as con, con.cursor() as cur:
        cur.execute(query)
        return cur.fetch_arrow_table().slice(1)  # without the leading row of ''


def load_databases(sources: Path, day: dt.date) -> dict[str, pa.Table]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=CST)
    lo = start - dt.timedelta(hours=1)
    params = {
        "lo_local": lo.strftime("%Y-%m-%d %H:%M:%S"),
        "start_local": start.strftime("%Y-%m-%d %H:%M:%S"),
        "lo_epoch": int(lo.timestamp()),
        "start_epoch": int(start.timestamp()),
    }
    main_db, sub_db = sources / "db" / "shop_main.sqlite", sources / "db" / "shop_substation.sqlite"
    tasks: list[tuple[str, Path, str]] = []
    for db, queries in ((main_db, MAIN_QUERIES), (sub_db, SUB_QUERIES)):
        for name, (table, columns, where) in queries.items():
            where = where.format(**params)
            if name in SPLIT:
                tasks += [
                    (name, db, _select(f'"{table}"', columns, f'{where} and "id" % 2 = {half}'))
                    for half in (0, 1)
                ]
            else:
                tasks.append((name, db, _select(f'"{table}"', columns, where)))
    refunds = MAIN_REFUNDS.format(cols=", ".join(MAIN_REFUND_COLUMNS.split()), **params)
    tasks.append(("src_main_refunds", main_db, _select(f"({refunds}) as r", MAIN_REFUND_COLUMNS)))
    # one worker per core, the big reads first (SQLite and the Arrow conversion release the GIL)
    tasks.sort(key=lambda t: (t[0] not in SPLIT, t[0] != "src_sub_card", t[0] != "src_sub_orders"))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        parts = list(pool.map(lambda t: (t[0], _read_sqlite(t[1], t[2])), tasks))
    out: dict[str, list[pa.Table]] = {}
    for name, table in parts:
        out.setdefault(name, []).append(table)
    return {name: pa.concat_tables(tables) for name, tables in out.items()}


# --- the source files -----------------------------------------------------------------------


def _file_day(path: Path, pattern: str) -> dt.date | None:
    m = re.search(pattern, path.name)
    return dt.datetime.strptime(m.group(1), "%Y%m%d").date() if m else None


def _versions(paths: list[Path]) -> list[list[Path]]:
    """Files grouped by the logical file they stand for (``x.csv``, ``x(1).csv``, ``x_v2.csv``),
    each group in the cycle's order (pipelines/lib/ingest.py), identical re-sends left out."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        stem = _VERSION.sub("", path.stem)
        groups.setdefault(f"{path.parent.name}/{stem}", []).append(path)
    out = []
    for key in sorted(groups):

        def rank(p: Path) -> tuple:
            m = _VERSION.search(p.stem)
            version = int(m.group(1) or m.group(2) or 1) if m else 0
            return (version, p.stat().st_mtime_ns, p.name)

        ordered = sorted(groups[key], key=rank)
        sizes = [p.stat().st_size for p in ordered]
        if len(set(sizes)) < len(sizes):  # an identical re-send adds nothing: read one copy only
            seen, kept = set(), []
            for p in ordered:
                digest = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
                if digest not in seen:
                    seen.add(digest)
                    kept.append(p)
            ordered = kept
        out.append(ordered)
    return out


def _head(path: Path, size: int = 4096) -> bytes:
    with path.open("rb") as fh:
        return fh.read(size)


def _tail(path: Path, size: int = 4096) -> bytes:
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - size))
        return fh.read()


def _fen(text: str) -> int | None:
    try:
        from decimal import Decimal

        return int((Decimal(text.strip().lstrip("`")) * 100).to_integral_value())
    except ArithmeticError:  # a footer that is not an amount rejects the file
        return None


def statement_files(sources: Path, day: dt.date) -> list[dict]:
    """The statement files of the day and later, with their account and stated totals."""
    rows = []
    for channel in ("alipay", "wechat"):
        paths = [
            p
            for p in sorted((sources / "statements" / channel).glob("*/*.csv"))
            if (d := _file_day(p, r"_(\d{8})_")) is not None and d >= day
        ]
        for group in _versions(paths):
            for rank, path in enumerate(group):
                row = {
                    "file": str(path),
                    "logical_key": f"{channel}/{path.parent.name}/{_VERSION.sub('', path.stem)}",
                    "version_rank": rank,
                    "channel": channel,
                    "business_date": _file_day(path, r"_(\d{8})_"),
                    "account_no": None,
                    "parse_ok": False,
                }
                row |= dict.fromkeys(
                    (
                        "stated_pay_lines",
                        "stated_pay_fen",
                        "stated_refund_lines",
                        "stated_refund_fen",
                        "stated_lines",
                        "stated_settle_fen",
                        "stated_fee_fen",
                    )
                )
                if channel == "alipay":
                    _alipay_meta(path, row)
                else:
                    _wechat_meta(path, row)
                rows.append(row)
    return rows


def _alipay_meta(path: Path, row: dict) -> None:
    try:
        head = _head(path, 2048).decode("gbk", errors="replace").splitlines()
        tail = _tail(path).decode("gbk", errors="replace").splitlines()
    except OSError:
        return
    account = next((m.group(1) for ln in head if (m := _ALIPAY_ACCOUNT.match(ln))), None)
    footer = {m.group(1): m for ln in tail if (m := _ALIPAY_FOOTER.match(ln))}
    complete = set(footer) == {"交易", "退款"}
    if not head or not head[0].startswith("#支付宝") or account is None or not complete:
        return
    row |= {
        "account_no": account,
        "stated_pay_lines": int(footer["交易"].group(2)),
        "stated_pay_fen": _fen(footer["交易"].group(3)),
        "stated_refund_lines": int(footer["退款"].group(2)),
        "stated_refund_fen": _fen(footer["退款"].group(3)),
        "parse_ok": True,
    }


def _wechat_meta(path: Path, row: dict) -> None:
    try:
        head = _head(path).decode("utf-8-sig", errors="replace").splitlines()
        tail = _tail(path).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return
    at = next((i for i, ln in enumerate(tail) if ln.startswith("总交易单数")), None)
    if not head or not head[0].startswith("交易时间") or at is None or at + 1 >= len(tail):
        return
    legacy = "总金额" in head[0].split(",")
    values = (v.lstrip("`") for v in tail[at + 1].split(","))
    summary = dict(zip(tail[at].split(","), values, strict=False))
    total_key, refund_key = (
        ("总交易额", "总退款金额") if legacy else ("应结订单总金额", "退款总金额")
    )
    try:
        stated = (
            int(summary["总交易单数"]),
            _fen(summary[total_key]),
            _fen(summary[refund_key]),
            _fen(summary["手续费总金额"]),
        )
    except (KeyError, ValueError):
        return
    if None in stated:
        return
    first = head[1].split(",") if len(head) > 1 and not head[1].startswith("总交易单数") else []
    mch = first[2].lstrip("`") if len(first) > 2 else path.name.split("_")[0]
    row |= {
        "account_no": mch,
        "stated_lines": stated[0],
        "stated_settle_fen": stated[1],
        "stated_refund_fen": stated[2],
        "stated_fee_fen": stated[3],
        "parse_ok": True,
    }


def supplier_files(sources: Path, day: dt.date, scratch: Path) -> tuple[list[dict], pa.Table]:
    """The supplier delivery files of the day and later: each one's header mapped to the
    contract's fields (an unknown header or a missing required field refuses the file, as the
    cycle does; the last version that is not refused counts). CSV is left to DuckDB (a GBK file
    re-encoded to UTF-8 first: DuckDB reads no GBK here); XLSX is parsed here into rows c0..c9."""
    raw = yaml.safe_load(SUPPLIER_HEADERS.read_text(encoding="utf-8"))
    header_map = {h: ("" if f == "ignored" else f) for f, hs in raw.items() for h in hs}
    paths = [
        p
        for p in sorted((sources / "suppliers").glob("*/*"))
        if p.is_file()
        and not p.name.startswith(".")
        and (d := _file_day(p, r"_(\d{8})(?:\.|_)")) is not None
        and d >= day
    ]
    rows, xlsx = [], []
    for rank, group in enumerate(_versions(paths)):
        for path in reversed(group):  # the last version that is not refused
            parsed = _supplier_file(path, header_map, scratch)
            if parsed is None:
                continue
            read_path, header, cells = parsed
            mapping = {header_map[h.strip()]: i for i, h in enumerate(header)}
            row = {
                "read_path": read_path,
                "supplier_code": path.parent.name,
                "business_date": _file_day(path, r"_(\d{8})(?:\.|_)"),
                "file_rank": rank,
            }
            row |= {f"i_{f}": mapping.get(f) for f in SUPPLIER_FIELDS}
            rows.append(row)
            if cells is not None:
                xlsx.append(cells)
            break
    names = [f"c{i}" for i in range(SUPPLIER_COLUMNS)] + ["filename"]
    table = (
        pa.concat_tables(xlsx) if xlsx else pa.table({n: pa.array([], pa.string()) for n in names})
    )
    return rows, table


def _supplier_file(
    path: Path, header_map: dict[str, str], scratch: Path
) -> tuple[str, list[str], pa.Table | None] | None:
    cells = None
    if path.suffix.lower() == ".xlsx":
        import polars as pl

        try:
            frame = pl.read_excel(path, engine="calamine", infer_schema_length=0)
        except Exception:  # calamine raises its own error types for a broken workbook
            return None
        header = list(frame.columns)
        frame = frame.with_columns(pl.all().cast(pl.String))
        frame.columns = [f"c{i}" for i in range(len(header))]
        for i in range(len(header), SUPPLIER_COLUMNS):
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(f"c{i}"))
        read_path = str(path)
        cells = frame.with_columns(pl.lit(read_path).alias("filename")).to_arrow()
        cells = cells.cast(pa.schema([(n, pa.string()) for n in cells.column_names]))
    elif path.suffix.lower() == ".csv":
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
            read_path = str(path)
        except UnicodeDecodeError:
            try:
                text = data.decode("gbk")
            except UnicodeDecodeError:
                return None
            scratch.mkdir(parents=True, exist_ok=True)
            out = scratch / f"{path.parent.name}_{path.stem}.utf8.csv"
            out.write_text(text, encoding="utf-8")
            read_path = str(out)
        header = [h.strip('"') for h in text.split("\n", 1)[0].rstrip("\r").split(",")]
    else:
        return None
    if len(header) > SUPPLIER_COLUMNS or any(h.strip() not in header_map for h in header):
        return None
    fields = {header_map[h.strip()] for h in header}
    if {"batch_no", "product_name", "card_secret", "unit_cost"} - fields:
        return None
    return read_path, header, cells


# --- the lake (history) ---------------------------------------------------------------------


def _partitions(folder: Path, lo: dt.date | None, hi: dt.date) -> list[str]:
    out = []
    for part in sorted(folder.glob("business_date=*")):
        day = dt.date.fromisoformat(part.name.split("=", 1)[1])
        if (lo is None or day >= lo) and day <= hi and (part / "part-0.parquet").exists():
            out.append(str(part / "part-0.parquet"))
    return out


def lake_files(lake: Path, day: dt.date) -> dict[str, list[str]]:
    before = day - dt.timedelta(days=1)
    files = {
        "lake_ledger_files": _partitions(lake / "marts" / "fct_key_movements", None, before),
        "lake_inventory_files": _partitions(
            lake / "marts" / "kpi_inventory_daily", day - dt.timedelta(days=29), before
        ),
        "lake_fct_orders_files": _partitions(lake / "marts" / "fct_orders", None, before),
        "lake_raw_supplier_files": _partitions(
            lake / "raw" / "supplier__card_batches", None, before
        ),
        "lake_raw_alipay_files": _partitions(
            lake / "raw" / "alipay__statement_lines", None, before
        ),
        "lake_raw_wechat_files": _partitions(lake / "raw" / "wechat__bill_lines", None, before),
        "lake_raw_main_orders_files": _partitions(lake / "raw" / "shop__orders", None, before),
    }
    missing = [k for k, v in files.items() if not v]
    if not missing and before.isoformat() not in files["lake_inventory_files"][-1]:
        missing = [f"kpi_inventory_daily of {before}"]
    if missing:
        raise SystemExit(
            f"the lake {lake} holds no history before {day} (missing: {', '.join(missing)}): "
            "the floor needs the marts published for the days before"
        )
    return files


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
    stmts = steps.run("list_statements", statement_files, sources, day)
    suppliers, xlsx = steps.run("list_suppliers", supplier_files, sources, day, scratch)
    history = lake_files(lake, day)

    placeholders = _placeholders(scratch)
    con.register("stmt_files_arrow", pa.Table.from_pylist(stmts, schema=_STMT_SCHEMA))
    con.execute("create temp table stmt_files as select * from stmt_files_arrow")
    con.register("supplier_files_arrow", pa.Table.from_pylist(suppliers, schema=_SUPPLIER_SCHEMA))
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


_STMT_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("logical_key", pa.string()),
        ("version_rank", pa.int64()),
        ("channel", pa.string()),
        ("business_date", pa.date32()),
        ("account_no", pa.string()),
        ("parse_ok", pa.bool_()),
        ("stated_pay_lines", pa.int64()),
        ("stated_pay_fen", pa.int64()),
        ("stated_refund_lines", pa.int64()),
        ("stated_refund_fen", pa.int64()),
        ("stated_lines", pa.int64()),
        ("stated_settle_fen", pa.int64()),
        ("stated_fee_fen", pa.int64()),
    ]
)
_SUPPLIER_SCHEMA = pa.schema(
    [
        ("read_path", pa.string()),
        ("supplier_code", pa.string()),
        ("business_date", pa.date32()),
        ("file_rank", pa.int64()),
        *[(f"i_{f}", pa.int64()) for f in SUPPLIER_FIELDS],
    ]
)


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
