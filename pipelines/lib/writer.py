"""One writer at a time: the lake-wide lock every writing path takes.

``cardlake run``, the Dagster runs (each step: the daemon's schedules and sensors too), the live
session, the report and ticket writers all write through the functions of ``pipelines.cycle`` or
``pipelines.lib.tickets``, which take this lock with ``writing(lake)``. A second writer waits for
it (``CARDLAKE_LOCK_WAIT`` seconds, default 600), then fails with ``LakeBusy``: "the lake is being
written by cardlake run (pid 4242, ops@shop-1) since 2026-12-06 10:00:00 UTC".

The lock is an advisory ``flock`` on ``lake/_build/writer.lock``: the kernel drops it when its
holder exits however it exits, so a crashed writer never leaves the lake locked and nobody has to
guess whether a pid is stale. The file also names the holder, for the message above (written
after the lock is taken; readers of it never block). The lock is re-entrant within a process: a
stage called by ``cycle.run`` takes it again for free, from any of the process's threads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from pipelines.lib import settings
from pipelines.lib.lake import Lake

#: how often a waiting writer tries again
POLL_S = 0.25


class LakeBusy(RuntimeError):
    """Another process kept the lake's writer lock for longer than this one would wait."""


_guard = threading.Lock()
#: lock file → (its open descriptor, how many times this process holds it)
_held: dict[Path, list] = {}


def describe_holder() -> str:
    """Who this process is, as another writer's error names it."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    # ``python -m dagster api …`` runs ``dagster/__main__.py``: name the package
    prog = script.parent.name if script.name == "__main__.py" else script.name
    command = " ".join([prog, *[a for a in sys.argv[1:2] if not a.startswith("-")]])
    return os.environ.get("CARDLAKE_WRITER") or command


def holder(lake: Lake | Path | str) -> dict | None:
    """What the lock file says of its last holder (None when the lake was never written)."""
    path = Lake.of(lake).writer_lock
    try:
        return json.loads(path.read_text(encoding="utf-8") or "null")
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def busy_message(lake: Lake | Path | str) -> str:
    who = holder(lake) or {}
    return (
        f"the lake {Lake.of(lake)} is being written by {who.get('holder', 'another process')} "
        f"(pid {who.get('pid', '?')}, {who.get('user', '?')}@{who.get('host', '?')}) "
        f"since {who.get('since', '?')}; waited {settings.lock_wait_seconds():g} s "
        f"(CARDLAKE_LOCK_WAIT)"
    )


@contextlib.contextmanager
def writing(
    lake: Lake | Path | str, what: str | None = None, wait: float | None = None
) -> Iterator[None]:
    """Hold the lake's writer lock for the block; wait up to ``wait`` seconds (default
    ``CARDLAKE_LOCK_WAIT``) for another process to release it, then raise ``LakeBusy``."""
    lake = Lake.of(lake)
    path = lake.writer_lock
    with _guard:
        mine = _held.get(path)
        if mine is not None:
            mine[1] += 1
    if mine is None:
        fd = _acquire(
            lake, what or describe_holder(), settings.lock_wait_seconds() if wait is None else wait
        )
        with _guard:
            _held[path] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[path]
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _held[path]
        if last:
            os.close(entry[0])  # closing the descriptor releases the flock


def _acquire(lake: Lake, what: str, wait: float) -> int:
    path = lake.writer_lock
    path.parent.mkdir(parents=True, exist_ok=True)
    settings.narrow(lake.root)  # a lake made before files were private becomes private
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LakeBusy(busy_message(lake)) from None
            time.sleep(POLL_S)
    record = {
        "holder": what,
        "pid": os.getpid(),
        "user": _user(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record, ensure_ascii=False).encode(), 0)
    return fd


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def busy(lake: Lake | Path | str) -> bool:
    """Whether some process (this one included) holds the lake's writer lock now: a shared lock
    tried without waiting and let go at once, so a writer polling for the lock meanwhile only
    tries once more."""
    try:
        fd = os.open(Lake.of(lake).writer_lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor releases the shared lock too
    return False


def holds(lake: Lake | Path | str) -> bool:
    """Whether this process holds the lake's writer lock now."""
    with _guard:
        return Lake.of(lake).writer_lock in _held
