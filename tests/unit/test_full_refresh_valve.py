"""The safety valve of incremental builds: the models are rebuilt in full when the build file is
new, was never built in full by this version of the models, the files the models are defined
by (models, macros, seeds, the project file) changed since the last full build, or a run of
several days holds most of the lake's rows."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from pipelines.lib import dbt
from pipelines.lib.lake import Lake


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for name, text in {
        "models/a.sql": "select 1 as a",
        "macros/m.sql": "{% macro m() %}1{% endmacro %}",
        "seeds/product_coding.csv": "brand,code\nsteam,STM\n",
        "dbt_project.yml": "name: p\n",
        "tests/t.sql": "select 1 where false",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_fingerprint_follows_every_definition_file(project: Path):
    first = dbt.project_fingerprint(project)
    assert dbt.project_fingerprint(project) == first
    (project / "seeds" / "product_coding.csv").write_text("brand,code\nsteam,STE\n")
    assert dbt.project_fingerprint(project) != first
    changed = dbt.project_fingerprint(project)
    (project / "macros" / "m.sql").rename(project / "macros" / "n.sql")
    assert dbt.project_fingerprint(project) != changed


def test_data_tests_and_caches_leave_the_fingerprint_alone(project: Path):
    first = dbt.project_fingerprint(project)
    (project / "tests" / "t.sql").write_text("select 2 where false")
    (project / "models" / "__pycache__").mkdir()
    (project / "models" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert dbt.project_fingerprint(project) == first


def test_the_reason_to_rebuild_in_full(tmp_path: Path, project: Path, monkeypatch):
    monkeypatch.setattr(dbt, "DBT_DIR", project)
    lake = Lake(tmp_path / "lake")
    assert dbt.full_refresh_reason(lake) == "first build of this lake"
    lake.build.mkdir(parents=True)
    lake.build_db.touch()
    assert "never built in full" in dbt.full_refresh_reason(lake)
    dbt.record_full_build(lake)
    assert dbt.full_refresh_reason(lake) is None
    (project / "seeds" / "product_coding.csv").write_text("brand,code\nsteam,STE\n")
    assert "changed since the last full build" in dbt.full_refresh_reason(lake)
    dbt.record_full_build(lake)
    assert dbt.full_refresh_reason(lake) is None
    assert [p.name for p in lake.build.iterdir() if p.name.startswith(".")] == []
    shutil.rmtree(project / "macros")
    assert dbt.full_refresh_reason(lake) is not None


def test_a_run_of_days_holding_most_of_the_lake_is_built_in_full(
    tmp_path: Path, project: Path, monkeypatch
):
    monkeypatch.setattr(dbt, "DBT_DIR", project)
    lake = Lake(tmp_path / "lake")
    lake.build.mkdir(parents=True)
    lake.build_db.touch()
    dbt.record_full_build(lake)
    days = [dt.date(2026, 10, d) for d in range(1, 5)]
    for dataset, landed in (
        ("shop__orders", [100, 100, 100, 100]),
        ("crm__members", [50, 0, 0, 50]),
    ):
        for day, n in zip(days, landed, strict=True):
            path = lake.state_path(dataset, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"landed": n, "read": n}), encoding="utf-8")
    # one day is always incremental, however large; so are a few days holding half or less
    assert dbt.full_refresh_reason(lake, days[-1:]) is None
    assert dbt.landed_share(lake, days[2:]) == 250 / 500
    assert dbt.full_refresh_reason(lake, days[2:]) is None
    # a catch-up of three days of four
    reason = dbt.full_refresh_reason(lake, days[1:])
    assert reason == "the run's 3 days hold 70% of the rows the lake has landed (more than 50%)"
    assert dbt.full_refresh_reason(lake, []) is None
