"""The dbt sources (``dbt_project/models/staging/<system>/__sources.yml``) generated from the contracts.

The contracts in ``schemas/`` are the single source of truth for a raw table's columns and types;
dbt's source declarations are derived from them, never edited by hand. ``make dbt-sources``
rewrites the files and a unit test fails when they drift from the contracts.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.lib.contracts import Contract, load_contracts

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
STAGING_DIR = DBT_DIR / "models" / "staging"
#: contract type → the DuckDB type the column has in the lake
DUCKDB_TYPES = {
    "string": "varchar",
    "int": "bigint",
    "yuan": "bigint",
    "local_datetime": "timestamp with time zone",
    "epoch": "timestamp with time zone",
    "date": "date",
}
LINEAGE_COLUMNS = (
    ("_source", "varchar", "where the row was read: database table or file path"),
    ("_source_version", "varchar", "the extraction window or the file's SHA-256"),
    ("_extracted_at", "timestamp with time zone", "when cardlake read the row (UTC)"),
    (
        "_row_hash",
        "varchar",
        "MD5 of the row's source values (card keys by their keyed hash); one row per version",
    ),
)
FILE_LINEAGE = (("_account", "varchar", "the channel account or supplier the file belongs to"),)
PARTITION_COLUMN = ("business_date", "date", "the lake partition (business day, Asia/Shanghai)")
HEADER = "# Generated from schemas/*.yml by `make dbt-sources`; do not edit by hand.\n"


def source_system(contract: Contract) -> str:
    return contract.dataset.split("__", 1)[0]


def source_columns(contract: Contract) -> list[dict[str, str]]:
    cols = [
        {
            "name": c.landed_name,
            "data_type": DUCKDB_TYPES[c.type],
            "description": _describe(c),
        }
        for c in contract.columns
    ]
    lineage = LINEAGE_COLUMNS + (FILE_LINEAGE if contract.source.get("kind") != "database" else ())
    cols += [{"name": n, "data_type": t, "description": d} for n, t, d in lineage]
    n, t, d = PARTITION_COLUMN
    cols.append({"name": n, "data_type": t, "description": d})
    return cols


def _describe(column) -> str:
    unit = {"yuan": " (integer fen; the source has yuan)", "local_datetime": " (UTC)"}
    unit["epoch"] = " (UTC; the source has unix seconds or a local DATETIME)"
    origin = f"source `{column.source_names[0]}`" if column.source_names else "source column"
    return f"{origin}{unit.get(column.type, '')}{'; PII' if column.pii else ''}{_protected(column)}"


def _protected(column) -> str:
    """How a card-key column lands (schemas/README.md, pipelines/lib/protect.py)."""
    if column.protect is None:
        return ""
    spec = column.protect
    if spec.form == "hmac_lines":
        what = "each trimmed non-empty line, one hash per line"
    elif spec.form == "hmac_of":
        what = f"the trimmed non-blank {', '.join(spec.of)} joined with `{spec.separator}`"
    else:
        what = "the trimmed value"
    return f"; a keyed hash (HMAC-SHA256, hex) of {what}, never the key itself"


def render(contracts: dict[str, Contract] | None = None) -> dict[Path, str]:
    """One ``__sources.yml`` per source system: path → file text."""
    contracts = contracts or load_contracts()
    systems: dict[str, list[Contract]] = {}
    for c in contracts.values():
        systems.setdefault(source_system(c), []).append(c)
    out = {}
    for system, items in sorted(systems.items()):
        tables = [
            {
                "name": c.dataset,
                "description": f"{c.description} Contract: schemas/{c.path.name}.",
                "meta": {"dagster": {"asset_key": [c.asset_name]}, "contract_key": list(c.key)},
                "columns": source_columns(c),
            }
            for c in sorted(items, key=lambda c: c.dataset)
        ]
        doc = {
            "version": 2,
            "sources": [
                {
                    "name": system,
                    "description": f"Raw `{system}` tables as landed in the lake (lake/raw).",
                    "config": {
                        "meta": {
                            "external_location": (
                                "read_parquet('{{ env_var(\"CARDLAKE_LAKE\") }}/raw/{name}/*/*.parquet',"
                                " hive_partitioning = true, union_by_name = true)"
                            )
                        }
                    },
                    "tables": tables,
                }
            ],
        }
        text = HEADER + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
        out[STAGING_DIR / system / "__sources.yml"] = text
    return out


def write() -> list[Path]:
    paths = []
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write():
        print(p.relative_to(DBT_DIR.parent))
