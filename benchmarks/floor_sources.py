"""The benchmark floor's sources: what the floor script (``floor.sql``) is handed for one business
day, read the plain way: the shop databases' rows through ADBC as Arrow tables, the day's
statement files with what their footers and headers state, the supplier files (XLSX through
calamine), and the lake partitions of the history before the day. ``floor.py`` runs the script
on them and checks its results.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

import pyarrow as pa
import yaml

from pipelines.lib.calendar import CST

SUPPLIER_HEADERS = Path(__file__).resolve().parent.parent / "schemas" / "supplier_headers.yml"
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
        "acg_order",
        "id owner user_id trade_no amount commodity_id card_num pay_id create_time create_device "
        "pay_time status contact delivery_status coupon_id",
        "where create_time >= '{lo_local}'",
    ),
    "src_sub_card": (
        "acg_card",
        "id owner commodity_id secret create_time purchase_time order_id status",
        "where purchase_time >= '{lo_local}' or create_time >= '{lo_local}'",
    ),
    "src_sub_commodity": (
        "acg_commodity",
        "id category_id name factory_price price user_price status create_time code delivery_way",
        "",
    ),
    "src_sub_category": ("acg_category", "id name sort create_time status", ""),
    "src_sub_pay": ("acg_pay", "id name code", ""),
}

_VERSION = re.compile(r"(?:\((\d+)\)|_v(\d+)|_(resend))$")
_ALIPAY_FOOTER = re.compile(r"#(交易|退款)合计：(\d+)笔，商家实收(?:退款)?共(-?[\d.]+)元")
#: what a spreadsheet that saved a statement again wrote: a long ID as a ="…" formula, quoted
_FORMULA_ID = re.compile(r'"=""(\d+)"""')
_SPREADSHEET_TIME = re.compile(r"\b(\d{4})/(\d{1,2})/(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2})\b")
_ALIPAY_ACCOUNT = re.compile(r"#账号：\[(\d+)\]")


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


def statement_files(sources: Path, day: dt.date, scratch: Path) -> list[dict]:
    """The statement files of the day and later, with their account and stated totals (a file a
    spreadsheet saved again is read from its copy as the channel exports it, ``_as_exported``)."""
    rows = []
    for channel in ("alipay", "wechat"):
        paths = [
            p
            for p in sorted((sources / "statements" / channel).glob("*/*.csv"))
            if (d := _file_day(p, r"_(\d{8})_")) is not None and d >= day
        ]
        for group in _versions(paths):
            for rank, original in enumerate(group):
                path = _as_exported(original, channel, scratch)
                row = {
                    "file": str(path),
                    "logical_key": f"{channel}/{original.parent.name}/"
                    f"{_VERSION.sub('', original.stem)}",
                    "version_rank": rank,
                    "channel": channel,
                    "business_date": _file_day(original, r"_(\d{8})_"),
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


def _iso_times(line: str) -> str:
    """Times a spreadsheet wrote in its date format (``2026/10/5 8:00:05``) as the channel does."""
    return _SPREADSHEET_TIME.sub(
        lambda m: "{}-{:0>2}-{:0>2} {:0>2}:{}:{}".format(*m.groups()), line
    )


def _as_exported(path: Path, channel: str, scratch: Path) -> Path:
    """The statement as the channel exports it (Alipay GBK, WeChat UTF-8 with BOM): a file a
    spreadsheet saved again (the other encoding, one-cell lines padded with commas, blank rows,
    IDs as ="…" formulas, times in its date format) gets a scratch copy undoing that; any other
    file is read as it is."""
    data = path.read_bytes()
    native = "gbk" if channel == "alipay" else "utf-8-sig"
    foreign = "utf-8-sig" if channel == "alipay" else "gbk"
    try:
        text = data.decode(native)
        if channel == "alipay" and data.startswith(b"\xef\xbb\xbf"):
            raise UnicodeDecodeError(native, data, 0, 3, "a UTF-8 BOM")
    except UnicodeDecodeError:
        try:
            text = data.decode(foreign)
        except UnicodeDecodeError:
            return path  # neither: the checks refuse it as the cycle does
    if text == data.decode(native, errors="replace") and '"=""' not in text:
        return path
    lines = [
        ln.rstrip(",") if ln.startswith("#") else _iso_times(_FORMULA_ID.sub(r"\1", ln))
        for ln in text.splitlines()
        if ln.strip(" ,\t")
    ]
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / f"{channel}_{path.parent.name}_{path.stem}.csv"
    out.write_bytes(("\r\n".join(lines) + "\r\n").encode(native))
    return out


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


STATEMENT_FILE_SCHEMA = pa.schema(
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
SUPPLIER_FILE_SCHEMA = pa.schema(
    [
        ("read_path", pa.string()),
        ("supplier_code", pa.string()),
        ("business_date", pa.date32()),
        ("file_rank", pa.int64()),
        *[(f"i_{f}", pa.int64()) for f in SUPPLIER_FIELDS],
    ]
)
