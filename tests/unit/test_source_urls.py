"""A shop database URL carries the shop's table prefix (``?table_prefix=``) for the platform, never
for the database driver."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from pipelines.lib.extract import SourceLayoutError, split_url, table_name

BASES = (
    "sqlite:////srv/cardlake/sources/db/shop_substation.sqlite",
    "mysql+pymysql://faka:p%40ss@10.0.0.5:3306/acgfaka?charset=utf8mb4",
)


@given(
    prefix=st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True),
    table=st.sampled_from(["order", "card", "commodity", "category", "pay", "user"]),
    base=st.sampled_from(BASES),
)
def test_the_prefix_names_the_tables_and_never_reaches_the_driver(
    prefix: str, table: str, base: str
) -> None:
    url = f"{base}{'&' if '?' in base else '?'}table_prefix={prefix}"
    plain, got = split_url(url)
    assert got == prefix
    assert table_name(url, table) == prefix + table
    parsed, original = sa.make_url(plain), sa.make_url(base)
    assert "table_prefix" not in parsed.query
    assert (parsed.database, parsed.password, dict(parsed.query)) == (
        original.database,
        original.password,
        dict(original.query),
    )


@pytest.mark.parametrize("base", BASES)
def test_a_url_without_a_prefix_names_the_tables_as_they_are(base: str) -> None:
    assert split_url(base)[1] == ""
    assert table_name(base, "order") == "order"


def test_a_prefix_given_twice_is_refused() -> None:
    with pytest.raises(SourceLayoutError, match="table_prefix is given twice"):
        split_url("sqlite:////tmp/x.sqlite?table_prefix=a_&table_prefix=b_")
