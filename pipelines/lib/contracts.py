"""Data contracts (``schemas/<dataset>.v<N>.yml``) and the row validator built from them.

A contract lists a source table's columns with their type, nullability, allowed values, formats
and ranges. ``validate`` takes the rows as read (all text, exactly as the source had them),
converts each column to its type and checks every rule as a whole-column expression; a row that
breaks a rule goes to quarantine with the first rule it broke, a readable reason and the original
record as JSON, and every other row comes out typed: money in integer fen (``<name>_fen``),
timestamps in UTC. A column marked ``protect`` (card keys) is checked on its plaintext, then lands,
in both outputs, as its keyed hash (``pipelines/lib/protect.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from pipelines.lib import protect as _protect
from pipelines.lib.calendar import BUSINESS_TZ

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
#: earliest plausible timestamp in any source; anything before is a broken value (zero dates, 0)
PLAUSIBLE_AFTER = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: a timestamp later than the extraction time plus this is "in the future" (a broken clock)
FUTURE_TOLERANCE = dt.timedelta(days=1)

TYPES = {"string", "int", "yuan", "local_datetime", "epoch", "date"}
#: the single-column forms of ``protect`` (the third, ``{hmac_of: [...], separator: ...}``, combines
#: several columns); see pipelines/lib/protect.py
PROTECT_FORMS = ("hmac", "hmac_lines")
PROTECT_SYNTAX = "hmac, hmac_lines or {hmac_of: [<column>, ...], separator: <text>}"


class ContractError(ValueError):
    """A contract that cannot be used; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class Protect:
    """How a column's values are replaced by a keyed hash at landing (``protect:``)."""

    form: str  # hmac | hmac_lines | hmac_of
    of: tuple[str, ...] = ()  # hmac_of: the columns whose trimmed non-blank values are joined
    separator: str = ""

    @classmethod
    def parse(cls, value: Any) -> Protect:
        if isinstance(value, str) and value in PROTECT_FORMS:
            return cls(value)
        if isinstance(value, dict) and set(value) == {"hmac_of", "separator"}:
            names, separator = value["hmac_of"], value["separator"]
            if (
                isinstance(names, list)
                and names
                and all(isinstance(n, str) and n for n in names)
                and len(set(names)) == len(names)
                and isinstance(separator, str)
            ):
                return cls("hmac_of", tuple(names), separator)
        raise ValueError(f"protect must be {PROTECT_SYNTAX}, not {value!r}")


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    source_names: tuple[str, ...] = ()
    allowed: tuple[Any, ...] | None = None
    pattern: str | None = None
    reject_pattern: str | None = None
    reject_rule: str | None = None
    not_blank: bool = False
    not_future: bool = False
    min: float | None = None
    min_exclusive: float | None = None
    references: str | None = None
    formats: tuple[str, ...] = ()
    pii: bool = False
    protect: Protect | None = None

    @property
    def landed_name(self) -> str:
        """The column's name in the lake: money gets its unit suffix."""
        return f"{self.name}_fen" if self.type == "yuan" else self.name

    @property
    def landed_dtype(self) -> pl.DataType:
        return {
            "string": pl.String(),
            "int": pl.Int64(),
            "yuan": pl.Int64(),
            "local_datetime": pl.Datetime("us", "UTC"),
            "epoch": pl.Datetime("us", "UTC"),
            "date": pl.Date(),
        }[self.type]


@dataclasses.dataclass(frozen=True)
class Contract:
    dataset: str
    version: int
    description: str
    owner: str
    group: str
    source: dict[str, Any]
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    path: Path

    @property
    def asset_name(self) -> str:
        return f"raw_{self.dataset}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def landed_schema(self) -> dict[str, pl.DataType]:
        return {c.landed_name: c.landed_dtype for c in self.columns}

    @property
    def protected(self) -> list[Column]:
        """The columns that land as a keyed hash of their text (card keys)."""
        return [c for c in self.columns if c.protect]


def _column(spec: dict[str, Any]) -> Column:
    unknown = set(spec) - {f.name for f in dataclasses.fields(Column)} - {"source_name"}
    if unknown:
        raise ValueError(f"column {spec.get('name')!r}: unknown keys {sorted(unknown)}")
    if spec["type"] not in TYPES:
        raise ValueError(f"column {spec['name']!r}: unknown type {spec['type']!r}")
    source = spec.pop("source_name", None)
    names = tuple(source) if isinstance(source, list) else ((source,) if source else ())
    for key in ("allowed", "formats"):
        if spec.get(key) is not None:
            spec[key] = tuple(spec[key])
    if spec.get("protect") is not None:
        try:
            spec["protect"] = Protect.parse(spec["protect"])
        except ValueError as exc:
            raise ValueError(f"column {spec['name']!r}: {exc}") from None
        if spec["type"] != "string":
            raise ValueError(
                f"column {spec['name']!r}: protect needs type string, not {spec['type']!r}"
            )
    return Column(**spec, source_names=names)


