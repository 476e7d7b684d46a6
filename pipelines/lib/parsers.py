"""Parsers for the file sources, exactly as the real systems write them.

Each returns the file's lines as text columns named as in the dataset's contract (the validator
types them), plus what the file says about itself. A statement whose lines do not sum to its own
footer or summary raises ``StatementRejected``: the whole file is refused, never half-loaded.

The statement formats are hand-parsed on purpose: they are CSV bodies wrapped in comment
headers, footers and summary blocks that no CSV library understands as one file; the CSV body
itself goes through polars' reader.
"""

from __future__ import annotations

import dataclasses
import io
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl
import yaml

from pipelines.lib.contracts import SCHEMAS_DIR, Contract


class FileRejected(ValueError):
    """A source file that cannot be loaded as a whole; the message says why, for a person."""

    rule = "file_rejected"


class StatementRejected(FileRejected):
    rule = "footer_mismatch"


@dataclasses.dataclass
class ParsedFile:
    rows: pl.DataFrame  # text columns named as in the contract
    account: str
    meta: dict[str, object]  # recorded with the file in the partition's state (e.g. footer totals)


def _fen(text: str) -> int:
    try:
        return int((Decimal(text.strip().lstrip("`")) * 100).to_integral_value())
    except (InvalidOperation, ValueError) as exc:
        raise FileRejected(f"not an amount: {text!r}") from exc


def _fen_sum(values: pl.Series) -> int:
    """Exact sum in fen of yuan amounts written as text (``12.50``, ```-0.06``, ``0.30000``)."""
    if values.is_empty():
        return 0
    cleaned = values.str.strip_chars().str.strip_prefix("`")
    amounts = cleaned.cast(pl.Decimal(24, 6), strict=False)
    if amounts.null_count() > cleaned.null_count():
        bad = cleaned.filter(amounts.is_null() & cleaned.is_not_null())[0]
        raise FileRejected(f"not an amount: {bad!r}")
    return int((amounts * 100).round(0).cast(pl.Int64).sum())


def _read_csv_text(body: str) -> pl.DataFrame:
    if not body.strip():
        return pl.DataFrame()
    return pl.read_csv(
        io.StringIO(body), infer_schema=False, quote_char='"', truncate_ragged_lines=False
    )


def _rename(frame: pl.DataFrame, contract: Contract, path: Path) -> pl.DataFrame:
    mapping: dict[str, str] = {}
    for col in contract.columns:
        for source in col.source_names:
            if source in frame.columns:
                mapping[source] = col.name
    unknown = [c for c in frame.columns if c not in mapping]
    if unknown:
        raise FileRejected(f"{path.name}: unknown columns {unknown}")
    return frame.rename(mapping)


def _decode(raw: bytes, path: Path, encodings: tuple[str, ...] = ("utf-8-sig", "gbk")) -> str:
    """The file's text in the first of ``encodings`` that fits, or a clear refusal."""
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileRejected(f"{path.name}: not {' or '.join(e.upper() for e in encodings)} text")


#: a cell a spreadsheet wrapped as a formula so that it stays text: ``="2088…"``
_FORMULA_TEXT = re.compile(r'^="(.*)"$')
#: a number a spreadsheet wrote with an ``=`` in front: ``=12.50``
_FORMULA_NUMBER = re.compile(r"^=(-?\d+(?:\.\d+)?)$")
#: a long number a spreadsheet turned into scientific notation, its trailing digits lost
_SCIENTIFIC = r"^[+-]?\d(?:\.\d+)?[eE][+-]?\d+$"
#: a time a spreadsheet wrote in its own date format, with its seconds (``2026/10/5 8:00:05``)
#: and, in the default format, without them (``2026/10/5 8:00``: every time cut to the minute)
_SPREADSHEET_TIME = r"^\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}:\d{2}$"
_SPREADSHEET_MINUTE = r"^\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}$"


