"""The pure parts of the chart benchmark (``benchmarks/bench_charts.py``): which recorded request
belongs to which chart of which dashboard, what counts as a failed chart, the figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_charts import check, forced, grouped, match, slice_id, summary

pytestmark = pytest.mark.unit


def _chart_request(chart: int, dashboard: int, dataset: int = 3) -> tuple[str, dict]:
    path = "/api/v1/chart/data?" + f"form_data={json.dumps({'slice_id': chart})}&dashboard_id=1"
    body = {
        "datasource": {"id": dataset, "type": "table"},
        "force": False,
        "queries": [{"metrics": ["gmv_yuan"]}],
        "form_data": {"slice_id": chart, "dashboardId": dashboard, "force": False},
    }
    return path, body


def _filter_request(native_filter: str, dashboard: int, dataset: int = 3) -> tuple[str, dict]:
    body = {
        "datasource": {"id": dataset, "type": "table"},
        "queries": [{"columns": ["shop"]}],
        "form_data": {
            "viz_type": "filter_select",
            "native_filter_id": native_filter,
            "dashboardId": dashboard,
        },
    }
    return "/api/v1/chart/data", body


DASHBOARDS = {1: "经营总览", 2: "告警与工单"}
CHARTS = {
    1: {10: {"name": "GMV", "viz_type": "big_number"}, 11: {"name": "Trend", "viz_type": "bar"}},
    2: {20: {"name": "Open tickets", "viz_type": "big_number_total"}},
}
FILTERS = {1: {"NATIVE_FILTER-1": "店铺 Shop"}}
DATABASES = {3: "cardlake", 4: "cardlake_ops"}


def test_the_chart_id_is_read_from_the_address() -> None:
    assert slice_id('/api/v1/chart/data?form_data={"slice_id":41}&dashboard_id=5') == 41
    assert slice_id("/api/v1/chart/data?form_data=%7B%22slice_id%22%3A7%7D") == 7
    assert slice_id("/api/v1/chart/data") is None
    assert slice_id("/api/v1/chart/data?form_data=not-json") is None


def test_every_chart_of_every_dashboard_is_matched_and_forced() -> None:
    recorded = [
        _chart_request(10, 1),
        _chart_request(11, 1),
        _chart_request(10, 1),  # the same chart asked twice: one query
        _chart_request(20, 2, dataset=4),
        _filter_request("NATIVE_FILTER-1", 1),
    ]
    queries, missing = match(recorded, DASHBOARDS, CHARTS, FILTERS, DATABASES)
    assert missing == []
    assert [(q.kind, q.key, q.dashboard) for q in queries] == [
        ("chart", 20, "告警与工单"),
        ("chart", 10, "经营总览"),
        ("chart", 11, "经营总览"),
        ("filter", "NATIVE_FILTER-1", "经营总览"),
    ]
    tickets, gmv, _, shop = queries
    assert (tickets.name, tickets.viz_type, tickets.database) == (
        "Open tickets",
        "big_number_total",
        "cardlake_ops",
    )
    assert (shop.name, shop.database) == ("店铺 Shop", "cardlake")
    assert gmv.body["force"] is True and gmv.body["form_data"]["force"] is True
    assert gmv.body["queries"] == [{"metrics": ["gmv_yuan"]}]  # the dashboard's query itself


def test_a_chart_that_sent_nothing_is_missing() -> None:
    queries, missing = match([_chart_request(10, 1)], DASHBOARDS, CHARTS, FILTERS, DATABASES)
    assert [q.key for q in queries] == [10]
    assert missing == [
        "经营总览: Trend (chart 11) sent no data request",
        "告警与工单: Open tickets (chart 20) sent no data request",
    ]


def test_a_request_of_another_dashboard_or_chart_is_ignored() -> None:
    queries, missing = match(
        [_chart_request(99, 1), _chart_request(10, 7)], DASHBOARDS, CHARTS, FILTERS, DATABASES
    )
    assert queries == [] and len(missing) == 3


def test_forcing_leaves_the_recorded_body_alone() -> None:
    _, body = _chart_request(10, 1)
    assert forced(body)["force"] is True and body["force"] is False
    assert body["form_data"]["force"] is False


def _result(**overrides) -> dict:
    return {
        "status": "success",
        "error": None,
        "is_cached": None,
        "data": [{"a": 1}, {"a": 2}],
        "query": "SELECT 1;\n",
        **overrides,
    }


def test_a_good_answer_gives_its_rows_and_sql() -> None:
    payload = {"result": [_result(), _result(data=[{"a": 3}], query="SELECT 2")]}
    assert check(200, payload) == (3, None, "SELECT 1;\nSELECT 2")


def test_an_empty_answer_is_not_an_error() -> None:
    assert check(200, {"result": [_result(data=[])]}) == (0, None, "SELECT 1")


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        (400, {"message": "bad"}, "HTTP 400"),
        (500, None, "HTTP 500"),
        (200, {"result": []}, "no result"),
        (200, None, "no result"),
        (200, {"result": [_result(error="Binder Error")]}, "query failed: Binder Error"),
        (200, {"result": [_result(status="failed")]}, "query failed"),
        (200, {"result": [_result(data=None)]}, "no data"),
        (200, {"result": [_result(is_cached=True)]}, "cache"),
    ],
)
def test_a_failed_answer_is_an_error(status: int, payload, error: str) -> None:
    rows, message, _ = check(status, payload, "bad")
    assert rows == 0 and message is not None and error in message


def test_superset_s_own_message_is_the_error() -> None:
    missing = {"message": "Catalog Error: Table with name alerts\ndoes not exist!"}
    assert check(400, missing, "{...}")[1] == (
        "HTTP 400: Catalog Error: Table with name alerts does not exist!"
    )
    refused = {"errors": [{"message": "You need access", "error_type": "TABLE_SECURITY"}]}
    assert check(403, refused, "{...}")[1] == "HTTP 403: You need access"
    assert check(502, None, "Bad Gateway")[1] == "HTTP 502: Bad Gateway"


def test_failures_are_counted_per_chart_error_and_phase() -> None:
    failures = [
        ("告警与工单", "Incidents", "sequential", "no table"),
        ("告警与工单", "Incidents", "concurrent", "no table"),
        ("告警与工单", "Incidents", "concurrent", "no table"),
        ("告警与工单", "Incidents", "concurrent", "timeout"),
        ("经营总览", "GMV", "sequential", "no table"),
    ]
    assert grouped(failures) == [
        {"dashboard": "告警与工单", "chart": "Incidents", "error": "no table",
         "count": {"sequential": 1, "concurrent": 2}},
        {"dashboard": "告警与工单", "chart": "Incidents", "error": "timeout",
         "count": {"concurrent": 1}},
        {"dashboard": "经营总览", "chart": "GMV", "error": "no table", "count": {"sequential": 1}},
    ]  # fmt: skip


def test_the_figures_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 … 100 ms
    assert summary(values) == {"p50_ms": 50.0, "p95_ms": 95.0, "max_ms": 100.0}
    assert summary([12.34]) == {"p50_ms": 12.3, "p95_ms": 12.3, "max_ms": 12.3}
    assert summary([]) == {"p50_ms": None, "p95_ms": None, "max_ms": None}
