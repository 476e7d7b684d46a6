"""Land one business day of one dataset: read, validate, de-duplicate, publish, account.

The row accounting ``read = landed + quarantined + skipped`` holds for every partition by
construction and is re-checked from the published files by the ``row_accounting`` check. Card
keys (the columns a contract marks ``protect``) are hashed as soon as they are read: no raw or
quarantine file, and no row hash, is computed from their plaintext (``pipelines/lib/protect.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.lib.calendar import CST
from pipelines.lib.claims import claimed, give_up, later_partitions
from pipelines.lib.contracts import Contract, validate
from pipelines.lib.extract import (
    build_query,
    day_window,
    dialect_of,
    read_table,
    reference_keys,
    table_layout,
)
from pipelines.lib.lake import Lake
from pipelines.lib.parsers import (
    FileRejected,
    ParsedFile,
    parse_alipay,
    parse_crm,
    parse_supplier,
    parse_wechat,
    supplier_header_map,
)
from pipelines.lib.protect import (
    bind_key,
    card_key,
    hashed_columns,
    keyed_hash,
    with_protected,
)

LINEAGE = ("_source", "_source_version", "_extracted_at", "_row_hash")


@dataclasses.dataclass
class IngestResult:
    dataset: str
    day: dt.date
    read: int
    landed: int
    quarantined: int
    skipped: int
    detail: dict[str, Any]

    @property
    def balanced(self) -> bool:
        return self.read == self.landed + self.quarantined + self.skipped


def row_hashes(frame: pl.DataFrame, columns: list[str]) -> pl.Series:
    """A stable content hash of each row's text (MD5 in DuckDB: the same across versions and runs).
    ``columns`` name a protected column by its keyed hash (``protect.hashed_columns``)."""
    if frame.is_empty():
        return pl.Series("_row_hash", [], dtype=pl.String)
    con = duckdb.connect()
    con.register("t", frame.select(columns).to_arrow())
    parts = ", ".join(f'coalesce("{c}", chr(0))' for c in columns)
    out = con.sql(f"select md5(concat_ws(chr(31), {parts})) as h from t").pl()["h"]
    con.close()
    return out.alias("_row_hash")


def _seen_hashes(lake: Lake, dataset: str, day: dt.date, whole_history: bool) -> pl.Series:
    """Hashes already landed or quarantined elsewhere: the previous day (the overlap), every day's
    quarantine (rows without a usable version), or, for full scans, all history."""
    frames = []
    for zone in ("raw", "quarantine"):
        folder = lake.root / zone / dataset
        if not folder.exists():
            continue
        for part in folder.glob("business_date=*"):
            other = dt.date.fromisoformat(part.name.split("=", 1)[1])
            if other == day:
                continue
            if whole_history or zone == "quarantine" or other == day - dt.timedelta(days=1):
                frame = lake.read_partition(zone, dataset, other, columns=["_row_hash"])
                if frame is not None:
                    frames.append(frame)
    if not frames:
        return pl.Series("_row_hash", [], dtype=pl.String)
    return pl.concat(frames)["_row_hash"].drop_nulls()


def ingest_database(
    contract: Contract, day: dt.date, lake: Lake, url: str, now: dt.datetime
) -> IngestResult:
    started = time.perf_counter()
    src = contract.source
    full = bool(src.get("full_scan")) or not src.get("watermark")
    window = None if full else day_window(day, int(src.get("overlap_minutes", 10)))
    layout = table_layout(contract, url)
    query = build_query(contract, dialect_of(url), window, now, layout)
    rows = read_table(url, query)
    rows = rows.with_columns(
        pl.when(pl.col(column).is_in(keys.implode()))
        .then(pl.lit("1"))
        .otherwise(pl.lit("0"))
        .alias(f"_ref_{column}")
        for column, keys in reference_keys(contract, url).items()
    )
    read = rows.height
    rows = with_protected(rows, contract)
    rows = rows.with_columns(row_hashes(rows, hashed_columns(contract, rows.columns)))
    seen = _seen_hashes(lake, contract.dataset, day, whole_history=full)
    fresh = rows.filter(~pl.col("_row_hash").is_in(seen.implode()))
    # the same row version twice in one read cannot happen in a database, but be exact anyway
    fresh = fresh.unique("_row_hash", keep="first", maintain_order=True)
    skipped = read - fresh.height
    version = "full scan" if window is None else window.describe()
    fresh = fresh.with_columns(
        _source=pl.lit(f"{src['database']}.{src['table']}"),
        _source_version=pl.lit(version),
        _extracted_at=pl.lit(now),
    )
    checked = validate(fresh, contract, now, lineage=LINEAGE)
    # databases return rows in any order: land them in key order, so every run writes the same file
    key = [contract.column(k).landed_name for k in contract.key]
    checked.good = checked.good.sort([*key, "_row_hash"], nulls_last=True)
    checked.quarantined = checked.quarantined.sort("_row_hash")
    watermark = None
    window_rows = 0
    if window is not None and rows.height:
        # the newest version inside the window: a zero date or a clock years ahead never moves it
        versions = rows["_v"].drop_nulls()
        if layout.watermark_kind == "epoch":
            versions = versions.cast(pl.Int64, strict=False)
            lower: int | str = int(window.lower.timestamp())
            upper: int | str = int(window.upper.timestamp())
        else:
            lower = window.lower.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
            upper = window.upper.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")
        inside = versions.filter((versions >= lower) & (versions < upper))
        watermark = inside.max()
        window_rows = inside.len()
    state = {
        "dataset": contract.dataset,
        "contract_version": contract.version,
        "business_date": day.isoformat(),
        "read": read,
        "landed": checked.good.height,
        "quarantined": checked.quarantined.height,
        "skipped": skipped,
        "skipped_detail": {"already_landed": skipped},
        "source": f"{src['database']}.{src['table']}",
        "window": version,
        "watermark": watermark,
        # rows whose version lies in the window: with the watermark, what a live probe compares
        "window_rows": window_rows,
        "rules": _rule_counts(checked.quarantined),
    }
    state["seconds"] = round(time.perf_counter() - started, 3)
    # a day landed after the day after it takes back the versions that day landed in its place
    claims = claimed(
        later_partitions(lake, contract.dataset, day, whole_history=full),
        day,
        checked.good["_row_hash"],
        checked.quarantined["_row_hash"],
        whole_history=full,
    )
    lake.publish_partition(contract.dataset, day, checked.good, checked.quarantined, state)
    give_up(lake, contract.dataset, claims)
    return IngestResult(
        contract.dataset, day, read, checked.good.height, checked.quarantined.height, skipped, state
    )


def _rule_counts(quarantined: pl.DataFrame) -> dict[str, int]:
    if quarantined.is_empty():
        return {}
    return dict(sorted(quarantined.group_by("_rule").len().iter_rows()))


# --- files ---------------------------------------------------------------------------------------

_VERSION = re.compile(r"(?:\((\d+)\)|_v(\d+)|_(resend))$")


def file_version(path: Path) -> int:
    """Re-sends and corrections carry a suffix: ``x(1).csv``, ``x_v2.csv``, ``x_resend.jsonl``."""
    m = _VERSION.search(path.stem)
    if not m:
        return 0
    return int(m.group(1) or m.group(2) or 1)


def logical_key(path: Path) -> str:
    """The file a re-send or correction stands for: same folder, name without the suffix."""
    stem = _VERSION.sub("", path.stem)
    return f"{path.parent.name}/{stem}"


def discover(sources: Path, contract: Contract) -> dict[dt.date, list[Path]]:
    """Files of a dataset by business day (from the date in the file name)."""
    pattern = re.compile(contract.source["day_pattern"])
    out: dict[dt.date, list[Path]] = {}
    for path in sorted(sources.glob(contract.source["glob"])):
        if not path.is_file() or path.name.startswith("."):
            continue
        m = pattern.search(path.name)
        if not m:
            continue
        day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
        out.setdefault(day, []).append(path)
    return out


def _parse(contract: Contract, path: Path, header_map: dict[str, str]) -> ParsedFile:
    kind = contract.source["kind"]
    if kind == "alipay":
        return parse_alipay(path, contract)
    if kind == "wechat":
        return parse_wechat(path, contract)
    if kind == "supplier":
        return parse_supplier(path, contract, header_map)
    if kind == "crm":
        return parse_crm(path, contract)
    raise ValueError(f"{contract.dataset}: unknown file kind {kind!r}")


def _raw_lines(path: Path) -> list[str]:
    """The data lines of a file refused whole, kept verbatim for its quarantine rows."""
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "gbk"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        return [raw[:2000].decode("latin-1")]
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if lines and lines[0].startswith("总交易单数"):
        return lines
    return lines[1:] if len(lines) > 1 else lines  # drop the header row


def ingest_files(
    contract: Contract, day: dt.date, lake: Lake, sources: Path, now: dt.datetime
) -> IngestResult:
    started = time.perf_counter()
    files = discover(sources, contract).get(day, [])
    header_map = supplier_header_map() if contract.source["kind"] == "supplier" else {}
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(logical_key(path), []).append(path)

    manifest: list[dict[str, Any]] = []
    accepted: list[pl.DataFrame] = []
    quarantine: list[pl.DataFrame] = []
    read = skipped = 0
    skipped_detail = {"duplicate_file": 0, "superseded_file": 0, "duplicate_row": 0}
    for key in sorted(groups):
        versions = sorted(
            groups[key], key=lambda p: (file_version(p), p.stat().st_mtime_ns, p.name)
        )
        rows_of: dict[str, int] = {}  # digest → lines, for identical re-sends (not parsed again)
        effective: tuple[Path, pl.DataFrame, str] | None = None
        for path in versions:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entry = {
                "file": str(path.relative_to(sources)),
                "sha256": digest,
                "bytes": path.stat().st_size,
                "logical_file": key,
            }
            if digest in rows_of:
                n = rows_of[digest]
                read += n
                skipped += n
                skipped_detail["duplicate_file"] += n
                manifest.append(
                    {
                        **entry,
                        "status": "skipped_duplicate",
                        "rows": n,
                        "reason": "identical content to a file already read",
                    }
                )
                continue
            try:
                parsed = _parse(contract, path, header_map)
            except FileRejected as exc:
                lines = _raw_lines(path)
                if contract.protected:
                    # which cells are keys is unknown in a file refused whole: no line is kept
                    # in plaintext, only its keyed hash (the file itself stays in the sources)
                    lines = keyed_hash(pl.Series(lines, dtype=pl.String), card_key()).to_list()
                rows_of[digest] = len(lines)
                read += len(lines)
                quarantine.append(
                    pl.DataFrame(
                        {
                            "_record": lines,
                            "_rule": [f"file:{exc.rule}"] * len(lines),
                            "_reason": [str(exc)] * len(lines),
                        }
                    ).with_columns(
                        _source=pl.lit(entry["file"]),
                        _source_version=pl.lit(digest),
                        _extracted_at=pl.lit(now),
                        _row_hash=pl.lit(None, dtype=pl.String),
                    )
                )
                manifest.append(
                    {**entry, "status": "rejected", "rows": len(lines), "reason": str(exc)}
                )
                continue
            frame = parsed.rows.with_columns(
                _source=pl.lit(entry["file"]),
                _source_version=pl.lit(digest),
                _account=pl.lit(parsed.account),
            )
            rows_of[digest] = frame.height
            read += frame.height
            if effective is not None:  # a later, different, valid version supersedes this one
                _prev_path, prev, prev_digest = effective
                skipped += prev.height
                skipped_detail["superseded_file"] += prev.height
                for m in manifest:
                    if m["sha256"] == prev_digest and m["status"] == "landed":
                        m.update(status="superseded", reason=f"superseded by {entry['file']}")
            effective = (path, frame, digest)
            manifest.append(
                {
                    **entry,
                    "status": "landed",
                    "rows": frame.height,
                    "reason": "",
                    "account": parsed.account,
                    **parsed.meta,
                }
            )
        if effective is not None:
            accepted.append(effective[1])

    if accepted:
        rows = pl.concat(accepted, how="diagonal_relaxed")
    else:
        rows = pl.DataFrame(
            schema=dict.fromkeys(contract.column_names, pl.String)
            | {"_source": pl.String, "_source_version": pl.String, "_account": pl.String}
        )
    rows = with_protected(rows, contract)
    rows = rows.with_columns(
        row_hashes(rows, hashed_columns(contract, rows.columns)),
        _extracted_at=pl.lit(now),
    )
    lineage = (*LINEAGE, "_account")
    checked = validate(rows, contract, now, lineage=lineage)
    key = [
        contract.column(k).landed_name if k in contract.column_names else f"_{k}"
        for k in contract.key
    ]
    good = checked.good.unique(key, keep="first", maintain_order=True)
    dup_rows = checked.good.height - good.height
    skipped += dup_rows
    skipped_detail["duplicate_row"] += dup_rows
    q = checked.quarantined
    if quarantine:
        q = pl.concat(
            [q, *[f.with_columns(_account=pl.lit(None, dtype=pl.String)) for f in quarantine]],
            how="diagonal_relaxed",
        )
    state = {
        "dataset": contract.dataset,
        "contract_version": contract.version,
        "business_date": day.isoformat(),
        "read": read,
        "landed": good.height,
        "quarantined": q.height,
        "skipped": skipped,
        "skipped_detail": skipped_detail,
        "files": manifest,
        "rules": _rule_counts(q),
    }
    state["seconds"] = round(time.perf_counter() - started, 3)
    lake.publish_partition(contract.dataset, day, good, q, state)
    return IngestResult(contract.dataset, day, read, good.height, q.height, skipped, state)


def ingest(
    contract: Contract,
    day: dt.date,
    lake: Lake,
    sources: Path,
    db_urls: dict[str, str],
    now: dt.datetime | None = None,
) -> IngestResult:
    """Land ``day`` of ``contract``'s dataset, replacing the partition whole."""
    now = now or dt.datetime.now(dt.UTC)
    if contract.protected:
        bind_key(lake)
    lake.clean_stale_temps(contract.dataset)
    if contract.source["kind"] == "database":
        result = ingest_database(contract, day, lake, db_urls[contract.source["database"]], now)
    else:
        result = ingest_files(contract, day, lake, sources, now)
    return result