def _statement_lines(path: Path) -> list[tuple[int, str]]:
    """A statement's lines with their numbers (from 1): UTF-8 (with or without BOM) or GBK, as the
    channel sent it or as a spreadsheet saved it again (Alipay writes GBK and WeChat UTF-8 with
    BOM; a re-save may switch them), CRLF or LF; without the blank lines and the comma-only lines
    a spreadsheet writes for empty rows, and with the commas it pads a one-cell line with (a
    ``#`` header or footer) dropped."""
    text = _decode(path.read_bytes(), path, ("utf-8-sig", "gbk"))
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip(" ,\t"):
            continue
        out.append((number, line.rstrip(",") if line.startswith("#") else line))
    return out


def _unwrap_spreadsheet_cells(frame: pl.DataFrame) -> pl.DataFrame:
    """Cells a spreadsheet wrapped as formulas (``="2088…"`` to keep text, ``=12.50``) read as the
    value they show, and times it wrote in its date format with their seconds
    (``2026/10/5 8:00:05``) in the channel's (``2026-10-05 08:00:05``)."""
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA_TEXT.pattern))
        .then(pl.col(c).str.extract(_FORMULA_TEXT.pattern, 1))
        .when(pl.col(c).str.contains(_FORMULA_NUMBER.pattern))
        .then(pl.col(c).str.extract(_FORMULA_NUMBER.pattern, 1))
        .when(pl.col(c).str.contains(_SPREADSHEET_TIME))
        .then(
            pl.col(c)
            .str.strptime(pl.Datetime, "%Y/%m/%d %H:%M:%S", strict=False)
            .dt.strftime("%Y-%m-%d %H:%M:%S")
        )
        .otherwise(pl.col(c))
        .alias(c)
        for c in frame.columns
    )


def _refuse_spreadsheet_damage(
    frame: pl.DataFrame, contract: Contract, path: Path, line_numbers: list[int]
) -> None:
    """What a spreadsheet lost, nothing can restore, so the file is refused whole, naming the
    line: a text column (an ID) holding a number in scientific notation lost its digits; a time
    written in the default date format lost its seconds (the payment times the shops' orders are
    timed by)."""
    damage = {
        "string": (
            _SCIENTIFIC,
            "a number a spreadsheet wrote in scientific notation with its digits lost; "
            "expected the ID as text",
        ),
        "local_datetime": (
            _SPREADSHEET_MINUTE,
            "a time a spreadsheet wrote in its date format without the seconds; "
            "expected YYYY-MM-DD HH:MM:SS",
        ),
    }
    for column in contract.columns:
        if column.type not in damage or column.name not in frame.columns:
            continue
        pattern, what = damage[column.type]
        bad = frame.with_row_index("_i").filter(pl.col(column.name).str.contains(pattern))
        if bad.height:
            i, value = bad["_i"][0], bad[column.name][0]
            raise FileRejected(
                f"{path.name} line {line_numbers[i]}: {column.source_names[0]} reads {value!r}, "
                f"{what} (send the statement as the channel exported it)"
            )


#: the channels' money-flow exports, which a shop may send in place of the trade statements: told
#: apart so that the refusal says what the file is and what to send instead
ALIPAY_LEDGER_TITLE = "#支付宝账务明细查询"
WECHAT_FUND_FLOW_HEADER = "记账时间,微信支付业务单号,资金流水单号"

#: the footer totals, in both wordings real exports carry: ``#退款合计：3笔，商家实收共-30.00元``
#: and ``#退款合计：3笔，商家实收退款共-30.00元，商家优惠退款共0.00元`` (the merchant-discount
#: part that may follow is not a sum of the lines' 商家实收 and is not checked)
_ALIPAY_FOOTER = re.compile(r"#(交易|退款)合计：(\d+)笔，商家实收(?:退款)?共(-?[\d.]+)元")
_ALIPAY_ACCOUNT = re.compile(r"#账号：\[(\d+)\]")


