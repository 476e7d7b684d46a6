"""The two shop databases: table definitions and a bulk writer for SQLite files or MySQL/MariaDB URLs.

Table and column names, types and status codes follow dujiaoka 2.x ``database/sql/install.sql``
(main shop) and acg-faka ``kernel/Install/Install.sql`` (substation), trimmed to the columns a
back office reads, plus the ``refunds`` table this platform adds to the main shop. One SQLAlchemy
``MetaData`` per shop gives both dialects' DDL. Rows are written column-wise: into SQLite through
ADBC (Arrow batches, no Python loop per row); into MySQL/MariaDB through SQLAlchemy executemany
in chunks (a server is the slow side there anyway). Both take the rows a batch at a time
(``ShopTables.append``), so the simulator writes a day at a time.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

_I = sa.Integer
_BI = sa.BigInteger
_TS = sa.TIMESTAMP


def _money() -> sa.Numeric:
    return sa.Numeric(10, 2, asdecimal=False)


def _laravel_timestamps() -> list[sa.Column]:
    return [sa.Column(c, _TS, nullable=True) for c in ("created_at", "updated_at", "deleted_at")]


def main_shop_metadata() -> sa.MetaData:
    """dujiaoka (独角数卡) 2.x tables; timestamps are naive Asia/Shanghai (Laravel)."""
    m = sa.MetaData()
    sa.Table(
        "goods_group",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("gp_name", sa.String(200), nullable=False),
        sa.Column("is_open", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("ord", _I, nullable=False, server_default="1"),
        *_laravel_timestamps(),
    )
    sa.Table(
        "goods",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("group_id", _I, nullable=False),
        sa.Column("gd_name", sa.String(200), nullable=False),
        sa.Column("retail_price", _money(), server_default="0.00"),
        sa.Column("actual_price", _money(), nullable=False, server_default="0.00"),
        sa.Column("in_stock", _I, nullable=False, server_default="0"),
        sa.Column("sales_volume", _I, server_default="0"),
        sa.Column("ord", _I, server_default="1"),
        sa.Column("buy_limit_num", _I, nullable=False, server_default="0"),
        sa.Column(
            "type",
            sa.SmallInteger,
            nullable=False,
            server_default="1",
            comment="商品类型 1自动发货 2人工处理",
        ),
        sa.Column("is_open", sa.SmallInteger, nullable=False, server_default="1"),
        *_laravel_timestamps(),
    )
    sa.Table(
        "carmis",
        m,
        sa.Column("id", _BI().with_variant(_I, "sqlite"), primary_key=True),
        sa.Column("goods_id", _I, nullable=False, index=True),
        sa.Column(
            "status",
            sa.SmallInteger,
            nullable=False,
            server_default="1",
            comment="状态 1未售出 2已售出",
        ),
        sa.Column("is_loop", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("carmi", sa.Text, nullable=False),
        *_laravel_timestamps(),
    )
    sa.Table(
        "coupons",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("discount", _money(), nullable=False, server_default="0.00"),
        sa.Column("is_use", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("is_open", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("coupon", sa.String(150), nullable=False, unique=True),
        sa.Column("ret", _I, nullable=False, server_default="0"),
        *_laravel_timestamps(),
    )
    sa.Table(
        "pays",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("pay_name", sa.String(200), nullable=False),
        sa.Column("pay_check", sa.String(50), nullable=False, unique=True),
        sa.Column("pay_method", sa.SmallInteger, nullable=False),
        sa.Column("pay_client", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("merchant_id", sa.String(200)),
        sa.Column("pay_handleroute", sa.String(200), nullable=False),
        sa.Column("is_open", sa.SmallInteger, nullable=False, server_default="1"),
        *_laravel_timestamps(),
    )
    sa.Table(
        "orders",
        m,
        sa.Column("id", _BI().with_variant(_I, "sqlite"), primary_key=True),
        sa.Column("order_sn", sa.String(150), nullable=False),
        sa.Column("goods_id", _I, nullable=False, index=True),
        sa.Column("coupon_id", _I, server_default="0"),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("type", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("goods_price", _money(), nullable=False, server_default="0.00"),
        sa.Column("buy_amount", _I, nullable=False, server_default="1"),
        sa.Column("coupon_discount_price", _money(), nullable=False, server_default="0.00"),
        sa.Column("wholesale_discount_price", _money(), nullable=False, server_default="0.00"),
        sa.Column("total_price", _money(), nullable=False, server_default="0.00"),
        sa.Column("actual_price", _money(), nullable=False, server_default="0.00"),
        sa.Column("search_pwd", sa.String(200), server_default=""),
        sa.Column("email", sa.String(200), nullable=False, index=True),
        sa.Column("info", sa.Text),
        sa.Column("pay_id", _I),
        sa.Column("buy_ip", sa.String(50), nullable=False),
        sa.Column("trade_no", sa.String(200), server_default=""),
        sa.Column(
            "status",
            sa.SmallInteger,
            nullable=False,
            server_default="1",
            comment="1待支付 2待处理 3处理中 4已完成 5处理失败 6异常 -1过期",
        ),
        sa.Column("coupon_ret_back", sa.SmallInteger, nullable=False, server_default="0"),
        *_laravel_timestamps(),
        sa.Index("idx_order_sn", "order_sn", unique=True),
        sa.Index("idx_orders_updated_at", "updated_at"),
    )
    sa.Table(
        "refunds",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("refund_no", sa.String(32), nullable=False, unique=True),
        sa.Column("order_sn", sa.String(150), nullable=False, index=True),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("reason", sa.String(100), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False, comment="0处理中 1成功 2失败"),
        sa.Column("created_at", _TS, nullable=True),
        sa.Column("succeeded_at", _TS, nullable=True),
    )
    return m


def substation_metadata() -> sa.MetaData:
    """acg-faka (异次元发卡) tables; times are unix epoch seconds."""
    m = sa.MetaData()
    sa.Table(
        "user",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("username", sa.String(32), nullable=False, unique=True),
        sa.Column("email", sa.String(128)),
        sa.Column("phone", sa.String(16)),
        sa.Column("qq", sa.String(16)),
        sa.Column("balance", _money(), nullable=False, server_default="0.00"),
        sa.Column("create_time", _BI, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False, server_default="1"),
    )
    sa.Table(
        "category",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sort", _I, nullable=False, server_default="0"),
        sa.Column("create_time", _BI, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False, server_default="1"),
    )
    sa.Table(
        "commodity",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("category_id", _I, nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("factory_price", _money(), nullable=False, server_default="0.00"),
        sa.Column("price", _money(), nullable=False, server_default="0.00"),
        sa.Column("user_price", _money(), nullable=False, server_default="0.00"),
        sa.Column("status", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("create_time", _BI, nullable=False),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "delivery_way",
            sa.SmallInteger,
            nullable=False,
            server_default="0",
            comment="发货方式：0=自动发货，1=手动发货",
        ),
    )
    sa.Table(
        "card",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("owner", _I, nullable=False, server_default="0"),
        sa.Column("commodity_id", _I, nullable=False, index=True),
        sa.Column("secret", sa.String(760), nullable=False),
        sa.Column("create_time", _BI, nullable=False),
        sa.Column("purchase_time", _BI, nullable=True),
        sa.Column("order_id", _I, nullable=True, index=True),
        sa.Column(
            "status",
            sa.SmallInteger,
            nullable=False,
            server_default="0",
            comment="状态：0=未出售，1=已出售，2=已锁定",
        ),
        sa.Column("note", sa.String(64)),
    )
    sa.Table(
        "order",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("owner", _I, nullable=False, server_default="0", comment="所属会员：0=游客"),
        sa.Column("user_id", _I, nullable=False, server_default="0"),
        sa.Column("trade_no", sa.String(19), nullable=False),
        sa.Column("amount", _money(), nullable=False),
        sa.Column("commodity_id", _I, nullable=False, index=True),
        sa.Column("card_num", _I, nullable=False, server_default="0"),
        sa.Column("pay_id", _I, nullable=False),
        sa.Column("create_time", _BI, nullable=False, index=True),
        sa.Column("create_ip", sa.String(64), nullable=False),
        sa.Column("create_device", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("pay_time", _BI, nullable=True),
        sa.Column(
            "status",
            sa.SmallInteger,
            nullable=False,
            server_default="0",
            comment="订单状态：0=未支付，1=已支付",
        ),
        sa.Column("secret", sa.Text),
        sa.Column("contact", sa.String(32)),
        sa.Column(
            "delivery_status",
            sa.SmallInteger,
            nullable=False,
            server_default="0",
            comment="发货状态：0=未发货，1=已发货",
        ),
        sa.Column("coupon_id", _I, nullable=True),
        sa.Index("trade_no", "trade_no", unique=True),
    )
    sa.Table(
        "pay",
        m,
        sa.Column("id", _I, primary_key=True),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("commodity", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("create_time", _BI, nullable=False),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("cost", sa.Numeric(10, 3, asdecimal=False), server_default="0.000"),
        sa.Column("cost_type", sa.SmallInteger, server_default="1"),
    )
    return m


def _sqlite_ddl(metadata: sa.MetaData) -> tuple[list[str], list[str]]:
    """(CREATE TABLE statements, CREATE INDEX statements): indexes are built after the bulk load."""
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    tables, indexes = [], []
    for table in metadata.sorted_tables:
        tables.append(str(CreateTable(table).compile(dialect=dialect)))
        indexes.extend(str(CreateIndex(ix).compile(dialect=dialect)) for ix in table.indexes)
    return tables, indexes


class SqliteTables:
    """A fresh SQLite file with the shop's schema, loaded a batch of rows at a time.

    Written beside the target and renamed over it by ``close()``, so a crash never leaves half a
    database; the indexes are built once, after the bulk load.
    """

    def __init__(self, path: Path, metadata: sa.MetaData) -> None:
        import adbc_driver_sqlite.dbapi as adbc

        self.path = path
        self.metadata = metadata
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(path.name + ".tmp")
        self.tmp.unlink(missing_ok=True)
        tables, self.indexes = _sqlite_ddl(metadata)
        with contextlib.closing(sqlite3.connect(self.tmp)) as con:
            for stmt in tables:
                con.execute(stmt)
            con.commit()
        self.con = adbc.connect(str(self.tmp), autocommit=True)
        self.cur = self.con.cursor()
        # a fresh file that is renamed into place only when complete: no journal needed
        self.cur.execute("pragma journal_mode = off")
        self.cur.execute("pragma synchronous = off")
        self.cur.execute("pragma cache_size = -65536")  # 64 MiB: appends touch the last pages only

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        columns = [c.name for c in self.metadata.tables[table].columns if c.name in frame.columns]
        self.cur.adbc_ingest(table, frame.select(columns).to_arrow(), mode="append")

    def close(self) -> None:
        self.cur.close()
        self.con.close()
        with contextlib.closing(sqlite3.connect(self.tmp)) as con:
            for stmt in self.indexes:
                con.execute(stmt)
            con.commit()
            con.execute("pragma journal_mode=wal")  # live mode writes while readers read
        self.tmp.replace(self.path)


class SqlAlchemyTables:
    """The shop's tables replaced in a MySQL/MariaDB (or any SQLAlchemy) database, then loaded."""

    def __init__(self, url: str, metadata: sa.MetaData, chunk_rows: int = 5000) -> None:
        self.engine = sa.create_engine(url)
        self.metadata = metadata
        self.chunk_rows = chunk_rows
        with self._begin() as con:
            metadata.drop_all(con)
            metadata.create_all(con)

    @contextlib.contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as con:
            if self.engine.dialect.name == "mysql":
                # dujiaoka shops run without strict mode: zero dates and clamped values get in
                con.exec_driver_sql("SET SESSION sql_mode = ''")
            yield con

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        columns = [c.name for c in self.metadata.tables[table].columns if c.name in frame.columns]
        # untyped columns: the frames already hold the shop's own text/number forms
        # (naive local timestamps, zero dates), which typed DateTime binds would reject
        target = sa.table(table, *[sa.column(c) for c in columns])
        with self._begin() as con:
            for chunk in _chunks(frame.select(columns), self.chunk_rows):
                con.execute(target.insert(), chunk.to_dicts())

    def close(self) -> None:
        self.engine.dispose()


class ShopTables:
    """One shop's tables in its SQLite file and, when a URL is given, in a database server too."""

    def __init__(self, path: Path, metadata: sa.MetaData, url: str | None = None) -> None:
        self.targets: list[SqliteTables | SqlAlchemyTables] = [SqliteTables(path, metadata)]
        if url:
            self.targets.append(SqlAlchemyTables(url, metadata))

    def append(self, table: str, frame: pl.DataFrame) -> None:
        for target in self.targets:
            target.append(table, frame)

    def close(self) -> None:
        for target in self.targets:
            target.close()


def _chunks(frame: pl.DataFrame, rows: int) -> Iterator[pl.DataFrame]:
    for start in range(0, frame.height, rows):
        yield frame.slice(start, rows)
