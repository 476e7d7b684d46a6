"""Secrets made once per install: the same value on every later read, readable by the owner only."""

from __future__ import annotations

import stat

import pytest

from pipelines.lib.superset import Superset

pytestmark = pytest.mark.unit


def test_admin_password_is_made_once_and_kept_private(tmp_path):
    superset = Superset(home=tmp_path / "home", lake=tmp_path / "lake")
    first = superset.admin_password()
    assert len(first) >= 20
    assert Superset(home=tmp_path / "home", lake=tmp_path / "other").admin_password() == first
    path = tmp_path / "home" / "admin_password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["admin_password"]  # no temp file left
