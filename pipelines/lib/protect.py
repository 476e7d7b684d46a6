"""Card keys never sit in plaintext in the lake: the landing replaces every value of a column a
contract marks ``protect`` by a keyed hash (HMAC-SHA256, hex) of the text the models match keys
on, so equal keys stay equal (a sold key still finds its supplier line and its order) and nothing
in the lake gives a key back.

The text is normalised first, exactly as the dbt models compared keys in plaintext: trimmed as
DuckDB's ``trim()`` trims (Unicode space separators, category Zs; not tabs or line breaks).

* ``protect: hmac``: the trimmed value.
* ``protect: hmac_lines``: each trimmed non-empty line (an order's delivered keys, one per line),
  hashed on its own, the hashes joined with ``\\n`` in the same order.
* ``protect: {hmac_of: [a, b], separator: '----'}``: the trimmed non-blank values of columns
  ``a`` and ``b`` in that order, joined with the separator (a supplier's ``card_no----card_secret``,
  or ``card_secret`` alone without a card number: the text the shops store when they import it).

A null stays null and a value with nothing left after trimming becomes ``""`` (no key to hide;
for ``hmac_of``, the column's own value decides).

The key is the install's: 32 random bytes, hex, in ``<secrets_dir>/card_keys.key`` (mode 600),
generated on first use and never inside the lake. The same install gives the same lake bytes;
another key gives other hashes, so a lake is only matched with keys hashed by its own install.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pipelines.lib.secret_files import secret_once
from pipelines.lib.settings import secrets_dir

if TYPE_CHECKING:
    from pipelines.lib.contracts import Column, Contract
    from pipelines.lib.lake import Lake

KEY_FILE = "card_keys.key"
#: what DuckDB's trim() strips: the Unicode space separators (category Zs), nothing else
TRIM = (
    " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f\u3000"
)
#: the landed forms: one hash, or hashes one per line (empty: no key)
HASH_PATTERN = r"^(?:[0-9a-f]{64})?$"
LINES_PATTERN = r"^(?:[0-9a-f]{64}(?:\n[0-9a-f]{64})*)?$"
#: the temporary column holding a protected column's landed value beside its plaintext
PREFIX = "__protected_"
_BLOCK = 64  # SHA-256's block size


def key_path() -> Path:
    return secrets_dir() / KEY_FILE


def card_key(path: Path | None = None) -> bytes:
    """The install's card-key hashing key (written on first use)."""
    return _load_key(path or key_path())


@functools.cache
def _load_key(path: Path) -> bytes:
    text = secret_once(path, secrets.token_hex(32))
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ValueError(
            f"{path}: not a card-key file (64 lowercase hex digits expected). Restore the "
            "install's key from its backup: a new key would not match the keys already landed."
        )
    return bytes.fromhex(text)


