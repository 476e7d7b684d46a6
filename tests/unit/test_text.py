"""Pure helpers: money formatting, typed phone and e-mail forms, fees, order numbers."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.config import MessProfile, SimConfig
from simulator.orders import substation_trade_no, unique_codes
from simulator.statements import fee_fen
from simulator.text import email_forms, phone_forms, yuan

pytestmark = pytest.mark.unit


@given(st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=50))
def test_yuan_is_exact(fens: list[int]) -> None:
    out = pl.DataFrame({"f": fens}).select(yuan(pl.col("f")))[:, 0].to_list()
    assert [Decimal(x) for x in out] == [Decimal(f) / 100 for f in fens]
    assert all(re.fullmatch(r"-?\d+\.\d{2}", x) for x in out)


@given(
    st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=50),
    st.integers(min_value=1, max_value=200),
)
def test_fee_is_half_up_to_the_fen(amounts: list[int], rate_bp: int) -> None:
    got = pl.DataFrame({"a": amounts}).select(fee_fen(pl.col("a"), rate_bp))[:, 0].to_list()
    want = [
        int((Decimal(a) * rate_bp / 10000).quantize(Decimal(1), ROUND_HALF_UP)) for a in amounts
    ]
    assert got == want


@given(
    st.lists(st.from_regex(r"1[3-9]\d{9}", fullmatch=True), min_size=1, max_size=20),
    st.integers(min_value=0, max_value=3),
)
def test_every_typed_phone_form_keeps_the_number(phones: list[str], form: int) -> None:
    typed = (
        pl.DataFrame({"p": phones, "f": [form] * len(phones)})
        .select(phone_forms(pl.col("p"), pl.col("f")))[:, 0]
        .to_list()
    )
    digits = [re.sub(r"\D", "", t) for t in typed]
    assert [d[-11:] for d in digits] == phones
    assert all(d in (p, "86" + p) for d, p in zip(digits, phones, strict=True))


@given(
    st.lists(
        st.from_regex(r"[a-z0-9]{3,10}@(qq|163|gmail)\.com", fullmatch=True),
        min_size=1,
        max_size=20,
    ),
    st.integers(min_value=0, max_value=3),
)
def test_every_typed_email_form_is_the_same_address(emails: list[str], form: int) -> None:
    typed = (
        pl.DataFrame({"e": emails, "f": [form] * len(emails)})
        .select(email_forms(pl.col("e"), pl.col("f")))[:, 0]
        .to_list()
    )
    assert [t.strip().lower() for t in typed] == emails


def test_order_numbers_follow_each_shop_format() -> None:
    rng = np.random.default_rng(1)
    main = unique_codes(rng, 5000, 16)
    assert len(set(main)) == 5000 and all(re.fullmatch(r"[A-Z0-9]{16}", x) for x in main)
    created = np.full(3000, 1791131979)  # many orders in one second must still get unique numbers
    sub = substation_trade_no(rng, created)
    assert len(set(sub)) == 3000
    # acg-faka: mt_rand(100,999) . date('ymdHis') . mt_rand(100,999), Beijing time
    assert all(re.fullmatch(r"[1-9]\d{2}261005003939[1-9]\d{2}", x) for x in sub)


def test_mess_profiles() -> None:
    assert all(v == 0 for v in vars(MessProfile.named("none")).values())
    realistic, hostile = MessProfile.named("realistic"), MessProfile.named("hostile")
    assert all(getattr(hostile, k) >= v for k, v in vars(realistic).items())
    with pytest.raises(ValueError, match="unknown mess profile"):
        MessProfile.named("chaos")  # type: ignore[arg-type]


def test_named_random_streams_are_independent() -> None:
    cfg = SimConfig(seed=5)
    a = cfg.rng("orders").integers(0, 10**9, 5)
    assert (cfg.rng("orders").integers(0, 10**9, 5) == a).all()
    assert not (cfg.rng("people").integers(0, 10**9, 5) == a).all()
    assert SimConfig(seed=5).end_epoch - SimConfig(seed=5).start_epoch == 7 * 86400
