"""The lake: its layout (every zone, in one place) and the atomic writes of its raw zone.

    lake/raw/<dataset>/business_date=YYYY-MM-DD/part-0.parquet         landed rows (typed)
    lake/quarantine/<dataset>/business_date=YYYY-MM-DD/part-0.parquet  rejected rows + reason
    lake/_state/<dataset>/business_date=YYYY-MM-DD.json                 accounting, files, watermark
    lake/_build/                  dbt's private build file, its target folder and logs, locks
    lake/marts/<mart>/...         the published marts as Parquet (pipelines.lib.publish)
    lake/_serving/                immutable versions of the serving files (pipelines.lib.serving)
    lake/warehouse.duckdb         symlink to the current version of the marts' serving file
    lake/ops.duckdb               symlink to the current version of the tickets' serving file
    lake/reports/                 settlement reports, versioned (pipelines.lib.settlement)
    lake/tickets/                 the tickets' append-only event log (pipelines.lib.tickets)
    lake/docs/                    the dbt docs site (make docs)

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
    """A lake at ``root``: every path in it is spelled here."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @classmethod
    def of(cls, lake: Lake | Path | str) -> Lake:
        """``lake`` itself, or the lake at that path (resolved)."""
        return lake if isinstance(lake, Lake) else cls(Path(lake).resolve())

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    def __str__(self) -> str:
        return str(self.root)

    def __fspath__(self) -> str:
        # a Lake goes wherever its root path went (``Path(lake)``, ``open``, ``subprocess``)
        return str(self.root)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lake) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    # ------------------------------------------------------------------------------- zones
    def zone(self, zone: str) -> Path:
        """A landing zone: raw, quarantine (partitioned like raw) or _state."""
        return self.root / zone

    @property
    def build(self) -> Path:
        """Private to the writers: dbt's build file, its target folder and logs, the locks."""
        return self.root / "_build"

    @property
    def build_db(self) -> Path:
        return self.build / "cardlake.duckdb"

    @property
    def dbt_target(self) -> Path:
        return self.build / "dbt_target"

    @property
    def dbt_logs(self) -> Path:
        return self.build / "dbt_logs"

    @property
    def marts(self) -> Path:
        return self.root / "marts"

    @property
    def serving(self) -> Path:
        """The immutable versions the serving links point at."""
        return self.root / "_serving"

    @property
    def warehouse(self) -> Path:
        """The marts' serving file (a symlink into ``serving``)."""
        return self.root / "warehouse.duckdb"

    @property
    def ops_db(self) -> Path:
        """The tickets' serving file (a symlink into ``serving``)."""
        return self.root / "ops.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def tickets(self) -> Path:
        return self.root / "tickets"

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    # ------------------------------------------------------------------- raw partitions

    def partition_dir(self, zone: str, dataset: str, day: dt.date) -> Path:
        return self.zone(zone) / dataset / f"business_date={day.isoformat()}"

    def state_path(self, dataset: str, day: dt.date) -> Path:
        return self.zone("_state") / dataset / f"business_date={day.isoformat()}.json"

    def read_state(self, dataset: str, day: dt.date) -> dict[str, Any] | None:
        path = self.state_path(dataset, day)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def states(self, dataset: str) -> dict[dt.date, dict[str, Any]]:
        folder = self.zone("_state") / dataset
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
            folder = self.zone(zone) / dataset
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