@functools.cache
def _pads(key: bytes) -> tuple[Any, Any]:
    """HMAC's inner and outer SHA-256 states after the padded key (RFC 2104, the construction
    ``hmac`` implements; the tests hold the two equal), computed once per key: copying them per
    value costs half of one ``hmac.digest`` call per value."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _hex_digests(values: Iterable[bytes | None], key: bytes) -> list[str | None]:
    inner, outer = _pads(key)
    new_inner, new_outer = inner.copy, outer.copy
    out: list[str | None] = []
    append = out.append
    for value in values:
        if value is None:
            append(None)
            continue
        i = new_inner()
        i.update(value)
        o = new_outer()
        o.update(i.digest())
        append(o.hexdigest())
    return out


def keyed_hash(values: pl.Series, key: bytes) -> pl.Series:
    """HMAC-SHA256 (hex) of each value's UTF-8 text under ``key``, as is; null stays null. The
    one function that hashes: every form below normalises the text, then calls it."""
    data = values.cast(pl.String).cast(pl.Binary).to_list()
    return pl.Series(values.name, _hex_digests(data, key), dtype=pl.String)


def hash_trimmed(values: pl.Series, key: bytes) -> pl.Series:
    """``protect: hmac``: the keyed hash of the trimmed value; blank becomes ``""``."""
    frame = pl.DataFrame({"t": values.cast(pl.String).str.strip_chars(TRIM)})
    hashed = keyed_hash(frame.select(pl.when(pl.col("t") != "").then("t")).to_series(), key)
    out = frame.with_columns(h=hashed).select(
        pl.when(pl.col("t") == "").then(pl.col("t")).otherwise(pl.col("h"))
    )
    return out.to_series().alias(values.name)


def hash_lines(values: pl.Series, key: bytes) -> pl.Series:
    """``protect: hmac_lines``: each trimmed non-empty line hashed, joined with ``\\n``."""
    frame = pl.DataFrame({"v": values.cast(pl.String)}).with_row_index("i")
    lines = (
        frame.select("i", line=pl.col("v").str.split("\n"))
        .explode("line")
        .with_columns(pl.col("line").str.strip_chars(TRIM))
        .filter(pl.col("line").is_not_null() & (pl.col("line") != ""))
    )
    lines = lines.with_columns(keyed_hash(lines["line"], key))
    joined = lines.group_by("i", maintain_order=True).agg(pl.col("line").str.join("\n"))
    out = frame.join(joined, on="i", how="left", maintain_order="left").select(
        pl.when(pl.col("v").is_not_null()).then(pl.col("line").fill_null(""))
    )
    return out.to_series().alias(values.name)


def _joined(names: tuple[str, ...], separator: str) -> pl.Expr:
    """The trimmed non-blank values of ``names``, in order, joined with ``separator``."""
    parts = [pl.col(n).cast(pl.String).str.strip_chars(TRIM) for n in names]
    return pl.concat_str(
        [pl.when(p != "").then(p) for p in parts], separator=separator, ignore_nulls=True
    )


def protected_values(frame: pl.DataFrame, column: Column, key: bytes) -> pl.Series:
    """The landed value of a protected column, from the plaintext columns of the rows read.

    Computed eagerly, never as a Python function inside a polars expression (``map_batches``):
    such a function runs on polars' thread pool and needs the GIL, and while the landing's other
    lane holds the GIL waiting on that same pool (a ``to_pandas`` for its checks) the two wait
    for each other for ever. A whole ``cardlake run`` hung that way under load."""
    spec = column.protect
    assert spec is not None, column.name
    own = frame[column.name].cast(pl.String)
    if spec.form == "hmac":
        value = hash_trimmed(own, key)
    elif spec.form == "hmac_lines":
        value = hash_lines(own, key)
    elif spec.form == "hmac_of":
        joined = frame.select(_joined(spec.of, spec.separator)).to_series()
        both = pl.DataFrame({"own": own, "hashed": hash_trimmed(joined, key)})
        value = both.select(
            pl.when(pl.col("own").is_null())
            .then(None)
            .when(pl.col("own").str.strip_chars(TRIM) == "")
            .then(pl.lit(""))
            .otherwise(pl.col("hashed"))
        ).to_series()
    else:  # the contract loader refuses any other form
        raise AssertionError(spec.form)
    return value.alias(PREFIX + column.name)


def with_protected(
    rows: pl.DataFrame, contract: Contract, key: bytes | None = None
) -> pl.DataFrame:
    """``rows`` (text, named as in the contract) with the landed value of each protected column
    beside it, as ``__protected_<name>`` (those already there are kept). A column the rows lack
    counts as null. ``key`` defaults to the install's."""
    todo = [c for c in contract.columns if c.protect and PREFIX + c.name not in rows.columns]
    if not todo:
        return rows
    key = card_key() if key is None else key
    needed = {c.name for c in todo} | {n for c in todo for n in c.protect.of}
    absent = [n for n in sorted(needed) if n not in rows.columns]
    frame = rows.with_columns(pl.lit(None, dtype=pl.String).alias(n) for n in absent)
    return rows.with_columns([protected_values(frame, c, key) for c in todo])


def hashed_columns(contract: Contract, present: Iterable[str]) -> list[str]:
    """The contract's columns among ``present``, a protected one by its landed value: what a row
    hash covers (a digest of plaintext keys would let a guess be checked without the key)."""
    present = set(present)
    return [PREFIX + c.name if c.protect else c.name for c in contract.columns if c.name in present]


def landed_pattern(column: Column) -> str:
    """The regular expression every landed value of a protected column matches."""
    assert column.protect is not None, column.name
    return LINES_PATTERN if column.protect.form == "hmac_lines" else HASH_PATTERN


class KeyMismatch(RuntimeError):
    """The lake's card keys were hashed with another install's key."""


def fingerprint(key: bytes) -> str:
    """Names a key without giving it away (an HMAC of a fixed text under it)."""
    return keyed_hash(pl.Series([_FINGERPRINT_TEXT]), key)[0][:16]


_FINGERPRINT_TEXT = "cardlake card-key fingerprint"


def bind_key(lake: Lake) -> None:
    """Tie the lake to the install's key on its first landing of a protected dataset, and refuse
    to land under another key afterwards: hashes of two keys never match, so a lost or replaced
    key file would silently leave every sold key without its supplier line."""
    path = lake.card_key_fingerprint
    mine = fingerprint(card_key())
    bound = secret_once(path, mine)
    if bound != mine:
        raise KeyMismatch(
            f"the lake {lake} holds card keys hashed with another key (fingerprint {bound}; this "
            f"install's {key_path()} is {mine}). Restore the key file that landed them, or land "
            "every day again into a new lake (docs/security.md)."
        )
