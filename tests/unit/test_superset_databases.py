"""The bundle's two databases (the warehouse and the tickets file): their URIs filled in from the
lake at provisioning and templated again on export, and the tickets file made on a fresh lake so
that the alerts dashboard shows no data rather than an error."""

from __future__ import annotations

import importlib.util

import duckdb
import pytest
import yaml

from pipelines.lib.superset import BUNDLE, PROVISION, Superset

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def provision():
    """dashboards/provision.py (Superset's environment runs it; its bundle helpers import here)."""
    spec = importlib.util.spec_from_file_location("provision", PROVISION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_database_uri_is_filled_in_and_templated_again(provision, tmp_path):
    lake = tmp_path / "lake"
    contents = provision.load_contents(BUNDLE, str(lake))
    uris = {
        name: yaml.safe_load(text)["sqlalchemy_uri"]
        for name, text in contents.items()
        if name.startswith("databases/")
    }
    assert uris == {
        "databases/cardlake.yaml": f"duckdb:///{lake}/warehouse.duckdb",
        "databases/cardlake_ops.yaml": f"duckdb:///{lake}/ops.duckdb",
    }
    for name, uri in uris.items():
        bundled = yaml.safe_load((BUNDLE / name).read_text(encoding="utf-8"))["sqlalchemy_uri"]
        assert provision._templated_uri(uri) == bundled
    with pytest.raises(SystemExit):
        provision._templated_uri("postgresql://user@host/db")


def test_a_fresh_lake_gets_an_empty_tickets_file(tmp_path):
    superset = Superset(home=tmp_path / "home", lake=tmp_path / "lake")
    superset.ensure_ops_db()
    path = tmp_path / "lake" / "ops.duckdb"
    spec = yaml.safe_load((BUNDLE / "databases" / "cardlake_ops.yaml").read_text(encoding="utf-8"))
    args = spec["extra"]["engine_params"]["connect_args"]
    with duckdb.connect(str(path), read_only=args["read_only"], config=args["config"]) as con:
        counts = con.execute(
            "select (select count(*) from tickets), (select count(*) from ticket_events)"
        ).fetchall()
    assert counts == [(0, 0)]
    made = path.stat().st_mtime_ns
    superset.ensure_ops_db()  # an existing file is the pipelines' to rebuild, not provisioning's
    assert path.stat().st_mtime_ns == made
