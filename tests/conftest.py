"""Shared fixtures: small simulated shops, generated once per test session into a temp dir."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.build import Summary, simulate
from simulator.config import SimConfig

SMALL = {"seed": 9, "start": dt.date(2026, 10, 5), "days": 6, "orders_per_day": 800, "skus": 150}


def pytest_configure(config: pytest.Config) -> None:
    """Every run of the cycle records itself in a Dagster instance: the tests' own, one per test
    process (and the ``cardlake`` children it starts), never the project's ``dagster_home/``. The
    card-key hashing key is the test session's own too (``CARDLAKE_SECRETS``), never the
    developer's ``.state/secrets``."""
    import tempfile

    if "DAGSTER_HOME" not in os.environ or Path(os.environ["DAGSTER_HOME"]).resolve() == (
        Path(__file__).resolve().parents[1] / "dagster_home"
    ):
        os.environ["DAGSTER_HOME"] = tempfile.mkdtemp(prefix="cardlake-dagster-")
    os.environ["CARDLAKE_SECRETS"] = tempfile.mkdtemp(prefix="cardlake-secrets-")


def land_days(sources: Path, lake: Path, days: list[dt.date] | None = None):
    """The cycle's landing stage for ``days`` (default: every day the sources hold): a list of
    ``pipelines.cycle.DayLanding``, stopping after a day that failed."""
    from pipelines import cycle

    run = cycle.Cycle.configure(sources, lake)
    return cycle.land(run, cycle.source_days(run) if days is None else days)


def source_days(sources: Path, lake: Path | None = None) -> list[dt.date]:
    from pipelines import cycle

    return cycle.source_days(cycle.Cycle.configure(sources, lake))


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


def cardlake(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The ``cardlake`` command in a child process, as a user runs it (wide output: no wrapping)."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def truth(root: Path, name: str):
    import polars as pl

    return pl.read_parquet(root / "_truth" / f"{name}.parquet")


@dataclasses.dataclass(frozen=True)
class MariaDB:
    port: int
    user: str = "cardlake"
    password: str = "cardlake-test"

    def url(self, database: str) -> str:
        """SQLAlchemy URL over loopback TCP; the database is created on first use."""
        con = self.connect(None)
        with con.cursor() as cur:
            cur.execute(f"create database if not exists `{database}` character set utf8mb4")
        con.close()
        return (
            f"mysql+pymysql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"
            "?charset=utf8mb4"
        )

    def connect(self, database: str | None):
        import pymysql

        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
        )


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """A private MariaDB server on 127.0.0.1 (Debian's mariadb-server, installed by `make setup`),
    with its own data directory, started for the test session and stopped after it."""
    import pymysql

    assert shutil.which("mariadbd"), "mariadb-server is missing: run `make setup`"
    base = tmp_path_factory.mktemp("mariadb")
    data, sock = base / "data", base / "mysqld.sock"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            "--user=root",
            f"--pid-file={base / 'mysqld.pid'}",
            f"--log-error={base / 'error.log'}",
            "--character-set-server=utf8mb4",
            "--innodb-buffer-pool-size=128M",
        ],
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                con = pymysql.connect(unix_socket=str(sock), user="root")
                break
            except pymysql.err.OperationalError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError((base / "error.log").read_text()) from None
                time.sleep(0.2)
        with con.cursor() as cur:
            cur.execute("create user 'cardlake'@'127.0.0.1' identified by 'cardlake-test'")
            cur.execute("grant all on *.* to 'cardlake'@'127.0.0.1'")
        con.close()
        yield MariaDB(port=port)
    finally:
        server.terminate()
        server.wait(timeout=60)


@dataclasses.dataclass(frozen=True)
class ModelledShop:
    cfg: SimConfig
    sources: Path
    lake: Path

    @property
    def build_db(self) -> Path:
        from pipelines.lib.dbt import build_db

        return build_db(self.lake)

    def query(self, sql: str):
        """Run ``sql`` on a read-only connection to dbt's build database; returns a polars frame."""
        import duckdb
        import polars as pl

        with duckdb.connect(str(self.build_db), read_only=True) as con:
            return pl.from_arrow(con.execute(sql).to_arrow_table())


