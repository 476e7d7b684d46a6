"""Superset's configuration for cardlake (loaded through ``SUPERSET_CONFIG_PATH``).

Runs in Superset's own environment (``.venv-superset``), never in the pipelines' one. Everything
that differs per install comes from the environment that ``cardlake serve`` / ``cardlake
dashboards provision`` set up (``pipelines/lib/superset.py``):

- ``CARDLAKE_SUPERSET_HOME``: the git-ignored state folder (metadata DB, caches, secret key);
- ``CARDLAKE_LAKE``: the lake whose ``warehouse.duckdb`` and ``ops.duckdb`` the dashboards read
  (the bundle's database URIs are templated from it at provisioning time);
- ``CARDLAKE_SUPERSET_MODE``: ``production`` (the default) or ``demo``, which only raises the
  sign-in limit for the demo's and the tests' many logins from one address;
- ``CARDLAKE_SUPERSET_BEHIND_PROXY``: served through a reverse proxy that terminates HTTPS
  (``cardlake serve --behind-proxy``): its ``X-Forwarded-*`` headers are trusted, cookies Secure;
- ``CARDLAKE_READER_MEMORY`` / ``_THREADS`` / ``_TEMP``: the bounds of every warehouse connection;
- ``CARDLAKE_LOGIN_RATE_LIMIT``: the sign-in limit per client address (default 5 per minute);
- ``SUPERSET_SECRET_KEY``: the session key, instead of the one generated in the state folder;
- ``CARDLAKE_SUPERSET_OVERRIDES``: a Python file of the operator's own settings (mail, a Redis
  for the limiter, …), applied last (docs/security.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import sqlite3
from pathlib import Path

from flask_appbuilder.security.manager import AUTH_DB
from sqlalchemy import event
from sqlalchemy.engine import Engine
from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
from superset.exceptions import SupersetSecurityException
from superset.security import SupersetSecurityManager

_HOME = Path(
    os.environ.get("CARDLAKE_SUPERSET_HOME")
    or Path(__file__).resolve().parent.parent / ".state" / "superset"
).resolve()
_HOME.mkdir(parents=True, exist_ok=True)


def _secret_key(path: Path) -> str:
    """A key generated once per install and kept beside the metadata DB (never a default, never
    committed): it signs sessions and encrypts the stored database connection details."""
    if env := os.environ.get("SUPERSET_SECRET_KEY"):
        return env
    # complete before it appears (a hard link of a finished temp file): gunicorn's workers load
    # this config at once, and one reading a half-written key would sign sessions the others reject
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return path.read_text(encoding="ascii").strip()


SECRET_KEY = _secret_key(_HOME / "secret_key")
_MODE = os.environ.get("CARDLAKE_SUPERSET_MODE", "production")
_BEHIND_PROXY = os.environ.get("CARDLAKE_SUPERSET_BEHIND_PROXY") == "1"


def _module(name: str):
    """A module of this folder (Superset loads this file by path: the folder is not importable)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- metadata -----------------------------------------------------------------------------------
SQLALCHEMY_DATABASE_URI = f"sqlite:///{_HOME / 'superset.db'}?check_same_thread=false"
SQLALCHEMY_EXAMPLES_URI = None  # no example data, ever


