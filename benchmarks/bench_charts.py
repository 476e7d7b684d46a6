"""Benchmark: every chart query of every dashboard, uncached, on a lake's serving file.

What is timed is what a dashboard sends: Superset 6.1's charts build their query context in the
browser (the bundle's charts carry no saved ``query_context``, and the legacy ``explore_json``
endpoint no longer serves the ECharts, big-number and table charts), then post it to
``/api/v1/chart/data?form_data={"slice_id": N}&dashboard_id=M`` with the dashboard's default
filter values applied. So each dashboard is opened once as the admin in a headless Chromium, the
request every chart (and every native filter's value list) sends is recorded, and the benchmark
replays those bodies with ``force`` set: Superset skips its chart-data cache and queries DuckDB
every time (a response still marked cached counts as an error).

Superset runs as ``cardlake serve`` runs it (gunicorn, 2 workers × 8 threads) in a fresh state
folder (``--home`` to reuse one: the first init takes about a minute), on a view of the lake
holding only links to its ``warehouse.duckdb`` and ``ops.duckdb``: nothing is written into the
lake. Without an ``ops.duckdb`` the alerts dashboard's ticket charts are skipped (said in the
output). The user is the admin: row-level security filters the team roles' rows, the admin sees
every row, the largest queries.

1. sequential: one client, every chart once per round in a fixed order, the first round a
   warm-up (excluded); the native filters' value lists are timed here too, reported apart;
2. concurrent: ``--clients`` threads, each its own logged-in session, each looping over all
   charts in its own shuffled order for ``--rounds`` rounds or ``--seconds`` seconds.

Then each chart's SQL (the response's ``query``) is run directly on the serving file with DuckDB,
a fresh read-only connection each time as Superset opens one per query: the database's share of
the chart's time. ``chart_p95_ms`` is the concurrent p95 (the goal: ≤ 500 ms at 30 days of
history with 10 clients). A chart that errors (not 200, an error in the payload, no ``data`` in
it) fails the benchmark (exit 1); one that answers with no rows is listed apart. Writes ``benchmarks/results/<timestamp>-charts.json``; the last line of
the output is the result as one JSON object.

    python benchmarks/bench_charts.py --lake LAKE [--home DIR] [--port P] [--clients 10]
        [--rounds N] [--seconds T]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchlib import machine, save

from pipelines.lib.publish import READER_CONFIG
from pipelines.lib.superset import ADMIN, Superset, api_session, stop, wait_ready
from simulator.live_harness import percentile

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, as the browser tests use (make setup)
CHART_DATA = "/api/v1/chart/data"
SERVED = ("warehouse.duckdb", "ops.duckdb")
OPS_DATABASE = "cardlake_ops"
# every address but the server's: Superset's menu loads a telemetry pixel
_OUTSIDE = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/])")
TIMEOUT_S = 120  # gunicorn's own (Superset.start)


@dataclasses.dataclass(frozen=True)
class Query:
    """One chart-data request a dashboard sends: a chart's, or a native filter's value list."""

    kind: str  # "chart" or "filter"
    key: int | str  # the chart's id, or the native filter's id
    name: str
    dashboard: str
    viz_type: str
    database: str
    path: str  # path and query string, as the browser sent them
    body: Mapping[str, Any]  # the query context, ``force`` set


@dataclasses.dataclass(frozen=True)
class Sample:
    ms: float
    rows: int
    error: str | None
    sql: str = ""


# ------------------------------------------------------------------------------- pure helpers
def summary(values: Sequence[float]) -> dict[str, float | None]:
    """p50 / p95 / max (nearest rank, milliseconds rounded to 0.1), None for no values."""
    if not values:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "p50_ms": round(percentile(list(values), 50), 1),
        "p95_ms": round(percentile(list(values), 95), 1),
        "max_ms": round(max(values), 1),
    }


def check(status: int, payload: Any, text: str = "") -> tuple[int, str | None, str]:
    """A chart-data response → (rows, error or None, the SQL it ran). An error: not 200, a query
    that failed or reported an error, no ``data``, or an answer from the cache."""
    if status != 200:
        said = text
        if isinstance(payload, Mapping):  # {"message": …} or {"errors": [{"message": …}, …]}
            errors = [
                e.get("message") for e in payload.get("errors") or [] if isinstance(e, Mapping)
            ]
            said = str(payload.get("message") or "; ".join(map(str, errors)) or text)
        return 0, f"HTTP {status}: {' '.join(said.split())[:300]}", ""
    results = payload.get("result") if isinstance(payload, Mapping) else None
    if not results:
        return 0, f"no result in the payload: {text[:300]}", ""
    rows, sql = 0, []
    for result in results:
        if result.get("error") or result.get("status") == "failed":
            return 0, f"query failed: {str(result.get('error'))[:300]}", ""
        if not isinstance(result.get("data"), list):
            return 0, "no data in the payload", ""
        if result.get("is_cached"):
            return 0, "served from the cache despite force", ""
        rows += len(result["data"])
        sql.append(result.get("query") or "")
    return rows, None, ";\n".join(s.strip().rstrip(";") for s in sql if s.strip())


def grouped(failures: Iterable[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
    """Failed requests (dashboard, chart, phase, error) → one entry per chart and error, with how
    many times it failed in each phase, in the order first seen."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for dashboard, chart, phase, error in failures:
        entry = out.setdefault(
            (dashboard, chart, error),
            {"dashboard": dashboard, "chart": chart, "error": error, "count": {}},
        )
        entry["count"][phase] = entry["count"].get(phase, 0) + 1
    return list(out.values())


