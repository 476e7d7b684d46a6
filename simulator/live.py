"""``cardlake simulate --live``: keep the shop databases moving, as a running shop does.

New orders arrive at about ``rate`` per second; most are paid seconds later, get their keys
(FIFO from the key tables, restocked when a SKU runs dry), and a few are refunded. Every change
is a real ``INSERT``/``UPDATE`` with the shop's own timestamps, so an incremental extract on
``updated_at`` / ``create_time`` sees exactly what it would see in production.

This loop handles a handful of orders per tick in Python on purpose: it paces writes in real
time (tens of rows a second), unlike the batch generator, which is vectorised.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import time
from pathlib import Path

import numpy as np
import polars as pl
import sqlalchemy as sa

from simulator.build import MAIN_DB, SUBSTATION_DB
from simulator.config import CST_OFFSET_S, SimConfig
from simulator.orders import MAIN_PAYS, SUB_PAYS, channel_txn_no, substation_trade_no, unique_codes
from simulator.shop_schemas import SUBSTATION_PREFIX as SUB
from simulator.shop_schemas import split_table_prefix
from simulator.text import DIGITS, UPPER_ALNUM, random_codes

TICK_S = 0.5
RESTOCK_KEYS = 20


@dataclasses.dataclass
class LiveStats:
    orders: int = 0
    payments: int = 0
    deliveries: int = 0
    refunds: int = 0
    restocks: int = 0


def _local(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch) + CST_OFFSET_S, dt.UTC).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def _engine(url: str | None, path: Path, prefix: str) -> sa.Engine:
    """The shop's database; ``prefix``: the table prefix the loop's statements name."""
    if url:
        plain, named = split_table_prefix(url, prefix)
        if named != prefix:
            raise ValueError(
                f"--live writes this shop's tables with the prefix {prefix!r}; "
                f"{sa.make_url(url).render_as_string()} names the prefix {named!r}"
            )
        return sa.create_engine(plain)
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_con, _record) -> None:  # readers keep reading while we write
        dbapi_con.execute("pragma journal_mode=wal")
        dbapi_con.execute("pragma busy_timeout=30000")

    return engine


def run_live(
    cfg: SimConfig,
    sources: Path,
    rate: float,
    seconds: float | None = None,
    shop_db_url: str | None = None,
    substation_db_url: str | None = None,
    pay_share: float = 0.75,
    refund_share: float = 0.01,
) -> LiveStats:
    """Insert and progress orders in real time until ``seconds`` pass (or Ctrl-C)."""
    rng = np.random.default_rng([cfg.seed, int(time.time())])
    main = _engine(shop_db_url, sources / "db" / MAIN_DB, "")
    sub = _engine(substation_db_url, sources / "db" / SUBSTATION_DB, SUB)
    people = pl.read_parquet(sources / "_truth" / "people.parquet")
    skus = pl.read_parquet(sources / "_truth" / "skus.parquet").select("sku_id", "popularity")
    with main.connect() as con:
        goods = pl.DataFrame(
            con.execute(
                sa.text("select id, gd_name, actual_price, type from goods where is_open = 1")
            ).all(),
            schema=["id", "name", "price", "type"],
            orient="row",
        )
    with sub.connect() as con:
        comms = pl.DataFrame(
            con.execute(sa.text(f"select id, name, price, delivery_way from {SUB}commodity")).all(),
            schema=["id", "name", "price", "type"],
            orient="row",
        )
    # popularity by listing, from the catalogue behind the listings
    truth_products = pl.read_parquet(sources / "_truth" / "products.parquet")
    weights = {}
    for shop, frame, system in (
        ("main", goods, "main.goods"),
        ("substation", comms, "substation.commodity"),
    ):
        ref = truth_products.filter(pl.col("system") == system).select(
            pl.col("product_ref").cast(pl.Int64).alias("id"), "sku_id"
        )
        w = frame.join(ref, on="id", how="left").join(skus, on="sku_id", how="left")
        p = w["popularity"].fill_null(w["popularity"].min() or 1.0).to_numpy()
        weights[shop] = p / p.sum()

    stats = LiveStats()
    events: list[tuple[float, int, str, dict]] = []
    seq = 0
    deadline = None if seconds is None else time.time() + seconds

    def schedule(at: float, kind: str, payload: dict) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, payload))

    try:
        while deadline is None or time.time() < deadline:
            now = time.time()
            n_new = int(rng.poisson(rate * TICK_S))
            for _ in range(n_new):
                shop = "main" if rng.uniform() < cfg.main_shop_share else "substation"
                frame = goods if shop == "main" else comms
                row = frame.row(int(rng.choice(frame.height, p=weights[shop])), named=True)
                person = people.row(int(rng.integers(0, people.height)), named=True)
                order = _insert_order(main if shop == "main" else sub, shop, row, person, now, rng)
                stats.orders += 1
                if rng.uniform() < pay_share:
                    schedule(now + rng.uniform(1, 8), "pay", order)
            while events and events[0][0] <= now:
                _, _, kind, order = heapq.heappop(events)
                engine = main if order["shop"] == "main" else sub
                if kind == "pay":
                    _pay(engine, order, now, rng)
                    stats.payments += 1
                    schedule(now + rng.uniform(0.5, 3), "deliver", order)
                elif kind == "deliver":
                    if _deliver(engine, order, now):
                        stats.deliveries += 1
                        if rng.uniform() < refund_share:
                            schedule(now + rng.uniform(1, 4), "refund", order)
                    else:
                        _restock(engine, order, now, rng)
                        stats.restocks += 1
                        schedule(now + 5, "deliver", order)
                elif kind == "refund" and order["shop"] == "main":
                    _refund(engine, order, now)
                    stats.refunds += 1
                elif kind == "refund":
                    stats.refunds += 1  # the substation keeps no refund records (statement only)
            time.sleep(max(0.0, TICK_S - (time.time() - now)))
    except KeyboardInterrupt:
        pass
    finally:
        main.dispose()
        sub.dispose()
    return stats


def _insert_order(
    engine: sa.Engine, shop: str, row: dict, person: dict, now: float, rng: np.random.Generator
) -> dict:
    price = float(row["price"])
    pay_id = int(rng.choice([p[0] for p in (MAIN_PAYS if shop == "main" else SUB_PAYS)]))
    with engine.begin() as con:
        if shop == "main":
            order_no = str(unique_codes(rng, 1, 16)[0])
            con.execute(
                sa.text(
                    "insert into orders (order_sn, goods_id, coupon_id, title, type, goods_price, buy_amount,"
                    " coupon_discount_price, wholesale_discount_price, total_price, actual_price, search_pwd,"
                    " email, pay_id, buy_ip, trade_no, status, coupon_ret_back, created_at, updated_at)"
                    " values (:sn, :gid, 0, :title, :type, :p, 1, 0, 0, :p, :p, '', :email, :pay, :ip, '',"
                    " 1, 0, :now, :now)"
                ),
                {
                    "sn": order_no,
                    "gid": row["id"],
                    "title": f"{row['name']} x 1",
                    "type": row["type"],
                    "p": price,
                    "email": person["email"],
                    "pay": pay_id,
                    "ip": "127.0.0.1",
                    "now": _local(now),
                },
            )
        else:
            order_no = str(substation_trade_no(rng, np.array([int(now)]))[0])
            con.execute(
                sa.text(
                    f"insert into {SUB}order (owner, user_id, trade_no, amount, commodity_id, card_num,"
                    " pay_id, create_time, create_ip, create_device, status, contact, delivery_status)"
                    " values (0, 0, :tn, :p, :cid, 1, :pay, :now, '127.0.0.1', 1, 0, :contact, 0)"
                ),
                {
                    "tn": order_no,
                    "p": price,
                    "cid": row["id"],
                    "pay": pay_id,
                    "now": _local(now),
                    "contact": person["phone"],
                },
            )
    return {
        "shop": shop,
        "order_no": order_no,
        "listing_id": row["id"],
        "manual": (row["type"] == 2) if shop == "main" else (row["type"] == 1),
    }


def _pay(engine: sa.Engine, order: dict, now: float, rng: np.random.Generator) -> None:
    with engine.begin() as con:
        if order["shop"] == "main":
            txn = str(channel_txn_no(rng, np.array(["alipay"]), np.array([int(now)]))[0])
            con.execute(
                sa.text(
                    "update orders set status = 2, trade_no = :t, updated_at = :now"
                    " where order_sn = :sn"
                ),
                {"t": txn, "now": _local(now), "sn": order["order_no"]},
            )
        else:
            con.execute(
                sa.text(f"update {SUB}order set status = 1, pay_time = :now where trade_no = :tn"),
                {"now": _local(now), "tn": order["order_no"]},
            )


def _deliver(engine: sa.Engine, order: dict, now: float) -> bool:
    """Hand out one key (or finish a manual top-up); False when the SKU is out of stock."""
    with engine.begin() as con:
        if order["shop"] == "main":
            if order["manual"]:
                con.execute(
                    sa.text(
                        "update orders set status = 4, info = '充值成功', updated_at = :now"
                        " where order_sn = :sn"
                    ),
                    {"now": _local(now), "sn": order["order_no"]},
                )
                return True
            key = con.execute(
                sa.text(
                    "select id, carmi from carmis where goods_id = :g and status = 1"
                    " and deleted_at is null order by id limit 1"
                ),
                {"g": order["listing_id"]},
            ).first()
            if key is None:
                return False
            con.execute(
                sa.text("update carmis set status = 2, updated_at = :now where id = :id"),
                {"now": _local(now), "id": key[0]},
            )
            con.execute(
                sa.text(
                    "update orders set status = 4, info = :info, updated_at = :now"
                    " where order_sn = :sn"
                ),
                {"info": key[1], "now": _local(now), "sn": order["order_no"]},
            )
            return True
        oid = con.execute(
            sa.text(f"select id from {SUB}order where trade_no = :tn"), {"tn": order["order_no"]}
        ).scalar_one()
        if order["manual"]:
            con.execute(
                sa.text(
                    f"update {SUB}order set delivery_status = 1, secret = '充值成功' where id = :id"
                ),
                {"id": oid},
            )
            return True
        key = con.execute(
            sa.text(
                f"select id, secret from {SUB}card where commodity_id = :c and status = 0"
                " order by id limit 1"
            ),
            {"c": order["listing_id"]},
        ).first()
        if key is None:
            return False
        con.execute(
            sa.text(
                f"update {SUB}card set status = 1, purchase_time = :now, order_id = :oid"
                " where id = :id"
            ),
            {"now": _local(now), "oid": oid, "id": key[0]},
        )
        con.execute(
            sa.text(f"update {SUB}order set delivery_status = 1, secret = :s where id = :id"),
            {"s": key[1], "id": oid},
        )
        return True


def _restock(engine: sa.Engine, order: dict, now: float, rng: np.random.Generator) -> None:
    secrets = random_codes(rng, RESTOCK_KEYS, 16, UPPER_ALNUM)
    cards = random_codes(rng, RESTOCK_KEYS, 16, DIGITS)
    with engine.begin() as con:
        if order["shop"] == "main":
            con.execute(
                sa.text(
                    "insert into carmis (goods_id, status, is_loop, carmi, created_at,"
                    " updated_at) values (:g, 1, 0, :k, :now, :now)"
                ),
                [
                    {"g": order["listing_id"], "k": f"{c}----{s}", "now": _local(now)}
                    for c, s in zip(cards, secrets, strict=True)
                ],
            )
        else:
            con.execute(
                sa.text(
                    f"insert into {SUB}card (owner, commodity_id, secret, create_time, status)"
                    " values (0, :c, :k, :now, 0)"
                ),
                [{"c": order["listing_id"], "k": str(s), "now": _local(now)} for s in secrets],
            )


def _refund(engine: sa.Engine, order: dict, now: float) -> None:
    with engine.begin() as con:
        amount = con.execute(
            sa.text("select actual_price from orders where order_sn = :sn"),
            {"sn": order["order_no"]},
        ).scalar_one()
        con.execute(
            sa.text(
                "insert into refunds (refund_no, order_sn, amount, reason, status,"
                " created_at, succeeded_at) values (:no, :sn, :a, '卡密无效', 1, :now, :now)"
            ),
            {
                "no": f"RFL{order['order_no']}",
                "sn": order["order_no"],
                "a": amount,
                "now": _local(now),
            },
        )
