"""Where things are and how alerts are routed: the one place that reads the environment.

``CARDLAKE_SOURCES`` and ``CARDLAKE_LAKE`` (default ``./sources`` and ``./lake``), the shop
databases (``CARDLAKE_SHOP_DB_URL``, ``CARDLAKE_SUBSTATION_DB_URL``; default the SQLite files a
simulated shop writes into its sources), ``CARDLAKE_ALERTS_CONFIG`` (default ``config/alerts.yml``)
and the robot URLs and secrets that config names, ``CARDLAKE_SUPERSET_HOME``. dbt reads
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


def dagster_home() -> Path:
    """The Dagster instance every path records its runs in (``DAGSTER_HOME``, else the project's
    ``dagster_home/``, whose ``dagster.yaml`` sets the run queue)."""
    return Path(os.environ.get("DAGSTER_HOME") or ROOT / "dagster_home").resolve()


def shop_db_urls(
    sources: Path, main_url: str | None = None, substation_url: str | None = None
) -> dict[str, str]:
    """SQLAlchemy URLs of the two shop databases: given, else from the environment, else the
    SQLite files in ``sources``."""
    return {
        "main": main_url
        or os.environ.get("CARDLAKE_SHOP_DB_URL")
        or f"sqlite:///{Path(sources).resolve() / MAIN_DB_FILE}",
        "substation": substation_url
        or os.environ.get("CARDLAKE_SUBSTATION_DB_URL")
        or f"sqlite:///{Path(sources).resolve() / SUBSTATION_DB_FILE}",
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
