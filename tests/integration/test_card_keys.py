"""Card keys never sit in plaintext in the lake: a hostile simulated shop is landed, and no file of
the lake (raw, quarantine, state) holds any key its sources hold, in the shops' databases or the
suppliers' files; every protected column holds keyed hashes only, and the same key hashes alike
wherever it is read (a shop's key table, an order's delivered keys, a supplier's line), so the
models still cost every key and find its order."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from pipelines.lib.contracts import load_contracts
from pipelines.lib.parsers import FileRejected, parse_supplier, supplier_header_map
from pipelines.lib.protect import card_key, hash_trimmed, landed_pattern
from simulator.build import MAIN_DB, SUBSTATION_DB, simulate
from simulator.catalog import supplier_formats
from simulator.config import SimConfig
from tests.conftest import land_days, truth

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOP = {"seed": 23, "start": dt.date(2026, 10, 5), "days": 3, "orders_per_day": 300, "skus": 60}
#: a key (or card number) is at least this long: shorter text (a truncated malformed key, a
#: manual order's note) could turn up elsewhere by chance; the hash-form check covers it
MIN_KEY = 12


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("card_keys")
    sources = simulate(SimConfig(**SHOP, mess="hostile"), base / "sources").out
    lake = base / "lake"
    outcomes = land_days(sources, lake)
    assert outcomes and all(o.success for o in outcomes), [o.failures for o in outcomes]
    return sources, lake


def _parts(values) -> set[str]:
    """The keys in source values: lines, and the card number and the secret of `no----secret`."""
    out = set()
    for value in values:
        for line in (value or "").split("\n"):
            for part in line.split("----"):
                part = part.strip()
                if len(part) >= MIN_KEY and part.isascii():
                    out.add(part)
    return out


def _source_keys(sources: Path) -> set[str]:
    """Every key the sources hold: the shops' key tables and delivered keys, the suppliers' lines
    (malformed ones included)."""
    queries = {
        MAIN_DB: ["select carmi from carmis", "select info from orders"],
        SUBSTATION_DB: ["select secret from acg_card", "select secret from acg_order"],
    }
    keys: set[str] = set()
    for db, sqls in queries.items():
        con = sqlite3.connect(sources / "db" / db)
        for sql in sqls:
            keys |= _parts(r[0] for r in con.execute(sql))
        con.close()
    contract = load_contracts()["supplier__card_batches"]
    headers = supplier_header_map()
    files = [p for p in sorted((sources / "suppliers").rglob("*")) if p.is_file()]
    assert files
    for path in files:
        try:
            rows = parse_supplier(path, contract, headers).rows
        except FileRejected:
            continue
        for column in ("card_no", "card_secret"):
            if column in rows.columns:
                keys |= _parts(rows[column].to_list())
    return keys


def _leaks(path: Path, keys: list[str]) -> list[str]:
    """The columns (or the file) of ``path`` holding any of ``keys``."""
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        text = [c for c, t in frame.schema.items() if t == pl.String]
        hits = frame.select(pl.col(c).str.contains_any(keys).any() for c in text).row(0)
        return [f"{path}:{c}" for c, hit in zip(text, hits, strict=True) if hit]
    content = path.read_bytes().decode("utf-8", errors="replace")
    return [str(path)] if pl.Series([content]).str.contains_any(keys)[0] else []


def test_no_file_of_the_lake_holds_a_plaintext_key(landed, tmp_path: Path) -> None:
    sources, lake = landed
    keys = sorted(_source_keys(sources))
    assert len(keys) > 500, len(keys)  # keys and card numbers of both shops and the suppliers
    files = [p for p in sorted(lake.rglob("*")) if p.is_file()]
    parquet = [p for p in files if p.suffix == ".parquet"]
    zones = {p.relative_to(lake).parts[0] for p in parquet}
    assert zones == {"raw", "quarantine"}
    assert len(parquet) > 50
    leaks = [hit for path in files for hit in _leaks(path, keys)]
    assert not leaks, leaks[:10]
    # the search is not blind: a file holding one key inside other text is found
    probe = tmp_path / "probe.parquet"
    pl.DataFrame({"_record": [f'{{"carmi":"x{keys[len(keys) // 2]}y"}}']}).write_parquet(probe)
    assert _leaks(probe, keys) == [f"{probe}:_record"]


def test_protected_columns_hold_keyed_hashes_only(landed) -> None:
    """Raw and quarantine alike, every value of a protected column has the hash's form; a
    malformed key was quarantined for the rule its plaintext broke."""
    _, lake = landed
    checked = 0
    for contract in load_contracts().values():
        for zone in ("raw", "quarantine"):
            for part in sorted((lake / zone / contract.dataset).glob("*/part-0.parquet")):
                frame = pl.read_parquet(part)
                if zone == "quarantine" and frame.height:
                    records = frame.filter(pl.col("_rule").str.starts_with("file:").not_())
                    frame = pl.DataFrame([json.loads(r) for r in records["_record"]])
                for col in contract.protected:
                    if col.name not in frame.columns:
                        continue
                    values = frame[col.name].drop_nulls().to_list()
                    bad = [v for v in values if not re.match(landed_pattern(col), v)]
                    assert not bad, (part, col.name, bad[:3])
                    checked += len(values)
    assert checked > 1000, checked
    rules = pl.concat(
        pl.read_parquet(p)
        for p in (lake / "quarantine" / "supplier__card_batches").glob("*/part-0.parquet")
    )["_rule"]
    assert {"card_secret:missing", "card_secret:bad_format"} <= set(rules)


def _raw(lake: Path, dataset: str) -> pl.DataFrame:
    return pl.read_parquet(lake / "raw" / dataset / "*" / "*.parquet", hive_partitioning=False)


def test_a_key_hashes_alike_wherever_it_is_read(landed) -> None:
    """The hash is HMAC of the text the shops store (`card_no----secret`, or the secret alone):
    every key of the shops is the hash of its true text, has its supplier line, and every sold
    main-shop key is among its order's delivered-key hashes."""
    sources, lake = landed
    keys = truth(sources, "keys").filter(~pl.col("is_malformed"))
    has_no = {f.code: f.has_card_no for f in supplier_formats()}  # the shops store no----secret
    text = [
        f"{no}----{secret}" if has_no[code] else secret
        for code, no, secret in keys.select("supplier_code", "card_no", "secret").iter_rows()
    ]
    expected = keys.with_columns(
        key_hash=hash_trimmed(pl.Series(text, dtype=pl.String), card_key())
    )
    carmis = _raw(lake, "shop__carmis")
    cards = _raw(lake, "substation__card")
    lines = _raw(lake, "supplier__card_batches")
    for shop, landed_keys in (("main", carmis["carmi"]), ("substation", cards["secret"])):
        truth_keys = set(expected.filter(pl.col("shop") == shop)["key_hash"])
        assert set(landed_keys) == truth_keys, shop
    assert set(carmis["carmi"]) | set(cards["secret"]) <= set(lines["card_secret"])
    # a sold main-shop key is one line of its order's delivered keys; a staff test order is
    # quarantined, with the same hashes in its record
    orders = _raw(lake, "shop__orders").sort("updated_at").unique("id", keep="last")
    quarantined = pl.concat(
        pl.read_parquet(p) for p in (lake / "quarantine" / "shop__orders").glob("*/*.parquet")
    ).filter(pl.col("_rule") == "title:test_order")
    infos = orders["info"].to_list() + [json.loads(r)["info"] for r in quarantined["_record"]]
    delivered = {line for info in infos if info for line in info.split("\n")}
    sold = carmis.filter(pl.col("status") == 2)["carmi"]
    assert sold.len() > 100 and set(sold) <= delivered


