"""How each system sees a person: the buyer key on every order, substation accounts, CRM members.

Deterministic per person (hash-based memberships) so that the same person is, say, a CRM member
in every snapshot; the typed forms (phone layouts, e-mail case and spaces) vary per record.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulator.config import SimConfig
from simulator.text import email_forms, phone_forms


def _bucket(person_id: pl.Expr, salt: int) -> pl.Expr:
    """A stable pseudo-random 0..99 per person."""
    return ((person_id * 2654435761 + salt) % 4294967296 // 65536) % 100


def substation_users(people: pl.DataFrame) -> pl.DataFrame:
    """People with a substation account (about 40 %), ids from 1000 like acg-faka's AUTO_INCREMENT."""
    users = people.filter(_bucket(pl.col("person_id"), 17) < 40).select(
        "person_id", "email", "phone", "qq", "join_day"
    )
    return users.with_columns(
        user_id=pl.int_range(1000, 1000 + pl.len(), dtype=pl.Int64),
        username=pl.concat_str([pl.lit("u"), pl.col("qq")]),
    )


def crm_members(people: pl.DataFrame) -> pl.DataFrame:
    """People registered with the CRM (about 30 %), with their member ids."""
    return people.filter(_bucket(pl.col("person_id"), 91) < 30)


def buyer_keys(
    cfg: SimConfig, day: int, orders: pl.DataFrame, people: pl.DataFrame
) -> pl.DataFrame:
    """Add the buyer identifiers each shop records: ``email`` (main), ``owner``/``contact`` (sub).

    ``orders`` are the orders of business day ``day``, which has its own random stream.
    """
    rng = cfg.rng(f"buyer_keys/{day}")
    n = orders.height
    mess = cfg.profile
    users = substation_users(people).select("person_id", "user_id")
    o = orders.join(
        people.select("person_id", "email", "email_alt", "phone", "qq"), on="person_id", how="left"
    ).join(users, on="person_id", how="left")
    use_alt = (rng.uniform(size=n) < 0.3) & (o["email_alt"].to_numpy() != "")
    email_form = np.where(rng.uniform(size=n) < mess.email_variant, rng.integers(1, 4, n), 0)
    phone_form = np.where(rng.uniform(size=n) < mess.phone_format_variant, rng.integers(1, 4, n), 0)
    contact_kind = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])  # phone, qq, email
    logged_in = rng.uniform(size=n) < 0.7
    o = o.with_columns(
        _email=pl.when(pl.Series(use_alt)).then("email_alt").otherwise("email"),
        _ef=pl.Series(email_form),
        _pf=pl.Series(phone_form),
        _ck=pl.Series(contact_kind),
    )
    typed_email = email_forms(pl.col("_email"), pl.col("_ef"))
    return o.with_columns(
        buyer_email=typed_email,
        buyer_email_true=pl.col("_email"),
        owner=pl.when(pl.col("user_id").is_not_null() & pl.Series(logged_in))
        .then(pl.col("user_id"))
        .otherwise(0),
        contact=pl.when(pl.col("_ck") == 0)
        .then(phone_forms(pl.col("phone"), pl.col("_pf")))
        .when(pl.col("_ck") == 1)
        .then(pl.col("qq"))
        .otherwise(typed_email),
    ).drop("email", "email_alt", "phone", "qq", "user_id", "_email", "_ef", "_pf", "_ck")
