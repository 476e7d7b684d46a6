"""Serving files: readers open the version a link names, never a path a writer swaps.

DuckDB opens a database path three times while attaching it and reads the headers through one
handle and the blocks through another; a file renamed over the path in between gave a reader one
version's headers with the other's blocks ("Could not read enough bytes from file"). These tests
run real DuckDB files through ``pipelines.lib.serving``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.lib import serving

pytestmark = pytest.mark.integration


def _build(path: Path, version: int, rows: int) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute(f"create table t as select {version} as v, i from range({rows}) r(i)")
        con.execute(f"create table u as select i::varchar || 'x' as s from range({rows // 3}) r(i)")
        con.execute("checkpoint")
    return path


def _install(link: Path, version: int, rows: int = 1000) -> Path:
    return serving.install(link, _build(serving.new_file(link), version, rows))


def _read(link: Path) -> int:
    with serving.connect_read_only(link, {}) as con:
        return con.execute("select max(v) from t").fetchone()[0]


def test_install_swaps_a_link_to_an_immutable_version(tmp_path: Path) -> None:
    link = tmp_path / "warehouse.duckdb"
    first = _install(link, 1)
    assert link.is_symlink() and os.readlink(link) == f"_serving/{first.name}"
    assert first.name.startswith("warehouse-") and first.suffix == ".duckdb"
    before = first.read_bytes()
    held = serving.connect_read_only(link, {})  # a reader of version 1 ...
    second = _install(link, 2)
    assert second != first and serving.current(link) == second
    assert first.read_bytes() == before, "a version was written after it was installed"
    assert held.execute("select max(v) from t").fetchone()[0] == 1  # ... keeps reading it
    held.close()
    assert _read(link) == 2
    assert serving.temp_files(link) == [] and not list(tmp_path.glob(".*"))


def test_superseded_versions_stay_a_while_then_go(tmp_path: Path) -> None:
    link = tmp_path / "ops.duckdb"
    first = _install(link, 1)
    second = _install(link, 2)
    assert first.exists(), "a version just superseded must outlive readers that resolved it"
    # its mtime says when it was superseded: not before the swap
    assert first.stat().st_mtime >= second.stat().st_mtime - 1
    later = time.time() + serving.RETIRE_AFTER_S + 1
    assert serving.prune(link, now=later) == [first]
    assert not first.exists() and second.exists() and _read(link) == 2
    # the current version is never pruned, however old
    assert serving.prune(link, now=later + 3600) == [] and second.exists()


def test_a_lake_from_before_versions_is_taken_over(tmp_path: Path) -> None:
    link = tmp_path / "warehouse.duckdb"
    _build(link, 1, 100)  # the old layout: the serving file itself at the path
    assert serving.current(link) == link and _read(link) == 1
    _install(link, 2)
    assert link.is_symlink() and _read(link) == 2


def test_a_reader_resolves_again_when_its_version_vanished(tmp_path: Path, monkeypatch) -> None:
    link = tmp_path / "warehouse.duckdb"
    _install(link, 1)
    gone = tmp_path / "_serving" / "warehouse-gone.duckdb"
    answers = iter([gone, serving.current(link)])
    real = serving.current
    monkeypatch.setattr(serving, "current", lambda path: next(answers, None) or real(path))
    assert _read(link) == 1
    # any other failure is the reader's to see, not retried
    monkeypatch.setattr(serving, "current", real)
    serving.current(link).write_bytes(b"not a database" * 100)
    with pytest.raises(duckdb.Error):
        _read(link)


def test_stale_temp_files_are_removed(tmp_path: Path) -> None:
    link = tmp_path / "warehouse.duckdb"
    _install(link, 1)
    stale = serving.new_file(link)
    stale.write_bytes(b"half a build")
    stale.with_name(stale.name + ".wal").write_bytes(b"")
    assert len(serving.temp_files(link)) == 2
    serving.remove_stale(link)
    assert serving.temp_files(link) == [] and _read(link) == 1


# --- the race itself ---------------------------------------------------------------------------

SWAP_SECONDS = 6.0


def _swapper(link: Path, versions: list[Path], done) -> None:
    """Point the link at two versions of different layouts, back and forth, as fast as it goes
    (thousands of swaps a second: publications are far rarer, the window is the same)."""
    k = 0
    end = time.monotonic() + SWAP_SECONDS
    while time.monotonic() < end:
        k += 1
        serving.point(link, versions[k % 2])
    done.set()


def _opener(link: Path, done, results) -> None:
    """Open and query in a loop: every other time as ``connect_read_only`` does, and otherwise
    through the link itself, as Superset's duckdb-engine and an analyst's ``duckdb.connect`` do
    (DuckDB resolves the link once, before its opens)."""
    seen, errors, k = set(), [], 0
    while not done.is_set():
        k += 1
        try:
            if k % 2:
                seen.add(_read(link))
            else:
                with duckdb.connect(str(link), read_only=True) as con:
                    seen.add(con.execute("select max(v) from t").fetchone()[0])
        except Exception as exc:
            errors.append(repr(exc))
    results.put((sorted(seen), errors))


def test_readers_opening_during_swaps_never_mix_two_versions(tmp_path: Path) -> None:
    """Readers open the file in a loop while the link swaps between two versions. Renaming the
    files over the path instead failed about one open in twelve in the same loop here."""
    link = tmp_path / "warehouse.duckdb"
    versions = [
        serving.install(link, _build(serving.new_file(link), v, rows))
        for v, rows in ((2, 1_500_000), (1, 50_000))
    ]
    ctx = mp.get_context("spawn")
    done, results = ctx.Event(), ctx.Queue()
    openers = [ctx.Process(target=_opener, args=(link, done, results)) for _ in range(2)]
    for p in openers:
        p.start()
    swapper = ctx.Process(target=_swapper, args=(link, versions, done))
    swapper.start()
    swapper.join(120)
    done.set()
    reports = [results.get(timeout=60) for _ in openers]
    for p in openers:
        p.join(30)
    assert swapper.exitcode == 0
    for seen, errors in reports:
        assert errors == [], errors[:3]
        assert seen == [1, 2]
