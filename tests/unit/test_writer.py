"""One writer at a time (``pipelines.lib.writer``): a second writer waits, then fails naming the
holder; a holder that dies frees the lake; the lock is re-entrant within a process; damaged state
files and a crashed writer's temps are recovered from, never crashed on."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.lib.lake import Lake
from pipelines.lib.writer import LakeBusy, busy, holder, holds, writing
from tests.conftest import cardlake

pytestmark = pytest.mark.unit

HOLD = """
import sys, time
from pipelines.lib.writer import writing
with writing(sys.argv[1], what="the holder test"):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(lake: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lake)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_waits_then_names_the_holder(tmp_path):
    lake = tmp_path / "lake"
    proc = _holder(lake)
    try:
        started = time.monotonic()
        with pytest.raises(LakeBusy) as busy, writing(lake, wait=0.6):
            pass
        assert time.monotonic() - started >= 0.5  # it waited before giving up
        message = str(busy.value)
        assert "the holder test" in message and f"pid {proc.pid}" in message
        assert "since" in message and holder(lake)["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the kernel released the dead holder's lock: nobody has to clean up after it
    with writing(lake, wait=5):
        assert holds(lake)
    assert not holds(lake)


def test_a_writer_gets_the_lake_as_soon_as_the_holder_is_done(tmp_path):
    lake = tmp_path / "lake"
    proc = _holder(lake)
    threading.Timer(1.0, proc.terminate).start()
    started = time.monotonic()
    with writing(lake, wait=30):
        pass
    assert time.monotonic() - started < 20
    proc.wait()


def test_busy_tells_a_held_lake_without_getting_in_a_writers_way(tmp_path):
    lake = tmp_path / "lake"
    assert not busy(lake)  # never written
    proc = _holder(lake)
    try:
        assert busy(lake)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not busy(lake)
    with writing(lake, wait=5):
        assert busy(lake)
        assert holds(lake)  # the probe took nothing from the holder
    assert not busy(lake)
    # a writer right after a probe gets the lake at once
    with writing(lake, wait=0):
        pass


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    lake = tmp_path / "lake"
    seen = []
    with writing(lake, wait=0):
        with writing(lake, wait=0):  # a stage inside ``cycle.run``
            t = threading.Thread(target=lambda: seen.append(_nested(lake)))  # a landing lane
            t.start()
            t.join()
        assert holds(lake)
    assert seen == [True] and not holds(lake)


def _nested(lake: Path) -> bool:
    with writing(lake, wait=0):
        return holds(lake)


def test_cardlake_run_exits_3_naming_the_holder(tmp_path):
    lake, sources = tmp_path / "lake", tmp_path / "sources"
    sources.mkdir()
    proc = _holder(lake)
    try:
        out = cardlake("run", "--sources", str(sources), "--lake", str(lake), "--wait", "0.3")
    finally:
        proc.kill()
        proc.wait()
    assert out.returncode == 3, out.stdout + out.stderr
    assert "being written by the holder test" in out.stdout


def test_the_lake_root_is_made_private_by_its_writers(tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir(mode=0o755)
    os.chmod(lake, 0o755)
    with writing(lake, wait=0):
        pass
    assert lake.stat().st_mode & 0o777 == 0o700
    assert Lake(lake).writer_lock.stat().st_mode & 0o777 == 0o600


def test_a_damaged_state_file_means_the_day_lands_again(tmp_path):
    lake = Lake(tmp_path / "lake")
    day = dt.date(2026, 10, 5)
    path = lake.state_path("shop__orders", day)
    path.parent.mkdir(parents=True)
    path.write_text("")  # a crash between the write and its sync, in an older version
    assert lake.read_state("shop__orders", day) is None
    assert lake.states("shop__orders") == {}
    assert not lake.partition_is_whole("shop__orders", day)


def test_only_a_gone_writers_temps_are_cleaned(tmp_path):
    lake = Lake(tmp_path / "lake")
    folder = lake.zone("raw") / "shop__orders"
    folder.mkdir(parents=True)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = folder / f".business_date=2026-10-05.{gone.stdout.strip()}-abc.tmp"
    alive = folder / f".business_date=2026-10-06.{os.getppid()}-abc.tmp"
    legacy = folder / ".business_date=2026-10-07.0123456789ab.tmp"
    for tmp in (dead, alive, legacy):
        tmp.mkdir()
    lake.clean_stale_temps("shop__orders")
    assert not dead.exists() and not legacy.exists()
    assert alive.exists()  # another live process's: not ours to remove