def _check_protect(columns: tuple[Column, ...]) -> None:
    """An ``hmac_of`` column combines columns of the contract, itself among them, and each of
    them lands protected too (or its plaintext would stay in the lake beside the hash)."""
    by_name = {c.name: c for c in columns}
    for col in columns:
        if col.protect is None or col.protect.form != "hmac_of":
            continue
        for name in col.protect.of:
            if name not in by_name:
                raise ValueError(f"column {col.name!r}: protect.hmac_of names no column {name!r}")
            if by_name[name].protect is None:
                raise ValueError(
                    f"column {col.name!r}: protect.hmac_of combines {name!r}, which has no "
                    "protect of its own: its plaintext would stay in the lake"
                )
        if col.name not in col.protect.of:
            raise ValueError(f"column {col.name!r}: protect.hmac_of must include the column itself")


def load_contract(path: Path) -> Contract:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        columns = tuple(_column(dict(c)) for c in raw["columns"])
        _check_protect(columns)
    except ValueError as exc:
        raise ContractError(f"{path}: {exc}") from None
    return Contract(
        dataset=raw["dataset"],
        version=int(raw["version"]),
        description=" ".join(str(raw["description"]).split()),
        owner=raw["owner"],
        group=raw["group"],
        source=raw["source"],
        key=tuple(raw["key"]),
        columns=columns,
        path=path,
    )


@functools.cache
def load_contracts(directory: Path = SCHEMAS_DIR) -> dict[str, Contract]:
    """Every contract, latest version per dataset."""
    out: dict[str, Contract] = {}
    for path in sorted(directory.glob("*.v*.yml")):
        contract = load_contract(path)
        if contract.dataset not in out or out[contract.dataset].version < contract.version:
            out[contract.dataset] = contract
    return out


# --- validation --------------------------------------------------------------------------------


@dataclasses.dataclass
class Validated:
    good: pl.DataFrame  # typed rows, contract columns in order, plus any lineage columns
    quarantined: pl.DataFrame  # _record (JSON of the text row), _rule, _reason, plus lineage


def _local_datetime(text: pl.Expr) -> pl.Expr:
    """Naive Asia/Shanghai text → UTC. ``%.f``: an optional fraction (a MySQL DATETIME(6) column
    reads back as ``…:14.000000``)."""
    return (
        text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False)
        .dt.replace_time_zone(BUSINESS_TZ, non_existent="null", ambiguous="earliest")
        .dt.convert_time_zone("UTC")
    )


def _parse(col: Column) -> pl.Expr:
    """Text → the column's type; a value that does not parse becomes null."""
    text = pl.col(col.name).cast(pl.String).str.strip_chars()
    text = pl.when(text == "").then(None).otherwise(text)
    if col.type == "string":
        return pl.col(col.name).cast(pl.String)
    if col.type == "int":
        return text.cast(pl.Float64, strict=False).pipe(
            lambda f: pl.when(f == f.round(0)).then(f.cast(pl.Int64, strict=False))
        )
    if col.type == "yuan":
        # exact to the fen for any value a shop stores with two decimals
        return (text.cast(pl.Float64, strict=False) * 100).round(0).cast(pl.Int64, strict=False)
    if col.type == "local_datetime":
        return _local_datetime(text)
    if col.type == "epoch":
        # unix seconds (acg-faka before its DATETIME columns), else the DATETIME text it stores now
        seconds = text.cast(pl.Int64, strict=False)
        return pl.coalesce(
            pl.from_epoch(seconds, time_unit="s")
            .dt.replace_time_zone("UTC")
            .cast(pl.Datetime("us", "UTC")),
            _local_datetime(text),
        )
    if col.type == "date":
        formats = col.formats or ("%Y-%m-%d",)
        return pl.coalesce([text.str.strptime(pl.Date, f, strict=False) for f in formats])
    raise AssertionError(col.type)


