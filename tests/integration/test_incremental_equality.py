"""The lake a shop's days build one at a time equals the lake one ``--full-refresh`` builds from
the same sources, row for row: every table of dbt's build file (staging, intermediate, marts),
every table of the serving file and every Parquet mart, compared both ways with ``EXCEPT ALL``;
and a day run again changes nothing.

This is the yardstick of incremental models (docs/incremental.md): whatever a model keeps from the
runs before, a run of one day must leave the lake as a rebuild from everything would, and the
models on change sets must have rebuilt only what the day changed. The shop has the realistic
mess: late refunds and deliveries, statements that arrive the next morning or are re-sent, CRM
edits, late supplier files; and, planted on a late day, e-mails that make earlier Alipay masks
ambiguous, so the days both join users known before and withdraw identity edges.

Days landed out of order give the same lake too (``pipelines.lib.claims``)."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines import cycle
from pipelines.lib.lake import Lake
from simulator.build import MAIN_DB, simulate
from simulator.config import SimConfig
from simulator.identity_evidence import alipay_mask

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOP = {"seed": 11, "start": dt.date(2026, 9, 22), "days": 10, "orders_per_day": 200, "skus": 60}
#: when a row was built or extracted, how long a landing took: the only columns two builds of the
#: same rows may differ in
VOLATILE = ("_built_at", "_extracted_at", "ingest_seconds")
#: the models on change sets, by the key they rebuild: a day run again rebuilds a part of each
INCREMENTAL_BY_KEY = {
    "int_orders_unified": "order_id",
    "int_order_payments": "order_id",
    "int_order_numbers_standardised": "_number_key",
    "int_identifiers_observed": "record_key",
    "int_main_key_deliveries": "order_id",
    "int_card_keys_costed": "key_id",
    "fct_key_movements": "key_id",
    "fct_orders": "order_id",
    "fct_payments": "payment_id",
    "fct_refunds": "order_no",
    "anomaly_orders": "order_no",
}
#: the models on change sets that follow what their inputs' values did, not which keys were
#: rebuilt: a day run again changes no value, so they may rebuild nothing at all
INCREMENTAL_BY_VALUE = {
    "int_buyer_first_paid": "user_key",
    "int_product_names": "product_ref",
    "kpi_sales_daily": "business_date",
    "kpi_fulfilment_daily": "business_date",
    "kpi_refunds_daily": "business_date",
    "kpi_inventory_daily": "business_date",
    "rpt_channel_reconciliation": "business_date",
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    cfg = SimConfig(**SHOP)
    out = simulate(cfg, tmp_path_factory.mktemp("equality") / "sources").out
    _make_masks_ambiguous(out, cfg, late_day=7)
    return out


def _make_masks_ambiguous(out: Path, cfg: SimConfig, late_day: int, buyers: int = 20) -> None:
    """Withdraw identity edges on a late day: for the first buyers who paid by Alipay under an
    e-mail mask, a main-shop order of `late_day` gets a new e-mail that Alipay would print as the
    same mask. From that day the mask fits two known contacts, so the mask links of the earlier
    days are withdrawn (and a user they joined may split)."""
    truth = out / "_truth"
    orders = pl.read_parquet(truth / "orders.parquet")
    day = (pl.col("created_at") - cfg.start_epoch) // 86400
    masks = alipay_mask(pl.read_parquet(truth / "people.parquet"))
    early = (
        orders.filter((pl.col("channel") == "alipay") & pl.col("is_paid") & (day < 2))
        .join(masks, on="person_id")
        .filter(pl.col("mask").str.contains("@"))
        .unique("mask", keep="first", maintain_order=True)
        .head(buyers)
    )
    late = orders.filter((pl.col("shop") == "main") & ~pl.col("is_test") & (day == late_day)).head(
        early.height
    )
    assert late.height == early.height
    with sqlite3.connect(out / "db" / MAIN_DB) as db:
        for i, (mask, order_no) in enumerate(zip(early["mask"], late["order_no"], strict=True)):
            head, domain = mask.split("***@")
            db.execute(
                "update orders set email = ? where order_sn = ?",
                (f"{head}planted{i}@{domain}", order_no),
            )


@pytest.fixture(scope="module")
def days(shop: Path) -> list[dt.date]:
    found = cycle.source_days(cycle.Cycle.configure(shop))
    assert len(found) >= 10, found
    return found


@pytest.fixture(scope="module")
def full_lake(shop: Path, days: list[dt.date], tmp_path_factory) -> Path:
    lake = tmp_path_factory.mktemp("full") / "lake"
    run = cycle.Cycle.configure(shop, lake)
    assert cycle.run(run, cycle.Scope(days=tuple(days), full_refresh=True)).failed_landing is None
    return lake


def _day_by_day(shop: Path, lake: Path, order: list[dt.date], events: Counter) -> Path:
    run = cycle.Cycle.configure(shop, lake)
    graph = None
    for i, day in enumerate(order):
        result = cycle.run(run, cycle.Scope(days=(day,)))
        assert result.failed_landing is None, day
        graph = _graph_events(lake, graph, events)
        # after the first day, the incremental marts are published from their change logs
        if i and result.publication is not None:
            events["published from logs"] += len(result.publication.from_logs)
            events["digested"] += len(result.publication.digested)
    return lake


def _graph_events(lake: Path, before: dict | None, events: Counter) -> dict:
    """Count what a run did to the identity graph against the run before it: two users known
    before joined into one (`merged`), a user split (`split`), a used edge withdrawn."""
    with duckdb.connect(str(Lake(lake).build_db), read_only=True) as con:
        users = dict(
            con.execute("select node, user_key from intermediate.int_users_resolved").fetchall()
        )
        used = {
            row[0]
            for row in con.execute(
                "select node_a || ' ' || node_b || ' ' || link_rule "
                "from intermediate.int_identity_links where is_used"
            ).fetchall()
        }
    if before is not None:
        old_users, old_used = before["users"], before["used"]
        keys_after: dict[str, set[str]] = {}
        keys_before: dict[str, set[str]] = {}
        for node, key in old_users.items():
            if node in users:
                keys_after.setdefault(users[node], set()).add(key)
                keys_before.setdefault(key, set()).add(users[node])
        events["merged"] += sum(len(v) > 1 for v in keys_after.values())
        events["split"] += sum(len(v) > 1 for v in keys_before.values())
        events["withdrawn"] += len(old_used - used)
    return {"users": users, "used": used}


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, list[str]]:
    """Each table of an attached database (schema.table) → its columns, in order."""
    rows = con.execute(
        "select schema_name, table_name, list(column_name order by column_index) "
        "from duckdb_columns() where database_name = ? group by all",
        [database],
    ).fetchall()
    return {
        f'"{s}"."{t}"': cols
        for s, t, cols in rows
        # the change logs say what each build did, the publication's own rows when and how it
        # was published: bookkeeping, not data (the partitions' digests are compared)
        if t not in ("_publication", "_publication_storage") and s != "changes"
    }


def _except_all(con: duckdb.DuckDBPyConnection, a: str, b: str, columns: list[str]):
    keep = ", ".join(f'"{c}"' for c in columns if c not in VOLATILE)
    return tuple(
        con.execute(
            f"select count(*) from (select {keep} from {x} except all select {keep} from {y})"
        ).fetchone()[0]
        for x, y in ((a, b), (b, a))
    )


def differences(one: Path, other: Path) -> dict[str, tuple[int, int]]:
    """What ``one`` holds that ``other`` does not and the reverse, row counts per table: build
    file, serving file and Parquet marts. Empty when the two lakes are the same."""
    out: dict[str, tuple[int, int]] = {}
    con = duckdb.connect()
    try:
        for name, lake in (("one", Lake(one)), ("other", Lake(other))):
            con.execute(f"attach '{lake.build_db}' as {name}_build (read_only)")
            con.execute(f"attach '{lake.warehouse.resolve()}' as {name}_serving (read_only)")
        for kind in ("build", "serving"):
            tables = _tables(con, f"one_{kind}")
            assert sorted(tables) == sorted(_tables(con, f"other_{kind}")), kind
            for table, columns in tables.items():
                found = _except_all(con, f"one_{kind}.{table}", f"other_{kind}.{table}", columns)
                if any(found):
                    out[f"{kind} {table}"] = found
        marts = sorted(p.name for p in Lake(one).marts.iterdir())
        assert marts == sorted(p.name for p in Lake(other).marts.iterdir())
        for mart in marts:
            views = []
            for name, lake in (("one", Lake(one)), ("other", Lake(other))):
                files = f"{lake.marts / mart}/**/*.parquet"
                con.execute(
                    f"create or replace view {name}_{mart} as "
                    f"select * from read_parquet('{files}', hive_partitioning = true)"
                )
                views.append(f"{name}_{mart}")
            columns = [d[0] for d in con.execute(f"select * from {views[0]} limit 0").description]
            found = _except_all(con, *views, columns)
            if any(found):
                out[f"parquet {mart}"] = found
    finally:
        con.close()
    return out


def test_day_by_day_equals_a_full_refresh_and_a_day_run_again_changes_nothing(
    shop, days, full_lake, tmp_path
):
    events: Counter = Counter()
    lake = _day_by_day(shop, tmp_path / "lake", [*days, days[3]], events)
    assert differences(lake, full_lake) == {}
    # the days joined users known before and withdrew used edges, and every node still has the
    # key the full build gives
    assert events["merged"] > 0 and events["withdrawn"] > 0, events
    # every incremental mart, every day after the first, was published from its change log
    assert events["digested"] == 0, events
    assert events["published from logs"] == len(days) * 10, events
    # and the runs were incremental: the last one (a day again) rebuilt a part of each model
    with duckdb.connect(str(Lake(lake).build_db), read_only=True) as con:
        last = con.execute("select max(run_at) from changes._runs").fetchone()[0]
        full = con.execute(
            'select list(model) from changes._runs where run_at = ? and "full"', [last]
        ).fetchone()[0]
        for model, key in {**INCREMENTAL_BY_KEY, **INCREMENTAL_BY_VALUE}.items():
            schema = "intermediate" if model.startswith(("int_", "stg_")) else "marts"
            rebuilt, total = con.execute(
                f'select (select count(distinct {key}) from changes."{model}" where run_at = ?), '
                f"(select count(distinct {key}) from {schema}.{model})",
                [last],
            ).fetchone()
            least = 0 if model in INCREMENTAL_BY_VALUE else 1
            assert least <= rebuilt < total / 2, (model, rebuilt, total)
    assert not full


def test_days_landed_out_of_order_give_the_same_lake(shop, days, full_lake, tmp_path):
    """Days backfilled after the days after them (a day before its previous one, twice in a row,
    the last two swapped): the lake equals the one landed in order, landing accounts included (a
    backfilled day takes back the versions of its overlap that the day after it landed)."""
    order = [days[0], days[2], days[1], days[5], days[3], days[4], *days[6:-2], days[-1], days[-2]]
    assert sorted(order) == days
    lake = _day_by_day(shop, tmp_path / "lake", order, Counter())
    assert differences(lake, full_lake) == {}


def test_a_planted_difference_is_found(full_lake, tmp_path):
    """The comparison is not blind: one changed amount in one model shows on both sides."""
    other = tmp_path / "other"
    shutil.copytree(full_lake, other, symlinks=True)
    with duckdb.connect(str(Lake(other).build_db)) as con:
        con.execute("update marts.fct_orders set amount_fen = amount_fen + 1 where rowid = 0")
    assert differences(other, full_lake) == {'build "marts"."fct_orders"': (1, 1)}
