"""The dashboards in a real browser: every role opens the dashboards ``dashboards/roles.yml`` gives
it, every chart renders without an error (screenshots under ``artefacts/screenshots/<role>/``),
the dashboards it is not given stay closed; the overview's headline numbers are the marts' values,
for the default shop filter (``all``) and after choosing ``main`` in the filter bar; the Chinese
text is drawn with a CJK font.

Needs the ``superset_server`` fixture (a real Superset over the published test shop) and Debian's
Chromium; takes about two minutes once the server is up."""

from __future__ import annotations

import dataclasses
import functools
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from pipelines.lib.superset import BUNDLE, ROLES, demo_logins

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artefacts" / "screenshots"

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
_SETTLED = """([chart, rendered, loading, error, n]) => {
  const charts = [...document.querySelectorAll(chart)];
  return charts.length === n && !document.querySelector(loading)
    && charts.every(c => c.querySelector(rendered) || c.querySelector(error));
}"""

_CHARTS = """([chart, rendered, error]) => [...document.querySelectorAll(chart)].map(c => ({
  name: c.getAttribute('data-test-chart-name'),
  rendered: c.querySelectorAll(rendered).length,
  errors: [...c.querySelectorAll(error)].map(e => e.innerText.trim().replace(/\\s+/g, ' ')),
}))"""


def open_dashboard(page, slug: str) -> None:
    """Open a dashboard and wait until each of its charts has either rendered or failed."""
    response = page.goto(f"/superset/dashboard/{slug}/")
    assert response is not None and response.ok, (slug, response and response.status)
    wait_settled(page, len(dashboards()[slug].charts))


def wait_settled(page, n: int) -> None:
    """Wait, with explicit time-outs, until the page holds ``n`` charts, each of them rendered or
    showing an error, and no loading spinner is left anywhere."""
    from playwright.sync_api import expect

    expect(page.locator(CHART)).to_have_count(n, timeout=RENDER_TIMEOUT)
    page.wait_for_function(
        _SETTLED, arg=[CHART, RENDERED, LOADING, ERROR, n], timeout=RENDER_TIMEOUT, polling=200
    )


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


def screenshot(page, role: str, name: str) -> None:
    """The whole dashboard (header, filter bar, every chart) as a clip of the tall viewport; a
    ``full_page`` screenshot would resize the page (see ``conftest.VIEWPORT``)."""
    bottom = page.evaluate(f"document.querySelector('{GRID}').getBoundingClientRect().bottom")
    height = page.viewport_size["height"]
    assert bottom + 16 <= height, f"{name} is {bottom:.0f} px long: raise conftest.VIEWPORT"
    path = SCREENSHOTS / role / f"{name}.png"
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
def test_role_opens_its_dashboards_and_no_other(login, role):
    """Every dashboard the role is given renders each of its charts, without an error, with its
    Chinese title; every other one answers 404 and shows nothing of itself."""
    from playwright.sync_api import expect

    allowed = role_dashboards()[role]
    assert allowed and set(allowed) <= set(dashboards()), allowed
    page = login(*demo_logins()[role])
    refused = refused_chart_data(page)

    problems: dict[str, list[str]] = {}
    for slug in allowed:
        dashboard = dashboards()[slug]
        refused.clear()
        open_dashboard(page, slug)
        found = chart_problems(page, dashboard)
        screenshot(page, role, slug)
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


def mart_headlines(lake: Path, shop: str) -> dict[str, tuple[str, str]]:
    """Chart → (the mart's latest business day, its value for ``shop`` printed as the chart
    prints it), straight from the published warehouse."""
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
            day, number = rows[0]
            fmt = chart_yaml(stem)["params"]["y_axis_format"]
            if fmt.endswith("d"):
                assert number == int(number), (stem, number)
                number = int(number)
            out[stem] = (day.isoformat(), format(number, fmt))
    return out


def shown_headlines(page) -> dict[str, tuple[str, str]]:
    """Chart → (the date, the value) its big number shows on the page."""
    out = {}
    for stem in HEADLINES:
        chart = page.locator(f'{CHART}[data-test-chart-name="{chart_yaml(stem)["slice_name"]}"]')
        out[stem] = (chart.locator(KICKER).inner_text(), chart.locator(HEADLINE).inner_text())
    return out


def assert_same(shown: dict, marts: dict, what: str) -> None:
    """The same day and the same number once both are rounded as the chart rounds."""
    assert shown.keys() == marts.keys()
    for stem, (day, text) in shown.items():
        fmt = chart_yaml(stem)["params"]["y_axis_format"]
        mart_day, mart_text = marts[stem]
        assert (day.strip(), as_number(text, fmt)) == (mart_day, as_number(mart_text, fmt)), (
            f"{what}: {stem} shows {day} {text}, the mart has {mart_day} {mart_text}\n"
            f"page  {shown}\nmarts {marts}"
        )


def test_overview_headlines_are_the_marts_values(superset_server, login):
    """Shop filter at its default ``all``, then ``main`` chosen in the native filter bar."""
    from playwright.sync_api import expect

    overview = dashboards()["overview"]
    assert {chart_yaml(stem)["slice_name"] for stem in HEADLINES} <= set(overview.charts)
    marts = {shop: mart_headlines(superset_server.lake, shop) for shop in ("all", "main")}
    assert marts["all"]["ov_gmv"] != marts["main"]["ov_gmv"], (
        marts
    )  # else the switch proves nothing
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
    wait_settled(page, len(overview.charts))
    assert not chart_problems(page, overview) and not refused, chart_problems(page, overview)
    assert "native_filters_key=" in page.url, page.url
    screenshot(page, "Manager", "overview-shop-main")
    assert_same(shown_headlines(page), marts["main"], "shop main (filter bar)")
