"""Identity rules outside dbt: the normalisation macros (``dbt_project/macros/identity.sql``)
rendered with Jinja and run in DuckDB against every form the simulator types, and the graph
resolution of the ``int_identity_components`` Python model on a small hand-made graph."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import duckdb
import jinja2
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.text import email_forms, full_width, phone_forms

pytestmark = pytest.mark.unit

DBT = Path(__file__).resolve().parents[2] / "dbt_project"
MACROS = jinja2.Environment().from_string((DBT / "macros" / "identity.sql").read_text()).module
PREFIXES = ["130", "135", "138", "150", "159", "166", "177", "186", "199"]


def _apply(macro: str, values: list[str], *args: str) -> list:
    """Run one macro over ``values`` (column ``v``) in DuckDB; returns one result per value."""
    expr = getattr(MACROS, macro)(*args, "v") if args else getattr(MACROS, macro)("v")
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    with duckdb.connect() as con:
        con.register("t", frame.to_arrow())
        return [r[0] for r in con.sql(f"select {expr} from t").fetchall()]


phones = st.builds(
    lambda p, body: p + f"{body:08d}", st.sampled_from(PREFIXES), st.integers(0, 10**8 - 1)
)
locals_ = st.text("abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=12).filter(
    lambda s: s[0].isalnum()
)
emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    locals_,
    st.sampled_from(["qq.com", "163.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com"]),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(phones, min_size=1, max_size=20))
def test_every_typed_phone_form_is_the_same_number(numbers: list[str]) -> None:
    typed = []
    for form in range(4):
        typed += pl.select(phone_forms(pl.Series(numbers), pl.lit(form))).to_series().to_list()
    typed += [full_width(n) for n in numbers]
    expected = numbers * 5
    assert _apply("normalize_phone", typed) == expected
    assert _apply("classify_contact", typed) == ["phone"] * len(typed)


@settings(max_examples=30, deadline=None)
@given(st.lists(emails, min_size=1, max_size=20))
def test_every_typed_email_form_is_the_same_address(addresses: list[str]) -> None:
    typed = []
    for form in range(4):
        typed += pl.select(email_forms(pl.Series(addresses), pl.lit(form))).to_series().to_list()
    assert _apply("normalize_email", typed) == [a.lower() for a in addresses] * 4
    assert _apply("classify_contact", typed) == ["email"] * len(typed)


def test_qq_numbers_and_qq_mailboxes() -> None:
    assert _apply("normalize_qq", ["1000104778", " 200101034 ", "12345", "0123456", "1234"]) == [
        "1000104778",
        "200101034",
        "12345",
        None,
        None,
    ]
    # a 10-digit QQ is not a phone; an 11-digit 1[3-9]… number is read as a phone
    assert _apply("classify_contact", ["1000104778", "13800138000", "x", ""]) == [
        "qq",
        "phone",
        "unknown",
        "unknown",
    ]
    assert _apply(
        "qq_of_mailbox", ["1000104778@qq.com", "abc@qq.com", "123@vip.qq.com", "12345@163.com"]
    ) == ["1000104778", None, None, None]


def test_garbage_is_no_identifier() -> None:
    junk = [
        "",
        "test",
        "138001380",
        "23800138000",
        "+1-555-0100-1234",
        "abc@",
        "@qq.com",
        "a b@c.d",
    ]
    assert _apply("normalize_phone", junk) == [None] * len(junk)
    assert _apply("normalize_email", junk) == [None] * len(junk)


def test_masks() -> None:
    assert _apply("alipay_mask", ["13800138000"], "'phone'") == ["138****8000"]
    assert _apply("alipay_mask", ["abcdef@qq.com"], "'email'") == ["abc***@qq.com"]
    assert _apply("mask_contact", ["13800138000"], "'phone'") == ["*******8000"]
    assert _apply("mask_contact", ["1000104778@qq.com"], "'email'") == ["******4778@qq.com"]
    assert _apply("mask_contact", ["ab@x.cn"], "'email'") == ["ab@x.cn"]


def _components_model():
    path = DBT / "models" / "intermediate" / "identity" / "int_identity_components.py"
    spec = importlib.util.spec_from_file_location("int_identity_components", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.model


def test_components_are_transitive_and_named_by_their_earliest_node() -> None:
    con = duckdb.connect()
    observed = con.sql(
        """
        select * from (values
            ('email:b@x.com', 'email', timestamp '2026-10-02 00:00', true),
            ('openid_main:o1', 'openid_main', timestamp '2026-10-03 00:00', true),
            ('phone:13800000001', 'phone', timestamp '2026-10-01 00:00', true),
            ('phone:13800000001', 'phone', timestamp '2026-10-05 00:00', true),
            ('qq:12345678', 'qq', timestamp '2026-10-04 00:00', true),
            ('email:a@x.com', 'email', timestamp '2026-10-04 00:00', true),
            ('email:family@x.com', 'email', timestamp '2026-09-01 00:00', true),
            ('email:test@test.com', 'email', timestamp '2026-09-01 00:00', false)
        ) as t(node, node_kind, seen_at, is_linkable)
        """
    )
    links = con.sql(
        """
        select * from (values
            ('email:b@x.com', 'openid_main:o1', true),
            ('openid_main:o1', 'phone:13800000001', true),
            ('email:a@x.com', 'qq:12345678', true),
            ('email:family@x.com', 'email:b@x.com', false)
        ) as t(node_a, node_b, is_used)
        """
    )
    refs = {"int_identifiers_observed": observed, "int_identity_links": links}
    dbt = SimpleNamespace(config=lambda **_: None, ref=refs.__getitem__)
    out = pl.from_arrow(_components_model()(dbt, con)).sort("node")
    anchors = dict(zip(out["node"], out["anchor_node"], strict=True))
    # b → o1 → phone: one user, named by the phone (seen first, 10-01)
    assert anchors["email:b@x.com"] == anchors["openid_main:o1"] == "phone:13800000001"
    assert anchors["phone:13800000001"] == "phone:13800000001"
    # a and the QQ are seen at the same time: the text decides
    assert anchors["email:a@x.com"] == anchors["qq:12345678"] == "email:a@x.com"
    # an unused link joins nothing; a node that may not link is not in the graph
    assert anchors["email:family@x.com"] == "email:family@x.com"
    assert "email:test@test.com" not in anchors
    assert dict(zip(out["node"], out["component_size"], strict=True))["email:b@x.com"] == 3
