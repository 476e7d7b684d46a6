"""Who reaches what through Superset's REST API (docs/architecture.md, Roles), against the real Superset of
the ``superset_server`` fixture: dashboards, datasets and chart data per role, row-level security,
the masked contact of the order lookup, editing (Admin only) and SQL Lab (Analyst only, read-only,
no file access, no other database, no settings change, no PII).

The expectations follow ``dashboards/roles.yml`` (dashboards per role → the datasets their charts
and filters read), and a table copied from the design's roles table pins the pairs the design
names, so that a wrong ``roles.yml`` fails here too. The alerts dashboard (告警与工单), which the
design's table predates, is pinned beside it: every team opens it and reads the alerts, signals
and tickets of its own rules only (row-level security by ``role``), the Manager and the Analyst
read them all; the tickets' database (``lake/ops.duckdb``) stays out of SQL Lab but for Admin.

Superset 6.1 answers a dashboard the role may not open with 404 (it hides it), chart data of a
dataset the role may not read with 403, a write without the permission with 403, and SQL Lab
without ``can_execute_sql_query`` with 403.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.lib.superset import ADMIN, BUNDLE, demo_logins

pytestmark = pytest.mark.integration

# ------------------------------------------------------------------------------- the bundle
ROLES_YML: dict[str, Any] = yaml.safe_load((BUNDLE / "roles.yml").read_text(encoding="utf-8"))
ROLES = list(ROLES_YML["roles"])
USER = {role: user for role, (user, _) in demo_logins().items()}  # role → demo user


def _load(folder: str) -> list[dict[str, Any]]:
    return [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((BUNDLE / folder).rglob("*.yaml"))
    ]


_DATASETS = _load("datasets")
_CHARTS = _load("charts")
_DASHBOARDS = _load("dashboards")
_DATABASES = {d["database_name"]: str(d["uuid"]) for d in _load("databases")}
WAREHOUSE, OPS = "cardlake", "cardlake_ops"  # the warehouse and the tickets file
DATASET_BY_UUID = {str(d["uuid"]): d["table_name"] for d in _DATASETS}
ALL_DATASETS = sorted(DATASET_BY_UUID.values())
MAIN_DATASETS = sorted(d["table_name"] for d in _DATASETS if d.get("schema") == "main")
CHART_DATASET = {str(c["uuid"]): DATASET_BY_UUID[str(c["dataset_uuid"])] for c in _CHARTS}
SLUGS = sorted(d["slug"] for d in _DASHBOARDS)


def _dashboard_datasets(dashboard: dict[str, Any]) -> set[str]:
    """What a dashboard reads: its charts' datasets and its native filters' (as provisioning
    grants them)."""
    names = set()
    for node in (dashboard.get("position") or {}).values():
        meta = node.get("meta") if isinstance(node, dict) else None
        if meta and meta.get("uuid") in CHART_DATASET:
            names.add(CHART_DATASET[meta["uuid"]])
    for native in (dashboard.get("metadata") or {}).get("native_filter_configuration") or []:
        for target in native.get("targets") or []:
            if str(target.get("datasetUuid")) in DATASET_BY_UUID:
                names.add(DATASET_BY_UUID[str(target["datasetUuid"])])
    return names


DASHBOARD_DATASETS = {d["slug"]: _dashboard_datasets(d) for d in _DASHBOARDS}


def role_dashboards(role: str) -> set[str]:
    return set(ROLES_YML["roles"][role].get("dashboards") or [])


def role_datasets(role: str) -> set[str]:
    """The datasets ``roles.yml`` lets a role read: its dashboards', its named ones, and every
    dataset in a schema it holds (SQL Lab's schema access reaches them too)."""
    spec = ROLES_YML["roles"][role]
    names = set(spec.get("datasets") or [])
    for slug in role_dashboards(role):
        names |= DASHBOARD_DATASETS[slug]
    if spec.get("all_datasets"):
        names |= set(ALL_DATASETS)
    # schema access is granted on the warehouse (provision.py), not on the tickets' database
    schemas = set(spec.get("schemas") or [])
    names |= {
        d["table_name"]
        for d in _DATASETS
        if d.get("schema") in schemas and str(d["database_uuid"]) == _DATABASES[WAREHOUSE]
    }
    return names


# ------------------------------------------------------------- the design's roles table
# (role, dashboard) → may open, straight from the roles table in docs/architecture.md
# (independent of roles.yml)
DESIGN_DASHBOARDS: dict[tuple[str, str], bool] = {
    **{("Manager", slug): True for slug in SLUGS},  # all dashboards
    ("Finance", "settlement"): True,  # settlement and finance dashboards
    ("Finance", "order-lookup"): True,  # order detail
    ("Finance", "inventory"): False,  # ops configuration (stock thresholds)
    ("Ops", "overview"): True,  # sales
    ("Ops", "inventory"): True,
    ("Ops", "refunds"): True,
    ("Ops", "fulfilment"): True,
    ("Ops", "settlement"): False,  # finance / settlement data
    ("CustomerService", "order-lookup"): True,
    ("CustomerService", "settlement"): False,  # finance
    ("CustomerService", "inventory"): False,  # stock thresholds
    ("CustomerService", "overview"): False,  # sales figures are finance data
    # system health only, and the alerts of its own rules (row-level, below)
    **{("Tech", slug): slug in {"quality", "alerts"} for slug in SLUGS},
    # the alerts dashboard (not in the design's table, which predates it): every team opens it
    # and sees its own rules' alerts and tickets only (row-level security by `role`)
    **{(role, "alerts"): True for role in ("Finance", "Ops", "CustomerService", "Analyst")},
}
# the datasets of the alerts dashboard, every row of them naming the team alerted (`role`)
ALERT_DATASETS = ("alerts", "alert_signals", "tickets", "ticket_history")
ROLE_CODES = {
    "Ops": "ops",
    "Finance": "finance",
    "CustomerService": "customer_service",
    "Tech": "tech",
}

SETTLEMENT_DATASETS = (
    "rpt_channel_settlement_daily",
    "rpt_channel_exceptions",
    "rpt_supplier_payable",
    "rpt_supplier_payable_lines",
)
# (role, dataset) → may read
DESIGN_DATASETS: dict[tuple[str, str], bool] = {
    **{("Manager", name): True for name in ALL_DATASETS},
    **{("Analyst", name): True for name in MAIN_DATASETS},  # all non-PII datasets
    ("Ops", "fct_payments"): False,
    ("Finance", "fct_payments"): True,
    ("Finance", "order_lookup"): True,
    ("Finance", "kpi_inventory_sku_latest"): False,
    ("Finance", "kpi_inventory_overall"): False,
    ("CustomerService", "order_lookup"): True,
    ("CustomerService", "fct_payments"): False,
    ("CustomerService", "kpi_sales_daily"): False,
    ("CustomerService", "kpi_inventory_overall"): False,
    ("CustomerService", "kpi_inventory_sku_latest"): False,
    **{
        ("Tech", name): name in {"dq_daily", "publication_log", *ALERT_DATASETS}
        for name in ALL_DATASETS
    },
    # every role reads the alerts and tickets, each team its own rows only (row-level security)
    **{(role, name): True for role in ROLE_CODES for name in ALERT_DATASETS},
    # the settlement marts (channel settlement, reconciliation exceptions, supplier payable):
    # finance data, read by Finance, the Manager and the Analyst only
    **{
        (role, name): role in {"Finance", "Manager", "Analyst"}
        for role in ("Finance", "Manager", "Analyst", "Ops", "CustomerService", "Tech")
        for name in SETTLEMENT_DATASETS
    },
}
SQL_LAB_ROLES = {"Analyst"}  # besides Admin
PAYMENT_ANOMALIES = {
    "lost_callback",
    "duplicate_payment",
    "amount_mismatch",
    "missing_in_statement",
    "missing_in_shop",
}
FULFILMENT_ANOMALIES = {"undelivered_10m"}


def test_roles_yml_follows_the_design() -> None:
    wrong = [
        f"{role} {'may' if allowed else 'may not'} open {slug}"
        for (role, slug), allowed in DESIGN_DASHBOARDS.items()
        if (slug in role_dashboards(role)) != allowed
    ]
    wrong += [
        f"{role} {'may' if allowed else 'may not'} read {name}"
        for (role, name), allowed in DESIGN_DATASETS.items()
        if (name in role_datasets(role)) != allowed
    ]
    wrong += [
        f"the design's table names {name}, which is no dataset of the bundle"
        for _, name in DESIGN_DATASETS
        if name not in ALL_DATASETS
    ]
    wrong += [
        f"{role} holds SQL Lab"
        for role, spec in ROLES_YML["roles"].items()
        if ("sql_lab" in (spec.get("permissions") or [])) != (role in SQL_LAB_ROLES)
    ]
    wrong += [
        f"{role} is granted the pii schema"
        for role, spec in ROLES_YML["roles"].items()
        if "pii" in (spec.get("schemas") or [])
    ]
    assert not wrong, f"dashboards/roles.yml disagrees with the design's roles table: {wrong}"


# --------------------------------------------------------------------------------- fixtures
class Api:
    """The Superset under test, one logged-in session per user."""

    scratch_dashboard: int
    scratch_chart: int

    def __init__(self, server) -> None:
        self.server = server
        self.url = server.url
        self._sessions: dict[str, Any] = {}
        admin = self.as_user(ADMIN)
        self.dataset_id = {d["table_name"]: d["id"] for d in self._list(admin, "dataset")}
        self.dashboard_id = {d["slug"]: d["id"] for d in self._list(admin, "dashboard")}
        databases = {d["database_name"]: d["id"] for d in self._list(admin, "database")}
        assert set(databases) == set(_DATABASES), databases
        self.database_id, self.ops_database_id = databases[WAREHOUSE], databases[OPS]
        assert set(self.dataset_id) == set(ALL_DATASETS), self.dataset_id
        assert set(self.dashboard_id) == set(SLUGS), self.dashboard_id

    def _list(self, session, what: str) -> list[dict[str, Any]]:
        r = session.get(f"{self.url}/api/v1/{what}/", params={"q": "(page_size:100)"}, timeout=60)
        assert r.status_code == 200, (what, r.status_code, r.text[:500])
        return r.json()["result"]

    def as_user(self, user: str):
        if user not in self._sessions:
            self._sessions[user] = self.server.login(user)
        return self._sessions[user]

    def get(self, user: str, path: str, **kw):
        return self.as_user(user).get(f"{self.url}{path}", timeout=60, **kw)

    def post(self, user: str, path: str, body: dict[str, Any]):
        return self.as_user(user).post(f"{self.url}{path}", json=body, timeout=120)

    def put(self, user: str, path: str, body: dict[str, Any]):
        return self.as_user(user).put(f"{self.url}{path}", json=body, timeout=60)

    def delete(self, user: str, path: str):
        return self.as_user(user).delete(f"{self.url}{path}", timeout=60)

    def chart_data(
        self,
        user: str,
        dataset: str,
        columns: list[str] | None = None,
        metrics: list[Any] | None = None,
        filters: list[dict[str, Any]] | None = None,
        row_limit: int = 100_000,
    ):
        query = {
            "columns": columns or [],
            "metrics": metrics
            if metrics is not None
            else [{"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}],
            "filters": filters or [],
            "row_limit": row_limit,
        }
        body = {
            "datasource": {"id": self.dataset_id[dataset], "type": "table"},
            "queries": [query],
            "result_format": "json",
            "result_type": "full",
            "force": True,
        }
        return self.post(user, "/api/v1/chart/data", body)

    def rows(self, user: str, dataset: str, **kw) -> list[dict[str, Any]]:
        r = self.chart_data(user, dataset, **kw)
        assert r.status_code == 200, (user, dataset, r.status_code, r.text[:500])
        (result,) = r.json()["result"]
        assert result.get("error") is None, (user, dataset, result.get("error"))
        return result["data"]

    def sql(self, user: str, sql: str, **extra):
        body = {
            "database_id": self.database_id,
            "sql": sql,
            "schema": "main",
            "runAsync": False,
            "client_id": secrets.token_hex(5),
            "tab": "access test",
            "sql_editor_id": "1",
            "queryLimit": 1000,
            **extra,
        }
        return self.post(user, "/api/v1/sqllab/execute/", body)


@pytest.fixture(scope="module")
def api(superset_server) -> Api:
    return Api(superset_server)


def sql_failed(r) -> bool:
    """SQL Lab refused or the database raised: a non-2xx answer or an error payload."""
    if r.status_code >= 400:
        return True
    payload = r.json()
    return bool(payload.get("errors")) or payload.get("status") in {"failed", "error"}


# ------------------------------------------------------------------------ dashboards (42+)
DASHBOARD_CASES = [
    pytest.param(
        role, slug, id=f"{role}-{'opens' if slug in role_dashboards(role) else 'not'}-{slug}"
    )
    for role in ROLES
    for slug in SLUGS
]


@pytest.mark.parametrize(("role", "slug"), DASHBOARD_CASES)
def test_dashboard_access(api: Api, role: str, slug: str) -> None:
    allowed = slug in role_dashboards(role)
    design = DESIGN_DASHBOARDS.get((role, slug))
    assert design is None or design == allowed, (
        f"roles.yml lets {role} {'open' if allowed else 'not open'} {slug}; the design says "
        f"{'yes' if design else 'no'}"
    )
    user = USER[role]
    expected = 200 if allowed else 404
    for path in (
        f"/api/v1/dashboard/{slug}",
        f"/api/v1/dashboard/{api.dashboard_id[slug]}",
        f"/api/v1/dashboard/{slug}/charts",
        f"/api/v1/dashboard/{slug}/datasets",
    ):
        r = api.get(user, path)
        assert r.status_code == expected, (
            f"{user} ({role}) GET {path}: {r.status_code}, expected {expected}: {r.text[:300]}"
        )


def test_admin_opens_every_dashboard(api: Api) -> None:
    for slug in SLUGS:
        r = api.get(ADMIN, f"/api/v1/dashboard/{slug}")
        assert r.status_code == 200, (slug, r.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_dashboard_listing(api: Api, role: str) -> None:
    listed = {d["slug"] for d in api._list(api.as_user(USER[role]), "dashboard")}
    assert listed == role_dashboards(role), (role, sorted(listed))


# --------------------------------------------------------------------------------- datasets
@pytest.mark.parametrize("role", ROLES)
def test_dataset_listing(api: Api, role: str) -> None:
    listed = {d["table_name"] for d in api._list(api.as_user(USER[role]), "dataset")}
    assert listed == role_datasets(role), (
        f"{role} lists {sorted(listed)}; expected {sorted(role_datasets(role))}"
    )
    for (design_role, name), allowed in DESIGN_DATASETS.items():
        if design_role == role:
            assert (name in listed) == allowed, f"{role} {'misses' if allowed else 'lists'} {name}"


CHART_DATA_CASES = [
    pytest.param(
        role, name, id=f"{role}-{'reads' if name in role_datasets(role) else 'not'}-{name}"
    )
    for role in ROLES
    for name in ALL_DATASETS
]


@pytest.mark.parametrize(("role", "dataset"), CHART_DATA_CASES)
def test_chart_data_access(api: Api, role: str, dataset: str) -> None:
    allowed = dataset in role_datasets(role)
    design = DESIGN_DATASETS.get((role, dataset))
    assert design is None or design == allowed, (role, dataset, "roles.yml vs design", allowed)
    user = USER[role]
    r = api.chart_data(user, dataset)
    if allowed:
        assert r.status_code == 200, (user, dataset, r.status_code, r.text[:500])
        (result,) = r.json()["result"]
        assert result["error"] is None and len(result["data"]) == 1, (user, dataset, result)
    else:
        assert r.status_code == 403, (user, dataset, r.status_code, r.text[:500])
        assert r.json()["errors"][0]["error_type"] == "DATASOURCE_SECURITY_ACCESS_ERROR", r.text
        r = api.get(user, f"/api/v1/dataset/{api.dataset_id[dataset]}")
        assert r.status_code == 404, (user, dataset, "GET dataset", r.status_code)


# custom SQL in a chart query may not reach past the dataset (and its row-level security)
@pytest.mark.parametrize(
    ("role", "dataset", "expression"),
    [
        pytest.param(
            "Ops",
            "kpi_sales_daily",
            "(select count(*) from main.fct_payments)",
            id="Ops-subquery-payments",
        ),
        pytest.param(
            "Ops",
            "anomaly_orders",
            "(select count(*) from main.anomaly_orders)",
            id="Ops-subquery-around-rls",
        ),
        pytest.param(
            "CustomerService",
            "order_lookup",
            "(select max(identifiers) from pii.dim_users)",
            id="CS-subquery-pii",
        ),
        pytest.param(
            "Tech",
            "dq_daily",
            "(select count(*) from main.kpi_sales_daily)",
            id="Tech-subquery-sales",
        ),
        pytest.param(
            "Ops",
            "tickets",
            "(select count(*) from main.tickets)",
            id="Ops-subquery-around-ticket-rls",
        ),
    ],
)
def test_chart_data_custom_sql_stays_inside(
    api: Api, role: str, dataset: str, expression: str
) -> None:
    metric = {"expressionType": "SQL", "sqlExpression": expression, "label": "m"}
    r = api.chart_data(USER[role], dataset, metrics=[metric])
    assert r.status_code in {400, 403}, (role, expression, r.status_code, r.text[:500])


# ------------------------------------------------------------------------ row-level security
def _reasons(api: Api, user: str) -> set[str]:
    return {row["reason_code"] for row in api.rows(user, "anomaly_orders", columns=["reason_code"])}


def test_anomaly_rows_per_role(api: Api) -> None:
    everything = _reasons(api, ADMIN)
    assert everything & FULFILMENT_ANOMALIES and everything & PAYMENT_ANOMALIES, (
        f"the test shop should hold both kinds of anomaly: {everything}"
    )
    assert _reasons(api, USER["Ops"]) == everything & FULFILMENT_ANOMALIES
    assert _reasons(api, USER["Finance"]) == everything & PAYMENT_ANOMALIES
    assert _reasons(api, USER["Manager"]) == everything
    assert _reasons(api, USER["Analyst"]) == everything


def test_rls_survives_a_custom_where(api: Api) -> None:
    """An ad-hoc WHERE is ANDed with the role's filter, and cannot break out of its brackets."""
    metric = {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}
    for where in ("1 = 1 or 1 = 1", "reason_code = 'lost_callback' or 1 = 1"):
        body = {
            "datasource": {"id": api.dataset_id["anomaly_orders"], "type": "table"},
            "queries": [
                {"columns": ["reason_code"], "metrics": [metric], "extras": {"where": where}}
            ],
            "result_format": "json",
            "result_type": "full",
            "force": True,
        }
        r = api.post(USER["Ops"], "/api/v1/chart/data", body)
        assert r.status_code == 200, r.text[:500]
        got = {row["reason_code"] for row in r.json()["result"][0]["data"]}
        assert got <= FULFILMENT_ANOMALIES, (where, got)
    body["queries"][0]["extras"] = {"where": "1=1) or (1=1"}
    r = api.post(USER["Ops"], "/api/v1/chart/data", body)
    assert r.status_code == 400, (r.status_code, r.text[:500])


# the alerts dashboard: each team its own rules' rows, the Manager and the Analyst every row
def _rows_by_role(api: Api, user: str, dataset: str) -> dict[str | None, int]:
    return {r["role"]: r["n"] for r in api.rows(user, dataset, columns=["role"])}


@pytest.mark.parametrize("dataset", ALERT_DATASETS)
def test_alert_rows_per_role(api: Api, dataset: str) -> None:
    everything = _rows_by_role(api, ADMIN, dataset)
    if dataset in {"alerts", "tickets", "ticket_history"}:
        teams = set(everything) & set(ROLE_CODES.values())
        assert len(teams) >= 2, f"the test shop should raise alerts for several teams: {everything}"
    for role, code in ROLE_CODES.items():
        expected = {code: everything[code]} if code in everything else {}
        assert _rows_by_role(api, USER[role], dataset) == expected, (role, dataset, everything)
    for role in ("Manager", "Analyst"):
        assert _rows_by_role(api, USER[role], dataset) == everything, (role, dataset)


def test_ticket_history_follows_the_tickets_role(api: Api) -> None:
    """An event a person or a message adds names no role of its own: the team sees it with its
    ticket (the fixture acknowledged one ticket by hand)."""
    (ticket,) = api.rows(
        ADMIN,
        "tickets",
        columns=["ticket_id", "role"],
        metrics=[],
        filters=[{"col": "state", "op": "==", "val": "acknowledged"}],
    )
    team = {code: role for role, code in ROLE_CODES.items()}[ticket["role"]]
    for role in ROLE_CODES:
        events = api.rows(
            USER[role],
            "ticket_history",
            columns=["kind", "actor", "role"],
            metrics=[],
            filters=[{"col": "ticket_id", "op": "==", "val": ticket["ticket_id"]}],
        )
        if role == team:
            assert {"opened", "acknowledged"} <= {e["kind"] for e in events}, events
            assert {e["role"] for e in events} == {ticket["role"]}, events
        else:
            assert events == [], (role, events)


# ------------------------------------------------------------------- the order lookup (CS)
# mask_contact (dbt_project/macros/identity.sql): all but the last 4 characters become `*`; for an
# email, of the part before the `@` (the domain stays)
MASKED = {
    "phone": re.compile(r"\*+\d{4}"),
    "qq": re.compile(r"\*+\d{4}"),
    "email": re.compile(r"\**[^@*]{1,4}@[^@]+"),
}


def test_order_lookup_contact_is_masked(api: Api) -> None:
    rows = api.rows(
        USER["CustomerService"],
        "order_lookup",
        columns=["primary_contact_kind", "primary_contact_masked"],
        metrics=[],
    )
    assert rows, "the order lookup returned no rows"
    kinds = set()
    for row in rows:
        kind, masked = row["primary_contact_kind"], row["primary_contact_masked"]
        if masked is None:
            continue
        kinds.add(kind)
        assert not re.search(r"\d{5,}", masked), f"an unmasked number: {masked!r}"
        pattern = MASKED.get(kind, MASKED["phone"])
        assert pattern.fullmatch(masked), f"{kind} {masked!r} is not masked to its last 4"
    assert "phone" in kinds, kinds
    phones = [r["primary_contact_masked"] for r in rows if r["primary_contact_kind"] == "phone"]
    assert all(len(p) == 11 and p.startswith("*" * 7) for p in phones if p), phones[:5]


def test_order_lookup_finds_one_order(api: Api) -> None:
    cs = USER["CustomerService"]
    (first,) = api.rows(cs, "order_lookup", columns=["order_no"], metrics=[], row_limit=1)
    found = api.rows(
        cs,
        "order_lookup",
        columns=["order_no", "order_status", "amount_yuan", "primary_contact_masked"],
        metrics=[],
        filters=[{"col": "order_no", "op": "==", "val": first["order_no"]}],
    )
    assert found and {r["order_no"] for r in found} == {first["order_no"]}, found


# --------------------------------------------------------------------- editing: Admin only
def _edits(api: Api, role: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(name, method, path, body) of every write a viewer must not make."""
    slug = sorted(role_dashboards(role))[0]
    dashboard = api.dashboard_id[slug]
    chart_dataset = sorted(role_datasets(role))[0]
    return [
        ("put-dashboard", "PUT", f"/api/v1/dashboard/{dashboard}", {}),
        ("post-dashboard", "POST", "/api/v1/dashboard/", {"dashboard_title": "new"}),
        ("delete-dashboard", "DELETE", f"/api/v1/dashboard/{api.scratch_dashboard}", {}),
        (
            "post-chart",
            "POST",
            "/api/v1/chart/",
            {
                "slice_name": "new",
                "datasource_id": api.dataset_id[chart_dataset],
                "datasource_type": "table",
                "viz_type": "table",
            },
        ),
        ("put-chart", "PUT", f"/api/v1/chart/{api.scratch_chart}", {"slice_name": "edited"}),
        ("delete-chart", "DELETE", f"/api/v1/chart/{api.scratch_chart}", {}),
        (
            "put-dataset",
            "PUT",
            f"/api/v1/dataset/{api.dataset_id[chart_dataset]}",
            {"description": "edited"},
        ),
        (
            "post-dataset",
            "POST",
            "/api/v1/dataset/",
            {"database": api.database_id, "schema": "pii", "table_name": "dim_users"},
        ),
        ("put-database", "PUT", f"/api/v1/database/{api.database_id}", {"allow_dml": True}),
    ]


@pytest.fixture(scope="module")
def scratch(api: Api) -> Iterator[Api]:
    """A dashboard and a chart that Admin creates for the delete attempts (and removes after)."""
    r = api.post(ADMIN, "/api/v1/dashboard/", {"dashboard_title": "access test scratch"})
    assert r.status_code == 201, r.text[:500]
    api.scratch_dashboard = r.json()["id"]
    body = {
        "slice_name": "access test scratch",
        "datasource_id": api.dataset_id["kpi_sales_daily"],
        "datasource_type": "table",
        "viz_type": "table",
    }
    r = api.post(ADMIN, "/api/v1/chart/", body)
    assert r.status_code == 201, r.text[:500]
    api.scratch_chart = r.json()["id"]
    yield api
    api.delete(ADMIN, f"/api/v1/chart/{api.scratch_chart}")
    api.delete(ADMIN, f"/api/v1/dashboard/{api.scratch_dashboard}")


EDIT_NAMES = [
    "put-dashboard",
    "post-dashboard",
    "delete-dashboard",
    "post-chart",
    "put-chart",
    "delete-chart",
    "put-dataset",
    "post-dataset",
    "put-database",
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("edit", EDIT_NAMES)
def test_nobody_but_admin_edits(scratch: Api, role: str, edit: str) -> None:
    api = scratch
    method, path, body = {e[0]: e[1:] for e in _edits(api, role)}[edit]
    user = USER[role]
    session = api.as_user(user)
    if edit == "put-dashboard":  # a harmless edit: the title it already has
        title = api.get(ADMIN, path).json()["result"]["dashboard_title"]
        body = {"dashboard_title": title}
    r = session.request(method, f"{api.url}{path}", json=body or None, timeout=60)
    assert r.status_code == 403, f"{user} ({role}) {method} {path}: {r.status_code} {r.text[:300]}"


def test_admin_edits(scratch: Api) -> None:
    api = scratch
    dashboard = api.dashboard_id["overview"]
    title = api.get(ADMIN, f"/api/v1/dashboard/{dashboard}").json()["result"]["dashboard_title"]
    try:
        r = api.put(ADMIN, f"/api/v1/dashboard/{dashboard}", {"dashboard_title": f"{title} (t)"})
        assert r.status_code == 200, r.text[:500]
        got = api.get(ADMIN, f"/api/v1/dashboard/{dashboard}").json()["result"]
        assert got["dashboard_title"] == f"{title} (t)"
    finally:
        r = api.put(ADMIN, f"/api/v1/dashboard/{dashboard}", {"dashboard_title": title})
        assert r.status_code == 200, r.text[:500]
    r = api.put(ADMIN, f"/api/v1/chart/{api.scratch_chart}", {"slice_name": "renamed"})
    assert r.status_code == 200, r.text[:500]


# ----------------------------------------------------------------------------------- SQL Lab
@pytest.mark.parametrize("role", [*ROLES, "Admin"])
def test_sql_lab_who_runs_queries(api: Api, role: str) -> None:
    user = ADMIN if role == "Admin" else USER[role]
    r = api.sql(user, "select count(*) as n from kpi_sales_daily")
    if role in SQL_LAB_ROLES | {"Admin"}:
        assert r.status_code == 200 and not sql_failed(r), (user, r.status_code, r.text[:500])
        assert r.json()["data"][0]["n"] > 0, r.json()["data"]
    else:
        assert r.status_code == 403, (user, r.status_code, r.text[:300])
        r = api.get(user, "/api/v1/database/")
        assert r.status_code == 403, (user, "lists databases", r.status_code)


def test_sql_lab_analyst_sees_the_warehouse_only(api: Api) -> None:
    # the Analyst reads the tickets' datasets, which would list their database too
    r = api.get(USER["Analyst"], "/api/v1/database/")
    assert r.status_code == 200, r.text[:300]
    assert [d["database_name"] for d in r.json()["result"]] == ["cardlake"], r.text[:300]
    r = api.sql(USER["Analyst"], "select 1", database_id=api.database_id + 1000)
    assert sql_failed(r), ("another database id answered", r.text[:300])
    r = api.sql(USER["Analyst"], "select * from dim_users limit 5")
    assert not sql_failed(r), r.text[:500]
    columns = {c["column_name"] for c in r.json()["columns"]}
    assert "user_key" in columns and "identifiers" not in columns, columns


@pytest.mark.parametrize("table", ["tickets", "ticket_events"])
def test_sql_lab_tickets_database_is_admin_only(api: Api, table: str) -> None:
    """The Analyst may read the tickets through their datasets, not query their file in SQL
    Lab; Admin may."""
    sql = f"select count(*) as n from {table}"
    r = api.sql(USER["Analyst"], sql, database_id=api.ops_database_id)
    assert sql_failed(r), f"Analyst ran {sql!r} on {OPS}: {r.status_code} {r.text[:300]}"
    r = api.get(
        USER["Analyst"],
        f"/api/v1/database/{api.ops_database_id}/table_metadata/",
        params={"name": table, "schema": "main"},
    )
    assert r.status_code in {403, 404}, (r.status_code, r.text[:300])
    r = api.sql(ADMIN, sql, database_id=api.ops_database_id)
    assert r.status_code == 200 and not sql_failed(r), (r.status_code, r.text[:500])
    assert r.json()["data"][0]["n"] > 0, r.json()["data"]


def _forbidden_sql(lake: Path, tmp: Path) -> list[tuple[str, str]]:
    marts = lake / "marts"
    return [
        ("write-copy-to", f"COPY (select 1 as x) TO '{tmp / 'copy.csv'}'"),
        (
            "write-copy-table-to",
            f"COPY kpi_sales_daily TO '{tmp / 'sales.parquet'}' (format parquet)",
        ),
        ("read-copy-from", f"COPY kpi_sales_daily FROM '{tmp / 'x.csv'}'"),
        ("read-csv-etc-passwd", "select * from read_csv('/etc/passwd')"),
        ("read-text", "select * from read_text('/etc/hostname')"),
        ("read-glob", "select * from glob('/etc/*')"),
        (
            "read-parquet-marts",
            f"select count(*) from read_parquet('{marts}/fct_orders/**/*.parquet')",
        ),
        (
            "read-parquet-replacement-scan",
            f"select count(*) from '{marts}/fct_orders/**/*.parquet'",
        ),
        ("attach-file", f"ATTACH '{tmp / 'x.duckdb'}' AS x"),
        ("attach-memory", "ATTACH ':memory:' AS m"),
        ("set-external-access", "SET enable_external_access = true"),
        ("reset-external-access", "RESET enable_external_access"),
        ("set-lock-configuration", "SET lock_configuration = false"),
        ("set-allowed-directories", "SET allowed_directories = ['/']"),
        ("dml-create-table", "create table t as select 1 as x"),
        ("dml-insert", "insert into kpi_sales_daily select * from kpi_sales_daily"),
        ("dml-delete", "delete from kpi_sales_daily"),
        ("dml-drop", "drop view dim_users"),
        ("install-httpfs", "install httpfs"),
        ("load-httpfs", "load httpfs"),
        ("pii-main-view-column", "select identifiers from dim_users"),
        ("pii-schema", "select identifiers from pii.dim_users"),
        ("pii-schema-catalog", "select identifiers from warehouse.pii.dim_users"),
        ("pii-schema-cte", "with u as (select * from pii.dim_users) select identifiers from u"),
        ("pii-query-table", "select identifiers from query_table('pii.dim_users')"),
        ("pii-query", "select * from query('select identifiers from pii.dim_users')"),
        ("pii-summarize", "summarize pii.dim_users"),
        ("pii-pivot", "pivot pii.dim_users on primary_contact_kind using max(identifiers)"),
    ]


FORBIDDEN_SQL_NAMES = [name for name, _ in _forbidden_sql(Path("/lake"), Path("/tmp"))]


@pytest.mark.parametrize("name", FORBIDDEN_SQL_NAMES)
def test_sql_lab_analyst_cannot(api: Api, tmp_path: Path, name: str) -> None:
    (sql,) = [s for n, s in _forbidden_sql(api.server.lake, tmp_path) if n == name]
    r = api.sql(USER["Analyst"], sql)
    assert sql_failed(r), f"Analyst ran {sql!r}: {r.status_code} {r.text[:500]}"
    assert not list(tmp_path.iterdir()), f"{sql!r} left {list(tmp_path.iterdir())}"


def test_sql_lab_nothing_changed(api: Api) -> None:
    """After the refused statements, the settings are as locked and the data as published."""
    analyst = USER["Analyst"]
    r = api.sql(
        analyst,
        "select current_setting('enable_external_access') as ext, "
        "current_setting('lock_configuration') as locked, "
        "current_setting('threads') as threads, "
        "current_setting('memory_limit') as memory, "
        "current_setting('max_temp_directory_size') as spill, "
        "(select count(*) from duckdb_databases() where not internal) as dbs",
    )
    assert not sql_failed(r), r.text[:500]
    # the reader bounds (settings.ReaderLimits: 2 GB, 2 threads, 4 GB of spill by default)
    (row,) = r.json()["data"]
    assert row.pop("memory").endswith("GiB") and row.pop("spill").endswith("GiB"), row
    assert row == {"ext": False, "locked": True, "threads": 2, "dbs": 1}, row
    via_sql = api.sql(analyst, "select count(*) as n from kpi_sales_daily").json()["data"][0]["n"]
    (via_chart,) = api.rows(ADMIN, "kpi_sales_daily")
    assert via_sql == via_chart["n"], (via_sql, via_chart)


def test_sql_lab_no_create_table_as(api: Api) -> None:
    r = api.sql(
        USER["Analyst"],
        "select 1 as x",
        select_as_cta=True,
        tmp_table_name="ctas_probe",
        ctas_method="TABLE",
    )
    assert sql_failed(r), r.text[:500]


# ------------------------------------------------------ the lake's files, without Superset
@pytest.mark.parametrize(("database", "table"), [(WAREHOUSE, "kpi_sales_daily"), (OPS, "tickets")])
def test_database_connect_args_block_file_access(
    superset_server, database: str, table: str, tmp_path: Path
) -> None:
    """The lake's DuckDB file opened as the bundle's database opens it: no file written, read or
    attached, no setting changed."""
    import duckdb

    spec = yaml.safe_load((BUNDLE / "databases" / f"{database}.yaml").read_text("utf-8"))
    args = spec["extra"]["engine_params"]["connect_args"]
    assert args["read_only"] is True and args["config"]["enable_external_access"] is False
    assert args["config"]["lock_configuration"] is True
    assert not spec["allow_dml"] and not spec["allow_ctas"] and not spec["allow_cvas"]
    lake = superset_server.lake  # the tickets file is there once the server's fixture ran
    uri = string.Template(spec["sqlalchemy_uri"]).substitute(CARDLAKE_LAKE=lake)
    con = duckdb.connect(
        uri.removeprefix("duckdb:///"), read_only=args["read_only"], config=args["config"]
    )
    try:
        assert con.execute(f"select count(*) from {table}").fetchall()[0][0] > 0
        for sql in (
            f"COPY (select 1) TO '{tmp_path / 'x.csv'}'",
            "select * from read_csv('/etc/passwd')",
            f"select count(*) from read_parquet('{lake}/marts/**/*.parquet')",
            f"ATTACH '{tmp_path / 'x.duckdb'}' AS x",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "create table t as select 1",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
    finally:
        con.close()
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())
