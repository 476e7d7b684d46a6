"""Card keys land as keyed hashes (pipelines/lib/protect.py): the hash is HMAC-SHA256 of the text
the models compare (trimmed as DuckDB trims), equal keys hash alike and different keys apart,
nothing of the key shows in its hash, the contract rules still judge the plaintext, and the
install's key is written once, privately, outside the lake."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import stat
import threading
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.lib import protect
from pipelines.lib.contracts import (
    Column,
    Contract,
    ContractError,
    Protect,
    load_contract,
    load_contracts,
    validate,
)
from pipelines.lib.secret_files import secret_once

pytestmark = pytest.mark.unit

KEY = bytes.fromhex("5f" * 32)
OTHER_KEY = bytes.fromhex("a0" * 32)
SPACES = st.sampled_from(sorted(protect.TRIM))
#: text as keys come: any character but line breaks; padded with the spaces trim() removes
key_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=40
)
padding = st.lists(SPACES, max_size=3).map("".join)


def _hash(text: str, key: bytes = KEY) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _one(fn, value: str | None, key: bytes = KEY) -> str | None:
    return fn(pl.Series("v", [value], dtype=pl.String), key)[0]


def test_the_trim_is_duckdbs() -> None:
    """The models compared keys after DuckDB's trim(): exactly those characters are stripped."""
    con = duckdb.connect()
    chars = [chr(c) for c in range(0x3100)]  # the Zs characters all lie below U+3100
    stripped = {
        c
        for (c,) in con.execute(
            "select c from unnest($1::varchar[]) as t(c) where trim(c || 'a' || c) = 'a'",
            [chars],
        ).fetchall()
    }
    assert stripped == set(protect.TRIM)
    samples = ["  ab ", "\u3000ab\u00a0", "\tab\r", "a b"]
    got = con.execute("select list(trim(s)) from unnest($1::varchar[]) as t(s)", [samples])
    assert got.fetchone()[0] == [s.strip(protect.TRIM) for s in samples]


@settings(max_examples=300, deadline=None)
@given(key_text, key_text, padding, padding)
def test_equal_keys_hash_alike_and_different_keys_apart(a: str, b: str, pad1: str, pad2: str):
    norm_a, norm_b = a.strip(protect.TRIM), b.strip(protect.TRIM)
    ha = _one(protect.hash_trimmed, pad1 + a + pad2)
    hb = _one(protect.hash_trimmed, b)
    if not norm_a:
        assert ha == ""  # nothing to hide
        return
    assert ha == _hash(norm_a)  # HMAC-SHA256 of exactly the trimmed text
    assert re.fullmatch(protect.HASH_PATTERN, ha)
    assert (ha == hb) == (norm_a == norm_b)
    assert _one(protect.hash_trimmed, a, OTHER_KEY) != ha  # keyed: another install, another hash


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-abcdef", min_size=8, max_size=40))
def test_the_hash_never_contains_the_key(text: str) -> None:
    hashed = _one(protect.hash_trimmed, text)
    assert text not in hashed and text.lower() not in hashed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(key_text, padding), max_size=6), st.sampled_from(["\n", "\n\n"]))
def test_delivered_keys_hash_line_by_line(lines: list[tuple[str, str]], newline: str) -> None:
    """``hmac_lines``: each trimmed non-empty line hashed on its own, in order; the result splits
    into exactly the hashes of the keys it holds (what int_card_keys_costed unnests)."""
    text = newline.join(pad + line for line, pad in lines)
    got = _one(protect.hash_lines, text)
    keys = [k for k in (line.strip(protect.TRIM) for line, _ in lines) if k]
    assert got == "\n".join(_hash(k) for k in keys)
    assert re.fullmatch(protect.LINES_PATTERN, got)
    single = [_one(protect.hash_trimmed, k) for k in keys]
    assert (got.split("\n") if got else []) == single


