"""Resources: where the sources, the shop databases and the lake are. The one place that reads
the environment (``CARDLAKE_SOURCES``, ``CARDLAKE_LAKE``, ``CARDLAKE_SHOP_DB_URL``,
``CARDLAKE_SUBSTATION_DB_URL``, ``CARDLAKE_ALERTS_CONFIG`` and the robot URLs and secrets that
config names; dbt reads ``CARDLAKE_LAKE`` too, set from here); every path is relative to those
roots."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipelines.lib.lake import Lake

MAIN_DB_FILE = "db/shop_main.sqlite"
SUBSTATION_DB_FILE = "db/shop_substation.sqlite"


def sources_root() -> Path:
    return Path(os.environ.get("CARDLAKE_SOURCES", "sources")).resolve()


def lake_root() -> Path:
    return Path(os.environ.get("CARDLAKE_LAKE", "lake")).resolve()


def alerts_config_path() -> Path:
    """Where alerts are routed (config/alerts.yml unless ``CARDLAKE_ALERTS_CONFIG`` says)."""
    default = Path(__file__).resolve().parents[1] / "config" / "alerts.yml"
    return Path(os.environ.get("CARDLAKE_ALERTS_CONFIG", default)).resolve()


def superset_home() -> Path:
    """Superset's state folder (metadata DB, caches, secret key, admin password); git-ignored."""
    default = Path(__file__).resolve().parents[1] / ".state" / "superset"
    return Path(os.environ.get("CARDLAKE_SUPERSET_HOME", default)).resolve()


class SourcesResource(dg.ConfigurableResource):
    """The folder the file sources (statements, CRM exports, supplier batches) arrive in."""

    root: str

    @property
    def path(self) -> Path:
        return Path(self.root)


class ShopDatabasesResource(dg.ConfigurableResource):
    """SQLAlchemy URLs of the two shop databases (SQLite files by default, MySQL/MariaDB in production)."""

    main_url: str
    substation_url: str

    def urls(self) -> dict[str, str]:
        return {"main": self.main_url, "substation": self.substation_url}


class LakeResource(dg.ConfigurableResource):
    """The lake root: raw/, quarantine/, _state/ (and marts/, reports/ later)."""

    root: str

    @property
    def lake(self) -> Lake:
        return Lake(Path(self.root))


class ModelsResource(dg.ConfigurableResource):
    """The dbt project run against the lake (dbt-duckdb builds into ``<lake>/_build``).

    dagster-dbt's CLI resource passes the process environment to dbt; ``environment()`` supplies
    the lake's path (``CARDLAKE_LAKE``) and dbt's own locations for the length of one invocation.
    """

    lake_root: str

    def cli_resource(self):
        from dagster_dbt import DbtCliResource

        from pipelines.lib.dbt import DBT_DIR, dbt_executable

        return DbtCliResource(
            project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR), dbt_executable=dbt_executable()
        )

    def environment(self) -> dict[str, str]:
        from pipelines.lib.dbt import build_env

        return build_env(Path(self.lake_root))

    def target_path(self) -> Path:
        """dbt's artefacts for the Dagster runs (kept between runs, so parsing is partial)."""
        return Path(self.lake_root).resolve() / "_build" / "dbt_target_dagster"


class AlertsResource(dg.ConfigurableResource):
    """Alert routing (``config/alerts.yml``): the group robots of each role, their URLs and
    signing secrets read from the environment variables the file names, and delivery settings."""

    config_path: str

    def config(self) -> dict:
        import yaml

        path = Path(self.config_path)
        if not path.exists():
            return {}
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def routes(self):
        """(routes per role, notes on robots skipped because their variables are unset)."""
        from pipelines.lib.notify import load_routes

        return load_routes(self.config().get("routes"), os.environ)

    def delivery(self) -> dict:
        return dict(self.config().get("delivery") or {})

    def link(self) -> str | None:
        name = self.delivery().get("link_env")
        return os.environ.get(name) or None if name else None


def default_resources(
    sources: Path | None = None,
    lake: Path | None = None,
    shop_db_url: str | None = None,
    substation_db_url: str | None = None,
) -> dict[str, dg.ConfigurableResource]:
    src = (sources or sources_root()).resolve()
    return {
        "sources": SourcesResource(root=str(src)),
        "shop_dbs": ShopDatabasesResource(
            main_url=shop_db_url
            or os.environ.get("CARDLAKE_SHOP_DB_URL")
            or f"sqlite:///{src / MAIN_DB_FILE}",
            substation_url=substation_db_url
            or os.environ.get("CARDLAKE_SUBSTATION_DB_URL")
            or f"sqlite:///{src / SUBSTATION_DB_FILE}",
        ),
        "lake": LakeResource(root=str((lake or lake_root()).resolve())),
        "models": ModelsResource(lake_root=str((lake or lake_root()).resolve())),
        "alerting": AlertsResource(config_path=str(alerts_config_path())),
    }