def slice_id(path: str) -> int | None:
    """The chart id in a chart-data request's address (``?form_data={"slice_id": N}``)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    for raw in query.get("form_data", []):
        try:
            value = json.loads(raw).get("slice_id")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, int):
            return value
    return None


def forced(body: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded query context with Superset's cache bypassed."""
    out = dict(body, force=True)
    if isinstance(out.get("form_data"), Mapping):
        out["form_data"] = dict(out["form_data"], force=True)
    return out


def match(
    recorded: Iterable[tuple[str, Mapping[str, Any]]],
    dashboards: Mapping[int, str],
    charts: Mapping[int, Mapping[int, Mapping[str, str]]],
    filters: Mapping[int, Mapping[str, str]],
    databases: Mapping[int, str],
) -> tuple[list[Query], list[str]]:
    """The recorded requests (address, body) as queries, one per chart of each dashboard and one
    per native filter, and what is missing: every chart of every dashboard must have sent one.

    ``dashboards``: id → title; ``charts``: dashboard id → chart id → {name, viz_type};
    ``filters``: dashboard id → native filter id → name; ``databases``: dataset id → name."""
    found: dict[tuple[int, str, int | str], Query] = {}
    for path, body in recorded:
        form = body.get("form_data") or {}
        board = form.get("dashboardId")
        if board not in dashboards:
            continue
        common = {
            "dashboard": dashboards[board],
            "database": databases.get((body.get("datasource") or {}).get("id"), "?"),
            "path": path,
            "body": forced(body),
        }
        chart = slice_id(path)
        if chart is not None and chart in charts.get(board, {}):
            meta = charts[board][chart]
            query = Query("chart", chart, meta["name"], viz_type=meta["viz_type"], **common)
            found.setdefault((board, "chart", chart), query)
        elif fid := form.get("native_filter_id"):
            name = filters.get(board, {}).get(fid, fid)
            query = Query("filter", fid, name, viz_type=form.get("viz_type", "?"), **common)
            found.setdefault((board, "filter", fid), query)
    missing = [
        f"{dashboards[board]}: {meta['name']} (chart {chart}) sent no data request"
        for board, board_charts in charts.items()
        for chart, meta in board_charts.items()
        if (board, "chart", chart) not in found
    ]
    ordered = sorted(found.values(), key=lambda q: (q.kind, q.dashboard, str(q.key)))
    return ordered, missing


# ------------------------------------------------------------------------------- Superset side
def serving_view(lake: Path, home: Path) -> tuple[Path, bool]:
    """A folder in the state folder holding links to the lake's served DuckDB files, for Superset
    to serve: provisioning writes an empty ``ops.duckdb`` where there is none, never into the
    lake. Returns the folder and whether the lake has its own tickets file."""
    if not (lake / "warehouse.duckdb").exists():
        raise SystemExit(f"no serving file in {lake}: run `cardlake run` first")
    view = home / "lake"
    shutil.rmtree(view, ignore_errors=True)
    view.mkdir(parents=True)
    for name in SERVED:
        if (lake / name).exists():
            (view / name).symlink_to((lake / name).absolute())  # follows publications
    return view, (lake / "ops.duckdb").exists()