@event.listens_for(Engine, "connect")
def _sqlite_write_ahead(dbapi_connection, _record) -> None:
    """The metadata DB in write-ahead-log mode with normal sync. Superset logs every chart
    request to it (several rows, each its own commit): in SQLite's default rollback-journal mode
    each commit cost about 14 ms of fsync here and every server thread queued behind the one
    writer, which made Superset's own bookkeeping most of a chart's time under 10 concurrent
    viewers. With WAL a commit appends to the log, readers never wait for the writer, and a crash
    can lose the last commits but never corrupt the file. Only SQLite connections are touched
    (the lake's DuckDB connections pass through the same hook)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("pragma journal_mode = wal")
        cursor.execute("pragma synchronous = normal")
        cursor.execute("pragma busy_timeout = 10000")
        cursor.close()


# --- authentication and roles -------------------------------------------------------------------
AUTH_TYPE = AUTH_DB
# the Public role (anonymous visitors) holds no permission: nothing is visible without a login
PUBLIC_ROLE_LIKE = None
# the provisioning builds the team roles (dashboards/roles.yml); dashboard access follows them
FEATURE_FLAGS = {
    "DASHBOARD_RBAC": True,
    # every chart of a dashboard renders at once (a screenshot or a print shows them all)
    "DASHBOARD_VIRTUALIZATION": False,
    "ENABLE_TEMPLATE_PROCESSING": False,
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
    "EMBEDDED_SUPERSET": False,
}
# Sign-in is throttled per client address in every mode: the form and the REST API's sign-in
# (login_limits.py), counted in one file shared by the gunicorn workers. The demo and the tests
# log in once per role and test from one address, hence their higher limit.
_login_limits = _module("login_limits")
RATELIMIT_ENABLED = True
RATELIMIT_APPLICATION = None  # only sign-in is limited: a dashboard fires dozens of requests
RATELIMIT_HEADERS_ENABLED = True  # a 429 says when to try again (Retry-After)
RATELIMIT_STORAGE_URI = f"{_login_limits.SCHEME}:///{_HOME / 'ratelimit.db'}"
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = os.environ.get("CARDLAKE_LOGIN_RATE_LIMIT") or (
    "100 per minute" if _MODE == "demo" else "5 per minute"
)

# --- languages: Chinese first, English one click away ---------------------------------------------
BABEL_DEFAULT_LOCALE = "zh"
LANGUAGES = {
    "zh": {"flag": "cn", "name": "简体中文"},
    "en": {"flag": "us", "name": "English"},
}

# --- caches ---------------------------------------------------------------------------------------
# Chart data: a short time-out, because the live path republishes every few seconds and the
# dashboards auto-refresh; the cache only spares the warehouse identical queries from many viewers.
_CACHE = _HOME / "cache"
CACHE_CONFIG = {
    "CACHE_TYPE": "FileSystemCache",
    "CACHE_DIR": str(_CACHE / "metadata"),
    "CACHE_DEFAULT_TIMEOUT": 300,
    "CACHE_KEY_PREFIX": "cardlake_meta_",
}
DATA_CACHE_CONFIG = {
    "CACHE_TYPE": "FileSystemCache",
    "CACHE_DIR": str(_CACHE / "data"),
    "CACHE_DEFAULT_TIMEOUT": 30,
    "CACHE_KEY_PREFIX": "cardlake_data_",
}
FILTER_STATE_CACHE_CONFIG = {
    "CACHE_TYPE": "FileSystemCache",
    "CACHE_DIR": str(_CACHE / "filter_state"),
    "CACHE_DEFAULT_TIMEOUT": 86400,
}
EXPLORE_FORM_DATA_CACHE_CONFIG = {
    "CACHE_TYPE": "FileSystemCache",
    "CACHE_DIR": str(_CACHE / "explore"),
    "CACHE_DEFAULT_TIMEOUT": 86400,
}

# --- exports --------------------------------------------------------------------------------------
# Excel opens a BOM-marked UTF-8 CSV with its Chinese text intact
CSV_EXPORT = {"encoding": "utf-8-sig"}
EXCEL_EXPORT = {"index": False}

# --- SQL Lab --------------------------------------------------------------------------------------
# The warehouse is opened read-only with DuckDB's file access switched off (databases/*.yaml);
# Superset adds its own DML refusal and a row cap on top.
SQL_MAX_ROW = 100_000
DISPLAY_MAX_ROW = 10_000
SQLLAB_TIMEOUT = 120
SUPERSET_WEBSERVER_TIMEOUT = 120
PREVENT_UNSAFE_DB_CONNECTIONS = True
ALLOW_FILE_UPLOADS = False
WTF_CSRF_ENABLED = True

# The tickets file (``lake/ops.duckdb``, databases/cardlake_ops.yaml) serves the alerts dashboard,
# not SQL Lab: the roles table (docs/architecture.md) gives the Analyst SQL Lab over the warehouse
# only. Superset would list a database, and run SQL Lab queries on a table of it, for anyone who
# may read one of its datasets; for the databases named here that takes database access (Admin's),
# while charts, Explore and their row-level security stay as the roles grant them.
SQL_LAB_ADMIN_ONLY_DATABASES = frozenset({"cardlake_ops"})


def _sql_lab_databases(query):
    """The database list (SQL Lab's picker, ``/api/v1/database/``) without the databases above,
    for users without access to every database."""
    from superset import security_manager
    from superset.models.core import Database

    if security_manager.can_access_all_databases():
        return query
    return query.filter(Database.database_name.notin_(SQL_LAB_ADMIN_ONLY_DATABASES))


EXTRA_DYNAMIC_QUERY_FILTERS = {"databases": _sql_lab_databases}


class CardlakeSecurityManager(SupersetSecurityManager):
    """Superset's own, but SQL on a database of ``SQL_LAB_ADMIN_ONLY_DATABASES`` (a SQL Lab query,
    a table's metadata, a cost estimate) needs database access, not just a dataset of it."""

    def raise_for_access(self, **kwargs) -> None:
        query, database = kwargs.get("query"), kwargs.get("database")
        target = getattr(query, "database", None) or database
        charted = any(kwargs.get(k) is not None for k in _CHARTED)
        if (
            target is not None
            and not charted
            and target.database_name in SQL_LAB_ADMIN_ONLY_DATABASES
            and not self.can_access_database(target)
        ):
            raise SupersetSecurityException(
                SupersetError(
                    error_type=SupersetErrorType.DATABASE_SECURITY_ACCESS_ERROR,
                    message=f"{target.database_name} is not open to SQL Lab",
                    level=ErrorLevel.ERROR,
                )
            )
        super().raise_for_access(**kwargs)


#: what a chart, a dataset or a dashboard asks for (their access is Superset's own)
_CHARTED = ("dashboard", "chart", "datasource", "query_context", "viz")
CUSTOM_SECURITY_MANAGER = CardlakeSecurityManager

# --- the web app: loopback over plain HTTP, or behind a reverse proxy that terminates HTTPS --------
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = _BEHIND_PROXY
REMEMBER_COOKIE_SECURE = _BEHIND_PROXY
ENABLE_PROXY_FIX = _BEHIND_PROXY  # the client's address (for the limiter) and scheme from the proxy
PROXY_FIX_CONFIG = {"x_for": 1, "x_proto": 1, "x_host": 1, "x_port": 1, "x_prefix": 1}
PREFERRED_URL_SCHEME = "https" if _BEHIND_PROXY else "http"
# A Content-Security-Policy that lets the pages reach nothing but this server: Superset's own
# default allows a telemetry pixel (scarf.sh) and map tiles, which its menu loads on every page.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,  # plain HTTP on loopback; a reverse proxy in front terminates TLS
    "session_cookie_secure": _BEHIND_PROXY,
}
APP_NAME = "cardlake"


