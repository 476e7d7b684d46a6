"""Vectorised text helpers: random codes, money and time formatting, the ways people type things.

All functions take and return whole columns (numpy arrays or polars expressions); none loops per row.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulator.config import CST_OFFSET_S

UPPER_ALNUM = np.frombuffer(b"ABCDEFGHIJKLMNPQRSTUVWXYZ23456789", dtype=np.uint8)
DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
OPENID_CHARS = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", dtype=np.uint8
)
LOWER = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def random_codes(rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray) -> np.ndarray:
    """``n`` random strings of ``length`` characters from ``alphabet`` (a uint8 array)."""
    idx = rng.integers(0, len(alphabet), size=(n, length), dtype=np.uint8)
    raw = alphabet[idx].view(f"S{length}").ravel()
    return raw.astype(f"U{length}")


def random_code_series(
    rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray
) -> pl.Series:
    """Like ``random_codes`` but straight into a polars string column.

    Goes through fixed-width bytes (1 byte a character) instead of numpy unicode (4 bytes a
    character): for millions of card keys that is the difference of a gigabyte at peak.
    """
    idx = rng.integers(0, len(alphabet), size=(n, length), dtype=np.uint8)
    raw = alphabet[idx].view(f"S{length}").ravel()
    del idx
    return pl.Series(raw).cast(pl.String)


def yuan(fen: pl.Expr) -> pl.Expr:
    """Integer fen → ``'12.50'`` / ``'-0.06'``: exact, no float rounding."""
    mag = fen.abs()
    text = pl.concat_str(
        [(mag // 100).cast(pl.Utf8), pl.lit("."), (mag % 100).cast(pl.Utf8).str.zfill(2)]
    )
    return pl.when(fen < 0).then(pl.lit("-") + text).otherwise(text)


def local_time(epoch_s: pl.Expr, fmt: str = "%Y-%m-%d %H:%M:%S") -> pl.Expr:
    """UTC epoch seconds → naive Asia/Shanghai wall-clock text (as the shops store it)."""
    return pl.from_epoch(epoch_s + CST_OFFSET_S, time_unit="s").dt.strftime(fmt)


_FULL_WIDTH = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz ",
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ　",
)


def full_width(text: str) -> str:
    return text.translate(_FULL_WIDTH)


def phone_forms(phone: pl.Expr, form: pl.Expr) -> pl.Expr:
    """The ways people type one mainland mobile number; ``form`` 0..3 picks one.

    0 ``13800138000``, 1 ``138 0013 8000``, 2 ``+86-138-0013-8000``, 3 ``86 13800138000``.
    """
    a, b, c = phone.str.slice(0, 3), phone.str.slice(3, 4), phone.str.slice(7, 4)
    return (
        pl.when(form == 1)
        .then(pl.concat_str([a, b, c], separator=" "))
        .when(form == 2)
        .then(pl.concat_str([pl.lit("+86"), a, b, c], separator="-"))
        .when(form == 3)
        .then(pl.lit("86 ") + phone)
        .otherwise(phone)
    )


def email_forms(email: pl.Expr, form: pl.Expr) -> pl.Expr:
    """0 as registered, 1 upper-cased local part, 2 surrounded by spaces, 3 all upper-case."""
    local, domain = email.str.split_exact("@", 1).struct[0], email.str.split_exact("@", 1).struct[1]
    return (
        pl.when(form == 1)
        .then(pl.concat_str([local.str.to_uppercase(), domain], separator="@"))
        .when(form == 2)
        .then(pl.lit(" ") + email + pl.lit(" "))
        .when(form == 3)
        .then(email.str.to_uppercase())
        .otherwise(email)
    )
