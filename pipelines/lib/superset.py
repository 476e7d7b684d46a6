"""Running Superset for cardlake: its own environment, its state folder, provisioning, the server.

Superset cannot share the pipelines' environment (it pins SQLAlchemy 1.4, pandas 2.1 and pyarrow
18), so it lives in ``.venv-superset`` (``make setup``) and everything here drives it through child
processes: ``superset db upgrade`` / ``superset init`` once per install (and after an upgrade),
``dashboards/provision.py`` for the bundle, the roles and the users, and gunicorn for the web app.

The state folder (``.state/superset`` by default, git-ignored) holds the SQLite metadata DB, the
caches, the secret key and the generated admin password; nothing there is ever committed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.lib.lake import Lake
from pipelines.lib.secret_files import secret_once
from pipelines.lib.settings import ReaderLimits, file_umask, narrow

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-superset"
BUNDLE = ROOT / "dashboards"
CONFIG = BUNDLE / "superset_config.py"
PROVISION = BUNDLE / "provision.py"
ROLES = BUNDLE / "roles.yml"
ADMIN = "admin"
#: the prefix of provision.py's own output lines
REPORT = "cardlake: "
#: the operator's ``SUPERSET_*`` variables Superset's processes see (the config reads them);
#: other settings go through ``CARDLAKE_SUPERSET_OVERRIDES`` (docs/security.md)
PASSED_THROUGH = frozenset({"SUPERSET_SECRET_KEY"})


class SupersetError(RuntimeError):
    """Superset could not be set up, provisioned or started; the message says what failed."""


@dataclass(frozen=True)
class Superset:
    """One Superset install: its state folder and the lake it serves."""

    home: Path
    lake: Path
    venv: Path = VENV
    #: the demo's mode: demo logins, a sign-in limit high enough for a demo's many logins
    demo: bool = False
    #: served through a reverse proxy that terminates HTTPS (trust X-Forwarded-*, Secure cookies)
    behind_proxy: bool = False

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        """The environment of every Superset child process: this install's settings (never a
        password: the admin's is read from its file), the reader bounds, and of the operator's
        ``SUPERSET_*`` variables only those ``PASSED_THROUGH``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VIRTUAL_ENV", "PYTHON", "SUPERSET_", "FLASK_"))
            or k in PASSED_THROUGH
        }
        limits = ReaderLimits.from_env()
        env.update(
            {
                "SUPERSET_CONFIG_PATH": str(CONFIG),
                "CARDLAKE_SUPERSET_HOME": str(self.home),
                "CARDLAKE_LAKE": str(self.lake),
                "CARDLAKE_SUPERSET_MODE": "demo" if self.demo else "production",
                "CARDLAKE_SUPERSET_BEHIND_PROXY": "1" if self.behind_proxy else "0",
                "CARDLAKE_READER_MEMORY": limits.memory,
                "CARDLAKE_READER_THREADS": str(limits.threads),
                "CARDLAKE_READER_TEMP": limits.temp,
                "CARDLAKE_READER_SPILL": str(Lake.of(self.lake).reader_temp),
                "FLASK_APP": "superset",
                "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env

    @property
    def admin_password_file(self) -> Path:
        return self.home / "admin_password"

    def admin_password(self) -> str:
        """Generated once per install, kept (mode 600) in the state folder."""
        return secret_once(self.admin_password_file, secrets.token_urlsafe(18))

    def _run(self, *args: str, what: str) -> str:
        if not (self.bin / "superset").exists():
            raise SupersetError(
                f"Superset's environment is missing ({self.venv}): run `make setup`"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        narrow(self.home)  # the metadata DB holds password hashes, the folder the secret key
        result = subprocess.run(
            list(args),
            env=self.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            umask=file_umask(),
        )
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-25:])
            raise SupersetError(f"{what} failed (exit {result.returncode}):\n{tail}")
        return result.stdout

    def init(self) -> bool:
        """Create or upgrade the metadata DB and Superset's own permissions; skipped when this
        install already ran it for the installed Superset and config (returns whether it ran)."""
        stamp = self.home / "initialised"
        version = subprocess.run(
            [str(self.bin / "python"), "-c", "import superset; print(superset.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        key = f"{version} {CONFIG.stat().st_mtime_ns}"
        if stamp.exists() and stamp.read_text(encoding="utf-8") == key:
            return False
        self._run(str(self.bin / "superset"), "db", "upgrade", what="superset db upgrade")
        self._run(str(self.bin / "superset"), "init", what="superset init")
        self.checkpoint()
        stamp.write_text(key, encoding="utf-8")
        return True

    def checkpoint(self) -> None:
        """Fold the metadata DB's write-ahead log into the file (the config runs it in WAL mode),
        so that the file alone is the whole database: a copy of it (the tests' template) misses
        nothing."""
        db = self.home / "superset.db"
        if db.exists():
            with contextlib.closing(sqlite3.connect(db)) as con:
                con.execute("pragma wal_checkpoint(truncate)")

    def provision(self, rotate_admin_password: bool = False) -> str:
        """Import the bundle, rebuild the roles, create the admin (its password from its file)
        and, in demo mode, (re)create the demo users; outside it, remove any a demo left. With
        ``rotate_admin_password`` a fresh admin password replaces the file's and the account's."""
        self.admin_password()  # made before provisioning reads it
        if rotate_admin_password:
            self.admin_password_file.unlink()
            self.admin_password()
        self.init()
        self.ensure_ops_db()
        args = [str(self.bin / "python"), str(PROVISION), "import"]
        args.append("--demo-users" if self.demo else "--no-demo-users")
        if rotate_admin_password:
            args.append("--reset-admin-password")
        return "\n".join(_reported(self._run(*args, what="provisioning the dashboards")))

    def ensure_ops_db(self) -> None:
        """The tickets file the alerts dashboard reads (``lake/ops.duckdb``), built from the
        ticket log (empty on a fresh lake) when the lake has none yet: its charts then show no
        data rather than an error. Built here because the builder lives in this environment."""
        from pipelines.lib.tickets import refresh_ops_db
        from pipelines.lib.writer import writing

        if not Lake(self.lake).ops_db.exists():
            with writing(self.lake, what="cardlake dashboards provision"):
                refresh_ops_db(self.lake)

    def export(self, bundle: Path = BUNDLE) -> list[str]:
        """Write Superset's current assets back over the bundle (normalised); returns the files
        that changed."""
        self.init()
        out = self._run(
            str(self.bin / "python"),
            str(PROVISION),
            "export",
            "--bundle",
            str(bundle),
            what="export",
        )
        return _reported(out)

    def start(
        self, host: str = "127.0.0.1", port: int = 8088, workers: int = 2
    ) -> subprocess.Popen:
        """Start the web app (gunicorn; threads so that a dashboard's charts load together).
        The caller stops it; ``wait_ready`` waits for it to answer."""
        self.home.mkdir(parents=True, exist_ok=True)
        narrow(self.home)
        log = (self.home / "superset.log").open("ab")
        return subprocess.Popen(
            [
                str(self.bin / "gunicorn"),
                "--workers",
                str(workers),
                "--threads",
                "8",
                "--timeout",
                "120",
                "--bind",
                f"{host}:{port}",
                "--access-logfile",
                "-",
                "superset.app:create_app()",
            ],
            env=self.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=file_umask(),
        )


def _reported(stdout: str) -> list[str]:
    return [line.removeprefix(REPORT) for line in stdout.splitlines() if line.startswith(REPORT)]


def wait_ready(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Block until ``url``/health answers 200 (or the process dies, or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SupersetError(f"Superset exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise SupersetError(f"Superset did not answer at {url} within {timeout:.0f} s")


def api_session(url: str, username: str, password: str):
    """A ``requests`` session logged in to Superset's REST API (JWT), with the CSRF token and the
    Referer header Superset wants on a POST."""
    import requests

    s = requests.Session()
    r = s.post(
        f"{url}/api/v1/security/login",
        json={"username": username, "password": password, "provider": "db", "refresh": True},
        timeout=30,
    )
    r.raise_for_status()
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    s.headers["Referer"] = url
    r = s.get(f"{url}/api/v1/security/csrf_token/", timeout=30)
    r.raise_for_status()
    s.headers["X-CSRFToken"] = r.json()["result"]
    return s


def demo_logins() -> dict[str, tuple[str, str]]:
    """Role → (user, password) of the demo users that provisioning creates."""
    config = yaml.safe_load(ROLES.read_text(encoding="utf-8"))
    return {role: (user, f"{user}-demo") for user, role in config["demo_users"].items()}


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a server started by ``Superset.start`` (its whole process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()