def login(url: str, password: str, username: str = ADMIN):
    """A session logged in through the REST API, as the tests log in."""
    return api_session(url, username, password)


def catalogue(session, url: str) -> dict[str, Any]:
    """The dashboards Superset holds, their charts and native filters, and each dataset's
    database, from the REST API (ids are this install's)."""

    def get(path: str, **params: str) -> Any:
        r = session.get(f"{url}{path}", params=params, timeout=60)
        r.raise_for_status()
        return r.json()["result"]

    dashboards, slugs, charts, filters, datasets = {}, {}, {}, {}, set()
    for board in get("/api/v1/dashboard/", q="(page_size:100)"):
        bid = board["id"]
        dashboards[bid] = board["dashboard_title"]
        slugs[bid] = board.get("slug") or str(bid)
        charts[bid] = {}
        for chart in get(f"/api/v1/dashboard/{bid}/charts"):
            form = chart.get("form_data") or {}
            charts[bid][chart["id"]] = {
                "name": chart["slice_name"],
                "viz_type": form.get("viz_type", "?"),
            }
            datasets.add(int(str(form.get("datasource", "0__")).split("__")[0]))
        meta = json.loads(get(f"/api/v1/dashboard/{bid}").get("json_metadata") or "{}")
        filters[bid] = {f["id"]: f["name"] for f in meta.get("native_filter_configuration", [])}
    databases = {}
    for dataset in get("/api/v1/dataset/", q="(page_size:100)"):
        databases[dataset["id"]] = dataset["database"]["database_name"]
    return {
        "dashboards": dashboards,
        "slugs": slugs,
        "charts": charts,
        "filters": filters,
        "databases": databases,
    }


