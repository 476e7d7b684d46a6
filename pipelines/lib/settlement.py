"""Settlement reports: from the published settlement marts to the files finance downloads and signs.

    lake/reports/settlement/channel/<channel>/<YYYY-MM-DD>/       one channel, one statement day
    lake/reports/settlement/supplier/<supplier>/<YYYY-MM>/        one supplier, one calendar month
        index.json                      every version: figures, tie-out, sources, change summary
        v1/<stem>_v1.csv|.xlsx|.pdf     the files of version 1 (kept when later versions appear)
        v2/...

A report is *due* when its data is complete: a channel's statement day once every account of the
channel has a statement for it in the marts (the last statement to arrive triggers it), a supplier's
month once a later day has data (the month has closed). It is built from the serving file
(``warehouse.duckdb``: the same publication the settlement dashboard shows) and published only when
it ties out (docs/metrics.md#tie-out): the report's totals equal the sums of its detail rows, the
settlement marts and the statements' own footers (channel), or Σ cost of the delivered keys in
``fct_key_movements`` (supplier). A report that does not tie out is *held*: nothing is written
but ``held.json`` beside the versions, naming every difference, and the run fails.

Every report's content has a fingerprint. Building it again on unchanged data gives the same
fingerprint and writes nothing; late data that changes it (a late refund, a corrected statement)
publishes the next version, with a short change summary against the previous one in the index and
in the files. The same data and version give byte-identical CSV, XLSX and PDF files.

What a report holds and how it ties out is built by ``settlement_content``; this module decides
what is due, and keeps the versions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from pipelines.lib.publish import open_warehouse
from pipelines.lib.report_files import write_csv
from pipelines.lib.report_model import yuan_grouped
from pipelines.lib.report_pdf import write_pdf
from pipelines.lib.report_xlsx import write_xlsx
from pipelines.lib.settlement_content import (
    CHANNEL_FIGURES,
    SUPPLIER_FIGURES,
    Kind,
    ReportKey,
    SettlementError,
    build,
    reports_root,
    source_digests,
    tie_out,
)

#: where the settlement reports live, under the lake's reports zone
#: reports built side by side (this machine has two cores), from this many reports on
WORKERS = 2
PARALLEL_FROM = 4


def inside_reports(lake: Path, path: Path) -> Path:
    """``path`` itself, when it resolves inside the settlement reports folder (links followed);
    ``SettlementError`` when it does not (a subject such as ``../..``, or a link leading out)."""
    root = reports_root(lake).resolve()
    if not path.resolve().is_relative_to(root):
        raise SettlementError(f"{path} is not inside the settlement reports folder {root}")
    return path


@dataclass
class Outcome:
    """What producing one report did."""

    key: ReportKey
    status: Literal["published", "unchanged", "held"]
    version: int | None
    files: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    change_summary: str = ""


# --- what is due ---------------------------------------------------------------------------------


def due_reports(con: duckdb.DuckDBPyConnection) -> list[ReportKey]:
    """Every report whose data is complete in the publication ``con`` reads."""
    channel_days = con.execute(
        """
        with accounts as (select channel, count(*) as n from dim_channels group by channel)
        select s.channel, s.statement_date
        from rpt_channel_settlement_daily s join accounts a using (channel)
        group by s.channel, s.statement_date, a.n
        having count(distinct s.account_key) = a.n
        order by 2, 1
        """
    ).fetchall()
    supplier_months = con.execute(
        """
        select supplier_code, strftime(period_start, '%Y-%m')
        from rpt_supplier_payable
        where period = 'month' and is_closed
        order by 2, 1
        """
    ).fetchall()
    return [ReportKey("channel", c, d.isoformat()) for c, d in channel_days] + [
        ReportKey("supplier", s, m) for s, m in supplier_months
    ]


def stale_reports(
    lake: Path, con: duckdb.DuckDBPyConnection, keys: Iterable[ReportKey]
) -> list[ReportKey]:
    """The reports whose source partitions changed since they were last produced or checked
    (never produced included): those a new publication may have changed."""
    return [
        k
        for k in keys
        if (read_index(k.folder(lake)).get("checked") or {}).get("sources")
        != source_digests(con, k)
    ]


def keys_for_days(keys: Iterable[ReportKey], days: Iterable[dt.date]) -> list[ReportKey]:
    """The reports a run over ``days`` may have changed: those days' channel reports and the
    supplier months they fall in (a late refund changes its success day's month)."""
    wanted_days = {d.isoformat() for d in days}
    wanted_months = {d[:7] for d in wanted_days}
    return [
        k
        for k in keys
        if (k.kind == "channel" and k.period in wanted_days)
        or (k.kind == "supplier" and k.period in wanted_months)
    ]


def _fingerprint(csv_file: Path, identity: object) -> str:
    """A report's content: its CSV (every line of it; the detail and the exceptions are sums and
    subsets of those lines) and what else it depends on. The CSV carries no version number, so
    the same data gives the same fingerprint in whichever version it is written."""
    digest = hashlib.sha256()
    with open(csv_file, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# --- versions ------------------------------------------------------------------------------------


def read_index(folder: Path) -> dict:
    path = folder / "index.json"
    if not path.exists():
        return {"versions": []}
    return json.loads(path.read_text(encoding="utf-8"))


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def change_summary(kind: Kind, old: dict[str, int], new: dict[str, int]) -> str:
    """The figures that changed between two versions, in words: ``收款金额 1,234.00 → 1,240.00``."""
    labels = CHANNEL_FIGURES if kind == "channel" else SUPPLIER_FIGURES
    parts = []
    for figure, label in labels.items():
        before, after = old.get(figure), new.get(figure)
        if before == after:
            continue
        fmt = yuan_grouped if figure.endswith("_fen") else (lambda v: f"{v:,}")
        parts.append(f"{label} {fmt(before) if before is not None else '—'} → {fmt(after)}")
    return "；".join(parts) or "明细变化，合计未变"


@contextlib.contextmanager
def _lock(lake: Path) -> Iterator[None]:
    root = reports_root(lake)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _produce_one(lake: Path, con, key: ReportKey, now: dt.datetime) -> Outcome:
    built = build(con, key)
    folder = inside_reports(lake, key.folder(lake))
    index = read_index(folder)
    latest = index["versions"][-1] if index["versions"] else None
    version = (latest["version"] + 1) if latest else 1
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".v{version}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        stem = key.stem(version)
        change = change_summary(key.kind, latest["figures"], built.figures) if latest else ""
        report = built.report_for(version, f"取代 v{version - 1}：{change}" if latest else "")
        write_csv(report, tmp / f"{stem}.csv")
        fingerprint = _fingerprint(tmp / f"{stem}.csv", built.identity)
        checked = {"at": now, "sources": built.sources}
        if latest and latest["fingerprint"] == fingerprint:
            _write_json(folder / "index.json", {**index, "checked": checked})
            (folder / "held.json").unlink(missing_ok=True)
            return Outcome(
                key, "unchanged", latest["version"], _files(folder, key, latest["version"]),
                built.figures,
            )  # fmt: skip
        problems = tie_out(built, report)
        if problems:
            _write_json(
                folder / "held.json",
                {
                    "report": str(key),
                    "checked_at": now,
                    "problems": problems,
                    "checks": built.checks,
                },
            )
            return Outcome(
                key, "held", latest["version"] if latest else None, {}, built.figures, problems
            )
        write_xlsx(report, tmp / f"{stem}.xlsx")
        write_pdf(report, tmp / f"{stem}.pdf")
        final = folder / f"v{version}"
        if final.exists():  # left by a run that died before it recorded the version
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    entry = {
        "version": version,
        "fingerprint": fingerprint,
        "published_at": now,
        "figures": built.figures,
        "checks": built.checks,
        "sources": built.sources,
        "change_summary": change,
        "files": {ext: f"v{version}/{stem}.{ext}" for ext in ("csv", "pdf", "xlsx")},
    }
    _write_json(
        folder / "index.json",
        {"report": str(key), "versions": [*index["versions"], entry], "checked": checked},
    )
    (folder / "held.json").unlink(missing_ok=True)
    return Outcome(
        key, "published", version, _files(folder, key, version), built.figures, [], change
    )


def _files(folder: Path, key: ReportKey, version: int) -> dict[str, Path]:
    return {s: folder / f"v{version}" / f"{key.stem(version)}.{s}" for s in ("csv", "xlsx", "pdf")}


#: a report worker process's lake and its read-only connection to the serving file
_worker: tuple[Path, duckdb.DuckDBPyConnection] | None = None


def _worker_init(lake: str) -> None:
    global _worker
    _worker = (Path(lake), open_warehouse(Path(lake)))


def _worker_produce(key: ReportKey, now: dt.datetime) -> Outcome:
    assert _worker is not None, "_worker_init runs first in every worker"
    lake, con = _worker
    return _produce_one(lake, con, key, now)


def _produce_in(lake: str, key: ReportKey) -> Outcome:
    """A worker's report into another lake's report folder (the benchmark's repetitions)."""
    assert _worker is not None, "_worker_init runs first in every worker"
    return _produce_one(Path(lake), _worker[1], key, dt.datetime.now(dt.UTC))


def produce(
    lake: Path,
    keys: Iterable[ReportKey] | None = None,
    days: Iterable[dt.date] | None = None,
    now: dt.datetime | None = None,
) -> list[Outcome]:
    """Produce the due reports (``keys``, or those of ``days``, or all of them): publish a new
    version of each whose content changed and that ties out, hold those that do not tie out.
    Raises ``SettlementError`` for a named key that is not due."""
    now = now or dt.datetime.now(dt.UTC)
    con = open_warehouse(lake)
    try:
        if keys is not None:
            chosen = list(keys)
        elif days is not None:
            due = due_reports(con)
            # the run's days, and any earlier report whose data changed since it was last
            # checked (a lost callback the shop caught up with changes its statement day's report)
            picked = set(keys_for_days(due, days)) | set(stale_reports(lake, con, due))
            chosen = [k for k in due if k in picked]
        else:
            chosen = due_reports(con)
        with _lock(lake):
            if len(chosen) < PARALLEL_FROM:
                return [_produce_one(lake, con, key, now) for key in chosen]
            # a month of reports: two worker processes, each with its own read-only connection
            # (threads would share one interpreter: the row formatting and xlsxwriter hold the GIL)
            with ProcessPoolExecutor(
                max_workers=WORKERS,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(str(lake),),
            ) as pool:
                return list(pool.map(_worker_produce, chosen, [now] * len(chosen)))
    finally:
        con.close()


def published_versions(lake: Path, key: ReportKey) -> list[int]:
    """The version numbers published for ``key``, in order (none: an empty list)."""
    folder = inside_reports(lake, key.folder(lake))
    return sorted(v["version"] for v in read_index(folder)["versions"])


def latest_files(lake: Path, key: ReportKey, version: int | None = None) -> dict[str, Path]:
    """The files of a published version (the latest by default); ``SettlementError`` for a
    version that was not published (naming those that were) and for a path that would lead out
    of the settlement reports folder."""
    if version is not None and version < 1:
        raise SettlementError(f"{key}: versions are numbered from 1, not {version}")
    versions = published_versions(lake, key)
    if not versions:
        raise SettlementError(f"{key}: no version published yet")
    chosen = versions[-1] if version is None else version
    if chosen not in versions:
        raise SettlementError(
            f"{key}: no version {chosen} (published: {', '.join(f'v{v}' for v in versions)})"
        )
    files = _files(key.folder(lake), key, chosen)
    for path in files.values():
        inside_reports(lake, path)
    return files