def parse_alipay(path: Path, contract: Contract) -> ParsedFile:
    """Alipay 业务明细: GBK (or UTF-8), ``#`` header and footer, text cells ending in a tab (the ID
    cells always; in today's exports any text cell, ``交易\t`` included), as exported or saved
    again by a spreadsheet (``_statement_lines``, ``_unwrap_spreadsheet_cells``)."""
    numbered = _statement_lines(path)
    lines = [line for _, line in numbered]
    if not lines or not lines[0].startswith("#支付宝"):
        raise FileRejected(f"{path.name}: not an Alipay statement (no #支付宝 title line)")
    if lines[0].startswith(ALIPAY_LEDGER_TITLE):
        raise FileRejected(
            f"{path.name} line {numbered[0][0]}: an Alipay 账务明细 (account ledger: "
            "账务流水号, 收入金额, 支出金额, 账户余额), not a 业务明细; expected the 业务明细 export "
            "(#支付宝业务明细查询): the ledger has no refund request numbers (退款批次号) to match "
            "the shop's refunds by and no order creation times"
        )
    account = next((m.group(1) for ln in lines if (m := _ALIPAY_ACCOUNT.match(ln))), None)
    if account is None:
        raise FileRejected(f"{path.name}: no #账号 line")
    footer = {
        m.group(1): (int(m.group(2)), _fen(m.group(3)))
        for ln in lines
        if (m := _ALIPAY_FOOTER.match(ln))
    }
    if set(footer) != {"交易", "退款"}:
        raise FileRejected(f"{path.name}: footer totals (#交易合计 / #退款合计) missing")
    body = [(number, ln) for number, ln in numbered if not ln.startswith("#")]
    frame = _unwrap_spreadsheet_cells(_read_csv_text("\n".join(ln for _, ln in body)))
    if frame.is_empty():
        frame = pl.DataFrame(
            schema={s: pl.String for c in contract.columns for s in c.source_names}
        )
    # the tab Alipay appends so that spreadsheets keep long numbers as text is not part of the
    # value, in any cell; the ID cells lose their padding spaces too
    frame = (
        _rename(frame, contract, path)
        .with_columns(pl.all().str.strip_chars_end("\t"))
        .with_columns(
            pl.col(c).str.strip_chars("\t ")
            for c in ("txn_no", "merchant_order_no", "refund_batch_no")
        )
    )
    _refuse_spreadsheet_damage(frame, contract, path, [number for number, _ in body[1:]])
    for kind, (count, total) in footer.items():
        part = frame.filter(pl.col("business_type") == kind)["merchant_received"]
        got = (part.len(), _fen_sum(part))
        if got != (count, total):
            raise StatementRejected(
                f"{path.name}: {kind} lines sum to {got[0]} lines / {got[1] / 100:.2f} yuan but the "
                f"footer says {count} / {total / 100:.2f}; the statement is rejected whole"
            )
    (n_pay, pay_fen), (n_refund, refund_fen) = footer["交易"], footer["退款"]
    stated = {"payment_lines": n_pay, "payment_fen": pay_fen, "refund_lines": n_refund}
    # refunds as a positive sum (Alipay prints them negative); Alipay states no fee total
    stated |= {"refund_fen": -refund_fen, "lines": n_pay + n_refund, "fee_fen": None}
    return ParsedFile(frame, account, {"footer": stated})