def record(
    url: str, password: str, slugs: Mapping[int, str], charts: Mapping[int, Mapping[int, Any]]
) -> list[tuple[str, dict]]:
    """Open every dashboard as the admin in a headless Chromium and record the chart-data
    requests it sends (address and body), waiting until every chart's request was answered."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: run `make setup` (Debian's chromium)")
    recorded: list[tuple[str, dict]] = []
    answered: set[tuple[Any, int]] = set()  # (dashboard id, chart id)
    pending: set[Any] = set()

    def on_request(request) -> None:
        if CHART_DATA in request.url and request.method == "POST":
            pending.add(request)

    def on_finished(request) -> None:
        if request in pending:
            pending.discard(request)
            split = urllib.parse.urlsplit(request.url)
            path = split.path + (f"?{split.query}" if split.query else "")
            recorded.append((path, request.post_data_json))
            if (chart := slice_id(path)) is not None:
                body = request.post_data_json or {}
                answered.add(((body.get("form_data") or {}).get("dashboardId"), chart))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            context = browser.new_context(
                base_url=url, viewport={"width": 1600, "height": 3200}, locale="zh-CN"
            )
            context.set_default_timeout(60_000)
            context.route(_OUTSIDE, lambda route: route.abort())
            page = context.new_page()
            page.goto("/login/")
            page.fill("[data-test=username-input]", ADMIN)
            page.fill("[data-test=password-input]", password)
            page.keyboard.press("Enter")
            page.wait_for_url("**/superset/welcome/**", wait_until="commit")
            page.on("request", on_request)
            page.on("requestfinished", on_finished)
            page.on("requestfailed", on_finished)
            for board, slug in slugs.items():
                page.goto(f"/superset/dashboard/{slug}/")
                deadline = time.monotonic() + TIMEOUT_S + 30  # gunicorn ends a longer request
                while time.monotonic() < deadline:
                    page.wait_for_timeout(500)
                    if {(board, c) for c in charts[board]} <= answered and not pending:
                        page.wait_for_timeout(1000)  # a filter's list may follow its charts
                        if not pending:
                            break
        finally:
            browser.close()
    return recorded


def ask(session, url: str, query: Query) -> Sample:
    started = time.perf_counter()
    try:
        r = session.post(f"{url}{query.path}", json=query.body, timeout=TIMEOUT_S)
    except Exception as exc:  # a timeout or a dropped connection is a failed chart too
        return Sample((time.perf_counter() - started) * 1000, 0, f"{type(exc).__name__}: {exc}")
    ms = (time.perf_counter() - started) * 1000
    try:
        payload = r.json()
    except ValueError:
        payload = None
    rows, error, sql = check(r.status_code, payload, "" if r.ok else r.text)
    return Sample(ms, rows, error, sql)


# ------------------------------------------------------------------------------- the phases
def sequential(session, url: str, queries: Sequence[Query], rounds: int) -> list[list[Sample]]:
    """Each query once per round, in a fixed order; the first round is the warm-up."""
    return [[ask(session, url, q) for q in queries] for _ in range(rounds)]


def concurrent(
    sessions: Sequence[Any],
    url: str,
    queries: Sequence[Query],
    rounds: int,
    seconds: float | None,
) -> tuple[list[tuple[int, Sample]], float]:
    """Every session in its own thread, looping over all queries in its own shuffled order, for
    ``rounds`` rounds (or until ``seconds`` have passed). Returns (query index, sample) pairs and
    the wall time."""
    samples: list[tuple[int, Sample]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(sessions) + 1)
    deadline: list[float] = []

    def client(i: int, session) -> None:
        order = list(range(len(queries)))
        rng = random.Random(i)
        start.wait()
        done = 0
        while (seconds is None and done < rounds) or (
            seconds is not None and time.monotonic() < deadline[0]
        ):
            rng.shuffle(order)
            for n in order:
                if seconds is not None and time.monotonic() >= deadline[0]:
                    break
                sample = ask(session, url, queries[n])
                with lock:
                    samples.append((n, sample))
            done += 1

    threads = [threading.Thread(target=client, args=(i, s)) for i, s in enumerate(sessions)]
    for t in threads:
        t.start()
    began = time.monotonic()
    deadline.append(began + (seconds or 0))
    start.wait()
    for t in threads:
        t.join()
    return samples, time.monotonic() - began


def database_ms(view: Path, query: Query, sql: str, times: int = 3) -> float | None:
    """The chart's SQL run directly with DuckDB on the served file (a fresh read-only connection
    per run, as Superset opens one per query): median of ``times`` runs, None without SQL."""
    import duckdb

    if not sql:
        return None
    path = view / ("ops.duckdb" if query.database == OPS_DATABASE else "warehouse.duckdb")
    runs = []
    for _ in range(times):
        started = time.perf_counter()
        with duckdb.connect(str(path), read_only=True, config=dict(READER_CONFIG)) as con:
            for statement in sql.split(";\n"):
                con.execute(statement).fetchall()
        runs.append((time.perf_counter() - started) * 1000)
    return round(sorted(runs)[len(runs) // 2], 1)


def history_days(view: Path) -> int:
    import duckdb

    path = view / "warehouse.duckdb"
    sql = "select count(distinct business_date) from kpi_sales_daily"
    with duckdb.connect(str(path), read_only=True, config=dict(READER_CONFIG)) as con:
        return con.execute(sql).fetchone()[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------- the benchmark
@dataclasses.dataclass(frozen=True)
class Load:
    """How hard to press: concurrent clients, each for ``rounds`` rounds over every chart (or for
    ``seconds`` when given), after ``sequential_rounds`` rounds of one client (one a warm-up)."""

    clients: int = 10
    rounds: int = 2
    seconds: float | None = None
    sequential_rounds: int = 4


def run_charts(
    lake: Path,
    home: Path | None = None,
    port: int | None = None,
    load: Load = Load(),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Serve ``lake`` with Superset, record every dashboard's chart-data requests, time them
    uncached, sequentially then under concurrent clients; returns the result (the ``benchmark:
    charts`` record ``save`` writes). ``home``: the Superset state folder to use (default a
    fresh temp dir, removed afterwards); ``port``: default a free one."""
    lake = Path(lake).resolve()
    scratch = home is None
    home = Path(tempfile.mkdtemp(prefix="cardlake-bench-charts-")) if scratch else Path(home)
    home.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        view, has_ops = serving_view(lake, home)
        superset = Superset(home=home, lake=view)
        initialised = superset.init()
        superset.provision()  # production mode: the admin only
        setup_s = time.perf_counter() - started
        done = "initialised and provisioned" if initialised else "provisioned"
        log(f"Superset {done} in {setup_s:.0f} s (state in {home})")
        port = port or _free_port()
        url = f"http://127.0.0.1:{port}"
        # every client of the load signs in from this one address: the production limit
        # (5 per minute) would refuse the tenth
        os.environ.setdefault("CARDLAKE_LOGIN_RATE_LIMIT", "1000 per minute")
        proc = superset.start(port=port)
        try:
            wait_ready(url, proc)
            result = _measure(view, url, superset.admin_password(), load, has_ops, log)
        finally:
            stop(proc)
    finally:
        if scratch:
            shutil.rmtree(home, ignore_errors=True)
    return {
        "benchmark": "charts",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "lake": str(lake),
        **result,
        "setup_s": round(setup_s, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }


def _measure(
    view: Path, url: str, password: str, load: Load, has_ops: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    admin = login(url, password)
    cat = catalogue(admin, url)
    t = time.perf_counter()
    recorded = record(url, password, cat["slugs"], cat["charts"])
    record_s = time.perf_counter() - t
    queries, missing = match(
        recorded, cat["dashboards"], cat["charts"], cat["filters"], cat["databases"]
    )
    # without the lake's own tickets file Superset serves an empty one: nothing to time there
    skipped = [q for q in queries if not has_ops and q.database == OPS_DATABASE]
    charts = [q for q in queries if q.kind == "chart" and q not in skipped]
    filters = [q for q in queries if q.kind == "filter" and q not in skipped]
    log(
        f"recorded {len(charts)} charts and {len(filters)} filter lists on "
        f"{len(cat['dashboards'])} dashboards in {record_s:.0f} s"
    )
    if skipped:
        log(f"skipped {len(skipped)} on {OPS_DATABASE}: the lake has no ops.duckdb")

    log(f"sequential: {load.sequential_rounds} rounds (the first a warm-up) as {ADMIN}")
    seq = sequential(admin, url, charts + filters, load.sequential_rounds)
    measured = seq[1:] or seq
    sessions = [login(url, password) for _ in range(load.clients)]
    length = f"{load.seconds:g} s" if load.seconds else f"{load.rounds} rounds"
    log(f"concurrent: {load.clients} clients × {length} over {len(charts)} charts")
    conc, wall = concurrent(sessions, url, charts, load.rounds, load.seconds)

    failures: list[tuple[str, str, str, str]] = [("", m, "record", "not recorded") for m in missing]
    for samples in seq:
        failures += [
            (q.dashboard, q.name, "sequential", sample.error)
            for q, sample in zip(charts + filters, samples, strict=True)
            if sample.error
        ]
    failures += [
        (charts[n].dashboard, charts[n].name, "concurrent", s.error) for n, s in conc if s.error
    ]

    per_query = []
    for i, q in enumerate(charts + filters):
        last = next((round_[i] for round_ in reversed(seq) if not round_[i].error), None)
        alone = [round_[i].ms for round_ in measured if not round_[i].error]
        together = [s.ms for n, s in conc if n == i and not s.error]
        per_query.append(
            {
                "kind": q.kind,
                "id": q.key,
                "chart": q.name,
                "dashboard": q.dashboard,
                "viz_type": q.viz_type,
                "database": q.database,
                "rows": last.rows if last else None,
                "sequential_p50_ms": summary(alone)["p50_ms"],
                "concurrent_p50_ms": summary(together)["p50_ms"] if q.kind == "chart" else None,
                "database_ms": database_ms(view, q, last.sql) if last else None,
                "sql": last.sql if last else None,
            }
        )
    per_chart = [p for p in per_query if p["kind"] == "chart"]
    seq_charts = summary([s.ms for r in measured for s in r[: len(charts)] if not s.error])
    seq_filters = summary([s.ms for r in measured for s in r[len(charts) :] if not s.error])
    together = summary([s.ms for _, s in conc if not s.error])
    return {
        "history_days": history_days(view),
        "user": ADMIN,
        "dashboards": len(cat["dashboards"]),
        "charts": len(charts),
        "filters": len(filters),
        "skipped": [f"{q.dashboard}: {q.name}" for q in skipped],
        "clients": load.clients,
        "requests": sum(len(r) for r in seq) + len(conc),
        "errors": len(failures),
        "error_details": grouped(failures),
        "empty_charts": [f"{p['dashboard']}: {p['chart']}" for p in per_chart if p["rows"] == 0],
        # the goal's figures: uncached, under concurrent clients
        "chart_p50_ms": together["p50_ms"],
        "chart_p95_ms": together["p95_ms"],
        "chart_max_ms": together["max_ms"],
        **{f"concurrent_{k}": v for k, v in together.items()},
        "concurrent_requests": len(conc),
        "concurrent_wall_s": round(wall, 1),
        "concurrent_requests_per_s": round(len(conc) / wall, 1) if wall else None,
        "sequential_rounds": len(measured),
        **{f"sequential_{k}": v for k, v in seq_charts.items()},
        **{f"filter_{k}": v for k, v in seq_filters.items()},
        "record_s": round(record_s, 1),
        "gunicorn": {"workers": 2, "threads": 8},  # Superset.start, as cardlake serve runs it
        "per_chart": per_chart,
        "per_filter": [p for p in per_query if p["kind"] == "filter"],
    }


def report(result: Mapping[str, Any], slowest: int = 5) -> list[str]:
    """The human part of the output: the figures, then the slowest charts."""
    lines = [
        f"charts on {result['lake']} ({result['history_days']} business days), as "
        f"{result['user']} (every row: no row-level security): {result['charts']} charts on "
        f"{result['dashboards']} dashboards, {result['requests']:,} requests, "
        f"{result['errors']} errors",
        f"  sequential  p50 {result['sequential_p50_ms']} ms  p95 {result['sequential_p95_ms']} "
        f"ms  max {result['sequential_max_ms']} ms ({result['sequential_rounds']} rounds)",
        f"  concurrent  p50 {result['concurrent_p50_ms']} ms  p95 {result['concurrent_p95_ms']} "
        f"ms  max {result['concurrent_max_ms']} ms ({result['clients']} clients, "
        f"{result['concurrent_requests_per_s']} requests/s)",
        f"  filter lists p50 {result['filter_p50_ms']} ms  p95 {result['filter_p95_ms']} ms  "
        f"max {result['filter_max_ms']} ms ({result['filters']}, sequential)",
    ]
    if result["skipped"]:
        lines.append(f"  skipped (no ops.duckdb in the lake): {', '.join(result['skipped'])}")
    if result["empty_charts"]:
        lines.append(f"  no rows: {', '.join(result['empty_charts'])}")
    ranked = sorted(
        (p for p in result["per_chart"] if p["sequential_p50_ms"] is not None),
        key=lambda p: p["sequential_p50_ms"],
        reverse=True,
    )
    lines.append("  slowest charts (sequential p50 · concurrent p50 · DuckDB alone · rows):")
    for p in ranked[:slowest]:
        lines.append(
            f"  {p['sequential_p50_ms']:>8.1f} ms {p['concurrent_p50_ms'] or 0:>8.1f} ms "
            f"{p['database_ms'] or 0:>8.1f} ms {p['rows']:>7,}  {p['viz_type']:<24} "
            f"{p['dashboard']} / {p['chart']}"
        )
    for e in result["error_details"]:
        times = ", ".join(f"{n} {phase}" for phase, n in e["count"].items())
        lines.append(f"  ERROR ({times}) {e['dashboard']} / {e['chart']}: {e['error']}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, required=True, help="the lake whose files to serve")
    parser.add_argument("--home", type=Path, help="Superset state folder (default: a fresh one)")
    parser.add_argument("--port", type=int, help="Superset's port (default: a free one)")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per concurrent client")
    parser.add_argument("--seconds", type=float, help="concurrent phase length, instead of rounds")
    parser.add_argument("--sequential-rounds", type=int, default=4, help="the first a warm-up")
    args = parser.parse_args()
    load = Load(args.clients, args.rounds, args.seconds, args.sequential_rounds)
    result = run_charts(args.lake, home=args.home, port=args.port, load=load)
    path = save(result)
    print("\n".join(report(result)))
    print(f"→ {path}")
    print(json.dumps(result, ensure_ascii=False))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
