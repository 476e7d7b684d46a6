"""What every benchmark records: the machine it ran on, and one results file per run
(``benchmarks/results/<timestamp>-<benchmark>.json``). The scripts run as ``python
benchmarks/<script>.py``, so this folder is on their import path."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, float | int | None]:
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def save(result: dict) -> Path:
    """Write ``result`` (which names its ``benchmark``) to a new timestamped results file."""
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}-{result['benchmark']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