def test_nulls_and_blanks() -> None:
    values = pl.Series("v", [None, "", "   ", "\u3000", " K "], dtype=pl.String)
    assert protect.hash_trimmed(values, KEY).to_list() == [None, "", "", "", _hash("K")]
    lines = pl.Series("v", [None, "", "\n \n", "A\r\nB"], dtype=pl.String)
    # a line break is \n; a \r stays part of its line, as the models' split left it
    assert protect.hash_lines(lines, KEY).to_list() == [
        None,
        "",
        "",
        _hash("A\r") + "\n" + _hash("B"),
    ]


def test_keyed_hash_is_hmac_sha256_of_each_value() -> None:
    """keyed_hash is the reference HMAC for every value, null for null."""
    values = pl.Series("v", ["A", None, "卡密", ""], dtype=pl.String)
    assert protect.keyed_hash(values, KEY).to_list() == [_hash("A"), None, _hash("卡密"), _hash("")]
    assert protect.keyed_hash(pl.Series("v", [], dtype=pl.String), KEY).to_list() == []


SUPPLIER = Contract(
    dataset="s",
    version=1,
    description="",
    owner="",
    group="",
    source={"kind": "supplier"},
    key=("card_secret",),
    path=Path("s.v1.yml"),
    columns=(
        Column("batch_no", "string", nullable=False),
        Column("card_no", "string", protect=Protect("hmac")),
        Column(
            "card_secret",
            "string",
            nullable=False,
            not_blank=True,
            pattern="^[A-Z0-9]{16}$",
            protect=Protect("hmac_of", ("card_no", "card_secret"), "----"),
        ),
    ),
)


def test_rules_judge_the_plaintext_and_nothing_plain_comes_out() -> None:
    """The pattern and not-blank rules see the key itself (quarantine reasons unchanged); both
    outputs hold only hashes, the combined one equal to the shop's `card_no----secret`."""
    secret, number = "ABCDEFGHJKLMNP23", "8200123400001111"
    rows = pl.DataFrame(
        {
            "batch_no": ["b1", "b2", "b3", "b4"],
            "card_no": [f" {number} ", "", None, number],
            "card_secret": [secret, f" {secret}", "", "ABCDE"],
        }
    )
    out = validate(rows, SUPPLIER, dt.datetime(2026, 10, 6, tzinfo=dt.UTC), key=KEY)
    assert out.good.rows() == [("b1", _hash(number), _hash(f"{number}----{secret}"))]
    assert out.quarantined["_rule"].to_list() == [
        "card_secret:bad_format",  # the leading space: judged before trimming, as always
        "card_secret:missing",
        "card_secret:bad_format",
    ]
    records = [json.loads(r) for r in out.quarantined["_record"]]
    assert [r["card_secret"] for r in records] == [_hash(secret), "", _hash(f"{number}----ABCDE")]
    assert [r["card_no"] for r in records] == ["", None, _hash(number)]
    for frame in (out.good, out.quarantined):
        text = frame.write_csv()
        assert secret not in text and number not in text and "ABCDE" not in text


