"""What every benchmark records: the machine it ran on, and one results file per run
(``benchmarks/results/<timestamp>-<benchmark>.json``). The scripts run as ``python
benchmarks/<script>.py``, so this folder is on their import path."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, float | int | None]:
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def save(result: dict, suffix: bool = True) -> Path:
    """Write ``result`` (which names its ``benchmark``) to a new timestamped results file,
    ``<timestamp>-<benchmark>.json`` (``<timestamp>.json`` without the suffix: the daily cycle's
    headline results)."""
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / (f"{stamp}-{result['benchmark']}.json" if suffix else f"{stamp}.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


class TreeMemory:
    """Resident memory of a process and all its descendants, sampled from /proc every
    ``every_s`` (a child's own peak is lost to ``getrusage`` once a grandchild, such as dbt under
    ``cardlake run``, holds the most). ``samples`` keeps (unix time, bytes) so that a caller can
    attribute the peak to the stages of a run."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sample", daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _tree_rss(self) -> int:
        parent: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after the command: state(0) ppid(1) ... rss in pages(21)
            parent[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * self._page
        total, stack = 0, [self.pid]
        children: dict[int, list[int]] = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        while stack:
            pid = stack.pop()
            total += rss.get(pid, 0)
            stack.extend(children.get(pid, ()))
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._tree_rss()))
            self._stop.wait(self.every_s)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def peak_gib(self, start: float | None = None, end: float | None = None) -> float:
        """The highest sample (GiB) between ``start`` and ``end`` (Unix times; all by default)."""
        inside = [
            b
            for t, b in self.samples
            if (start is None or t >= start) and (end is None or t <= end + self.every_s)
        ]
        return round(max(inside, default=0) / 2**30, 3)
