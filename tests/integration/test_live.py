"""Live mode writes real rows into the shop databases while readers keep reading."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import time
from pathlib import Path

import pytest

from simulator.build import MAIN_DB, SUBSTATION_DB, simulate
from simulator.config import SimConfig
from simulator.live import run_live
from tests.conftest import SMALL


def _local_epoch(text: str) -> float:
    """Naive Beijing wall-clock text → unix seconds."""
    local = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    return local.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_live_mode_inserts_pays_delivers_and_refunds(tmp_path: Path) -> None:
    cfg = SimConfig(**{**SMALL, "days": 2, "orders_per_day": 300})
    s = simulate(cfg, tmp_path / "src")
    main, sub = s.out / "db" / MAIN_DB, s.out / "db" / SUBSTATION_DB
    with sqlite3.connect(main) as a, sqlite3.connect(sub) as b:
        before_main = a.execute("select max(id) from orders").fetchone()[0]
        before_sub = b.execute("select max(id) from acg_order").fetchone()[0]
        sold_before = a.execute("select count(*) from carmis where status = 2").fetchone()[0]
    reader = sqlite3.connect(main)  # an open reader must not block the writer (WAL)
    reader.execute("select count(*) from orders").fetchone()
    started = time.time()
    stats = run_live(
        dataclasses.replace(cfg, seed=3),
        s.out,
        rate=20,
        seconds=10,
        pay_share=0.9,
        refund_share=0.5,
    )
    reader.close()
    # thresholds leave room for a loaded CI machine: about 200 orders are expected in 10 s
    assert stats.orders > 40 and stats.payments > 15 and stats.deliveries > 10 and stats.refunds > 0
    with sqlite3.connect(main) as a, sqlite3.connect(sub) as b:
        new_main = a.execute(
            "select status, created_at, updated_at, trade_no, info from orders where id > ?",
            (before_main,),
        ).fetchall()
        new_sub = b.execute(
            "select status, create_time, pay_time, delivery_status from acg_order where id > ?",
            (before_sub,),
        ).fetchall()
        sold_after = a.execute("select count(*) from carmis where status = 2").fetchone()[0]
        refunds = a.execute("select count(*) from refunds where refund_no like 'RFL%'").fetchone()[
            0
        ]
    assert len(new_main) + len(new_sub) == stats.orders
    completed = [r for r in new_main if r[0] == 4]
    assert completed and all(r[3] and r[4] for r in completed)
    assert all(r[2] >= r[1] for r in new_main)  # updated_at moves forward
    assert any(r[0] == 1 and r[2] is not None and r[3] == 1 for r in new_sub)
    # DATETIME text of now, Beijing wall-clock time
    assert all(abs(_local_epoch(r[1]) - started) < 60 for r in new_sub)
    assert sold_after > sold_before
    assert refunds > 0


def test_live_refuses_a_table_prefix_its_statements_do_not_use(tmp_path: Path) -> None:
    """The loop names acg-faka's default tables (acg_order …): a server URL naming another
    prefix is refused before anything is written, not written beside the shop's tables."""
    from simulator.live import _engine

    url = f"sqlite:///{tmp_path / 'x.sqlite'}?table_prefix=shop_"
    with pytest.raises(ValueError, match=r"prefix 'acg_'; .* names the prefix 'shop_'"):
        _engine(url, tmp_path / "x.sqlite", "acg_")
    engine = _engine(url.replace("shop_", "acg_"), tmp_path / "x.sqlite", "acg_")
    assert "table_prefix" not in str(engine.url)
    engine.dispose()