def test_the_models_cost_every_key_and_find_its_order(modelled_shop) -> None:
    """int_card_keys_costed on hashed keys: each shop's keys all have their supplier line and
    cost as the truth says, and every sold key has its order (main: through the hashed lines),
    but for the keys of the staff's test orders, which the contracts refuse."""
    keys = truth(modelled_shop.sources, "keys").filter(~pl.col("is_malformed"))
    tests = truth(modelled_shop.sources, "orders").filter("is_test").select("order_idx")
    to_order = pl.col("sold_at").is_not_null() & pl.col("order_idx").is_not_null()
    expected = (
        keys.join(tests.with_columns(test_order=True), on="order_idx", how="left")
        .group_by("shop")
        .agg(
            keys=pl.len(),
            cost_fen=pl.col("cost_fen").sum(),
            sold=(to_order & pl.col("test_order").is_null()).sum(),
        )
        .sort("shop")
    )
    got = modelled_shop.query(
        """
        select shop, count(*) as keys, count(*) filter (where has_supplier_record) as costed,
            sum(cost_fen) as cost_fen,
            count(*) filter (where key_status = 'sold' and order_id is not null) as sold_linked
        from intermediate.int_card_keys_costed group by shop order by shop
        """
    )
    assert got["keys"].to_list() == got["costed"].to_list() == expected["keys"].to_list()
    assert got["cost_fen"].to_list() == expected["cost_fen"].to_list()
    assert got["sold_linked"].to_list() == expected["sold"].to_list()


def test_a_supplier_file_refused_whole_keeps_no_key(landed, tmp_path: Path) -> None:
    """A delivery with an unmapped header is quarantined whole: which cells are keys is unknown
    then, so each line is kept only as its keyed hash."""
    sources, _ = landed
    broken = tmp_path / "sources"
    shutil.copytree(sources, broken)
    path = next((broken / "suppliers").rglob("*.csv"))
    header, _, rest = path.read_bytes().partition(b"\r\n")
    path.write_bytes(header + b",unexpected_column\r\n" + rest)
    day = dt.datetime.strptime(re.search(r"_(\d{8})\.", path.name).group(1), "%Y%m%d").date()
    lake = tmp_path / "lake"
    (outcome,) = land_days(broken, lake, [day])
    assert outcome.success, outcome.failures
    quarantine = pl.read_parquet(
        lake / "quarantine" / "supplier__card_batches" / f"business_date={day}" / "part-0.parquet"
    ).filter(pl.col("_source").str.ends_with(path.name))
    assert quarantine.height > 0 and set(quarantine["_rule"]) == {"file:file_rejected"}
    assert quarantine["_record"].str.contains(r"^[0-9a-f]{64}$").all()
    keys = sorted(_source_keys(sources))
    leaks = [hit for p in sorted(lake.rglob("*")) if p.is_file() for hit in _leaks(p, keys)]
    assert not leaks, leaks[:10]
