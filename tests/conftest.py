"""Shared fixtures: small simulated shops, generated once per test session into a temp dir."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from simulator.config import SimConfig
from simulator.run import Summary, simulate

SMALL = {"seed": 7, "start": dt.date(2026, 10, 5), "days": 6, "orders_per_day": 800, "skus": 150}


@pytest.fixture(scope="session")
def realistic_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimConfig, Summary]:
    cfg = SimConfig(**SMALL, mess="realistic")
    return cfg, simulate(cfg, tmp_path_factory.mktemp("realistic") / "sources")


@pytest.fixture(scope="session")
def hostile_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimConfig, Summary]:
    cfg = SimConfig(**{**SMALL, "days": 8}, mess="hostile")
    return cfg, simulate(cfg, tmp_path_factory.mktemp("hostile") / "sources")


@pytest.fixture(scope="session")
def clean_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimConfig, Summary]:
    cfg = SimConfig(**SMALL, mess="none")
    return cfg, simulate(cfg, tmp_path_factory.mktemp("clean") / "sources")


def truth(root: Path, name: str):
    import polars as pl

    return pl.read_parquet(root / "_truth" / f"{name}.parquet")
