"""The simulated shop tells one consistent story, in the formats real readers accept."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import sqlite3
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import openpyxl
import polars as pl
import pytest

from simulator.build import MAIN_DB, SUBSTATION_DB, simulate
from simulator.config import CHANNEL_ACCOUNTS, MessProfile, SimConfig
from tests.conftest import SMALL, truth

pytestmark = pytest.mark.integration


ALIPAY_SUBSTATION = next(
    a for a in CHANNEL_ACCOUNTS if a.channel == "alipay" and a.shop == "substation"
)


# --- small independent readers for the statement formats ----------------------------------------


def statement_lines(path: Path, encoding: str) -> list[str]:
    """A statement's lines, as exported (``encoding``) or as a spreadsheet saved it again (the
    other encoding, rows padded with commas, blank rows at the end)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig" if encoding == "gbk" else "gbk")
        assert raw.startswith(b"\xef\xbb\xbf") or encoding != "gbk"  # a re-save, surely
    except (UnicodeDecodeError, AssertionError):
        text = raw.decode(encoding)
    lines = [ln for ln in text.splitlines() if ln.strip(",")]
    return [ln.rstrip(",") if ln.startswith("#") else ln for ln in lines]


def _cell(value: str) -> str:
    """A cell's value: without the tab an export appends to a text cell (the IDs always, any
    text cell in today's Alipay layout) or the ="…" a spreadsheet wraps a long ID in."""
    value = value.removesuffix("\t")
    return value[2:-1] if value.startswith('="') and value.endswith('"') else value


def read_alipay(path: Path) -> tuple[list[dict], dict]:
    lines = statement_lines(path, "gbk")
    assert lines[0] == "#支付宝业务明细查询"
    body = [ln for ln in lines if not ln.startswith("#")]
    rows = [
        {k: _cell(v) for k, v in r.items() if k}
        for r in csv.DictReader(io.StringIO("\n".join(body)))
    ]
    footer = {}
    for ln in lines:
        if ln.startswith("#交易合计：") or ln.startswith("#退款合计："):
            label = "pay" if "交易合计" in ln else "refund"
            n = int(ln.split("：")[1].split("笔")[0])
            # 商家实收共… in the older layout, 商家实收退款共… for today's refunds
            amount = Decimal(re.search("商家实收(?:退款)?共(-?[0-9.]+)元", ln).group(1))
            footer[label] = (n, amount)
    return rows, footer


def read_wechat(path: Path) -> tuple[list[dict], dict]:
    lines = statement_lines(path, "utf-8-sig")
    summary_at = next(i for i, ln in enumerate(lines) if ln.startswith("总交易单数"))
    rows = [
        {k: _cell(v.removeprefix("`")) for k, v in r.items() if k}
        for r in csv.DictReader(io.StringIO("\n".join(lines[:summary_at])))
    ]
    head = lines[summary_at].split(",")
    values = [v.removeprefix("`") for v in lines[summary_at + 1].split(",")]
    return rows, {k: v for k, v in zip(head, values, strict=True) if k}


def statement_files(root: Path) -> list[Path]:
    return sorted((root / "statements").rglob("*.csv"))


def anomalies(root: Path) -> pl.DataFrame:
    return truth(root, "anomalies")


# --- determinism -----------------------------------------------------------------------------------


def _fingerprint(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(root))
        if p.suffix == ".sqlite":
            with sqlite3.connect(p) as con:
                dump = "\n".join(sorted(con.iterdump()))
            out[rel] = hashlib.sha256(dump.encode()).hexdigest()
        elif p.suffix not in (".sqlite-wal", ".sqlite-shm"):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_same_seed_gives_identical_sources(tmp_path: Path) -> None:
    cfg = SimConfig(**{**SMALL, "days": 3, "orders_per_day": 300})
    a = _fingerprint(simulate(cfg, tmp_path / "a").out)
    b = _fingerprint(simulate(cfg, tmp_path / "b").out)
    assert a == b
    assert any(k.endswith(".xlsx") for k in a), "the comparison must cover XLSX files"
    c = _fingerprint(simulate(dataclasses.replace(cfg, seed=8), tmp_path / "c").out)
    assert c != a


