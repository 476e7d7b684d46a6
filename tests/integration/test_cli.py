"""The console script as a newcomer uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import cardlake

pytestmark = pytest.mark.integration


def test_help_explains_the_commands() -> None:
    out = cardlake("--help")
    assert out.returncode == 0
    assert "simulate" in out.stdout and "卡密" in out.stdout
    sim = cardlake("simulate", "--help")
    for option in (
        "--seed",
        "--start",
        "--days",
        "--orders-per-day",
        "--skus",
        "--out",
        "--mess",
        "--shop-db-url",
        "--live",
        "--rate",
    ):
        assert option in sim.stdout


def test_simulate_prints_a_summary(tmp_path: Path) -> None:
    out = cardlake(
        "simulate",
        "--seed",
        "3",
        "--start",
        "2026-11-09",
        "--days",
        "2",
        "--orders-per-day",
        "200",
        "--skus",
        "60",
        "--out",
        str(tmp_path / "s"),
    )
    assert out.returncode == 0, out.stderr
    for text in ("main", "substation", "GMV", "refunds", "Anomalies injected", "order_no_affix"):
        assert text in out.stdout
    assert (tmp_path / "s" / "db" / "shop_main.sqlite").exists()


def test_bad_options_get_a_clear_error(tmp_path: Path) -> None:
    out = cardlake("simulate", "--mess", "chaos", "--out", str(tmp_path / "x"))
    assert out.returncode != 0 and "none, realistic or hostile" in (out.stdout + out.stderr)
    out = cardlake("simulate", "--start", "2026-13-01", "--out", str(tmp_path / "x"))
    assert out.returncode != 0
    assert not (tmp_path / "x").exists()


def test_run_without_readable_sources_says_why(tmp_path: Path) -> None:
    (tmp_path / "sources" / "crm").mkdir(parents=True)
    out = cardlake("run", "--sources", str(tmp_path / "sources"), "--lake", str(tmp_path / "lake"))
    assert out.returncode == 2
    assert "shop database not found" in out.stdout and "Traceback" not in out.stdout + out.stderr
    out = cardlake("run", "--sources", str(tmp_path / "nowhere"), "--lake", str(tmp_path / "lake"))
    assert out.returncode == 2 and "no sources at" in out.stdout