def test_the_shipped_contracts_protect_every_key_column() -> None:
    contracts = load_contracts()
    protected = {(d, c.name): c.protect.form for d, k in contracts.items() for c in k.protected}
    assert protected == {
        ("shop__carmis", "carmi"): "hmac",
        ("substation__card", "secret"): "hmac",
        ("shop__orders", "info"): "hmac_lines",
        ("substation__order", "secret"): "hmac_lines",
        ("supplier__card_batches", "card_no"): "hmac",
        ("supplier__card_batches", "card_secret"): "hmac_of",
    }
    spec = contracts["supplier__card_batches"].column("card_secret").protect
    assert (spec.of, spec.separator) == (("card_no", "card_secret"), "----")


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("{name: k, type: string, protect: sha1}", r"column 'k': protect must be hmac, hmac_lines"),
        ("{name: k, type: string, protect: true}", r"column 'k': protect must be"),
        ("{name: k, type: int, protect: hmac}", r"column 'k': protect needs type string"),
        (
            "{name: k, type: string, protect: {hmac_of: [k], sep: '-'}}",
            r"column 'k': protect must be",
        ),
        (
            "{name: k, type: string, protect: {hmac_of: [n, k], separator: '-'}}",
            r"column 'k': protect.hmac_of names no column 'n'",
        ),
        (
            "{name: k, type: string, protect: {hmac_of: [plain, k], separator: '-'}}",
            r"column 'k': protect.hmac_of combines 'plain', which has no protect",
        ),
        (
            "{name: k, type: string, protect: {hmac_of: [other], separator: '-'}}",
            r"column 'k': protect.hmac_of must include the column itself",
        ),
    ],
)
def test_a_bad_protect_names_the_file_and_the_column(
    tmp_path: Path, column: str, message: str
) -> None:
    path = tmp_path / "x__keys.v1.yml"
    path.write_text(
        "dataset: x__keys\nversion: 1\ndescription: d\nowner: o\ngroup: g\n"
        "source: {kind: database}\nkey: [k]\ncolumns:\n"
        "  - {name: plain, type: string}\n"
        "  - {name: other, type: string, protect: hmac}\n"
        f"  - {column}\n",
        encoding="utf-8",
    )
    with pytest.raises(ContractError, match=re.escape(str(path)) + ": " + message):
        load_contract(path)


def test_the_landed_patterns_accept_hashes_only() -> None:
    h = _hash("K")
    assert re.match(protect.HASH_PATTERN, h) and re.match(protect.HASH_PATTERN, "")
    assert not re.match(protect.HASH_PATTERN, "ABCDEFGHJKLMNP23")
    assert re.match(protect.LINES_PATTERN, f"{h}\n{h}")
    assert not re.match(protect.LINES_PATTERN, f"{h}\nABCDEFGHJKLMNP23")


# --- the key file ------------------------------------------------------------------------------


def test_the_key_is_made_once_privately_in_the_secrets_folder(tmp_path, monkeypatch) -> None:
    from pipelines.lib.settings import secrets_dir

    monkeypatch.setenv("CARDLAKE_SECRETS", str(tmp_path / "secrets"))
    folder = secrets_dir()
    assert folder == (tmp_path / "secrets").resolve()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    key = protect.card_key()
    path = folder / protect.KEY_FILE
    assert protect.key_path() == path and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32 and path.read_text() == key.hex()
    protect._load_key.cache_clear()
    assert protect.card_key() == key  # the same install, the same key (the same lake bytes)


def test_a_damaged_key_file_is_refused(tmp_path) -> None:
    path = tmp_path / protect.KEY_FILE
    path.write_text("not a key\n")
    with pytest.raises(ValueError, match="not a card-key file"):
        protect.card_key(path)


def test_concurrent_first_uses_agree_on_one_secret(tmp_path) -> None:
    """Threads racing to write the secret all return the first linker's value,
    and no reader ever sees a half-written file."""
    path = tmp_path / "deep" / "secret"
    got: list[str] = []
    start = threading.Barrier(8)

    def first_use(n: int) -> None:
        start.wait()
        got.append(secret_once(path, f"value-{n}" * 100))

    threads = [threading.Thread(target=first_use, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and got[0] == path.read_text()
    assert re.fullmatch(r"(value-\d)\1{99}", got[0])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret"]  # no temp left behind
    assert secret_once(path, "later") == got[0]
    assert os.stat(path).st_nlink == 1


def test_a_lake_refuses_keys_hashed_under_another_install_key(tmp_path, monkeypatch):
    from pipelines.lib.lake import Lake
    from pipelines.lib.protect import KeyMismatch, bind_key

    lake = Lake(tmp_path / "lake")
    monkeypatch.setenv("CARDLAKE_SECRETS", str(tmp_path / "install-1"))
    bind_key(lake)
    bind_key(lake)  # the same key again: nothing to say
    monkeypatch.setenv("CARDLAKE_SECRETS", str(tmp_path / "install-2"))  # a lost .state
    with pytest.raises(KeyMismatch, match="another key"):
        bind_key(lake)