def _rules(
    col: Column, parsed: pl.Expr, reference: dt.datetime | None
) -> list[tuple[str, pl.Expr, str]]:
    """(rule, violated?, reason) in the order they are checked."""
    raw = pl.col(col.name).cast(pl.String)
    blank = raw.str.strip_chars() == ""
    rules: list[tuple[str, pl.Expr, str]] = []
    if not col.nullable:
        rules.append(
            (
                "missing",
                raw.is_null() | (blank if col.type != "string" else pl.lit(False)),
                f"{col.name} is missing",
            )
        )
    if col.not_blank:
        rules.append(("missing", raw.is_null() | blank, f"{col.name} is empty"))
    if col.type != "string":
        rules.append(
            (
                "unparsable",
                raw.is_not_null() & ~blank & parsed.is_null(),
                f"{col.name} is not a valid {col.type.replace('_', ' ')}",
            )
        )
    if col.type in ("local_datetime", "epoch"):
        rules.append(
            (
                "implausible",
                parsed < PLAUSIBLE_AFTER,
                f"{col.name} is before {PLAUSIBLE_AFTER:%Y-%m-%d}",
            )
        )
        if col.not_future and reference is not None:
            limit = reference + FUTURE_TOLERANCE
            rules.append(
                (
                    "future",
                    parsed > limit,
                    f"{col.name} is in the future (more than a day after it was read)",
                )
            )
    if col.allowed is not None:
        allowed = list(col.allowed)
        value = parsed if col.type == "int" else raw
        rules.append(
            (
                "not_allowed",
                value.is_not_null() & ~value.is_in(allowed),
                f"{col.name} is not one of {allowed}",
            )
        )
    if col.pattern:
        rules.append(
            (
                "bad_format",
                raw.is_not_null() & ~blank & ~raw.str.contains(col.pattern),
                f"{col.name} does not match {col.pattern}",
            )
        )
    if col.reject_pattern:
        rules.append(
            (
                col.reject_rule or "rejected",
                raw.is_not_null() & raw.str.contains(col.reject_pattern),
                f"{col.name} marks a {(col.reject_rule or 'rejected').replace('_', ' ')}",
            )
        )
    if col.min is not None:
        rules.append(
            (
                "out_of_range",
                parsed < col.min * (100 if col.type == "yuan" else 1),
                f"{col.name} is below {col.min}",
            )
        )
    if col.min_exclusive is not None:
        rules.append(
            (
                "out_of_range",
                parsed <= col.min_exclusive * (100 if col.type == "yuan" else 1),
                f"{col.name} must be above {col.min_exclusive}",
            )
        )
    if col.references:
        flag = pl.col(f"_ref_{col.name}")
        rules.append(
            (
                "unknown_reference",
                raw.is_not_null() & (flag == "0"),
                f"{col.name} refers to no {col.references}",
            )
        )
    return rules


def validate(
    rows: pl.DataFrame,
    contract: Contract,
    reference: dt.datetime | None = None,
    lineage: tuple[str, ...] = (),
    key: bytes | None = None,
) -> Validated:
    """Split ``rows`` (text columns named as in the contract) into typed good rows and quarantine.

    ``reference`` is the extraction time: a timestamp more than a day after it is "in the future".
    ``lineage`` columns are carried through to both outputs unchanged. Columns of the contract
    missing from ``rows`` are treated as null (a legacy layout without them). The rules judge a
    protected column's plaintext; both outputs carry its keyed hash instead (under ``key``,
    default the install's; taken from ``__protected_<name>`` when ``rows`` already has it).
    """
    missing = [c.name for c in contract.columns if c.name not in rows.columns]
    if missing:
        rows = rows.with_columns([pl.lit(None, dtype=pl.String).alias(m) for m in missing])
    rows = _protect.with_protected(rows, contract, key)
    # parse every column once into a temporary column; the rules and the output read those
    tmp = {c.name: f"__parsed_{i}" for i, c in enumerate(contract.columns)}
    rows = rows.with_columns(_parse(c).alias(tmp[c.name]) for c in contract.columns)
    checks: list[tuple[str, pl.Expr, str]] = []
    for col in contract.columns:
        checks.extend(
            (f"{col.name}:{rule}", expr.fill_null(False), reason)
            for rule, expr, reason in _rules(col, pl.col(tmp[col.name]), reference)
        )
    any_broken = (
        pl.any_horizontal([violated for _, violated, _ in checks]) if checks else pl.lit(False)
    )
    judged = rows.with_columns(__broken=any_broken)
    good = judged.filter(~pl.col("__broken"))
    # naming the first rule broken is only needed for the few bad rows
    bad = judged.filter(pl.col("__broken"))
    rule_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    reason_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, violated, reason in reversed(checks):  # the first rule broken wins
        rule_expr = pl.when(violated).then(pl.lit(name)).otherwise(rule_expr)
        reason_expr = pl.when(violated).then(pl.lit(reason)).otherwise(reason_expr)

    def as_recorded(c: Column) -> pl.Expr:
        return pl.col(_protect.PREFIX + c.name) if c.protect else pl.col(c.name).cast(pl.String)

    quarantined = bad.select(
        pl.struct([as_recorded(c).alias(c.name) for c in contract.columns])
        .struct.json_encode()
        .alias("_record"),
        rule_expr.alias("_rule"),
        reason_expr.alias("_reason"),
        *lineage,
    )
    typed = good.select(
        *[
            (pl.col(_protect.PREFIX + c.name) if c.protect else pl.col(tmp[c.name]))
            .cast(c.landed_dtype)
            .alias(c.landed_name)
            for c in contract.columns
        ],
        *lineage,
    )
    return Validated(good=typed, quarantined=quarantined)
