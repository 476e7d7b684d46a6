"""``cardlake serve`` in production mode, as an operator starts it and an attacker on the network
meets it: no demo login, no password printed, sign-in throttled across the server's workers, the
state folder private, and no listening beyond loopback unless asked for."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pipelines.lib.superset import ADMIN, Superset, SupersetError, demo_logins, wait_ready
from tests.conftest import _free_port, _superset_template, cardlake

pytestmark = pytest.mark.integration

SERVE = (sys.executable, "-m", "pipelines.cli", "serve", "--dagster-port", "0")
#: the production sign-in limit (dashboards/superset_config.py), per client address
LIMIT = 5


def _login(url: str, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/security/login",
        json={"username": username, "password": password, "provider": "db"},
        timeout=30,
    )


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """A demo's install (demo logins made), then served by plain ``cardlake serve``."""
    root = tmp_path_factory.mktemp("production")
    home, lake = root / "home", root / "lake"
    home.mkdir()
    template = _superset_template()
    for name in ("superset.db", "initialised", "secret_key"):
        shutil.copy2(template / name, home / name)
    Superset(home=home, lake=lake, demo=True).provision()  # what a demo leaves behind
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "CARDLAKE_LOGIN_RATE_LIMIT"}
    proc = subprocess.Popen(
        [*SERVE, "--lake", str(lake), "--home", str(home), "--superset-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "COLUMNS": "200"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, timeout=240)
        # the table follows readiness: wait for serve to print it
        deadline = time.monotonic() + 60
        out = ""
        while "Ctrl-C" not in out and time.monotonic() < deadline:
            out += proc.stdout.readline()
        yield url, home, out
    except SupersetError:
        proc.kill()
        pytest.fail(proc.stdout.read())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def test_production_has_no_demo_login_and_prints_no_password(production):
    url, home, out = production
    password = (home / "admin_password").read_text(encoding="ascii").strip()
    assert password not in out
    assert str(home / "admin_password") in out
    with sqlite3.connect(home / "superset.db") as con:
        users = {u for (u,) in con.execute("select username from ab_user")}
    assert users == {ADMIN}, users
    for user, demo_password in demo_logins().values():
        assert f"{user} / {demo_password}" not in out
    # no password travels in the server's environment
    for pid in subprocess.run(
        ["pgrep", "-f", url.rsplit(":", 1)[1]], capture_output=True, text=True
    ).stdout.split():
        environ = Path(f"/proc/{pid}/environ")
        if environ.exists():
            assert password.encode() not in environ.read_bytes()


def test_sign_in_is_throttled_from_the_limit_on(production):
    url, home, _ = production
    user, demo_password = demo_logins()["Analyst"]
    first = _login(url, user, demo_password)
    assert first.status_code == 401, first.text  # the demo's analyst login is refused
    codes = [first.status_code] + [_login(url, ADMIN, f"wrong-{i}").status_code for i in range(19)]
    assert codes[:LIMIT] == [401] * LIMIT, codes
    assert codes[LIMIT:] == [429] * (20 - LIMIT), codes
    throttled = _login(url, ADMIN, "wrong")
    assert int(throttled.headers["Retry-After"]) > 0
    # the right password is throttled too until the window passes: no guessing around it
    right = (home / "admin_password").read_text(encoding="ascii").strip()
    assert _login(url, ADMIN, right).status_code == 429


def test_the_state_folder_is_private(production):
    _, home, _ = production
    assert home.stat().st_mode & 0o777 == 0o700
    for name in ("superset.db", "admin_password", "secret_key", "ratelimit.db"):
        assert (home / name).stat().st_mode & 0o777 == 0o600, name


def test_serving_beyond_loopback_needs_to_be_asked_for(tmp_path):
    out = cardlake("serve", "--lake", str(tmp_path / "lake"), "--host", "0.0.0.0")
    assert out.returncode == 2
    assert "--expose" in out.stdout + out.stderr
    assert not (tmp_path / "lake").exists()  # refused before anything was made
