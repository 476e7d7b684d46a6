"""Serving files: the DuckDB files readers open (``lake/warehouse.duckdb``, ``lake/ops.duckdb``).

    lake/warehouse.duckdb  ->  _serving/warehouse-<stamp>-<id>.duckdb    a symlink to the current version
    lake/_serving/warehouse-<stamp>-<id>.duckdb                          one immutable version per publication

A writer never touches a version a reader may have open: it builds the next version as a hidden
temp file in ``lake/_serving/``, closes and fsyncs it, renames it to its version name, and then
swaps the link (a new symlink renamed over the old one).

Why not rename the new file over ``warehouse.duckdb`` itself, as this project first did: DuckDB
opens a database path three times while it attaches it (magic bytes; the headers; then the handle
it locks and reads blocks through) and keeps the headers it read through the second. A rename
landing between the second and the third open hands the reader one version's headers with the
other version's blocks ("Could not read enough bytes from file", or worse). A version file's
content never changes, and DuckDB resolves a symlink once before those opens, so a reader that
opens the link (Superset's duckdb-engine, an analyst's ``duckdb.connect``) gets one whole version;
``tests/integration/test_serving.py`` holds both to that.

A superseded version stays for ``RETIRE_AFTER_S`` after it was replaced, for readers that resolved
the link just before the swap and have not opened it yet, and is deleted by a later swap. A reader
that still finds its version gone resolves the link again (``connect_read_only``). Readers that
opened a version keep reading it after it is deleted (the kernel keeps an open file).

The writer holds its own lock (the publisher's, the ticket log's) around ``new_file`` ..
``install``: this module does not lock.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import duckdb

from pipelines.lib.lake import fsync

VERSIONS = "_serving"
#: how long a superseded version stays for readers that resolved the link just before the swap
#: (they need it for the instant between resolving and opening; a live session publishes every
#: 20 s or so, and each version kept is a whole serving file on disk)
RETIRE_AFTER_S = 10.0
#: how often a reader resolves the link again when the version it resolved is gone
_ATTEMPTS = 3


def versions_dir(link: Path) -> Path:
    return Path(link).parent / VERSIONS


def current(link: Path) -> Path:
    """The file a reader opens for ``link`` right now: the version the link points at (or the
    link's own path while it is still a plain file, as a lake from before versions has it)."""
    return Path(os.path.realpath(link))


def new_file(link: Path) -> Path:
    """A fresh hidden path for the next version of ``link``, to build in (then ``install``)."""
    folder = versions_dir(link)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f".{Path(link).stem}.{uuid.uuid4().hex[:12]}.tmp"


def temp_files(link: Path) -> list[Path]:
    """Temp files a writer of ``link`` left (its build file and DuckDB's WAL beside it)."""
    folder = versions_dir(link)
    return sorted(folder.glob(f".{Path(link).stem}.*.tmp*")) if folder.is_dir() else []


def remove_stale(link: Path) -> None:
    """Remove what a crashed writer left behind: never visible to readers. Under the lock."""
    for path in temp_files(link):
        path.unlink(missing_ok=True)


def install(link: Path, built: Path) -> Path:
    """Make ``built`` (a closed file from ``new_file``) the current version of ``link``: fsync it,
    give it its version name, swap the link, retire the version it replaces and delete the ones
    retired long enough ago. Returns the new version's path. Under the writer's lock."""
    link, built = Path(link), Path(built)
    folder = versions_dir(link)
    previous = current(link) if link.is_symlink() else None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    version = folder / f"{link.stem}-{stamp}-{uuid.uuid4().hex[:8]}{link.suffix}"
    fsync(built)
    os.replace(built, version)
    fsync(folder)
    point(link, version)
    fsync(link.parent)
    if previous is not None and previous != version and previous.exists():
        os.utime(previous)  # its mtime now says when it was superseded
    prune(link)
    return version


def point(link: Path, version: Path) -> None:
    """Swap ``link`` to ``version`` (a file in the versions folder) at once: a new relative symlink
    renamed over the old link, so the path always names a whole version. Not durable until the
    link's folder is fsynced (``install`` does)."""
    link = Path(link)
    swap = link.with_name(f".{link.name}.{uuid.uuid4().hex[:12]}.link")
    os.symlink(Path(version).relative_to(link.parent), swap)
    try:
        os.replace(swap, link)
    except BaseException:
        swap.unlink(missing_ok=True)
        raise


def prune(link: Path, now: float | None = None) -> list[Path]:
    """Delete the versions of ``link`` superseded more than ``RETIRE_AFTER_S`` ago (their mtime
    is when the swap retired them). Returns what it deleted."""
    folder = versions_dir(link)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    live = current(link)
    gone = []
    for path in folder.glob(f"{Path(link).stem}-*{Path(link).suffix}"):
        if path == live:
            continue
        try:
            if now - path.stat().st_mtime >= RETIRE_AFTER_S:
                path.unlink()
                gone.append(path)
        except FileNotFoundError:
            continue
    return gone


def connect_read_only(link: Path, config: Mapping[str, object]) -> duckdb.DuckDBPyConnection:
    """Open the current version of ``link`` read-only with ``config``. If the version the link
    named is deleted before DuckDB opens it (a reader stalled past ``RETIRE_AFTER_S`` between the
    two), resolve the link again: any other error is raised as it is."""
    for attempt in range(_ATTEMPTS):
        path = current(link)
        try:
            return duckdb.connect(str(path), read_only=True, config=dict(config))
        except duckdb.Error:
            if path.exists() or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