@pytest.fixture(scope="session")
def modelled_shop(
    realistic_shop: tuple[SimConfig, Summary], tmp_path_factory: pytest.TempPathFactory
) -> ModelledShop:
    """The realistic shop landed in a lake and modelled by ``dbt build`` (once per session)."""
    from pipelines.lib.dbt import run_dbt

    cfg, summary = realistic_shop
    lake = tmp_path_factory.mktemp("modelled") / "lake"
    outcomes = land_days(summary.out, lake)
    assert all(o.success for o in outcomes), [o.failures for o in outcomes]
    run_dbt(lake, "build")  # everything, dbt's unit tests included
    return ModelledShop(cfg, summary.out, lake)


@pytest.fixture(scope="session")
def served_shop(modelled_shop: ModelledShop) -> ModelledShop:
    """The modelled shop, published: ``lake/marts`` and ``lake/warehouse.duckdb``."""
    from pipelines.lib.publish import publish

    publish(modelled_shop.lake)
    return modelled_shop


# ------------------------------------------------------------------------------------ Superset
@dataclasses.dataclass(frozen=True)
class SupersetServer:
    """A real Superset (gunicorn, its own env) on loopback, provisioned from ``dashboards/``."""

    url: str
    home: Path
    lake: Path
    admin_password: str

    def login(self, username: str, password: str | None = None):
        """A ``requests`` session logged in through the REST API (JWT), with the CSRF token and
        Referer header Superset wants on writes."""
        from pipelines.lib.superset import ADMIN, api_session, demo_logins

        if password is None:
            if username == ADMIN:
                password = self.admin_password
            else:
                password = dict(demo_logins().values())[username]
        return api_session(self.url, username, password)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _superset_template() -> Path:
    """A metadata DB after ``superset db upgrade`` + ``superset init`` (40 s), made once per
    Superset version and config and copied into every test install (under a lock: xdist)."""
    import fcntl

    from pipelines.lib.superset import ROOT, Superset

    template = ROOT / ".state" / "superset-test-template"
    template.mkdir(parents=True, exist_ok=True)
    with (template.parent / "superset-test-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        Superset(home=template, lake=template).init()
    return template


def open_tickets(lake: Path) -> None:
    """Tickets for the alerts the published shop raises (``lake/ops.duckdb``), as the pipelines
    open them after a publication but with no route (no message is sent), and the first open one
    acknowledged by hand: an event that names no role of its own, as a person's or a message's."""
    from pipelines.lib.tickets import change_state, load_tickets, sync

    sync(lake, {})
    waiting = sorted(t.ticket_id for t in load_tickets(lake).values() if t.state == "open")
    if waiting:
        change_state(lake, waiting[0], "acknowledged", "test", note="checking")


@pytest.fixture(scope="session")
def superset_server(served_shop: ModelledShop, tmp_path_factory) -> Iterator[SupersetServer]:
    """Superset serving the published test shop and its tickets: the template metadata DB, the
    bundle and the roles provisioned, gunicorn started on a free port."""
    from pipelines.lib.superset import Superset, stop, wait_ready

    open_tickets(served_shop.lake)
    template = _superset_template()
    home = tmp_path_factory.mktemp("superset")
    for name in ("superset.db", "initialised", "secret_key"):
        shutil.copy2(template / name, home / name)
    superset = Superset(home=home, lake=served_shop.lake, demo=True)
    superset.provision()
    port = _free_port()
    proc = superset.start(port=port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield SupersetServer(url, home, served_shop.lake, superset.admin_password())
    finally:
        stop(proc)


# ------------------------------------------------------------------------ Feishu / DingTalk robots
@pytest.fixture
def webhook_server():
    """Both group robots (Feishu, DingTalk) on a loopback port, one server per test: records
    every request, checks signatures, answers with the robots' own codes and can be scripted to
    fail (see tests/webhook_server.py)."""
    from tests.webhook_server import WebhookServer

    with WebhookServer() as server:
        yield server