def parse_wechat(path: Path, contract: Contract) -> ParsedFile:
    """WeChat Pay trade bill (ALL): every value backtick-prefixed, a summary block at the end;
    UTF-8 with BOM (or GBK), as exported or saved again by a spreadsheet."""
    numbered = _statement_lines(path)
    lines = [line for _, line in numbered]
    if lines and lines[0].startswith(WECHAT_FUND_FLOW_HEADER):
        raise FileRejected(
            f"{path.name} line {numbered[0][0]}: a WeChat Pay 资金账单 (fund-flow bill: 记账时间, "
            "资金流水单号, 收支金额), not a trade bill; expected the trade bill (交易账单, ALL), "
            "whose header starts with 交易时间: the fund-flow bill has no merchant order numbers "
            "for the refunds, so it cannot reconcile orders"
        )
    at = next((i for i, ln in enumerate(lines) if ln.startswith("总交易单数")), None)
    if at is None or at + 1 >= len(lines) or not lines[0].startswith("交易时间"):
        raise FileRejected(
            f"{path.name}: not a WeChat trade bill (header or summary block missing)"
        )
    summary = dict(
        zip(lines[at].split(","), (v.lstrip("`") for v in lines[at + 1].split(",")), strict=False)
    )
    frame = _read_csv_text("\n".join(lines[:at]))
    if frame.is_empty():
        frame = pl.DataFrame(schema=dict.fromkeys(lines[0].split(","), pl.String))
    legacy = "总金额" in frame.columns
    frame = _unwrap_spreadsheet_cells(frame.with_columns(pl.all().str.strip_prefix("`")))
    frame = _rename(frame, contract, path)
    _refuse_spreadsheet_damage(frame, contract, path, [number for number, _ in numbered[1:at]])
    settle = _fen_sum(frame["settlement_amount"])
    fee = _fen_sum(frame["fee"])
    refund = _fen_sum(frame["refund_amount"])
    total_key, refund_key = (
        ("总交易额", "总退款金额") if legacy else ("应结订单总金额", "退款总金额")
    )
    try:
        expected = (
            int(summary["总交易单数"]),
            _fen(summary[total_key]),
            _fen(summary[refund_key]),
            _fen(summary["手续费总金额"]),
        )
    except (KeyError, ValueError) as exc:
        raise FileRejected(f"{path.name}: summary block incomplete ({exc})") from exc
    got = (frame.height, settle, refund, fee)
    if got != expected:
        raise StatementRejected(
            f"{path.name}: lines sum to {got[0]} lines, {got[1] / 100:.2f} settled, "
            f"{got[2] / 100:.2f} refunded, {got[3] / 100:.2f} fees but the summary says "
            f"{expected[0]}, {expected[1] / 100:.2f}, {expected[2] / 100:.2f}, {expected[3] / 100:.2f}; "
            "the bill is rejected whole"
        )
    mch = frame["mch_id"][0] if frame.height else path.name.split("_")[0]
    stated = {"lines": expected[0], "payment_fen": expected[1], "refund_fen": expected[2]}
    # the summary counts lines, not payments and refunds apart
    stated |= {"fee_fen": expected[3], "payment_lines": None, "refund_lines": None}
    return ParsedFile(frame, mch, {"layout": "legacy_24" if legacy else "all_27", "footer": stated})


def supplier_header_map(path: Path | None = None) -> dict[str, str]:
    raw = yaml.safe_load((path or SCHEMAS_DIR / "supplier_headers.yml").read_text(encoding="utf-8"))
    out = {}
    for field, headers in raw.items():
        for header in headers:
            out[header] = "" if field == "ignored" else field
    return out


def parse_supplier(path: Path, contract: Contract, header_map: dict[str, str]) -> ParsedFile:
    """A supplier's key delivery, CSV (UTF-8, UTF-8 with BOM or GBK) or XLSX, in its own headers."""
    if path.suffix.lower() == ".xlsx":
        try:
            frame = pl.read_excel(path, engine="calamine", infer_schema_length=0)
        except Exception as exc:  # calamine raises its own error types for broken workbooks
            raise FileRejected(f"{path.name}: unreadable workbook ({exc})") from exc
        frame = frame.with_columns(pl.all().cast(pl.String))
    elif path.suffix.lower() == ".csv":
        frame = _read_csv_text(_decode(path.read_bytes(), path))
    else:
        raise FileRejected(f"{path.name}: not a CSV or XLSX file")
    unknown = [c for c in frame.columns if c.strip() not in header_map]
    if unknown:
        raise FileRejected(
            f"{path.name}: headers {unknown} are not in schemas/supplier_headers.yml; "
            "add them there to map them to a field"
        )
    mapping = {c: header_map[c.strip()] for c in frame.columns}
    keep = [c for c in frame.columns if mapping[c]]
    frame = frame.select(keep).rename({c: mapping[c] for c in keep})
    required = {"batch_no", "product_name", "card_secret", "unit_cost"}
    if missing := required - set(frame.columns):
        raise FileRejected(f"{path.name}: required fields {sorted(missing)} are missing")
    supplier = path.parent.name
    return ParsedFile(frame, supplier, {"supplier": supplier})


def parse_crm(path: Path, contract: Contract) -> ParsedFile:
    """The CRM's JSONL member snapshot; every field kept as text."""
    try:
        frame = pl.read_ndjson(
            path, schema=dict.fromkeys(contract.column_names, pl.String), ignore_errors=False
        )
    except Exception as exc:  # polars raises ComputeError for a line that is not JSON
        raise FileRejected(f"{path.name}: not valid JSON lines ({exc})") from exc
    return ParsedFile(frame, "crm", {})
