"""The dashboards in a real browser: every role opens the dashboards ``dashboards/roles.yml`` gives
it, every chart renders without an error (screenshots under ``artefacts/screenshots/<role>/``),
the dashboards it is not given stay closed; the overview's headline numbers are the marts' values,
for the default shop filter (``all``) and after choosing ``main`` in the filter bar; the alerts
dashboard's ticket counts are the tickets file's, all of them for the Manager and the team's own
for a team (row-level security); the Chinese text is drawn with a CJK font.

Needs the ``superset_server`` fixture (a real Superset over the published test shop) and Debian's
Chromium; about three minutes once the server is up (2 CPUs, busy), most of it Chromium."""

from __future__ import annotations

import dataclasses
import functools
import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from pipelines.lib.superset import BUNDLE, ROLES, demo_logins

pytestmark = pytest.mark.browser

# Superset 6.1's dashboard DOM
CHART = "[data-test=chart-grid-component]"  # one per chart (markdown cells are not charts)
RENDERED = "[data-test=slice-container]"  # the chart's visualisation, once its data arrived
LOADING = "[data-test=loading-indicator]"
ERROR = ".ant-alert-error, .alert-danger, [data-test=error-tooltip]"  # a chart's "Data error"
GRID = "[data-test=grid-content]"
HEADER = "[data-test=dashboard-header-container]"
HEADLINE, KICKER = ".header-line", ".kicker"  # a big number's value and its date
RENDER_TIMEOUT = 60_000


@dataclasses.dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    charts: tuple[str, ...]  # the chart names the dashboard shows, from its position


