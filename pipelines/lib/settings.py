"""Where things are and how alerts are routed: the one place that reads the environment.

``CARDLAKE_SOURCES`` and ``CARDLAKE_LAKE`` (default ``./sources`` and ``./lake``), the shop
databases (``CARDLAKE_SHOP_DB_URL``, ``CARDLAKE_SUBSTATION_DB_URL``; default the SQLite files a
simulated shop writes into its sources), ``CARDLAKE_ALERTS_CONFIG`` (default ``config/alerts.yml``)
and the robot URLs and secrets that config names, ``CARDLAKE_SUPERSET_HOME``, ``CARDLAKE_SECRETS``
(the install's generated keys, outside the lake). dbt reads
``CARDLAKE_LAKE`` and ``CARDLAKE_DAYS`` too, set by ``pipelines.lib.dbt``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAIN_DB_FILE = "db/shop_main.sqlite"
SUBSTATION_DB_FILE = "db/shop_substation.sqlite"


def sources_root() -> Path:
    return Path(os.environ.get("CARDLAKE_SOURCES", "sources")).resolve()


def lake_root() -> Path:
    return Path(os.environ.get("CARDLAKE_LAKE", "lake")).resolve()


def alerts_config_path() -> Path:
    """Where alerts are routed (config/alerts.yml unless ``CARDLAKE_ALERTS_CONFIG`` says)."""
    default = ROOT / "config" / "alerts.yml"
    return Path(os.environ.get("CARDLAKE_ALERTS_CONFIG", default)).resolve()


def superset_home() -> Path:
    """Superset's state folder (metadata DB, caches, secret key, admin password); git-ignored."""
    default = ROOT / ".state" / "superset"
    return Path(os.environ.get("CARDLAKE_SUPERSET_HOME", default)).resolve()


def secrets_dir() -> Path:
    """The install's generated secrets (the card-key hashing key): ``CARDLAKE_SECRETS``, default
    ``.state/secrets``; outside the lake and git-ignored. Created on first use, mode 700 (an
    existing folder is left as it is)."""
    default = ROOT / ".state" / "secrets"
    path = Path(os.environ.get("CARDLAKE_SECRETS") or default).resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def dagster_home() -> Path:
    """The Dagster instance every path records its runs in (``DAGSTER_HOME``, else the project's
    ``dagster_home/``, whose ``dagster.yaml`` sets the run queue)."""
    return Path(os.environ.get("DAGSTER_HOME") or ROOT / "dagster_home").resolve()


def load_env_file() -> Path | None:
    """Read ``.env`` (``CARDLAKE_ENV_FILE``, else ``./.env``, else the project's) into the
    environment, never over a variable already set; returns the file read. Called by every entry
    point, so the robots and settings an operator put there reach every command and Dagster."""
    from dotenv import load_dotenv

    named = os.environ.get("CARDLAKE_ENV_FILE")
    candidates = [Path(named)] if named else [Path.cwd() / ".env", ROOT / ".env"]
    for path in candidates:
        if path.is_file():
            load_dotenv(path, override=False)
            return path.resolve()
    if named:
        raise FileNotFoundError(f"CARDLAKE_ENV_FILE={named}: no such file")
    return None


def group_access() -> bool:
    """Whether the owner's group may read what cardlake writes (``CARDLAKE_GROUP_ACCESS=1``: an
    analysts' group reading the serving files, say); by default only the owner can."""
    return os.environ.get("CARDLAKE_GROUP_ACCESS") == "1"


def file_umask() -> int:
    """Folders 0700 and files 0600 (0750 / 0640 with ``group_access``)."""
    return 0o027 if group_access() else 0o077


def private_files() -> None:
    """Make what this process and its children create private (``file_umask``). Called first by
    every entry point (the ``cardlake`` command, the Dagster code location); the writer lock
    narrows the lake's root too (``narrow``), whoever calls the writers."""
    os.umask(file_umask())


def narrow(folder: Path) -> None:
    """Take the world's (and without ``group_access`` the group's) access away from an existing
    folder of ours: one folder's mode guards everything below it."""
    folder = Path(folder)
    if folder.is_dir() and folder.stat().st_uid == os.getuid():
        keep = 0o750 if group_access() else 0o700
        mode = folder.stat().st_mode & 0o777
        if mode & ~keep:
            folder.chmod(mode & keep)


def lock_wait_seconds() -> float:
    """How long a writer waits for another to release the lake (``CARDLAKE_LOCK_WAIT``, s)."""
    return _number("CARDLAKE_LOCK_WAIT", 600.0)


@dataclasses.dataclass(frozen=True)
class ReaderLimits:
    """What one reader connection of a serving file may use: DuckDB's ``memory_limit``,
    ``threads`` and ``max_temp_directory_size`` (``CARDLAKE_READER_MEMORY``,
    ``CARDLAKE_READER_THREADS``, ``CARDLAKE_READER_TEMP``). Set in the connection's config and
    locked there (``lock_configuration``), so no query can lift them; a query past them fails
    alone, and the writer keeps the rest of the machine."""

    memory: str = "2GB"
    threads: int = 2
    temp: str = "4GB"

    @classmethod
    def from_env(cls) -> ReaderLimits:
        default = cls()
        return cls(
            memory=os.environ.get("CARDLAKE_READER_MEMORY") or default.memory,
            threads=int(_number("CARDLAKE_READER_THREADS", default.threads)),
            temp=os.environ.get("CARDLAKE_READER_TEMP") or default.temp,
        )

    def config(self, spill: Path) -> dict[str, object]:
        """The DuckDB config of a reader that spills into ``spill``."""
        return {
            "memory_limit": self.memory,
            "threads": self.threads,
            "max_temp_directory_size": self.temp,
            "temp_directory": str(spill),
        }


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r}: expected a number ≥ 0")
    return value


def shop_db_urls(
    sources: Path, main_url: str | None = None, substation_url: str | None = None
) -> dict[str, str]:
    """SQLAlchemy URLs of the two shop databases: given, else from the environment, else the
    SQLite files in ``sources`` (the substation's tables with acg-faka's default prefix
    ``acg_``, as the simulator writes them; a URL names its prefix with ``?table_prefix=``)."""
    return {
        "main": main_url
        or os.environ.get("CARDLAKE_SHOP_DB_URL")
        or f"sqlite:///{Path(sources).resolve() / MAIN_DB_FILE}",
        "substation": substation_url
        or os.environ.get("CARDLAKE_SUBSTATION_DB_URL")
        or f"sqlite:///{Path(sources).resolve() / SUBSTATION_DB_FILE}?table_prefix=acg_",
    }


@dataclasses.dataclass(frozen=True)
class AlertRouting:
    """Alert routing (``config/alerts.yml``): the group robots of each role, their URLs and
    signing secrets read from the environment variables the file names, and delivery settings."""

    config_path: Path

    @classmethod
    def default(cls) -> AlertRouting:
        return cls(alerts_config_path())

    def config(self) -> dict:
        import yaml

        if not self.config_path.exists():
            return {}
        return yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}

    def routes(self, environ: Mapping[str, str] | None = None):
        """(routes per role, notes on robots skipped because their variables are unset); raises
        ``RouteConfigError`` for a malformed file."""
        from pipelines.lib.notify import load_routes

        return load_routes(self.config().get("routes"), os.environ if environ is None else environ)

    def delivery(self) -> dict:
        return dict(self.config().get("delivery") or {})

    def link(self) -> str | None:
        name = self.delivery().get("link_env")
        return os.environ.get(name) or None if name else None
