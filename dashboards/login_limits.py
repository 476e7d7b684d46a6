"""The sign-in limiter's shared counters, and the limit on the REST API's sign-in.

Loaded by ``superset_config.py`` (Superset's environment). Two gaps of Superset's own limiter:

- Its counters live in each gunicorn worker's memory unless a Redis or Memcached server is named
  (``limits`` knows no file storage), so with two workers a burst of wrong passwords gets twice
  the limit, in no predictable order. ``SqliteStorage`` keeps the counters in one SQLite file in
  Superset's state folder, shared by every worker: a dozen lines of SQL instead of a server to run
  beside Superset. Sign-in is the only limited path, so it is written to only on a sign-in. A
  shop that already runs Redis names it instead (``RATELIMIT_STORAGE_URI``, see docs/security.md).
- Flask-AppBuilder limits only the sign-in form (``/login/``); the JSON sign-in that programs
  use (``/api/v1/security/login``) goes unthrottled. ``limit_api_login`` puts the same limit on it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time

from limits.storage import Storage

SCHEME = "cardlake+sqlite"


class SqliteStorage(Storage):
    """Fixed-window counters in SQLite (``cardlake+sqlite:////absolute/path.db``)."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 (the base class declares it so)

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options) -> None:
        self.path = uri.split("://", 1)[1]
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        with self._db() as con:
            con.execute(
                "create table if not exists hits "
                "(key text primary key, count integer not null, expiry real not null)"
            )

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    @contextlib.contextmanager
    def _db(self):
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            con.execute("begin immediate")
            yield con
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        finally:
            con.close()

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._db() as con:
            con.execute("delete from hits where key = ? and expiry <= ?", (key, now))
            con.execute(
                "insert into hits values (?, ?, ?) "
                "on conflict (key) do update set count = count + excluded.count",
                (key, amount, now + expiry),
            )
            return con.execute("select count from hits where key = ?", (key,)).fetchone()[0]

    def get(self, key: str) -> int:
        with self._db() as con:
            row = con.execute(
                "select count from hits where key = ? and expiry > ?", (key, time.time())
            ).fetchone()
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        with self._db() as con:
            row = con.execute("select expiry from hits where key = ?", (key,)).fetchone()
        return row[0] if row else time.time()

    def check(self) -> bool:
        try:
            with self._db() as con:
                con.execute("select 1")
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._db() as con:
            return con.execute("delete from hits").rowcount

    def clear(self, key: str) -> None:
        with self._db() as con:
            con.execute("delete from hits where key = ?", (key,))


def limit_api_login(app) -> None:
    """Give the REST API's sign-in (``POST /api/v1/security/login``) the sign-in form's limit,
    per client address (its own counter: a client gets the limit on each of the two paths)."""
    from superset import security_manager as sm

    if not (app.config.get("RATELIMIT_ENABLED") and app.config.get("AUTH_RATE_LIMITED")):
        return
    endpoint = next(
        rule.endpoint for rule in app.url_map.iter_rules() if rule.rule == "/api/v1/security/login"
    )
    view = app.view_functions[endpoint]
    app.view_functions[endpoint] = sm.limiter.limit(
        app.config["AUTH_RATE_LIMIT"], methods=["POST"], scope="sign-in"
    )(view)
