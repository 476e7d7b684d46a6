"""The simulator writes the same shops into a real MariaDB server (the production shape of dujiaoka
and acg-faka), through ``--shop-db-url`` / ``--substation-db-url``.

The test starts a private ``mariadbd`` on a Unix socket in a temp dir (no TCP port), as root,
and stops it afterwards; ``make setup`` installs the Debian package.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest

from simulator.config import SimConfig
from simulator.run import MAIN_DB, SUBSTATION_DB, simulate
from tests.conftest import SMALL

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    assert shutil.which("mariadbd"), "mariadb-server is missing: run `make setup`"
    base = tmp_path_factory.mktemp("mariadb")
    data, sock = base / "data", base / "mysqld.sock"
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            "--skip-networking",
            "--user=root",
            f"--pid-file={base / 'mysqld.pid'}",
            f"--log-error={base / 'error.log'}",
            "--character-set-server=utf8mb4",
            "--innodb-buffer-pool-size=64M",
        ],
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                pymysql.connect(unix_socket=str(sock), user="root").close()
                break
            except pymysql.err.OperationalError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError((base / "error.log").read_text()) from None
                time.sleep(0.2)
        con = pymysql.connect(unix_socket=str(sock), user="root")
        with con.cursor() as cur:
            cur.execute("create database dujiaoka character set utf8mb4")
            cur.execute("create database acgfaka character set utf8mb4")
        con.close()
        yield sock
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_shops_written_to_mariadb_match_the_sqlite_files(mariadb: Path, tmp_path: Path) -> None:
    cfg = SimConfig(**{**SMALL, "days": 2, "orders_per_day": 300}, mess="hostile")
    url = "mysql+pymysql://root@localhost/{}?unix_socket=" + str(mariadb) + "&charset=utf8mb4"
    s = simulate(
        cfg,
        tmp_path / "src",
        shop_db_url=url.format("dujiaoka"),
        substation_db_url=url.format("acgfaka"),
    )
    checks = {
        ("dujiaoka", MAIN_DB): {
            "orders": "order_sn, goods_id, status, actual_price, email, trade_no, info",
            "carmis": "goods_id, status, carmi, deleted_at",
            "refunds": "refund_no, order_sn, amount, reason, status",
            "goods": "id, gd_name, actual_price, type, in_stock",
        },
        ("acgfaka", SUBSTATION_DB): {
            "`order`": "trade_no, owner, amount, commodity_id, create_time, pay_time, status, contact",
            "card": "commodity_id, secret, status, purchase_time, order_id",
            "commodity": "id, name, code, price",
        },
    }
    for (db, sqlite_file), tables in checks.items():
        con = pymysql.connect(unix_socket=str(mariadb), user="root", database=db, charset="utf8mb4")
        lite = sqlite3.connect(s.out / "db" / sqlite_file)
        for table, cols in tables.items():
            q = f"select {cols} from {table} order by id"
            with con.cursor() as cur:
                cur.execute(q)
                mysql_rows = [tuple(_norm(v) for v in r) for r in cur.fetchall()]
            lite_rows = [tuple(_norm(v) for v in r) for r in lite.execute(q.replace("`", '"'))]
            assert mysql_rows == lite_rows, table
            assert mysql_rows, table
        lite.close()
        con.close()
    # the junk rows reach MySQL as a real shop would store them (zero dates without strict mode)
    con = pymysql.connect(unix_socket=str(mariadb), user="root", database="dujiaoka")
    with con.cursor() as cur:
        cur.execute("select count(*) from orders where cast(created_at as char) like '0000-00-00%'")
        assert cur.fetchone()[0] > 0
    con.close()


def _norm(value: object) -> object:
    """MySQL hands back Decimal('989.00'); SQLite's NUMERIC affinity hands back 989 or 12.5."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dt.datetime):  # the shop's naive local time, as SQLite keeps it in text
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value
