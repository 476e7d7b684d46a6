"""The dashboards are code: provisioning is idempotent and an export round trip is a clean diff."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.lib.superset import BUNDLE, Superset

pytestmark = pytest.mark.integration


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*.yaml"))
        if p.is_file()
    }


@pytest.fixture
def superset(superset_server) -> Superset:
    """The test server's install, provisioned again: other tests on it may have edited assets
    (provisioning overwrites every asset of the bundle by UUID)."""
    superset = Superset(home=superset_server.home, lake=superset_server.lake, demo=True)
    superset.provision()
    return superset


def test_export_of_an_unchanged_install_is_the_bundle(superset, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    changed = superset.export(bundle)
    assert changed == [], changed
    assert _tree(bundle) == _tree(BUNDLE)


def test_a_change_in_the_ui_exports_as_that_change_only(superset, superset_server, tmp_path):
    admin = superset_server.login("admin")
    url = superset_server.url
    dashboard = admin.get(f"{url}/api/v1/dashboard/quality", timeout=30).json()["result"]
    title = dashboard["dashboard_title"]
    r = admin.put(
        f"{url}/api/v1/dashboard/{dashboard['id']}",
        json={"dashboard_title": f"{title}（测试）"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    try:
        changed = superset.export(bundle)
        assert changed == ["dashboards/quality.yaml"], changed
        exported = yaml.safe_load((bundle / "dashboards/quality.yaml").read_text(encoding="utf-8"))
        original = yaml.safe_load((BUNDLE / "dashboards/quality.yaml").read_text(encoding="utf-8"))
        assert exported["dashboard_title"] == f"{title}（测试）"
        exported["dashboard_title"] = original["dashboard_title"]
        assert exported == original
        same = filecmp.dircmp(bundle / "charts", BUNDLE / "charts")
        assert not same.diff_files and not same.left_only and not same.right_only
    finally:
        # provisioning puts the bundle back: it overwrites by UUID
        superset.provision()
    restored = admin.get(f"{url}/api/v1/dashboard/quality", timeout=30).json()["result"]
    assert restored["dashboard_title"] == title
