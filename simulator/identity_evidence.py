"""Evidence components: what a perfect identity resolver could know from the sources alone.

A true person uses several identifiers (phone, QQ, e-mails, WeChat openids, a substation account,
CRM member ids), but the sources only show some of them, and only some together. Two identifiers
of one person are *evidence-connected* when a chain of source records shows them together, using
exactly the links the platform's identity README (``dbt_project/models/intermediate/identity``)
lists as evidence:

- ``same_record``: the identifiers on one record belong together. The records are every order of
  both shops (not the staff's test orders: the platform's contracts reject them) with its channel
  statement payment lines (a WeChat line adds the buyer's openid of that app: ``openid_main``
  for the main shop's app, ``openid_sub`` for the substation's), every substation account (id,
  e-mail, phone, QQ) and every CRM member with all its exported versions (member id, every phone
  it showed, e-mail, QQ, main-app openid). A QQ mailbox ``<n>@qq.com`` is also the QQ number.
- ``alipay_mask``: an Alipay payment line's masked account (``138****8000``, ``abc***@qq.com``)
  links its order to the one known phone or e-mail (seen on any record) that fits the mask, only
  when exactly one fits, that one is never seen on a record paid from an account with another mask,
  and the order's own phones do not contradict a phone mask. The fit must be the same person's:
  a mask that fits only someone else's identifier is no evidence (a resolver that follows it
  over-links; ``mask_fits_elsewhere`` lists those cases).

Components are connected components over one person's identifier nodes (never across persons):
edges only join nodes of one person, and a node is the pair (person, normalised identifier).
Every real order shows a readable identifier, so it has the component of its record; test orders
have none (null). The platform's guard against shared identifiers
(``identity_node_kinds.max_co_nodes``) is not applied: no true identifier is shared between two
persons in the simulation, so a perfect resolver loses nothing by following every link.

Everything is whole-column work: orders are first reduced to their distinct identifier sets per
person, so the graph has about as many nodes as ``identities.parquet`` has rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from simulator.config import SimConfig
from simulator.identity import substation_users

EMAIL_RE = r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)+$"
QQ_MAILBOX_RE = r"^([1-9][0-9]{4,10})@qq\.com$"
PHONE_TEXT_RE = r"^[0-9 +()\-.]{11,20}$"
PHONE_DIGITS_RE = r"^(?:0086|86)?(1[3-9][0-9]{9})$"
QQ_RE = r"^[1-9][0-9]{4,10}$"


@dataclasses.dataclass(frozen=True)
class Evidence:
    #: order_idx → component_id (every order; null for the staff's test orders)
    order_components: pl.DataFrame
    #: Alipay masks whose only fitting known identifier belongs to another person:
    #: person_id, mask, fit_node, fit_person_id (evidence for nothing; a resolver would over-link)
    mask_fits_elsewhere: pl.DataFrame


# --- normalisation (the platform's macros/identity.sql, for the forms the simulator types) -------


def email_node(text: pl.Expr) -> pl.Expr:
    low = text.str.strip_chars(" ").str.to_lowercase()
    return pl.when(low.str.contains(EMAIL_RE)).then(pl.lit("email:") + low)


def contact_node(text: pl.Expr) -> pl.Expr:
    """A free-text contact → ``email:…``, ``phone:<11 digits>`` or ``qq:…`` (null if none)."""
    t = text.str.strip_chars(" ")
    phone = pl.when(t.str.contains(PHONE_TEXT_RE)).then(
        t.str.replace_all(r"[^0-9]", "").str.extract(PHONE_DIGITS_RE, 1)
    )
    return (
        pl.when(email_node(t).is_not_null())
        .then(email_node(t))
        .when(phone.is_not_null())
        .then(pl.lit("phone:") + phone)
        .when(t.str.contains(QQ_RE))
        .then(pl.lit("qq:") + t)
    )


def qq_of_mailbox(node: pl.Expr) -> pl.Expr:
    """``email:<n>@qq.com`` → ``qq:<n>``, else null."""
    return pl.lit("qq:") + node.str.strip_prefix("email:").str.extract(QQ_MAILBOX_RE, 1)


def node_mask(node: pl.Expr) -> pl.Expr:
    """How Alipay prints the account of a ``phone:``/``email:`` node (macro ``alipay_mask``)."""
    value = node.str.replace(r"^[a-z_]+:", "")
    return (
        pl.when(node.str.starts_with("phone:"))
        .then(value.str.slice(0, 3) + pl.lit("****") + value.str.slice(7, 4))
        .when(node.str.starts_with("email:"))
        .then(value.str.slice(0, 3) + pl.lit("***@") + value.str.split("@").list.last())
    )


#: identities.parquet systems whose value is the node's value as it is
CANONICAL = {
    "substation.user/user_id": "sub_user:",
    "crm/member_id": "crm:",
    "crm/qq": "qq:",
    "wechat_main/openid": "openid_main:",
    "wechat_substation/openid": "openid_sub:",
    "person/phone": "phone:",
    "person/email": "email:",
}


def identity_nodes(ids: pl.DataFrame) -> pl.Series:
    """The graph node of each ``identities.parquet`` row (typed values read as the platform does).

    Each reading runs only on its own rows (a when/then chain would run every branch on all).
    """
    system = pl.col("system") + "/" + pl.col("id_kind")
    rows = ids.select("value", system=system).with_row_index("i")
    readers = {
        "main.orders/email": email_node(pl.col("value")),
        "substation.order/contact": contact_node(pl.col("value")),
    }
    parts = [
        rows.filter(pl.col("system") == name).select("i", node=read)
        for name, read in readers.items()
    ]
    canonical = pl.col("system").replace_strict(CANONICAL, default=None)
    parts.append(
        rows.filter(~pl.col("system").is_in(list(readers))).select(
            "i", node=canonical + pl.col("value")
        )
    )
    return pl.concat(parts).sort("i")["node"]


def alipay_mask(people: pl.DataFrame) -> pl.DataFrame:
    """person_id → the masked account Alipay shows for them (as ``write_statements`` prints it)."""
    return people.select(
        "person_id",
        mask=pl.when(pl.col("person_id") % 5 < 3)
        .then(node_mask(pl.lit("phone:") + pl.col("phone")))
        .otherwise(node_mask(pl.lit("email:") + pl.col("email"))),
    )


def payment_line(cfg: SimConfig) -> pl.Expr:
    """Per order: does a payment line of its channel's statement (in the horizon) show it?

    Mirrors ``statements.statement_lines``: the payment (unless missing from the statement) and a
    duplicate charge, in the file of their statement day, which must lie inside the horizon.
    """
    day = lambda at: (pl.col(at) - cfg.start_epoch) // 86400  # noqa: E731
    pay = (
        pl.col("is_paid")
        & ~pl.col("missing_in_statement")
        & (day("paid_at") + pl.col("statement_day_shift") < cfg.days)
    ).fill_null(False)
    dup = (pl.col("duplicate_payment") & (day("dup_paid_at") < cfg.days)).fill_null(False)
    return pay | dup


def crm_versions_seen(cfg: SimConfig, crm: pl.DataFrame) -> pl.DataFrame:
    """CRM member records with the phones their exported versions show.

    The export of day d holds members registered before its end; a member's phone is ``phone``
    until ``change_at`` and ``phone_new`` from then on (``files.crm_snapshot``).
    """
    first_day = ((pl.col("registered_at") - cfg.start_epoch) // 86400).clip(lower_bound=0)
    first_end = cfg.start_epoch + (first_day + 1) * 86400  # end of the first day it is exported
    exported = first_day < cfg.days
    changed = pl.col("change_at").is_not_null()
    return crm.filter(exported).select(
        "person_id",
        "member_id",
        "email",
        "qq",
        "wechat_openid",
        old_phone=pl.when(~changed | (pl.col("change_at") >= first_end)).then("phone"),
        new_phone=pl.when(
            changed & (pl.max_horizontal("registered_at", "change_at") < cfg.end_epoch)
        ).then("phone_new"),
    )


# --- records → graph ---------------------------------------------------------------------------


#: what makes two orders one record: the same person showing the same identifiers
ORDER_RECORD_KEY = ["person_id", "shop", "email", "contact", "owner", "wechat_line", "alipay_line"]


def order_record_keys(cfg: SimConfig, orders: pl.DataFrame) -> pl.DataFrame:
    """Some orders reduced to their distinct identifier sets per person: ``ORDER_RECORD_KEY`` and
    the list of their ``order_idx``, in order of their first order.

    Staff test orders are no evidence (the truth's ``identities`` leaves them out and the
    platform's contracts reject them: title ``测试订单-…``, contact ``test``), nor are their payment
    lines. Parts of the orders (a day at a time, in order) are joined by ``_order_records``.
    """
    is_sub = pl.col("shop") == "substation"
    line = payment_line(cfg)
    return (
        orders.filter(~pl.col("is_test"))
        .select(
            "order_idx",
            "person_id",
            "shop",
            email=pl.when(is_sub).then(None).otherwise("buyer_email"),
            contact=pl.when(is_sub).then("contact"),
            owner=pl.when(is_sub & (pl.col("owner") > 0)).then("owner"),
            wechat_line=line & (pl.col("channel") == "wechat"),
            alipay_line=line & (pl.col("channel") == "alipay"),
        )
        .group_by(ORDER_RECORD_KEY, maintain_order=True)
        .agg("order_idx")
    )


def _order_records(
    parts: list[pl.DataFrame], people: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(records: rec, person_id, slot nodes, mask; orders: order_idx → rec).

    ``parts`` are ``order_record_keys`` of the orders, in order; orders are reduced to their
    distinct identifier sets per person before any text work.
    """
    grouped = (
        pl.concat(parts)
        .group_by(ORDER_RECORD_KEY, maintain_order=True)  # records in order of their first order
        .agg(pl.col("order_idx").list.explode(keep_nulls=False, empty_as_null=False))
        .with_row_index("rec")
        .with_columns(pl.col("rec").cast(pl.Int64))
    )
    order_recs = grouped.select("rec", "order_idx").explode("order_idx")
    recs = grouped.drop("order_idx")
    p = people.select(
        "person_id",
        "wechat_openid",
        sub_openid=pl.lit("o") + pl.col("wechat_openid").str.slice(1).str.reverse(),
    ).join(alipay_mask(people), on="person_id")
    recs = recs.join(p, on="person_id", how="left").with_columns(
        n_text=pl.coalesce(email_node(pl.col("email")), contact_node(pl.col("contact")))
    )
    if recs["n_text"].null_count():
        bad = recs.filter(pl.col("n_text").is_null()).select("person_id", "email", "contact")
        raise ValueError(f"orders whose buyer identifier reads as nothing: {bad.head(5)}")
    recs = recs.select(
        "rec",
        "person_id",
        "n_text",
        n_qq=qq_of_mailbox(pl.col("n_text")),
        n_owner=pl.lit("sub_user:") + pl.col("owner").cast(pl.Utf8),
        n_openid=pl.when(pl.col("wechat_line")).then(
            pl.when(pl.col("shop") == "main")
            .then(pl.lit("openid_main:") + pl.col("wechat_openid"))
            .otherwise(pl.lit("openid_sub:") + pl.col("sub_openid"))
        ),
        mask=pl.when(pl.col("alipay_line")).then("mask"),
    )
    return recs, order_recs


def _account_records(people: pl.DataFrame) -> pl.DataFrame:
    users = substation_users(people)
    email = email_node(pl.col("email"))
    return users.select(
        "person_id",
        n_user=pl.lit("sub_user:") + pl.col("user_id").cast(pl.Utf8),
        n_email=email,
        n_qq_mail=qq_of_mailbox(email),
        n_phone=pl.lit("phone:") + pl.col("phone"),
        n_qq=pl.lit("qq:") + pl.col("qq"),
    )


def _crm_records(cfg: SimConfig, crm: pl.DataFrame) -> pl.DataFrame:
    email = email_node(pl.col("email"))
    return crm_versions_seen(cfg, crm).select(
        "person_id",
        n_member=pl.lit("crm:") + pl.col("member_id"),
        n_old_phone=pl.lit("phone:") + pl.col("old_phone"),
        n_new_phone=pl.lit("phone:") + pl.col("new_phone"),
        n_email=email,
        n_qq_mail=qq_of_mailbox(email),
        n_qq=pl.lit("qq:") + pl.col("qq"),
        n_openid=pl.lit("openid_main:") + pl.col("wechat_openid"),
    )


def _long(records: pl.DataFrame) -> pl.DataFrame:
    """Wide records (rec, person_id, n_* slots) → one row per (rec, person_id, node)."""
    slots = [c for c in records.columns if c.startswith("n_")]
    return (
        records.select("rec", "person_id", *slots)
        .unpivot(index=["rec", "person_id"], on=slots, value_name="node")
        .drop("variable")
        .drop_nulls("node")
    )


def _mask_checks(
    on_records: pl.DataFrame, masks: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(known, contradicted, conflicts) of some persons' records.

    ``on_records`` is (rec, person_id, node) of their records, ``masks`` (rec, person_id, mask).
    ``known`` are their phone and e-mail nodes with each node's own mask; ``contradicted`` the
    nodes a record shows beside an Alipay mask that is not theirs; ``conflicts`` the (rec, mask)
    of a record whose phone contradicts its phone mask. A mask fit is judged over every person's
    ``known`` (``_mask_fits``), so the three are gathered per block of persons first.
    """
    node = pl.col("node")
    known = (
        on_records.filter(node.str.starts_with("phone:") | node.str.starts_with("email:"))
        .select("person_id", "node")
        .unique()
        .with_columns(mask=node_mask(pl.col("node")))
    )
    # record phone/e-mail nodes beside the masks paid from that record
    beside = on_records.join(masks.drop("person_id"), on="rec").join(
        known.select("node", own="mask").unique("node"), on="node"
    )
    contradicted = beside.filter(pl.col("own") != pl.col("mask")).select("node").unique()
    conflicts = (
        beside.filter(
            pl.col("node").str.starts_with("phone:")
            & ~pl.col("mask").str.contains("@", literal=True)
            & (pl.col("own") != pl.col("mask"))
        )
        .select("rec", "mask")
        .unique()
    )
    return known, contradicted, conflicts


def _mask_fits(known: pl.DataFrame) -> pl.DataFrame:
    """mask → fit_node, fit_person_id: the masks exactly one known phone or e-mail fits."""
    return (
        known.group_by("mask")
        .agg(n=pl.col("node").n_unique(), fit_node=pl.col("node").min())
        .filter(pl.col("n") == 1)
        .join(known.select("node", fit_person_id="person_id"), left_on="fit_node", right_on="node")
        .drop("n")
    )


def _mask_links(
    masks: pl.DataFrame, conflicts: pl.DataFrame, fits: pl.DataFrame, contradicted: pl.DataFrame
) -> pl.DataFrame:
    """rec, person_id, fit_node, fit_person_id for every usable Alipay mask link (any person)."""
    return (
        masks.join(fits, on="mask")
        .join(contradicted, left_on="fit_node", right_on="node", how="anti")
        .join(conflicts, on=["rec", "mask"], how="anti")
        .select("rec", "person_id", "mask", "fit_node", "fit_person_id")
    )


#: persons per block: the graph of one block of persons at a time is held in memory
BLOCK_PERSONS = 400_000


def _block_records(
    cfg: SimConfig,
    record_parts: list[Path],
    people: pl.DataFrame,
    accounts: pl.DataFrame,
    crm: pl.DataFrame,
    lo: int,
    hi: int,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(on_records, masks, order_of) of the persons ``lo <= person_id < hi``.

    ``accounts`` are ``_account_records`` of every person (account ids count over everyone).
    """
    mine = pl.col("person_id").is_between(lo, hi, closed="left")
    keys = pl.scan_parquet(record_parts).filter(mine).collect()
    people = people.filter(mine)
    order_recs, order_of = _order_records([keys], people)
    del keys
    offset = order_recs.height
    accounts = accounts.filter(mine).with_row_index("rec", offset=offset)
    offset += accounts.height
    members = _crm_records(cfg, crm.filter(mine)).with_row_index("rec", offset=offset)
    on_records = pl.concat(
        [
            _long(r.with_columns(pl.col("rec").cast(pl.Int64)))
            for r in (order_recs, accounts, members)
        ]
    )
    masks = order_recs.filter(pl.col("mask").is_not_null()).select("rec", "person_id", "mask")
    return on_records, masks, order_of


def evidence_components(
    cfg: SimConfig,
    record_parts: list[Path],
    n_orders: int,
    people: pl.DataFrame,
    crm: pl.DataFrame,
    identities_of: Callable[[int, int], pl.DataFrame],
    components_to: Callable[[pl.DataFrame], None],
    scratch: Path,
) -> Evidence:
    """The evidence components of every true person (see the module docstring).

    ``record_parts`` are Parquet files of ``order_record_keys`` of all ``n_orders`` orders, in
    order. Components never cross persons, so the graph is solved a block of persons at a time
    (their records spilled to ``scratch`` between two passes); only the Alipay mask fits are
    judged over every person at once. Nodes and components are numbered by person, then as first
    met, whatever the blocks. ``identities_of(lo, hi)`` gives the ``identities`` rows of the
    persons ``lo <= person_id < hi``; each block's rows go to ``components_to`` with their graph
    ``node``, ``component_id`` and ``is_observed``, in the order ``identities_of`` gave them.
    """
    top = int(people["person_id"].max() or 0) + 1
    blocks = [(lo, min(lo + BLOCK_PERSONS, top)) for lo in range(0, top, BLOCK_PERSONS)]
    scratch.mkdir(parents=True, exist_ok=True)
    accounts = _account_records(people)
    known, contradicted = [], []
    for b, (lo, hi) in enumerate(blocks):
        on_records, masks, order_of = _block_records(
            cfg, record_parts, people, accounts, crm, lo, hi
        )
        k, c, conflicts = _mask_checks(on_records, masks)
        known.append(k)
        contradicted.append(c)
        for name, frame in (
            ("on_records", on_records),
            ("masks", masks),
            ("order_of", order_of),
            ("conflicts", conflicts),
        ):
            frame.write_parquet(scratch / f"{name}_{b}.parquet")
        del on_records, masks, order_of
    fits = _mask_fits(pl.concat(known))
    contradicted_nodes = pl.concat(contradicted).unique()
    del known, contradicted

    order_parts, elsewhere_parts = [], []
    n_components = 0
    for b, (lo, hi) in enumerate(blocks):
        staged = {
            name: pl.read_parquet(scratch / f"{name}_{b}.parquet")
            for name in ("on_records", "masks", "order_of", "conflicts")
        }
        links = _mask_links(staged["masks"], staged["conflicts"], fits, contradicted_nodes)
        elsewhere_parts.append(links.filter(pl.col("person_id") != pl.col("fit_person_id")))
        ids = identities_of(lo, hi)
        ids = ids.with_columns(node=identity_nodes(ids))
        if ids["node"].null_count():
            raise ValueError("an identifier of identities.parquet reads as no node")
        nodes, orders = _block_components(
            staged["on_records"],
            links.filter(pl.col("person_id") == pl.col("fit_person_id")),
            staged["order_of"],
            ids,
        )
        nodes = nodes.with_columns(pl.col("component_id") + n_components)
        components_to(
            ids.join(nodes, on=["person_id", "node"], how="left", maintain_order="left").select(
                *ids.columns, "component_id", "is_observed"
            )
        )
        order_parts.append(orders.with_columns(pl.col("component_id") + n_components))
        if nodes.height:
            n_components = int(nodes["component_id"].max()) + 1

    order_components = (
        pl.DataFrame({"order_idx": pl.int_range(n_orders, dtype=pl.Int64, eager=True)})
        .join(pl.concat(order_parts), on="order_idx", how="left")
        .select("order_idx", "component_id")
        .sort("order_idx")
    )
    elsewhere = pl.concat(elsewhere_parts).unique()
    return Evidence(
        order_components=order_components,
        mask_fits_elsewhere=elsewhere.select("person_id", "mask", "fit_node", "fit_person_id")
        .unique()
        .sort("person_id", "mask"),
    )


def _block_components(
    on_records: pl.DataFrame,
    same: pl.DataFrame,
    order_of: pl.DataFrame,
    identities: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(nodes with a component_id from 0, order_idx → component_id) of one block of persons.

    ``identities`` are the block's identities with their ``node``.
    """
    id_nodes = identities.select("person_id", "node")
    observed = on_records.select("person_id", "node").with_columns(is_observed=True)
    # nodes in a deterministic order (by person, then as first met), without a sort on text
    nodes = (
        pl.concat([observed, id_nodes.with_columns(is_observed=False)])
        .group_by("person_id", "node", maintain_order=True)
        .agg(pl.col("is_observed").any())
        .sort("person_id", maintain_order=True)
        .with_row_index("i")
    )
    index = nodes.select("person_id", "node", "i")
    at = on_records.join(index, on=["person_id", "node"])
    first = at.group_by("rec").agg(root=pl.col("i").min())
    record_edges = at.join(first, on="rec").select(a="root", b="i")
    mask_edges = (
        same.join(first, on="rec")
        .join(index, left_on=["person_id", "fit_node"], right_on=["person_id", "node"])
        .select(a="root", b="i")
    )
    edges = pl.concat([record_edges, mask_edges])
    n = nodes.height
    a, b = edges["a"].to_numpy(), edges["b"].to_numpy()
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # name each component by its first node in that order: ids are deterministic
    first_index = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first_index, labels, np.arange(n, dtype=np.int64))
    _, component = np.unique(first_index[labels], return_inverse=True)
    nodes = nodes.with_columns(component_id=pl.Series(component.astype(np.int64))).drop("i")
    orders = (
        order_of.join(first, on="rec", how="left")
        .join(
            nodes.with_row_index("root").select(
                pl.col("root").cast(first["root"].dtype), "component_id"
            ),
            on="root",
            how="left",
        )
        .select("order_idx", "component_id")
    )
    return nodes, orders
