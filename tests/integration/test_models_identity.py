"""Identity resolution (``user_key``) scored against the simulator's answer key.

The answer key (``_truth/identities.parquet``) names the person behind every identifier a system
shows. The scoring items are the truth identifiers the model covers, as graph nodes: a typed value
(a main-shop e-mail, a substation contact) is taken to the node the model read it as; a canonical
value (a person's phone, QQ, e-mail, openid, a CRM member id, a substation account) is its node.
Pairs of items are scored: a pair is *predicted* when both have one ``user_key`` and *true* when
both belong to one person.

- **Precision** is over all predicted pairs.
- **Recall** is over the true pairs the sources give evidence for: two identifiers of one person are
  *evidence-connected* when a chain of source records joins them (identifiers seen on one order,
  account or CRM member, or an Alipay line whose masked account fits an identifier of the same
  person). A person who bought once as a guest with a phone in the substation and elsewhere only
  with an e-mail leaves no trace that both are one buyer; no rule can join them, so such pairs are
  reported (``recall_all``) but not required.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipelines.lib.dbt import run_dbt
from tests.conftest import truth

pytestmark = pytest.mark.integration

#: truth systems whose value is the node's value as it is (prefix → node)
CANONICAL = {
    ("crm", "member_id"): "crm:",
    ("crm", "qq"): "qq:",
    ("wechat_main", "openid"): "openid_main:",
    ("wechat_substation", "openid"): "openid_sub:",
    ("person", "phone"): "phone:",
    ("person", "email"): "email:",
    ("substation.user", "user_id"): "sub_user:",
}
#: truth systems whose value is typed by the buyer: matched to the model's reading of that text
TYPED = {("main.orders", "email"), ("substation.order", "contact")}
IDENTITY_MODELS = ["-s", "+dim_users", "--indirect-selection", "cautious"]


def _is_typed() -> pl.Expr:
    return (pl.col("system") + "/" + pl.col("id_kind")).is_in([f"{s}/{k}" for s, k in TYPED])


def _pairs(sizes: pl.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def _typed_readings(shop) -> pl.DataFrame:
    """What the model read each typed buyer text as: (system, id_kind, text) → node."""
    return shop.query(
        """
        select distinct system, id_kind, trim(raw_value) as value, node
        from intermediate.int_identifiers_observed
        where system in ('main.orders', 'substation.order')
            and id_kind in ('email', 'contact')
            and is_linkable
        """
    )


def _truth_nodes(shop) -> pl.DataFrame:
    """Every truth identifier row with the node it corresponds to (null when not read)."""
    ids = truth(shop.sources, "identities")
    canonical = pl.concat(
        [
            ids.filter((pl.col("system") == s) & (pl.col("id_kind") == k)).with_columns(
                node=pl.lit(prefix) + pl.col("value")
            )
            for (s, k), prefix in CANONICAL.items()
        ]
    )
    typed = (
        ids.filter(_is_typed())
        .with_columns(pl.col("value").str.strip_chars())
        .join(_typed_readings(shop), on=["system", "id_kind", "value"], how="left")
    )
    return pl.concat([canonical, typed.select(canonical.columns)])


@dataclass(frozen=True)
class Score:
    coverage: pl.DataFrame
    items: pl.DataFrame  # node, person_id, user_key (covered truth identifiers)
    precision: float
    recall: float  # over evidence-connected true pairs
    recall_all: float  # over all true pairs of covered identifiers
    true_pairs: int
    evidence_pairs: int


def _evidence_components(shop, items: pl.DataFrame) -> pl.Series:
    """Per item, a label of its evidence component: items of one person joined by the sources."""
    person = items.select("node", "person_id")
    observed = shop.query(
        """
        select record_key, node, node_kind, node_value
        from intermediate.int_identifiers_observed
        where is_linkable or node_kind = 'alipay_mask'
        """
    )
    on_records = observed.filter(pl.col("node_kind") != "alipay_mask").join(person, on="node")
    # identifiers of one person seen on one record
    same_record = on_records.join(on_records, on=["record_key", "person_id"], suffix="_b").select(
        "node", "node_b"
    )
    # an Alipay mask on a record, fitting a phone or e-mail of the same person
    fits = person.with_columns(
        kind=pl.col("node").str.extract(r"^([a-z_]+):"),
        value=pl.col("node").str.replace(r"^[a-z_]+:", ""),
    ).select(
        node_b="node",
        person_id="person_id",
        mask=pl.when(pl.col("kind") == "phone")
        .then(pl.col("value").str.slice(0, 3) + "****" + pl.col("value").str.slice(7, 4))
        .when(pl.col("kind") == "email")
        .then(
            pl.col("value").str.slice(0, 3) + "***@" + pl.col("value").str.split("@").list.last()
        ),
    )
    masks = observed.filter(pl.col("node_kind") == "alipay_mask").select(
        "record_key", mask="node_value"
    )
    by_mask = (
        on_records.join(masks, on="record_key")
        .join(fits, on=["mask", "person_id"])
        .select("node", "node_b")
    )
    edges = pl.concat([same_record, by_mask])
    index = {node: i for i, node in enumerate(items["node"].to_list())}
    a = np.array([index[n] for n in edges["node"].to_list()], dtype=np.int64)
    b = np.array([index[n] for n in edges["node_b"].to_list()], dtype=np.int64)
    n = len(index)
    _, labels = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)))
    return pl.Series("evidence", labels)


@pytest.fixture(scope="module")
def score(modelled_shop) -> Score:
    users = modelled_shop.query("select node, user_key from intermediate.int_users_resolved")
    rows = _truth_nodes(modelled_shop).join(users, on="node", how="left")
    coverage = (
        rows.group_by("system", "id_kind")
        .agg(rows=pl.len(), covered=pl.col("user_key").is_not_null().mean())
        .sort("system", "id_kind")
    )
    items = rows.filter(pl.col("user_key").is_not_null()).select("node", "person_id", "user_key")
    items = items.unique().sort("node")
    assert items["node"].is_unique().all(), "one identifier belongs to two people in the truth"
    items = items.with_columns(_evidence_components(modelled_shop, items))

    tp = _pairs(items.group_by("user_key", "person_id").len()["len"])
    predicted = _pairs(items.group_by("user_key").len()["len"])
    true = _pairs(items.group_by("person_id").len()["len"])
    evidence = _pairs(items.group_by("person_id", "evidence").len()["len"])
    tp_evidence = _pairs(items.group_by("user_key", "person_id", "evidence").len()["len"])
    result = Score(
        coverage=coverage,
        items=items,
        precision=tp / predicted,
        recall=tp_evidence / evidence,
        recall_all=tp / true,
        true_pairs=true,
        evidence_pairs=evidence,
    )
    print(f"\nidentity coverage by truth system:\n{coverage}")
    print(
        f"pairwise precision {result.precision:.4f}, recall {result.recall:.4f} over "
        f"{evidence} evidence-connected pairs, recall {result.recall_all:.4f} over all {true} "
        f"true pairs of {items.height} covered identifiers"
    )
    return result


def test_pairwise_precision_and_recall(score):
    assert score.precision >= 0.99, score.precision
    assert score.recall >= 0.98, score.recall
    # what no evidence joins stays apart: the floor keeps that share from growing unnoticed
    assert score.recall_all >= 0.93, score.recall_all
    assert score.evidence_pairs >= 0.95 * score.true_pairs


def test_coverage_of_what_the_shops_record(score):
    cov = dict(
        zip(
            [f"{s}/{k}" for s, k in score.coverage.select("system", "id_kind").iter_rows()],
            score.coverage["covered"].to_list(),
            strict=True,
        )
    )
    # every buyer text of every valid order and every account that placed an order is read
    assert cov["main.orders/email"] == 1.0
    assert cov["substation.order/contact"] == 1.0
    assert cov["substation.user/user_id"] == 1.0
    # CRM members never exported (registered after the horizon) or quarantined are the only gap
    assert cov["crm/member_id"] >= 0.95


def test_typed_identifiers_read_as_the_persons_own(modelled_shop):
    """Every typed form (phone layouts, e-mail case and spaces, QQ or e-mail or phone contact)
    becomes exactly one of the identifiers its person really has."""
    people = truth(modelled_shop.sources, "people")
    own = pl.concat(
        [
            people.select("person_id", node=pl.lit(prefix) + pl.col(col))
            for prefix, col in [
                ("phone:", "phone"),
                ("phone:", "phone_new"),
                ("qq:", "qq"),
                ("email:", "email"),
                ("email:", "email_alt"),
            ]
        ]
    ).with_columns(is_own=pl.lit(True))
    typed = _truth_nodes(modelled_shop).filter(_is_typed())
    assert typed.height > 1000
    checked = typed.join(own, on=["person_id", "node"], how="left")
    wrong = checked.filter(pl.col("is_own").is_null())
    assert wrong.height == 0, wrong.head(10)


def test_every_order_has_one_buyer(modelled_shop):
    counts = modelled_shop.query(
        """
        select
            (select count(*) from staging.stg_shop__orders)
            + (select count(*) from staging.stg_substation__orders) as staged,
            count(*) as buyers,
            count(distinct shop || ':' || order_id) as orders,
            count(user_key) as with_key,
            count(*) filter (
                where user_key not in (select user_key from marts.dim_users)
            ) as unknown_key,
        from intermediate.int_order_buyers
        """
    ).row(0, named=True)
    assert counts["staged"] == counts["buyers"] == counts["orders"] == counts["with_key"]
    assert counts["unknown_key"] == 0


def test_orders_of_one_person_share_a_buyer(modelled_shop):
    """Order-level view (what the buyer KPIs count): pairs of orders with one ``user_key``."""
    orders = truth(modelled_shop.sources, "orders").filter(~pl.col("is_test"))
    buyers = modelled_shop.query(
        """
        select b.shop, coalesce(m.order_sn, s.trade_no) as order_no, b.user_key
        from intermediate.int_order_buyers as b
        left join staging.stg_shop__orders as m on b.shop = 'main' and b.order_id = m.order_id
        left join staging.stg_substation__orders as s
            on b.shop = 'substation' and b.order_id = s.order_id
        """
    )
    scored = orders.join(buyers, on=["shop", "order_no"], how="inner")
    assert scored.height >= 0.99 * orders.height  # the rest are rows the contracts reject
    tp = _pairs(scored.group_by("user_key", "person_id").len()["len"])
    precision = tp / _pairs(scored.group_by("user_key").len()["len"])
    recall = tp / _pairs(scored.group_by("person_id").len()["len"])
    keys, people = scored["user_key"].n_unique(), scored["person_id"].n_unique()
    print(
        f"\norder pairs: precision {precision:.4f}, recall {recall:.4f}; {keys} keys, {people} people"
    )
    assert precision >= 0.99
    assert recall >= 0.98
    assert people <= keys <= 1.25 * people


def _copy_raw(lake: Path, to: Path, drop_day: str | None = None) -> Path:
    shutil.copytree(lake / "raw", to / "raw")
    if drop_day:
        for part in (to / "raw").glob(f"*/business_date={drop_day}"):
            shutil.rmtree(part)
    return to


def _keys(lake: Path) -> pl.DataFrame:
    import duckdb

    from pipelines.lib.dbt import build_db

    with duckdb.connect(str(build_db(lake)), read_only=True) as con:
        return pl.from_arrow(
            con.sql("select node, user_key from intermediate.int_users_resolved").to_arrow_table()
        )


def test_user_key_is_the_same_on_rebuild(modelled_shop, tmp_path):
    lake = _copy_raw(modelled_shop.lake, tmp_path / "lake")
    run_dbt(lake, "build", IDENTITY_MODELS)
    before = modelled_shop.query("select node, user_key from intermediate.int_users_resolved")
    after = _keys(lake)
    assert before.sort("node").equals(after.sort("node"))


def test_user_key_kept_when_a_later_day_lands(modelled_shop, tmp_path):
    """Build on the lake without its last day, then compare with the full build: every user seen
    before keeps the key unless the new day joins it with another known user (then the merged
    user takes one of their keys)."""
    days = sorted(p.name for p in (modelled_shop.lake / "raw" / "shop__orders").iterdir())
    lake = _copy_raw(modelled_shop.lake, tmp_path / "lake", drop_day=days[-1].split("=")[1])
    run_dbt(lake, "build", IDENTITY_MODELS)
    earlier = _keys(lake).rename({"user_key": "earlier_key"})
    full = modelled_shop.query("select node, user_key from intermediate.int_users_resolved")
    both = earlier.join(full, on="node", how="left")
    assert both["user_key"].null_count() == 0  # nothing seen before disappears
    merged = both.group_by("user_key").agg(
        n_earlier=pl.col("earlier_key").n_unique(), earlier_keys=pl.col("earlier_key").unique()
    )
    both = both.join(merged, on="user_key")
    alone = both.filter(pl.col("n_earlier") == 1)
    changed = alone.filter(pl.col("earlier_key") != pl.col("user_key"))
    assert changed.height == 0, changed.head(10)
    joined = both.filter(pl.col("n_earlier") > 1)
    assert joined.filter(~pl.col("earlier_keys").list.contains(pl.col("user_key"))).height == 0
    split = (
        both.group_by("earlier_key").agg(n=pl.col("user_key").n_unique()).filter(pl.col("n") > 1)
    )
    assert split.height <= 0.01 * both["earlier_key"].n_unique()
    kept = (both["earlier_key"] == both["user_key"]).mean()
    print(f"\n{kept:.2%} of {both.height} identifiers seen before keep their user_key")
    assert kept >= 0.98
