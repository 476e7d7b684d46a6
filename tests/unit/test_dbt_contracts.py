"""The contracts in schemas/ and the dbt project agree: the dbt sources are generated from the
contracts (and committed as generated), and every contract column reaches its staging model or is
dropped there on purpose, with the reason written down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipelines.lib.contracts import load_contracts
from pipelines.lib.dbt import mart_keys
from pipelines.lib.dbt_sources import DUCKDB_TYPES, STAGING_DIR, render

pytestmark = pytest.mark.unit


def test_dbt_sources_are_generated_from_the_contracts() -> None:
    for path, text in render().items():
        assert path.exists(), f"{path} missing: run `make dbt-sources`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `make dbt-sources`"


def _staging_models() -> dict[str, tuple[Path, dict]]:
    """dataset → (staging model SQL, its YAML) for the models that read a contract's source."""
    out = {}
    for sql in sorted(STAGING_DIR.glob("*/stg_*.sql")):
        m = re.search(r"source\('(\w+)', '(\w+)'\)", sql.read_text(encoding="utf-8"))
        if not m:
            continue
        doc = yaml.safe_load(sql.with_suffix(".yml").read_text(encoding="utf-8"))
        out.setdefault(m.group(2), []).append((sql, doc["models"][0]))
    return out


def test_every_contract_column_reaches_staging_or_is_dropped_with_a_reason() -> None:
    contracts = load_contracts()
    staging = _staging_models()
    assert set(contracts) <= set(staging), set(contracts) - set(staging)
    for dataset, contract in contracts.items():
        landed = {c.landed_name: c for c in contract.columns}
        for _sql, model in staging[dataset]:
            used: set[str] = set()
            for col in model["columns"]:
                src = col.get("meta", {}).get("source_column")
                names = src if isinstance(src, list) else [src] if src else []
                for name in names:
                    assert name in landed or name.startswith("_") or name == "business_date", (
                        f"{model['name']}.{col['name']}: unknown source column {name}"
                    )
                    used.add(name)
                # a column taken over under its own name keeps the contract's type (or becomes
                # the boolean an 0/1 flag stands for)
                if names == [col["name"]] and col["name"] in landed:
                    source_type = DUCKDB_TYPES[landed[col["name"]].type]
                    flag = source_type == "bigint" and col["data_type"] == "boolean"
                    assert col["data_type"] == source_type or flag, (
                        f"{model['name']}.{col['name']}: {col['data_type']}"
                    )
            dropped = model.get("meta", {}).get("dropped_columns", {})
            assert all(isinstance(r, str) and r for r in dropped.values())
            assert not set(dropped) & used, (
                f"{model['name']}: dropped and used {set(dropped) & used}"
            )
            missing = set(landed) - used - set(dropped)
            assert not missing, f"{model['name']} neither uses nor drops {sorted(missing)}"


def test_staging_models_declare_enforced_columns() -> None:
    project = yaml.safe_load((STAGING_DIR.parents[1] / "dbt_project.yml").read_text())
    assert project["models"]["cardlake"]["staging"]["+contract"] == {"enforced": True}
    for sql in STAGING_DIR.glob("*/stg_*.sql"):
        doc = yaml.safe_load(sql.with_suffix(".yml").read_text(encoding="utf-8"))
        model = doc["models"][0]
        assert model["name"] == sql.stem and model["description"]
        assert all(c.get("data_type") and c.get("description") for c in model["columns"])


def test_a_marts_key_is_a_column_tested_unique_and_not_null() -> None:
    """Publishing sorts a mart's Parquet rows by its key alone: only a column both tests hold
    for can be one (a total order, so the same rows give the same bytes)."""
    keys = mart_keys()
    assert keys["fct_orders"] == "order_no" and keys["dim_users"] == "user_key"
    assert "kpi_sales_daily" not in keys  # no single-column key: sorted by every column
    marts = STAGING_DIR.parent / "marts"
    for mart, key in keys.items():
        (path,) = marts.rglob(f"{mart}.yml")
        (model,) = [m for m in yaml.safe_load(path.read_text())["models"] if m["name"] == mart]
        (column,) = [c for c in model["columns"] if c["name"] == key]
        assert {"unique", "not_null"} <= set(column["data_tests"]), (mart, key)
