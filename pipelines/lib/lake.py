"""The lake: its layout (every zone, in one place) and the atomic writes of its raw zone.

    lake/raw/<dataset>/business_date=YYYY-MM-DD/part-0.parquet         landed rows (typed)
    lake/quarantine/<dataset>/business_date=YYYY-MM-DD/part-0.parquet  rejected rows + reason
    lake/_state/<dataset>/business_date=YYYY-MM-DD.json                 accounting, files, watermark
    lake/_build/                  dbt's private build file, its target folder and logs, the
                                  writer lock (pipelines.lib.writer)
    lake/_readers_tmp/            readers' spill space, capped per connection
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
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import polars as pl

log = logging.getLogger(__name__)

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
    def writer_lock(self) -> Path:
        """The one-writer-at-a-time lock and its holder (``pipelines.lib.writer``)."""
        return self.build / "writer.lock"

    @property
    def reader_temp(self) -> Path:
        """Where readers of the serving files spill (bounded: ``settings.reader_limits``)."""
        return self.root / "_readers_tmp"

    @property
    def build_db(self) -> Path:
        return self.build / "cardlake.duckdb"

    @property
    def models_fingerprint(self) -> Path:
        """What the models in the build file were last built from in full (``lib.dbt``)."""
        return self.build / "models.fingerprint"

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

    @property
    def card_key_fingerprint(self) -> Path:
        """Which key the lake's card keys are hashed with (``pipelines.lib.protect``)."""
        return self.zone("_state") / "card_key.fingerprint"

    def state_path(self, dataset: str, day: dt.date) -> Path:
        return self.zone("_state") / dataset / f"business_date={day.isoformat()}.json"

    def read_state(self, dataset: str, day: dt.date) -> dict[str, Any] | None:
        """The partition's state; None when it has none, or when its file is damaged (empty or
        cut short by a crash of a version that did not sync it): the partition then counts as
        never landed, and the next run of its day lands it again (a logged warning says so)."""
        return _read_state(self.state_path(dataset, day))

    def states(self, dataset: str) -> dict[dt.date, dict[str, Any]]:
        """Every readable state of ``dataset`` by day (damaged ones are left out, as above)."""
        folder = self.zone("_state") / dataset
        out = {}
        for path in sorted(folder.glob("business_date=*.json")):
            day = dt.date.fromisoformat(path.stem.split("=", 1)[1])
            if (state := _read_state(path)) is not None:
                out[day] = state
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
        owner = f"{os.getpid()}-{token}"
        staged = []
        for zone, frame in (("raw", raw), ("quarantine", quarantined)):
            final = self.partition_dir(zone, dataset, day)
            tmp = final.with_name(f".{final.name}.{owner}.tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(tmp / "part-0.parquet", **PARQUET_OPTS)
            (tmp / "_token").write_text(token)
            fsync(tmp)
            staged.append((tmp, final))
        state = {**state, "token": token}
        state_path = self.state_path(dataset, day)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_tmp = state_path.with_name(f".{state_path.name}.{owner}.tmp")
        with state_tmp.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True, default=str))
            fh.flush()
            os.fsync(fh.fileno())
        for tmp, final in staged:
            _swap_dir(tmp, final)
        os.replace(state_tmp, state_path)
        fsync(state_path.parent)

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
        """Remove what a crashed writer left half-written (never visible to readers): only temps
        whose owner (the pid in their name) is gone, or this process's own."""
        for zone in ("raw", "quarantine", "_state"):
            folder = self.zone(zone) / dataset
            if folder.exists():
                for tmp in folder.glob(".*.tmp"):
                    if _owner_gone(tmp):
                        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(
                            missing_ok=True
                        )


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        state = json.loads(text)
    except json.JSONDecodeError:
        state = None
    if not isinstance(state, dict):
        log.warning("%s is damaged (%d bytes): its day will be landed again", path, len(text))
        return None
    return state


def _owner_gone(tmp: Path) -> bool:
    """Whether the writer that named ``tmp`` (``.<name>.<pid>-<token>.tmp``) is gone. Temps of
    older versions carry no pid: the writer lock means their owner is gone too."""
    tag = tmp.name.rsplit(".", 2)[-2]
    pid, sep, _ = tag.partition("-")
    if not sep or not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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
