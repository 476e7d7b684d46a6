"""The lake's layout and its atomic writes.

    lake/raw/<dataset>/business_date=YYYY-MM-DD/part-0.parquet         landed rows (typed)
    lake/quarantine/<dataset>/business_date=YYYY-MM-DD/part-0.parquet  rejected rows + reason
    lake/_state/<dataset>/business_date=YYYY-MM-DD.json                 accounting, files, watermark

A partition of a dataset is published as one unit: its raw file, its quarantine file and its
state are written into a fresh folder, then swapped in by renames. A crash before the swap leaves
the old partition; after it, the new one; the state file is renamed last and names the content it
describes, so a torn publish is detected and repaired by the next run of that partition.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import polars as pl

PARQUET_OPTS = {"compression": "zstd", "statistics": True}


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def partition_dir(self, zone: str, dataset: str, day: dt.date) -> Path:
        return self.root / zone / dataset / f"business_date={day.isoformat()}"

    def state_path(self, dataset: str, day: dt.date) -> Path:
        return self.root / "_state" / dataset / f"business_date={day.isoformat()}.json"

    def read_state(self, dataset: str, day: dt.date) -> dict[str, Any] | None:
        path = self.state_path(dataset, day)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def states(self, dataset: str) -> dict[dt.date, dict[str, Any]]:
        folder = self.root / "_state" / dataset
        out = {}
        for path in sorted(folder.glob("business_date=*.json")):
            day = dt.date.fromisoformat(path.stem.split("=", 1)[1])
            out[day] = json.loads(path.read_text())
        return out

    def read_partition(
        self, zone: str, dataset: str, day: dt.date, columns: list[str] | None = None
    ) -> pl.DataFrame | None:
        path = self.partition_dir(zone, dataset, day) / "part-0.parquet"
        if not path.exists():
            return None
        return pl.read_parquet(path, columns=columns)

    def publish_partition(
        self,
        dataset: str,
        day: dt.date,
        raw: pl.DataFrame,
        quarantined: pl.DataFrame,
        state: dict[str, Any],
    ) -> None:
        """Replace the partition's raw file, quarantine file and state as one unit."""
        token = uuid.uuid4().hex[:12]
        staged = []
        for zone, frame in (("raw", raw), ("quarantine", quarantined)):
            final = self.partition_dir(zone, dataset, day)
            tmp = final.with_name(f".{final.name}.{token}.tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(tmp / "part-0.parquet", **PARQUET_OPTS)
            (tmp / "_token").write_text(token)
            fsync(tmp)
            staged.append((tmp, final))
        state = {**state, "token": token}
        state_path = self.state_path(dataset, day)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_tmp = state_path.with_name(f".{state_path.name}.{token}.tmp")
        state_tmp.write_text(
            json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True, default=str)
        )
        for tmp, final in staged:
            _swap_dir(tmp, final)
        os.replace(state_tmp, state_path)

    def partition_is_whole(self, dataset: str, day: dt.date) -> bool:
        """True when the partition's files are the ones its state describes (no torn publish)."""
        state = self.read_state(dataset, day)
        if state is None:
            return False
        for zone in ("raw", "quarantine"):
            token_file = self.partition_dir(zone, dataset, day) / "_token"
            if not token_file.exists() or token_file.read_text() != state.get("token"):
                return False
        return True

    def clean_stale_temps(self, dataset: str) -> None:
        """Remove folders a crashed run left half-written (never visible to readers)."""
        for zone in ("raw", "quarantine", "_state"):
            folder = self.root / zone / dataset
            if folder.exists():
                for tmp in folder.glob(".*.tmp"):
                    shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink()


def fsync(path: Path) -> None:
    """fsync a file or a folder (a rename is durable once its folder is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_dir(tmp: Path, final: Path) -> None:
    """Put ``tmp`` in place of ``final``: the old folder is renamed aside, then dropped."""
    if final.exists():
        old = final.with_name(f".{final.name}.old.{uuid.uuid4().hex[:8]}.tmp")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