# --- every file opens with the reader it is meant for ---------------------------------------------


def test_files_parse_with_their_real_readers(realistic_shop) -> None:
    _, s = realistic_shop
    root = s.out
    for db in (MAIN_DB, SUBSTATION_DB):
        with sqlite3.connect(root / "db" / db) as con:
            assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    with sqlite3.connect(root / "db" / MAIN_DB) as con:
        order_sn = [r[0] for r in con.execute("select order_sn from orders")]
        statuses = {r[0] for r in con.execute("select distinct status from orders")}
        created = con.execute(
            "select created_at from orders where created_at <> '0000-00-00 00:00:00' limit 1"
        ).fetchone()[0]
    assert all(len(x) == 16 and x.isalnum() and x.upper() == x for x in order_sn)
    assert statuses <= {1, 2, 3, 4, 5, 6, -1} and {4, -1} <= statuses
    assert len(created) == 19 and created[10] == " "
    with sqlite3.connect(root / "db" / SUBSTATION_DB) as con:
        trade = [r[0] for r in con.execute("select trade_no from acg_order")]
        times = con.execute(
            "select create_time, pay_time from acg_order where status = 1 limit 1"
        ).fetchone()
    assert all(len(t) == 18 and t.isdigit() for t in trade)  # acg-faka generateTradeNo
    # acg-faka keeps DATETIME: naive Beijing wall-clock text
    assert all(len(t) == 19 and t[10] == " " for t in times), times

    for path in statement_files(root):
        if "alipay" in path.parts:
            _, footer = read_alipay(path)
            assert set(footer) == {"pay", "refund"}
            raw = path.read_bytes().decode("gbk").splitlines()
            body = [ln.split(",") for ln in raw if ln[:1].isdigit()]
            assert all(cells[0].endswith("\t") for cells in body)  # the IDs, in every layout
            # the substation's account exports as Alipay's site does today: every text cell
            # tab-suffixed, the refund footer worded 商家实收退款共…
            current = ALIPAY_SUBSTATION.key in path.parts
            assert all(cells[2].endswith("\t") == current for cells in body)
            assert any("商家实收退款共" in ln for ln in raw) == current
        else:
            _, summary = read_wechat(path)
            assert "总交易单数" in summary
    xlsx = sorted((root / "suppliers").rglob("*.xlsx"))
    assert xlsx
    for path in xlsx[:3]:
        ws = openpyxl.load_workbook(path, read_only=True).active
        header = next(ws.iter_rows(values_only=True))
        assert len(header) >= 7
    for path in sorted((root / "crm").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            json.loads(line)
    gbk_suppliers = [
        p for p in (root / "suppliers").rglob("*.csv") if p.read_bytes()[:3] != b"\xef\xbb\xbf"
    ]
    assert gbk_suppliers, "some suppliers send GBK or BOM-less files"


# --- one consistent story --------------------------------------------------------------------------


def test_statement_rows_sum_to_their_footers(hostile_shop) -> None:
    _, s = hostile_shop
    broken = set(anomalies(s.out).filter(pl.col("kind") == "statement_footer_mismatch")["record"])
    assert broken, "hostile mode must include a broken statement"
    # a re-send repeats exactly the bytes first sent, broken or not
    broken |= {b.replace(".csv", "(1).csv") for b in broken}
    for path in statement_files(s.out):
        if "alipay" in path.parts:
            rows, footer = read_alipay(path)
            pays = [Decimal(r["商家实收（元）"]) for r in rows if r["业务类型"] == "交易"]
            refunds = [Decimal(r["商家实收（元）"]) for r in rows if r["业务类型"] == "退款"]
            ok = footer["pay"] == (len(pays), sum(pays, Decimal(0))) and footer["refund"] == (
                len(refunds),
                sum(refunds, Decimal(0)),
            )
        else:
            rows, summary = read_wechat(path)
            amount_col = "应结订单金额" if "应结订单金额" in rows[0] else "总金额"
            total_col = "应结订单总金额" if "应结订单总金额" in summary else "总交易额"
            settle = sum((Decimal(r[amount_col]) for r in rows), Decimal(0))
            fee = sum((Decimal(r["手续费"]) for r in rows), Decimal(0))
            ok = (
                int(summary["总交易单数"]) == len(rows)
                and Decimal(summary[total_col]) == settle
                and Decimal(summary["手续费总金额"]) == fee
            )
        assert ok == (path.name not in broken), path.name


def test_every_statement_payment_has_its_order_except_recorded_anomalies(realistic_shop) -> None:
    _, s = realistic_shop
    root = s.out
    with sqlite3.connect(root / "db" / MAIN_DB) as con:
        # unpaid: main shop (dujiaoka) 1 待支付 / -1 过期; substation (acg-faka) 0 未支付
        shop_orders = {
            r[0]: (r[1] in (1, -1), r[2])
            for r in con.execute("select order_sn, status, actual_price from orders")
        }
    with sqlite3.connect(root / "db" / SUBSTATION_DB) as con:
        shop_orders |= {
            r[0]: (r[1] == 0, r[2])
            for r in con.execute("select trade_no, status, amount from acg_order")
        }
    an = anomalies(root)
    affixed = dict(
        zip(
            an.filter(pl.col("kind") == "order_no_affix")["record"],
            an.filter(pl.col("kind") == "order_no_affix")["detail"],
            strict=True,
        )
    )
    lost = set(an.filter(pl.col("kind") == "lost_callback")["record"])
    mismatched = set(an.filter(pl.col("kind") == "amount_mismatch")["record"])
    seen_payments = 0
    for path in statement_files(root):
        if path.stem.endswith(("(1)", "_v2")):
            continue
        if "alipay" in path.parts:
            rows, _ = read_alipay(path)
            pays = [
                (r["商户订单号"].strip(), Decimal(r["商家实收（元）"]))
                for r in rows
                if r["业务类型"] == "交易"
            ]
        else:
            rows, _ = read_wechat(path)
            col = "应结订单金额" if "应结订单金额" in rows[0] else "总金额"
            pays = [(r["商户订单号"], Decimal(r[col])) for r in rows if r["交易状态"] == "SUCCESS"]
        for merchant_no, amount in pays:
            seen_payments += 1
            order_no = merchant_no
            if order_no not in shop_orders:
                candidates = [
                    k
                    for k, v in affixed.items()
                    if merchant_no in (k + v.rsplit(" ", 1)[-1], v.rsplit(" ", 1)[-1] + k)
                ]
                assert candidates, (
                    f"statement line {merchant_no} has no order and no recorded affix"
                )
                order_no = candidates[0]
            unpaid, price = shop_orders[order_no]
            if unpaid:
                assert order_no in lost, f"{order_no} paid in channel, unpaid in shop, not recorded"
            if Decimal(str(price)).quantize(Decimal("0.01")) != amount:
                assert order_no in mismatched, f"{order_no} amount differs and is not recorded"
    assert seen_payments > 1000


def test_keys_delivered_never_exceed_keys_received(realistic_shop) -> None:
    _, s = realistic_shop
    root = s.out
    with sqlite3.connect(root / "db" / MAIN_DB) as con:
        per_goods = con.execute(
            "select goods_id, sum(status = 2), count(*) from carmis group by goods_id"
        ).fetchall()
        keys_in_orders = con.execute(
            "select coalesce(sum(length(info) - length(replace(info, char(10), '')) + 1), 0) "
            "from orders where status = 4 and type = 1"
        ).fetchone()[0]
        sold = con.execute("select count(*) from carmis where status = 2").fetchone()[0]
    assert all(sold_n <= total for _, sold_n, total in per_goods)
    assert keys_in_orders == sold
    # every imported key came from a supplier file line
    secrets_in_files: set[str] = set()
    for p in (root / "suppliers").rglob("*.csv"):
        raw = p.read_bytes()
        enc = "utf-8-sig" if raw[:3] == b"\xef\xbb\xbf" else ("utf-8" if _is_utf8(raw) else "gbk")
        for row in csv.reader(io.StringIO(raw.decode(enc))):
            secrets_in_files.update(row)
    for p in (root / "suppliers").rglob("*.xlsx"):
        for row in openpyxl.load_workbook(p, read_only=True).active.iter_rows(values_only=True):
            secrets_in_files.update(str(v) for v in row)
    with sqlite3.connect(root / "db" / MAIN_DB) as con:
        carmis = [r[0].split("----")[-1] for r in con.execute("select carmi from carmis")]
    assert carmis and all(c in secrets_in_files for c in carmis)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_truth_figures_recomputed_independently_agree(realistic_shop) -> None:
    """Recompute the day-level figures from the truth events with DuckDB SQL, not the simulator."""
    cfg, s = realistic_shop
    t = s.out / "_truth"
    con = duckdb.connect()
    start = cfg.start_epoch
    got = con.sql(f"""
        with o as (select * from '{t}/orders.parquet' where not is_test),
        r as (select order_idx, sum(amount_fen) as refund_fen
              from '{t}/refunds.parquet' where status = 1 group by order_idx),
        paid as (select o.*, (paid_at - {start}) // 86400 as d, r.refund_fen
                 from o left join r using (order_idx) where is_paid),
        firsts as (select person_id, min(d) as first_d from paid group by person_id),
        created as (select (created_at - {start}) // 86400 as d, count(*) as created_orders,
                    count(*) filter (where is_paid) as converted from o group by 1)
        select p.d,
               count(*) as paid_orders,
               sum(amount_fen) as gmv_fen,
               count(distinct person_id) as buyers,
               count(distinct person_id) filter (where f.first_d = p.d) as new_buyers,
               count(*) filter (where refund_fen is not null) / count(*) as refund_rate,
               quantile_cont(delivered_at - paid_at, 0.95)
                   filter (where not is_manual and delivered_at is not null) as delivery_p95_s,
               any_value(c.converted) / any_value(c.created_orders) as conversion_rate
        from paid p join firsts f using (person_id) join created c on c.d = p.d
        group by p.d order by p.d
    """).pl()
    want = truth(s.out, "daily_metrics")
    assert got.height == want.height == cfg.days
    for col in ("paid_orders", "gmv_fen", "buyers", "new_buyers"):
        assert got[col].cast(pl.Int64).to_list() == want[col].to_list(), col
    for col in ("refund_rate", "delivery_p95_s", "conversion_rate"):
        assert got[col].to_list() == pytest.approx(want[col].to_list(), rel=1e-12), col
    # repurchase over the trailing 30 business days
    rep = con.execute(f"""
        with bd as (select distinct person_id, (paid_at - {start}) // 86400 as d
                    from '{t}/orders.parquet' where is_paid and not is_test),
        days as (select unnest(range({cfg.days})) as d)
        select days.d, avg(case when n >= 2 then 1.0 else 0.0 end) as rate from days
        join (select days.d, person_id, count(*) as n from days join bd
              on bd.d between days.d - 29 and days.d group by all) w using (d)
        group by days.d order by days.d
    """).fetchall()
    assert [r[1] for r in rep] == pytest.approx(want["repurchase_rate_30d"].to_list())
    # the shops' own GMV agrees with the truth: paid, non-test, non-junk orders
    with sqlite3.connect(s.out / "db" / MAIN_DB) as db:
        shop_gmv = db.execute(
            "select round(sum(actual_price) * 100) from orders where status in (2, 3, 4, 5, 6) "
            "and title not like '测试订单-%'"
        ).fetchone()[0]
    truth_main = con.execute(
        f"select sum(amount_fen) from '{t}/orders.parquet' where shop = 'main' and is_paid "
        "and not is_test and not lost_callback"
    ).fetchone()[0]
    assert int(shop_gmv) == truth_main


def test_every_mess_kind_appears_in_hostile_mode(hostile_shop) -> None:
    _, s = hostile_shop
    kinds = set(anomalies(s.out)["kind"])
    expected = {f.name for f in dataclasses.fields(MessProfile)} - {"late_batch"} | {"stockout"}
    assert expected <= kinds, sorted(expected - kinds)
    episode = json.loads((s.out / "_truth" / "manifest.json").read_text())["bad_supplier_episode"]
    assert episode["supplier"]


def test_no_mess_in_clean_mode(clean_shop) -> None:
    _, s = clean_shop
    kinds = set(anomalies(s.out)["kind"])
    assert kinds <= {"stockout"}, kinds  # stock-outs come from supply, not from injected mess


def test_bad_supplier_episode_drives_a_refund_spike(realistic_shop) -> None:
    _, s = realistic_shop
    episode = json.loads((s.out / "_truth" / "manifest.json").read_text())["bad_supplier_episode"]
    keys = truth(s.out, "keys").filter(pl.col("order_idx").is_not_null())
    refunds = truth(s.out, "refunds").filter(pl.col("reason") == "invalid_key")
    by_supplier = keys.join(
        refunds.select("order_idx").unique(), on="order_idx", how="left", coalesce=True
    )
    rate = (
        keys.with_columns(refunded=pl.col("order_idx").is_in(refunds["order_idx"].implode()))
        .group_by("in_bad_episode")
        .agg(pl.col("refunded").mean())
        .sort("in_bad_episode")
    )
    assert by_supplier.height
    normal, bad = rate["refunded"].to_list()
    assert bad > 5 * normal, (normal, bad, episode)


def test_identity_truth_covers_every_buyer_key(realistic_shop) -> None:
    _, s = realistic_shop
    ids = truth(s.out, "identities")
    with sqlite3.connect(s.out / "db" / MAIN_DB) as con:
        emails = {
            r[0]
            for r in con.execute(
                "select distinct email from orders where email <> '' and title not like '测试订单-%'"
            )
        }
    known = set(ids.filter(pl.col("system") == "main.orders")["value"])
    junk = set(anomalies(s.out).filter(pl.col("kind").str.starts_with("bad_row"))["record"])
    with sqlite3.connect(s.out / "db" / MAIN_DB) as con:
        junk_emails = {
            r[0]
            for r in con.execute(
                f"select email from orders where order_sn in ({','.join('?' * len(junk))})",
                list(junk),
            )
        }
    assert emails - known <= junk_emails
    # one person, many identifiers, each mapping to exactly one person
    per_value = ids.group_by("system", "id_kind", "value").agg(pl.col("person_id").n_unique())
    assert per_value["person_id"].max() == 1


def test_sqlalchemy_writer_matches_the_bulk_sqlite_writer(tmp_path: Path) -> None:
    """The --shop-db-url path (SQLAlchemy, as for MySQL/MariaDB) writes the same rows."""
    cfg = SimConfig(**{**SMALL, "days": 2, "orders_per_day": 200})
    url_db = tmp_path / "via_url.sqlite"
    s = simulate(cfg, tmp_path / "src", shop_db_url=f"sqlite:///{url_db}")
    with sqlite3.connect(s.out / "db" / MAIN_DB) as a, sqlite3.connect(url_db) as b:
        for table in ("orders", "carmis", "goods", "refunds"):
            q = f"select * from {table} order by id"
            assert a.execute(q).fetchall() == b.execute(q).fetchall(), table


# --- evidence components: what a perfect identity resolver could know --------------------------

BUYER_KPIS = ("buyers", "new_buyers", "customer_unit_price_fen", "repurchase_rate_30d")


def _sqlite(path: Path, sql: str) -> pl.DataFrame:
    with sqlite3.connect(path) as con:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return pl.DataFrame(cur.fetchall(), schema=names, orient="row")


def _email(text: pl.Expr) -> pl.Expr:
    return pl.lit("email:") + text.str.strip_chars().str.to_lowercase()


def _qq_box(node: pl.Expr) -> pl.Expr:
    return pl.lit("qq:") + node.str.extract(r"^email:(\d+)@qq\.com$", 1)


def _phone(text: pl.Expr) -> pl.Expr:
    """Any typed mainland number → its last 11 digits (after a +86/86 prefix)."""
    return pl.lit("phone:") + text.str.replace_all(r"\D", "").str.slice(-11)


def _contact(text: pl.Expr) -> pl.Expr:
    t = text.str.strip_chars()
    digits = t.str.replace_all(r"[\s+\-]", "")
    return (
        pl.when(t.str.contains("@"))
        .then(_email(t))
        .when(digits.str.contains(r"^\d+$") & (digits.str.len_chars() >= 11))
        .then(_phone(t))
        .when(t.str.contains(r"^\d+$"))
        .then(pl.lit("qq:") + t)
    )


def _statement_lines(root: Path, orders: pl.DataFrame) -> pl.DataFrame:
    """Payment lines of every statement file as (order_no, shop, openid, mask), matched to truth
    orders by the number as sent or with one of its account's affixes removed."""
    from simulator.config import CHANNEL_ACCOUNTS

    # a file a spreadsheet damaged (IDs destroyed, times cut) is refused; its re-send (_v2) holds
    # its lines
    damaged = set(
        anomalies(root).filter(
            pl.col("kind").is_in(["statement_scientific_ids", "statement_times_to_minute"])
        )["record"]
    )
    rows = []
    for acc in CHANNEL_ACCOUNTS:
        for path in sorted((root / "statements" / acc.channel / acc.key).glob("*.csv")):
            if path.name in damaged or path.name.replace("(1)", "") in damaged:
                continue
            if acc.channel == "alipay":
                body, _ = read_alipay(path)
                pays = [r for r in body if r["业务类型"] == "交易"]
                got = [(r["商户订单号"].strip(), None, r["对方账户"]) for r in pays]
            else:
                body, _ = read_wechat(path)
                pays = [r for r in body if r["交易状态"] == "SUCCESS"]
                got = [(r["商户订单号"], r["用户标识"], None) for r in pays]
            rows += [(acc.shop, acc.key, *g) for g in got]
    lines = pl.DataFrame(
        rows,
        schema=dict.fromkeys(("shop", "account", "merchant_no", "openid", "mask"), pl.Utf8),
        orient="row",
    ).unique()
    affixes = pl.DataFrame(
        [(a.key, f) for a in CHANNEL_ACCOUNTS for f in ("", *a.affixes)],
        schema=["account", "affix"],
        orient="row",
    )
    m = pl.col("merchant_no")
    cand = lines.join(affixes, on="account").with_columns(
        order_no=pl.when(pl.col("affix") == "")
        .then(m)
        .when(pl.col("affix").str.contains(r"^[_\-]"))
        .then(m.str.strip_suffix(pl.col("affix")))
        .otherwise(m.str.strip_prefix(pl.col("affix")))
    )
    matched = cand.join(orders.select("shop", "order_no"), on=["shop", "order_no"])
    unmatched = lines.join(matched, on=["account", "merchant_no"], how="anti")
    assert unmatched.height == 0, unmatched.head()
    return matched.select("order_no", "shop", "openid", "mask").unique()


def _components_from_files(root: Path) -> pl.DataFrame:
    """Recompute the evidence from the written sources alone (plus the truth's record → person
    map): order_no → a component label. Independent of simulator/identity_evidence.py."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    orders = truth(root, "orders")
    people = truth(root, "people")
    ids = truth(root, "identities")
    junk = anomalies(root).filter(pl.col("kind").str.starts_with("bad_row"))["record"].implode()
    # the staff's test orders are no evidence (the platform's contracts reject them)
    person_of = orders.filter(~pl.col("is_test")).select("order_no", "person_id")
    main = _sqlite(root / "db" / MAIN_DB, "select order_sn as order_no, email from orders")
    main = main.filter(~pl.col("order_no").is_in(junk)).join(person_of, on="order_no")
    sub = _sqlite(
        root / "db" / SUBSTATION_DB, "select trade_no as order_no, contact, owner from acg_order"
    )
    sub = sub.filter(~pl.col("order_no").is_in(junk)).join(person_of, on="order_no")
    users = _sqlite(root / "db" / SUBSTATION_DB, "select id, email, phone, qq from acg_user")
    users = users.join(people.select("person_id", "phone"), on="phone")
    crm = pl.concat(
        [pl.read_ndjson(p, infer_schema_length=None) for p in (root / "crm").glob("*.jsonl")],
        how="vertical_relaxed",
    ).drop_nulls("member_id")
    crm = crm.join(
        ids.filter(pl.col("id_kind") == "member_id").select(
            member_id="value", person_id="person_id"
        ),
        on="member_id",
    )
    lines = _statement_lines(root, orders).join(person_of, on="order_no")

    def rec(prefix: str, key: str) -> pl.Expr:
        return pl.lit(prefix) + pl.col(key).cast(pl.Utf8)

    main_email = _email(pl.col("email"))
    sub_contact = _contact(pl.col("contact"))
    user_email = _email(pl.col("email"))
    crm_email = _email(pl.col("email"))
    parts = [
        main.select(rec=rec("o:", "order_no"), person_id="person_id", node=main_email),
        main.select(rec=rec("o:", "order_no"), person_id="person_id", node=_qq_box(main_email)),
        sub.select(rec=rec("o:", "order_no"), person_id="person_id", node=sub_contact),
        sub.select(rec=rec("o:", "order_no"), person_id="person_id", node=_qq_box(sub_contact)),
        sub.filter(pl.col("owner") > 0).select(
            rec=rec("o:", "order_no"), person_id="person_id", node=rec("sub_user:", "owner")
        ),
        lines.filter(pl.col("openid").is_not_null()).select(
            rec=rec("o:", "order_no"),
            person_id="person_id",
            node=pl.when(pl.col("shop") == "main")
            .then(pl.lit("openid_main:"))
            .otherwise(pl.lit("openid_sub:"))
            + pl.col("openid"),
        ),
    ]
    for node in [
        rec("sub_user:", "id"),
        user_email,
        _qq_box(user_email),
        _phone(pl.col("phone")),
        rec("qq:", "qq"),
    ]:
        parts.append(users.select(rec=rec("u:", "id"), person_id="person_id", node=node))
    for node in [
        rec("crm:", "member_id"),
        _phone(pl.col("phone")),
        crm_email,
        _qq_box(crm_email),
        rec("qq:", "qq"),
        rec("openid_main:", "wechat_openid"),
    ]:
        parts.append(crm.select(rec=rec("c:", "member_id"), person_id="person_id", node=node))
    on_records = pl.concat(parts).drop_nulls().unique()
    every_order = pl.concat([main, sub], how="diagonal").select(
        rec=rec("o:", "order_no"), person_id="person_id"
    )
    assert every_order.join(on_records, on="rec", how="anti").height == 0
    # Alipay masks: the one known phone/e-mail that fits, if it is the same person's
    known = (
        on_records.filter(pl.col("node").str.contains(r"^(phone|email):"))
        .select(
            "node",
            fit_person="person_id",
            mask=pl.when(pl.col("node").str.starts_with("phone:"))
            .then(pl.col("node").str.slice(6, 3) + "****" + pl.col("node").str.slice(13, 4))
            .otherwise(
                pl.col("node").str.slice(6, 3) + "***@" + pl.col("node").str.split("@").list.last()
            ),
        )
        .unique()
    )
    unique_fit = known.filter(pl.len().over("mask") == 1)
    masks = lines.filter(pl.col("mask").is_not_null()).select(
        rec=rec("o:", "order_no"), person_id="person_id", mask="mask"
    )
    mask_edges = masks.join(unique_fit, on="mask").filter(
        pl.col("person_id") == pl.col("fit_person")
    )

    nodes = on_records.select("person_id", "node").unique().with_row_index("i")
    at = on_records.join(nodes, on=["person_id", "node"])
    root_of = at.group_by("rec").agg(root=pl.col("i").min())
    edges = pl.concat(
        [
            at.join(root_of, on="rec").select("root", "i"),
            mask_edges.join(root_of, on="rec")
            .join(nodes, on=["person_id", "node"])
            .select("root", "i"),
        ]
    )
    n = nodes.height
    graph = coo_matrix(
        (np.ones(edges.height), (edges["root"].to_numpy(), edges["i"].to_numpy())), shape=(n, n)
    )
    _, labels = connected_components(graph, directed=False)
    label = pl.DataFrame({"root": np.arange(n), "label": labels}).cast({"root": pl.UInt32})
    return (
        every_order.join(root_of, on="rec")
        .join(label, on="root")
        .select(order_no=pl.col("rec").str.slice(2), label="label")
    )


def test_identity_components_stay_inside_one_person(realistic_shop) -> None:
    _, s = realistic_shop
    ids = truth(s.out, "identities")
    comps = truth(s.out, "identity_components")
    # one row per true identifier, in the same order, each with exactly one component
    assert comps.select(ids.columns).equals(ids)
    assert comps["component_id"].null_count() == 0 and comps["node"].null_count() == 0
    per_id = comps.group_by("system", "id_kind", "value", "person_id").agg(
        pl.col("component_id").n_unique()
    )
    assert per_id["component_id"].max() == 1
    # a component never spans two persons, a node is never two persons'
    assert (
        comps.group_by("component_id").agg(pl.col("person_id").n_unique())["person_id"].max() == 1
    )
    assert comps.group_by("node").agg(pl.col("person_id").n_unique())["person_id"].max() == 1
    # an identifier no source shows is a component of its own
    unseen = comps.filter(~pl.col("is_observed"))
    assert unseen.height > 0
    sizes = comps.group_by("component_id").agg(nodes=pl.col("node").n_unique())
    assert unseen.join(sizes, on="component_id")["nodes"].max() == 1
    # typed forms read as one of their person's own identifiers
    typed = comps.filter(pl.col("system").is_in(["main.orders", "substation.order"]))
    own = comps.filter(pl.col("system") == "person").select("person_id", "node")
    assert (
        typed.join(own, on=["person_id", "node"], how="anti")
        .filter(~pl.col("node").str.starts_with("qq:"))
        .height
        == 0
    )


def test_every_order_has_a_buyer_component_of_its_person(realistic_shop) -> None:
    _, s = realistic_shop
    orders = truth(s.out, "orders")
    comps = truth(s.out, "identity_components")
    assert orders.columns[-1] == "buyer_component"
    # every real order has one; the staff's test orders are no evidence of anyone
    assert (orders["buyer_component"].is_null() == orders["is_test"]).all()
    assert orders.columns[:3] == ["order_idx", "shop", "order_no"]
    # the order's component belongs to the order's person
    real = orders.filter(~pl.col("is_test"))
    owner = real.group_by("buyer_component").agg(pl.col("person_id").n_unique())
    assert owner["person_id"].max() == 1
    both = real.join(
        comps.select("component_id", comp_person="person_id").unique(),
        left_on="buyer_component",
        right_on="component_id",
        how="inner",
    )
    assert (both["person_id"] == both["comp_person"]).all()
    # the evidence does split people: some buyers leave no trace joining their identifiers
    assert real["buyer_component"].n_unique() > real["person_id"].n_unique()


@pytest.mark.parametrize("shop", ["realistic_shop", "hostile_shop"])
def test_components_recomputed_from_the_written_sources_agree(shop, request) -> None:
    """The same evidence rules applied to the files themselves give the same order partition."""
    _, s = request.getfixturevalue(shop)
    got = _components_from_files(s.out)
    orders = truth(s.out, "orders").filter(~pl.col("is_test"))
    both = orders.select("order_no", "buyer_component").join(got, on="order_no", how="left")
    assert both["label"].null_count() == 0
    assert both.group_by("buyer_component").agg(pl.col("label").n_unique())["label"].max() == 1
    assert (
        both.group_by("label").agg(pl.col("buyer_component").n_unique())["buyer_component"].max()
        == 1
    )


@pytest.mark.parametrize("shop", ["clean_shop", "realistic_shop"])
def test_resolvable_metrics_differ_only_in_the_buyer_kpis(shop, request) -> None:
    _, s = request.getfixturevalue(shop)
    for name, keys in (("daily_metrics", ["business_date"]), ("daily_metrics_by_shop", ["shop"])):
        person = truth(s.out, name)
        resolvable = truth(s.out, f"{name}_resolvable")
        assert resolvable.columns == person.columns
        assert (s.out / "_truth" / f"{name}_resolvable.csv").exists()
        others = [c for c in person.columns if c not in BUYER_KPIS]
        assert resolvable.select(others).equals(person.select(others))
        # a person is one or more components: never fewer buyers, never fewer new buyers
        assert (resolvable["buyers"] >= person["buyers"]).all()
        assert (resolvable["new_buyers"] >= person["new_buyers"]).all()
        assert (resolvable["buyers"] > person["buyers"]).any(), keys
    readme = (s.out / "_truth" / "README.md").read_text()
    assert "evidence component" in readme
