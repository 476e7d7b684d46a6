"""Dagster resources: where the sources, the shop databases and the lake are, and how alerts are
routed. Their defaults come from the environment through ``pipelines.lib.settings`` (the one
place that reads it); ``as_cycle`` turns them into the cycle's ``Cycle``."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.cycle import Cycle
from pipelines.lib.lake import Lake
from pipelines.lib.settings import (
    AlertRouting,
    alerts_config_path,
    lake_root,
    shop_db_urls,
    sources_root,
)


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
    """The lake root (``pipelines.lib.lake.Lake`` knows its zones)."""

    root: str

    @property
    def lake(self) -> Lake:
        return Lake(Path(self.root))


class AlertsResource(dg.ConfigurableResource):
    """Alert routing (``config/alerts.yml``, ``pipelines.lib.settings.AlertRouting``)."""

    config_path: str

    @property
    def routing(self) -> AlertRouting:
        return AlertRouting(Path(self.config_path))

    def routes(self):
        return self.routing.routes()

    def delivery(self) -> dict:
        return self.routing.delivery()

    def link(self) -> str | None:
        return self.routing.link()


def as_cycle(
    sources: SourcesResource,
    shop_dbs: ShopDatabasesResource,
    lake: LakeResource,
    alerting: AlertsResource,
) -> Cycle:
    """The cycle these resources describe."""
    return Cycle(
        lake=lake.lake, sources=sources.path, urls=shop_dbs.urls(), alerts=alerting.routing
    )


def lake_cycle(lake: LakeResource) -> Cycle:
    """The cycle over this lake, for the stages that only read and write the lake (publish,
    reports): the other paths come from the environment, unused."""
    return Cycle.configure(lake=lake.lake)


def default_resources(
    sources: Path | None = None,
    lake: Path | None = None,
    shop_db_url: str | None = None,
    substation_db_url: str | None = None,
) -> dict[str, dg.ConfigurableResource]:
    src = (sources or sources_root()).resolve()
    urls = shop_db_urls(src, shop_db_url, substation_db_url)
    return {
        "sources": SourcesResource(root=str(src)),
        "shop_dbs": ShopDatabasesResource(main_url=urls["main"], substation_url=urls["substation"]),
        "lake": LakeResource(root=str((lake or lake_root()).resolve())),
        "alerting": AlertsResource(config_path=str(alerts_config_path())),
    }
