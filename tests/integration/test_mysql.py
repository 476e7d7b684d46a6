"""The simulator writes the same shops into a real MariaDB server (the production shape of dujiaoka
and acg-faka), through ``--shop-db-url`` / ``--substation-db-url``.

The server is the private ``mariadbd`` of the ``mariadb`` fixture (loopback only, see conftest).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from simulator.build import MAIN_DB, SUBSTATION_DB, simulate
from simulator.config import SimConfig
from tests.conftest import SMALL

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_shops_written_to_mariadb_match_the_sqlite_files(mariadb, tmp_path: Path) -> None:
    cfg = SimConfig(**{**SMALL, "days": 2, "orders_per_day": 300}, mess="hostile")
    s = simulate(
        cfg,
        tmp_path / "src",
        shop_db_url=mariadb.url("dujiaoka_sim"),
        substation_db_url=mariadb.url("acgfaka_sim"),
    )
    checks = {
        ("dujiaoka_sim", MAIN_DB): {
            "orders": "order_sn, goods_id, status, actual_price, email, trade_no, info",
            "carmis": "goods_id, status, carmi, deleted_at",
            "refunds": "refund_no, order_sn, amount, reason, status",
            "goods": "id, gd_name, actual_price, type, in_stock",
        },
        ("acgfaka_sim", SUBSTATION_DB): {
            "acg_order": "trade_no, owner, amount, commodity_id, create_time, pay_time, status, contact",
            "acg_card": "commodity_id, secret, status, purchase_time, order_id",
            "acg_commodity": "id, name, code, price",
        },
    }
    for (db, sqlite_file), tables in checks.items():
        con = mariadb.connect(db)
        lite = sqlite3.connect(s.out / "db" / sqlite_file)
        for table, cols in tables.items():
            q = f"select {cols} from {table} order by id"
            with con.cursor() as cur:
                cur.execute(q)
                mysql_rows = [tuple(_norm(v) for v in r) for r in cur.fetchall()]
            lite_rows = [tuple(_norm(v) for v in r) for r in lite.execute(q.replace("`", '"'))]
            differing = [(m, q) for m, q in zip(mysql_rows, lite_rows, strict=False) if m != q]
            assert len(mysql_rows) == len(lite_rows) and not differing, (table, differing[:3])
            assert mysql_rows, table
        lite.close()
        con.close()
    # the junk rows reach MySQL as a real shop stores them: MariaDB's strict default mode takes a
    # zero date (its default has no NO_ZERO_DATE)
    con = mariadb.connect("dujiaoka_sim")
    with con.cursor() as cur:
        cur.execute("select @@session.sql_mode")
        assert "STRICT_TRANS_TABLES" in cur.fetchone()[0]
        cur.execute("select count(*) from orders where cast(created_at as char) like '0000-00-00%'")
        assert cur.fetchone()[0] > 0
    con.close()
    # the tables are the installers': every NOT NULL column without a default that dujiaoka's
    # install.sql and acg-faka's Install.sql declare, and no other, is one every row names
    con = mariadb.connect(None)
    with con.cursor() as cur:
        cur.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
            " where table_schema in ('dujiaoka_sim', 'acgfaka_sim') and is_nullable = 'NO'"
            " and column_default is null and extra not like '%auto_increment%'"
        )
        required: dict[str, set[str]] = {}
        for _, table, column in cur.fetchall():
            required.setdefault(table, set()).add(column)
    con.close()
    assert required == INSTALLERS_REQUIRED


#: NOT NULL columns without a default, per table, as the shops' installers create them
INSTALLERS_REQUIRED = {
    "goods": {"group_id", "gd_name", "gd_description", "gd_keywords"},
    "goods_group": {"gp_name"},
    "carmis": {"goods_id", "carmi"},
    "orders": {"order_sn", "goods_id", "title", "email", "buy_ip"},
    "pays": {"pay_name", "pay_check", "pay_method", "merchant_pem", "pay_handleroute"},
    "coupons": {"coupon"},
    # the platform's own table
    "refunds": {"refund_no", "order_sn", "amount", "reason", "status"},
    "acg_order": {
        "trade_no",
        "amount",
        "commodity_id",
        "pay_id",
        "create_time",
        "create_ip",
        "create_device",
    },
    "acg_card": {"commodity_id", "secret", "create_time"},
    "acg_commodity": {"category_id", "name", "create_time", "code"},
    "acg_category": {"name", "create_time"},
    "acg_pay": {"name", "code", "create_time", "handle"},
    "acg_user": {"username", "password", "salt", "app_key", "create_time"},
}


def _norm(value: object) -> object:
    """MySQL hands back Decimal('989.00'); SQLite's NUMERIC affinity hands back 989 or 12.5."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dt.datetime):  # the shop's naive local time, as SQLite keeps it in text
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value.startswith("0000-00-00 00:00:00"):
        # a zero DATETIME is no datetime to the driver: it hands back the server's text, which
        # MariaDB sometimes writes with a zero fraction (seen under load, not in isolation)
        return "0000-00-00 00:00:00"
    return value


def test_ingestion_from_mariadb_lands_the_same_rows_as_from_sqlite(mariadb, tmp_path: Path) -> None:
    """The same contracts read the shops from a MariaDB server (connectorx) and from the SQLite
    files (ADBC) and land identical typed rows and identical quarantines."""
    from pipelines.lib.contracts import load_contracts
    from pipelines.lib.ingest import ingest
    from pipelines.lib.lake import Lake

    cfg = SimConfig(**{**SMALL, "days": 2, "orders_per_day": 300}, mess="hostile")
    s = simulate(
        cfg,
        tmp_path / "src",
        shop_db_url=mariadb.url("dujiaoka_ing"),
        substation_db_url=mariadb.url("acgfaka_ing"),
    )
    sqlite_urls = {
        "main": f"sqlite:///{s.out / 'db' / MAIN_DB}",
        "substation": f"sqlite:///{s.out / 'db' / SUBSTATION_DB}?table_prefix=acg_",
    }
    mysql_urls = {
        "main": mariadb.url("dujiaoka_ing"),
        "substation": mariadb.url("acgfaka_ing") + "&table_prefix=acg_",
    }
    now = dt.datetime.now(dt.UTC)
    days = [cfg.start - dt.timedelta(days=1), cfg.start, cfg.start + dt.timedelta(days=1)]
    lakes = {"sqlite": Lake(tmp_path / "lake_sqlite"), "mysql": Lake(tmp_path / "lake_mysql")}
    contracts = [c for c in load_contracts().values() if c.source["kind"] == "database"]
    for contract in contracts:
        for day in days:
            a = ingest(contract, day, lakes["sqlite"], s.out, sqlite_urls, now)
            b = ingest(contract, day, lakes["mysql"], s.out, mysql_urls, now)
            assert (a.read, a.landed, a.quarantined, a.skipped) == (
                b.read,
                b.landed,
                b.quarantined,
                b.skipped,
            ), (contract.dataset, day, a, b)
            typed = [c.landed_name for c in contract.columns]
            ra = lakes["sqlite"].read_partition("raw", contract.dataset, day)
            rb = lakes["mysql"].read_partition("raw", contract.dataset, day)
            assert ra.select(typed).equals(rb.select(typed)), (contract.dataset, day)
            qa = lakes["sqlite"].read_partition("quarantine", contract.dataset, day)
            qb = lakes["mysql"].read_partition("quarantine", contract.dataset, day)
            assert sorted(qa["_rule"]) == sorted(qb["_rule"]), (contract.dataset, day)
    orders = lakes["mysql"].read_partition("raw", "shop__orders", cfg.start)
    assert orders.height > 100
