"""One contract reads the shop's current schema and the older ones: a table is asked for its
columns first (``pipelines.lib.extract.table_layout``).

The shops are the simulator's (the installers' real table definitions), changed here into what a
shop on an older version, or a broken one, really has.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from pipelines.lib.contracts import load_contracts
from pipelines.lib.extract import SourceLayoutError
from pipelines.lib.ingest import ingest
from pipelines.lib.lake import Lake
from simulator.build import MAIN_DB, SUBSTATION_DB, simulate
from simulator.config import SimConfig
from simulator.shop_schemas import substation_metadata
from tests.conftest import SMALL, cardlake

pytestmark = [pytest.mark.integration]

#: columns later acg-faka versions added, which the older shop here lacks (nullable in the contracts)
ADDED_LATER = {("order", "coupon_id"), ("order", "create_device")}
#: acg-faka's tables with times, and their time columns
TIMES = {
    "order": ("create_time", "pay_time"),
    "card": ("create_time", "purchase_time"),
    "commodity": ("create_time", "seckill_start_time", "seckill_end_time"),
    "category": ("create_time",),
    "user": ("create_time", "login_time", "last_login_time"),
    "pay": ("create_time",),
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("layouts")
    cfg = SimConfig(**{**SMALL, "days": 2, "orders_per_day": 300}, mess="hostile")
    return cfg, simulate(cfg, base / "src").out


def _older_acg_faka(current: Path, target: Path) -> None:
    """acg-faka as older versions kept it: unix seconds in integers, unprefixed tables, and
    without the columns later versions added (``order.coupon_id``, ``order.create_device``)."""
    old = sa.MetaData()
    for table in substation_metadata("").sorted_tables:
        columns = [
            sa.Column(c.name, sa.BigInteger() if c.name in TIMES[table.name] else c.type)
            for c in table.columns
            if (table.name, c.name) not in ADDED_LATER
        ]
        sa.Table(table.name, old, *columns)
    engine = sa.create_engine(f"sqlite:///{target}")
    old.create_all(engine)
    engine.dispose()
    con = sqlite3.connect(target)
    con.execute("attach ? as cur", (str(current),))
    for table in old.sorted_tables:
        cols = []
        for c in table.columns:
            if c.name in TIMES[table.name]:
                # Beijing wall-clock text → unix seconds; a zero date was 0 in those versions
                cols.append(
                    f"case when \"{c.name}\" like '0000%' then 0 "
                    f"else cast(strftime('%s', \"{c.name}\") as integer) - 28800 end"
                )
            else:
                cols.append(f'"{c.name}"')
        names = ", ".join(f'"{c.name}"' for c in table.columns)
        con.execute(
            f'insert into main."{table.name}" ({names}) '
            f'select {", ".join(cols)} from cur."acg_{table.name}"'
        )
    con.commit()
    con.close()


def _land(contract_name: str, day: dt.date, lake: Path, sources: Path, urls: dict) -> tuple:
    contract = load_contracts()[contract_name]
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    result = ingest(contract, day, Lake(lake), sources, urls, now)
    raw = Lake(lake).read_partition("raw", contract.dataset, day)
    return result, raw.select(c.landed_name for c in contract.columns)


def test_older_acg_faka_with_unix_seconds_lands_the_same_rows(shop, tmp_path: Path) -> None:
    cfg, sources = shop
    old_db = tmp_path / "acg_old.sqlite"
    _older_acg_faka(sources / "db" / SUBSTATION_DB, old_db)
    current = {"substation": f"sqlite:///{sources / 'db' / SUBSTATION_DB}?table_prefix=acg_"}
    older = {"substation": f"sqlite:///{old_db}"}
    datasets = [
        c.dataset for c in load_contracts().values() if c.source.get("database") == "substation"
    ]
    assert {"substation__order", "substation__card", "substation__user"} <= set(datasets)
    for dataset in datasets:
        for day in (cfg.start, cfg.start + dt.timedelta(days=1)):
            a, rows_a = _land(dataset, day, tmp_path / "lake_current", sources, current)
            b, rows_b = _land(dataset, day, tmp_path / "lake_older", sources, older)
            assert (a.read, a.landed, a.quarantined) == (b.read, b.landed, b.quarantined), dataset
            # the columns the older shop lacks are null there; every other value is the same
            added = [c for t, c in ADDED_LATER if dataset == f"substation__{t}"]
            assert all(rows_b[c].is_null().all() for c in added)
            assert rows_a.drop(added).equals(rows_b.drop(added)), (dataset, day)
    orders = Lake(tmp_path / "lake_older").read_partition("raw", "substation__order", cfg.start)
    assert orders.height > 50 and orders["create_device"].is_null().all()
    assert orders["create_time"].min() >= dt.datetime.combine(
        cfg.start, dt.time(), tzinfo=dt.timezone(dt.timedelta(hours=8))
    ) - dt.timedelta(hours=1)


def test_a_table_without_a_required_column_is_refused_naming_it(shop, tmp_path: Path) -> None:
    cfg, sources = shop
    broken = tmp_path / "main.sqlite"
    shutil.copy(sources / "db" / MAIN_DB, broken)
    with sqlite3.connect(broken) as con:
        con.execute("alter table orders drop column coupon_ret_back")  # nullable: read as null
        con.execute("alter table goods drop column gd_name")  # required
    urls = {"main": f"sqlite:///{broken}"}
    lake = tmp_path / "lake"
    result, rows = _land("shop__orders", cfg.start, lake, sources, urls)
    assert result.landed > 50 and rows["coupon_ret_back"].is_null().all()
    with pytest.raises(SourceLayoutError) as refused:
        _land("shop__goods", cfg.start, lake, sources, urls)
    message = str(refused.value)
    assert "main database" in message and "table goods" in message
    assert "column gd_name is missing" in message and "shop__goods.v1.yml" in message
    # nothing of the refused table reached the lake
    assert not (lake / "raw" / "shop__goods").exists()
    assert not (lake / "quarantine" / "shop__goods").exists()

    # the run stops on it with the same words, not a traceback
    out = cardlake(
        "run",
        "--sources",
        str(sources),
        "--lake",
        str(tmp_path / "lake_cli"),
        "--start",
        str(cfg.start),
        "--end",
        str(cfg.start),
        "--shop-db-url",
        urls["main"],
    )
    assert out.returncode == 1
    assert "column gd_name is missing" in out.stdout and "Traceback" not in out.stdout


def test_a_prefixed_shop_read_without_its_prefix_says_which_prefix(shop, tmp_path: Path) -> None:
    cfg, sources = shop
    urls = {"substation": f"sqlite:///{sources / 'db' / SUBSTATION_DB}"}
    with pytest.raises(
        SourceLayoutError, match=r"table order: the table is missing.*has acg_order.*table_prefix"
    ):
        _land("substation__order", cfg.start, tmp_path / "lake", sources, urls)


def test_datetime_and_unix_seconds_parse_to_the_same_moment() -> None:
    from pipelines.lib.contracts import Column, _parse

    frame = pl.DataFrame({"t": ["2026-10-05 08:00:00", "1791158400", "0000-00-00 00:00:00", ""]})
    parsed = frame.select(_parse(Column("t", "epoch")).alias("t"))["t"].to_list()
    moment = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)
    assert parsed == [moment, moment, None, None]