# --- reader bounds: every connection to the lake's DuckDB files --------------------------------
def _bounded(uri, params, username, security_manager, source):
    """Add the lake's reader bounds (set by ``cardlake``: ``pipelines.lib.settings.ReaderLimits``)
    to every DuckDB connection's config, beside ``lock_configuration`` that keeps them: one SQL
    Lab query past them fails alone instead of starving the pipelines."""
    if uri.drivername.startswith("duckdb"):
        config = params.setdefault("connect_args", {}).setdefault("config", {})
        for setting, variable in _READER_BOUNDS.items():
            if value := os.environ.get(variable):
                config[setting] = int(value) if setting == "threads" else value
    return uri, params


_READER_BOUNDS = {
    "memory_limit": "CARDLAKE_READER_MEMORY",
    "threads": "CARDLAKE_READER_THREADS",
    "max_temp_directory_size": "CARDLAKE_READER_TEMP",
    "temp_directory": "CARDLAKE_READER_SPILL",
}
DB_CONNECTION_MUTATOR = _bounded


def FLASK_APP_MUTATOR(app) -> None:
    _login_limits.limit_api_login(app)


# --- the operator's own settings, last ----------------------------------------------------------
if _overrides := os.environ.get("CARDLAKE_SUPERSET_OVERRIDES"):
    _spec = importlib.util.spec_from_file_location("cardlake_superset_overrides", _overrides)
    _own = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_own)
    globals().update({k: v for k, v in vars(_own).items() if k.isupper()})