@functools.cache
def dashboards() -> dict[str, Dashboard]:
    out = {}
    for path in sorted((BUNDLE / "dashboards").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        charts = tuple(
            node["meta"].get("sliceNameOverride") or node["meta"]["sliceName"]
            for key, node in doc["position"].items()
            if key.startswith("CHART-") and node["type"] == "CHART"
        )
        out[doc["slug"]] = Dashboard(doc["slug"], doc["dashboard_title"], charts)
    return out


@functools.cache
def role_dashboards() -> dict[str, tuple[str, ...]]:
    roles = yaml.safe_load(ROLES.read_text(encoding="utf-8"))["roles"]
    return {role: tuple(spec.get("dashboards", [])) for role, spec in roles.items()}


@functools.cache
def chart_yaml(stem: str) -> dict:
    return yaml.safe_load((BUNDLE / "charts" / f"{stem}.yaml").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------- helpers
_SETTLED = """([chart, rendered, loading, error, title, names]) => {
  const charts = [...document.querySelectorAll(chart)];
  const shown = charts.map(c => c.getAttribute('data-test-chart-name'));
  return document.title === title
    && JSON.stringify(shown.sort()) === JSON.stringify([...names].sort())
    && !document.querySelector(loading)
    && charts.every(c => c.querySelector(rendered) || c.querySelector(error));
}"""

_CHARTS = """([chart, rendered, error]) => [...document.querySelectorAll(chart)].map(c => ({
  name: c.getAttribute('data-test-chart-name'),
  rendered: c.querySelectorAll(rendered).length,
  errors: [...c.querySelectorAll(error)].map(e => e.innerText.trim().replace(/\\s+/g, ' ')),
}))"""

# what Superset's own links do: a new history entry, which its router renders
_FOLLOW_LINK = """(path) => {
  window.history.pushState({}, '', path);
  window.dispatchEvent(new PopStateEvent('popstate', {state: {}}));
}"""


def open_dashboard(page, slug: str, *, in_app: bool = False) -> None:
    """Open a dashboard, by loading its address or (``in_app``) from within the running app as
    its links do, without reloading Superset's scripts; then wait until it has settled."""
    path = f"/superset/dashboard/{slug}/"
    if in_app:
        page.evaluate(_FOLLOW_LINK, path)
    else:
        response = page.goto(path)
        assert response is not None and response.ok, (slug, response and response.status)
    wait_settled(page, dashboards()[slug])


def wait_settled(page, dashboard: Dashboard) -> None:
    """Wait, with an explicit time-out, until the page shows the dashboard (its title) with the
    charts of its position, each of them rendered or showing an error, and no loading spinner
    is left anywhere."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            _SETTLED,
            arg=[CHART, RENDERED, LOADING, ERROR, dashboard.title, list(dashboard.charts)],
            timeout=RENDER_TIMEOUT,
            polling=200,
        )
    except PlaywrightTimeout:
        raise AssertionError(
            f"{dashboard.slug} not settled after {RENDER_TIMEOUT // 1000} s: page title "
            f"{page.title()!r}, {chart_problems(page, dashboard)}"
        ) from None


def refused_chart_data(page) -> list[str]:
    """The chart data requests Superset refuses from now on (a list that fills as they come)."""
    refused: list[str] = []

    def on_response(response) -> None:
        if "/api/v1/chart/data" in response.url and response.status >= 400:
            refused.append(f"{response.status} {response.url}")

    page.on("response", on_response)
    return refused


def chart_problems(page, dashboard: Dashboard) -> list[str]:
    """What is wrong with the dashboard on screen: charts missing or extra, charts showing an
    error or not rendered, a loading spinner left."""
    charts = page.evaluate(_CHARTS, [CHART, RENDERED, ERROR])
    problems = []
    shown = sorted(c["name"] for c in charts)
    if shown != sorted(dashboard.charts):
        problems.append(f"charts shown {shown} != the position's {sorted(dashboard.charts)}")
    for chart in charts:
        if chart["errors"]:
            problems.append(f"{chart['name']!r}: error {' / '.join(chart['errors'])!r}")
        elif chart["rendered"] != 1:
            problems.append(f"{chart['name']!r}: not rendered")
    if spinners := page.locator(LOADING).count():
        problems.append(f"{spinners} loading spinner(s) left")
    return problems


# true once no canvas (ECharts draws on them) changed between two polls, compared as thumbnails:
# the charts' opening animations are over
_DRAWN = """() => {
  const probe = document.createElement('canvas');
  probe.width = probe.height = 64;
  const ctx = probe.getContext('2d', {willReadFrequently: true});
  let sig = '';
  for (const canvas of document.querySelectorAll('canvas')) {
    if (!canvas.width || !canvas.height) continue;
    ctx.clearRect(0, 0, 64, 64);
    ctx.drawImage(canvas, 0, 0, 64, 64);
    let h = 0;
    for (const byte of ctx.getImageData(0, 0, 64, 64).data) h = (h * 31 + byte) | 0;
    sig += h + ',';
  }
  const same = sig === window.__cardlakeCanvases;
  window.__cardlakeCanvases = sig;
  return same;
}"""


def screenshot(page, path: Path) -> None:
    """The whole dashboard (header, filter bar, every chart) once its charts have stopped moving,
    as a clip of the tall viewport: a ``full_page`` screenshot would resize the page (see
    ``conftest.VIEWPORT``)."""
    page.wait_for_function(_DRAWN, timeout=RENDER_TIMEOUT, polling=300)
    page.evaluate("window.scrollTo(0, 0)")  # a click may have scrolled it
    bottom = page.evaluate(f"document.querySelector('{GRID}').getBoundingClientRect().bottom")
    height = page.viewport_size["height"]
    assert bottom + 16 <= height, f"{path.name}: {bottom:.0f} px long, raise conftest.VIEWPORT"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(path),
        clip={"x": 0, "y": 0, "width": page.viewport_size["width"], "height": bottom + 16},
    )


_GLYPHS = """(el) => {
  const family = getComputedStyle(el).fontFamily;
  const draw = (text) => {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 48;
    const ctx = canvas.getContext('2d');
    ctx.font = `36px ${family}`;
    ctx.fillText(text, 4, 40);
    return canvas.toDataURL();
  };
  return {family, blank: draw(''), glyphs: [...el.innerText.trim()].map(draw)};
}"""


def assert_title_in_chinese(page, dashboard: Dashboard) -> None:
    """The dashboard's Chinese title is the page's title and the header's, and each of its
    characters is drawn as a glyph of its own in the header's font: with no CJK font installed
    every one would be the same box (tofu)."""
    from playwright.sync_api import expect

    assert page.title() == dashboard.title, (dashboard.slug, page.title())
    header = page.locator(HEADER).get_by_text(dashboard.title, exact=True)
    expect(header).to_be_visible()
    drawn = header.evaluate(_GLYPHS)
    glyphs = drawn["glyphs"]
    assert len(glyphs) == len(dashboard.title), (dashboard.title, drawn["family"])
    assert len(set(glyphs)) == len(glyphs) and drawn["blank"] not in glyphs, (
        f"{dashboard.title}: the same glyph for different characters in {drawn['family']}"
    )


# --------------------------------------------------------------------------------- per role
@pytest.mark.parametrize("role", sorted(demo_logins()))
def test_role_opens_its_dashboards_and_no_other(login, screenshots, role):
    """Every dashboard the role is given renders each of its charts, without an error, with its
    Chinese title; every other one answers 404 and shows nothing of itself."""
    from playwright.sync_api import expect

    allowed = role_dashboards()[role]
    assert allowed and set(allowed) <= set(dashboards()), allowed
    page = login(*demo_logins()[role])
    refused = refused_chart_data(page)

    problems: dict[str, list[str]] = {}
    for n, slug in enumerate(allowed):
        dashboard = dashboards()[slug]
        refused.clear()
        try:
            open_dashboard(page, slug, in_app=n > 0)  # the first one by its address
        except AssertionError as exc:
            problems[slug] = [str(exc)]
            continue
        found = chart_problems(page, dashboard)
        screenshot(page, screenshots / role / f"{slug}.png")
        found += [f"chart data refused: {r}" for r in refused]
        if page.locator(CHART).count() != len(dashboard.charts):
            found.append("the charts went away while the screenshot was taken")
        if found:
            problems[slug] = found
        assert_title_in_chinese(page, dashboard)
    assert not problems, f"{role}: {problems}"

    # Superset answers "Page not found" for a dashboard the role is not given (they all exist:
    # the Manager opens every one above)
    for slug in sorted(set(dashboards()) - set(allowed)):
        response = page.goto(f"/superset/dashboard/{slug}/")
        assert response is not None and response.status == 404, (role, slug, response.status)
        expect(page.locator("body")).to_contain_text("Page not found")
        expect(page.locator(CHART)).to_have_count(0)
        expect(page.locator(HEADER)).to_have_count(0)
        assert dashboards()[slug].title not in page.content(), (role, slug)


def test_a_chart_error_is_caught(login):
    """The checks above see a failing chart: its data request refused as Superset refuses a
    dataset the role may not read, the chart shows its "Data error" and nothing else hangs."""
    import json

    page = login(*demo_logins()["CustomerService"])
    message = "You need access to the following tables: order_lookup"

    def refuse(route) -> None:
        body = {"errors": [{"message": message, "error_type": "TABLE_SECURITY_ACCESS_ERROR"}]}
        route.fulfill(status=403, content_type="application/json", body=json.dumps(body))

    page.route("**/api/v1/chart/data?form_data=*", refuse)  # the chart's, not the filters'
    refused = refused_chart_data(page)
    open_dashboard(page, "order-lookup")
    (chart,) = dashboards()["order-lookup"].charts
    problems = chart_problems(page, dashboards()["order-lookup"])
    assert len(problems) == 1 and problems[0].startswith(f"{chart!r}: error"), problems
    assert message in problems[0] and len(refused) == 1, (problems, refused)


# ------------------------------------------------------------------------ overview vs marts
# The overview's big numbers (dashboards/charts/<stem>.yaml): the mart, the row of a shop
# (``$shop``, 'all' for every shop) and the value the chart shows for the latest day.
HEADLINES = {
    "ov_gmv": ("kpi_sales_daily", "shop = $shop", "gmv_fen / 100"),
    "ov_paid": ("kpi_sales_daily", "shop = $shop", "paid_orders"),
    "ov_conv": ("kpi_sales_daily", "shop = $shop", "conversion_rate"),
    "ov_aov": ("kpi_sales_daily", "shop = $shop", "avg_order_value_fen / 100"),
    "ov_cup": ("kpi_sales_daily", "shop = $shop", "customer_unit_price_fen / 100"),
    "ov_buyers": ("kpi_sales_daily", "shop = $shop", "buyers"),
    "ov_refund": (
        "kpi_refunds_daily",
        "if($shop = 'all', breakdown = 'overall', breakdown = 'shop' and breakdown_value = $shop)",
        "refund_rate",
    ),
    "ov_repurchase": ("kpi_repurchase_daily", "shop = $shop", "repurchase_rate_30d"),
}


def as_number(text: str, fmt: str) -> Decimal:
    """A number as d3-format ``fmt`` (``,.2f``, ``,d``, ``.2%``) prints it, read back."""
    text = text.strip().replace(",", "")
    return Decimal(text.removesuffix("%")) / 100 if fmt.endswith("%") else Decimal(text)


def half_unit(fmt: str) -> Decimal:
    """Half the last printed digit of ``fmt``: how far the printed number may be from the true
    one when it is rounded to the nearest (``.2%`` prints hundredths of a percent)."""
    digits = int(m[1]) if (m := re.search(r"\.(\d+)[f%]$", fmt)) else 0
    return Decimal(1).scaleb(-digits - (2 if fmt.endswith("%") else 0)) / 2


def mart_headlines(lake: Path, shop: str) -> dict[str, tuple[str, float | int]]:
    """Chart → (the mart's latest business day, the value for ``shop`` that day), straight from
    the published warehouse."""
    import duckdb

    out = {}
    with duckdb.connect(str(lake / "warehouse.duckdb"), read_only=True) as con:
        for stem, (table, where, value) in HEADLINES.items():
            rows = con.execute(
                f"select business_date, {value} from {table} where {where}"
                f" and business_date = (select max(business_date) from {table})",
                {"shop": shop},
            ).fetchall()
            assert len(rows) == 1, (stem, shop, rows)
            out[stem] = (rows[0][0].isoformat(), rows[0][1])
    return out


def shown_headlines(page) -> dict[str, tuple[str, str]]:
    """Chart → (the date, the value) its big number shows on the page."""
    out = {}
    for stem in HEADLINES:
        chart = page.locator(f'{CHART}[data-test-chart-name="{chart_yaml(stem)["slice_name"]}"]')
        out[stem] = (chart.locator(KICKER).inner_text(), chart.locator(HEADLINE).inner_text())
    return out


def assert_same(shown: dict, marts: dict, what: str) -> None:
    """Each big number shows the mart's latest day and the mart's value for it, rounded to the
    digits the chart's format prints."""
    assert shown.keys() == marts.keys()
    for stem, (day, text) in shown.items():
        fmt = chart_yaml(stem)["params"]["y_axis_format"]
        mart_day, value = marts[stem]
        expected = format(int(value) if fmt.endswith("d") else value, fmt)
        assert day.strip() == mart_day and (
            abs(as_number(text, fmt) - Decimal(value)) <= half_unit(fmt)
        ), (
            f"{what}: {stem} shows {day} {text}, the mart has {mart_day} {expected} ({value!r})"
            f"\npage  {shown}\nmarts {marts}"
        )


def test_overview_headlines_are_the_marts_values(superset_server, login, screenshots):
    """Shop filter at its default ``all``, then ``main`` chosen in the native filter bar."""
    from playwright.sync_api import expect

    overview = dashboards()["overview"]
    assert {chart_yaml(stem)["slice_name"] for stem in HEADLINES} <= set(overview.charts)
    marts = {shop: mart_headlines(superset_server.lake, shop) for shop in ("all", "main")}
    # the switch to `main` must change what GMV shows, else it proves nothing
    assert format(marts["all"]["ov_gmv"][1], ",.2f") != format(marts["main"]["ov_gmv"][1], ",.2f")
    doc = yaml.safe_load((BUNDLE / "dashboards" / "overview.yaml").read_text(encoding="utf-8"))
    (shop_filter,) = [
        f["id"]
        for f in doc["metadata"]["native_filter_configuration"]
        if [t.get("column", {}).get("name") for t in f["targets"]] == ["shop"]
    ]

    page = login(*demo_logins()["Manager"])
    refused = refused_chart_data(page)
    open_dashboard(page, "overview")
    assert not chart_problems(page, overview) and not refused, chart_problems(page, overview)
    select = page.locator(f'[data-test="{shop_filter}"]')
    expect(select).to_contain_text("all")
    assert_same(shown_headlines(page), marts["all"], "shop all (the default)")

    # choose `main` in the filter bar and apply
    gmv = page.locator(
        f'{CHART}[data-test-chart-name="{chart_yaml("ov_gmv")["slice_name"]}"] {HEADLINE}'
    )
    before = gmv.inner_text()
    select.click()
    page.locator(".ant-select-dropdown:visible .ant-select-item-option[title=main]").click()
    expect(select).to_contain_text("main")
    page.locator("[data-test=filter-bar__apply-button]").click()
    expect(gmv).not_to_have_text(before, timeout=RENDER_TIMEOUT)
    wait_settled(page, overview)
    assert not chart_problems(page, overview) and not refused, chart_problems(page, overview)
    assert "native_filters_key=" in page.url, page.url
    screenshot(page, screenshots / "Manager" / "overview-shop-main.png")
    assert_same(shown_headlines(page), marts["main"], "shop main (filter bar)")


# --------------------------------------------------------------------- alerts vs the tickets
# the alerts dashboard's ticket counts (dashboards/charts/<stem>.yaml) and the state they count
TICKET_HEADLINES = {"al_open": "open", "al_acknowledged": "acknowledged"}


def ticket_counts(lake: Path, role: str | None) -> dict[str, int]:
    """Chart → the tickets of its state in ``lake/ops.duckdb`` (of ``role`` only, unless None)."""
    import duckdb

    with duckdb.connect(str(lake / "ops.duckdb"), read_only=True) as con:
        counts = dict(
            con.execute(
                "select state, count(*) from tickets where $role is null or role = $role "
                "group by state",
                {"role": role},
            ).fetchall()
        )
    return {stem: counts.get(state, 0) for stem, state in TICKET_HEADLINES.items()}


@pytest.mark.parametrize(("role", "code"), [("Manager", None), ("Tech", "tech")])
def test_alerts_ticket_counts_are_the_tickets_files(superset_server, login, role, code):
    """The Manager counts every ticket, Tech its own team's (the fixture's test shop leaves tech
    tickets open and one acknowledged)."""
    alerts = dashboards()["alerts"]
    expected = ticket_counts(superset_server.lake, code)
    if code is not None:
        assert sum(expected.values()) > 0, f"the test shop leaves {role} no ticket to count"
    page = login(*demo_logins()[role])
    refused = refused_chart_data(page)
    open_dashboard(page, "alerts")
    assert not chart_problems(page, alerts) and not refused, chart_problems(page, alerts)
    shown = {}
    for stem in TICKET_HEADLINES:
        name = chart_yaml(stem)["slice_name"]
        text = page.locator(f'{CHART}[data-test-chart-name="{name}"] {HEADLINE}').inner_text()
        shown[stem] = int(text.replace(",", ""))
    assert shown == expected, (role, shown, expected)
