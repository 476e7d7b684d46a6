"""Anomaly alert rules end to end: a realistic shop whose bad-supplier week the simulator injected
raises exactly one refund-spike alert naming that supplier and its bad batches as the cause, and a
shop without injected mess raises nothing; the robust z's floor is checked by the dbt unit test on
the signal model. Both shops go through `cardlake run` (land, model, publish) side by side."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.lib.dbt import run_dbt
from simulator.build import simulate
from simulator.config import SimConfig
from tests.conftest import cardlake, truth

pytestmark = pytest.mark.integration

#: 15 days: the bad-supplier week is days 5..9, after enough days for a baseline
EPISODE_SHOP = {
    "seed": 31,
    "start": dt.date(2026, 10, 1),
    "days": 15,
    "orders_per_day": 600,
    "skus": 150,
}
#: no injected mess: nothing may fire
CLEAN_SHOP = {
    "seed": 32,
    "start": dt.date(2026, 10, 1),
    "days": 12,
    "orders_per_day": 400,
    "skus": 120,
}


@dataclasses.dataclass(frozen=True)
class Shop:
    sources: Path
    lake: Path

    def query(self, sql: str) -> pl.DataFrame:
        con = duckdb.connect(str(self.lake / "warehouse.duckdb"), read_only=True)
        try:
            return con.sql(sql).pl()
        finally:
            con.close()


def _land(root: Path, name: str, config: dict, mess: str) -> Shop:
    summary = simulate(SimConfig(**config, mess=mess), root / name / "sources")
    lake = root / name / "lake"
    run = cardlake("run", "--sources", str(summary.out), "--lake", str(lake))
    assert run.returncode == 0, run.stdout + run.stderr
    return Shop(summary.out, lake)


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Shop]:
    """Both shops simulated and run through `cardlake run` at once (two child processes)."""
    root = tmp_path_factory.mktemp("alerts")
    with ThreadPoolExecutor(max_workers=2) as pool:
        episode = pool.submit(_land, root, "episode", EPISODE_SHOP, "realistic")
        clean = pool.submit(_land, root, "clean", CLEAN_SHOP, "none")
        return {"episode": episode.result(), "clean": clean.result()}


def _episode(shop: Shop) -> tuple[str, dt.date, dt.date]:
    manifest = json.loads((shop.sources / "_truth" / "manifest.json").read_text())
    episode = manifest["bad_supplier_episode"]
    marked = truth(shop.sources, "anomalies").filter(pl.col("kind") == "bad_supplier_episode")
    assert marked["record"].to_list() == [episode["supplier"]]
    return (
        episode["supplier"],
        dt.date.fromisoformat(episode["first_day"]),
        dt.date.fromisoformat(episode["last_day"]),
    )


def test_a_bad_supplier_week_raises_one_refund_spike_naming_the_supplier(
    shops: dict[str, Shop],
) -> None:
    shop = shops["episode"]
    supplier, first, last = _episode(shop)
    spikes = shop.query("select * from alerts where rule = 'refund_spike'")
    assert spikes.height == 1, spikes.select("entity_type", "entity", "first_day", "last_day")
    alert = spikes.row(0, named=True)
    assert alert["entity"] == supplier or alert["main_cause_value"] == supplier
    assert alert["main_cause_dimension"] == "supplier" and alert["main_cause_value"] == supplier
    assert supplier in alert["main_cause"] and supplier in alert["title"]
    assert first <= alert["first_day"] <= last
    assert alert["first_day"] <= alert["last_day"] <= alert["evaluated_day"]
    assert alert["role"] == "ops" and alert["severity"] == "critical"
    assert alert["metric_value"] > alert["baseline_value"] and alert["score"] >= 3

    causes = json.loads(alert["causes"])
    assert {c["dimension"] for c in causes} >= {"supplier", "batch", "channel", "latency"}
    suppliers = [c for c in causes if c["dimension"] == "supplier"]
    top = max(suppliers, key=lambda c: c["share"])
    assert top["value"] == supplier and top["share"] >= 0.5
    # the batches listed are the supplier's, and those that explain most came in its bad week
    batches = [c for c in causes if c["dimension"] == "batch"]
    assert batches and all(c["label"].startswith(supplier + " ") for c in batches)
    bad = set(truth(shop.sources, "batches").filter(pl.col("in_bad_episode"))["batch_id"].to_list())
    is_bad = {c["value"]: int(c["value"][-6:]) in bad for c in batches}  # batch_no ends in its id
    assert is_bad[max(batches, key=lambda c: c["share"])["value"]]
    assert sum(c["share"] for c in batches if is_bad[c["value"]]) > sum(
        c["share"] for c in batches if not is_bad[c["value"]]
    )
    for c in causes:
        assert set(c) >= {"dimension", "value", "label", "excess", "share"}

    # the history shows the supplier's spike on the days the incident covers
    history = shop.query(
        "select business_date from alert_signals_daily where rule = 'refund_spike' "
        f"and entity_type = 'supplier' and entity = '{supplier}' and is_firing"
    )["business_date"].to_list()
    assert alert["first_day"] in history and alert["last_day"] in history
    assert all(alert["first_day"] <= d <= alert["last_day"] for d in history)


def test_alerts_are_incidents_with_their_keys(shops: dict[str, Shop]) -> None:
    alerts = shops["episode"].query("select * from alerts")
    assert alerts["alert_id"].n_unique() == alerts.height
    # realistic mess has lost callbacks and duplicate charges: they alert too
    assert {"refund_spike", "lost_callback", "duplicate_payment"} <= set(alerts["rule"])
    assert set(alerts["role"]) <= {"ops", "finance", "customer_service", "tech"}
    assert set(alerts["severity"]) <= {"warning", "critical"}
    for a in alerts.iter_rows(named=True):
        assert a["title"] and a["summary"] and a["first_day"] <= a["last_day"]
        assert (a["resolved_day"] is None) == a["is_open"]
        if a["resolved_day"] is not None:
            assert a["resolved_day"] == a["last_day"] + dt.timedelta(days=1)
        assert (a["causes"] is None) == (a["rule"] != "refund_spike")


def test_a_shop_without_mess_raises_nothing(shops: dict[str, Shop]) -> None:
    shop = shops["clean"]
    assert shop.query("select * from alerts").height == 0
    signals = shop.query(
        "select rule, count(*) as days, count(*) filter (where is_firing) as firing "
        "from alert_signals_daily group by rule"
    )
    assert signals["firing"].sum() == 0
    # the rules did look: every rule that has something to watch in such a shop has its history
    assert set(signals["rule"]) >= {
        "refund_spike",
        "stockout",
        "low_days_of_cover",
        "unpaid_rate_surge",
        "lost_callback",
        "duplicate_payment",
        "source_stale",
        "quarantine_rate_high",
    }


def test_the_robust_z_floor_unit_test_passes(shops: dict[str, Shop]) -> None:
    """The dbt unit test on the refund-rate signal: a baseline with a MAD of 0 does not make a
    small rise infinitely significant, and a real spike after it still fires."""
    nodes = run_dbt(
        shops["clean"].lake, "test", ["--select", "int_refund_rates_scored,test_type:unit"]
    )
    assert [(n["node"].rsplit(".", 1)[-1], n["status"]) for n in nodes] == [
        ("int_refund_rates_scored__mad_of_zero_is_floored_by_the_binomial_error", "pass")
    ]


# ---- the incidents reach the team: tickets and robot messages -------------------------------


def _robots(server) -> dict:
    from pipelines.lib.notify import Route

    server.secrets["feishu/ops"] = "ops-secret"
    server.secrets["dingtalk/finance"] = "finance-secret"
    server.secrets["feishu/tech"] = "tech-secret"
    url = server.url
    return {
        "ops": [Route("ops", "feishu", url("feishu/ops"), "ops-secret")],
        "finance": [Route("finance", "dingtalk", url("dingtalk/finance", access_token="t"), "finance-secret")],
        "tech": [Route("tech", "feishu", url("feishu/tech"), "tech-secret", format="post")],
        "customer_service": [],
    }  # fmt: skip


def _fresh_ticket_store(shop: Shop, root: Path) -> Path:
    """A lake holding only the shop's serving file: its tickets start from nothing, as on the
    day the robots were configured (the module's `cardlake run` already opened tickets)."""
    root.mkdir()
    shutil.copy(shop.lake / "warehouse.duckdb", root / "warehouse.duckdb")
    return root


def test_the_bad_week_reaches_the_ops_robot_once_and_a_clean_shop_sends_nothing(
    shops: dict[str, Shop], webhook_server, tmp_path: Path
) -> None:
    from pipelines.lib import tickets
    from tests.webhook_server import feishu_signature_ok

    routes = _robots(webhook_server)
    supplier, _first, _last = _episode(shops["episode"])
    lake = _fresh_ticket_store(shops["episode"], tmp_path / "episode")
    # looking back over the whole history (by default only incidents of the last 2 days are
    # announced; older ones get a ticket, resolved, and no message)
    delivery = {"lookback_days": 60, "backoff_s": 0.01, "attempts": 2}
    first = tickets.sync(lake, routes, delivery=delivery)
    assert first.failed == 0 and first.pending == 0
    spikes = [t for t in tickets.load_tickets(lake).values() if t.fields["rule"] == "refund_spike"]
    assert len(spikes) == 1, [t.fields["title"] for t in spikes]
    (spike,) = spikes
    assert spike.fields["role"] == "ops" and supplier in spike.fields["title"]
    assert supplier in (spike.fields["main_cause"] or "")
    about = [
        r for r in webhook_server.requests("feishu/ops")
        if spike.ticket_id in json.dumps(r.body, ensure_ascii=False)
    ]  # fmt: skip
    # one message when it opened, one follow-up when it ended (the week is over by the last day)
    assert [("已恢复" in json.dumps(r.body, ensure_ascii=False)) for r in about] == [False, True]
    for r in about:
        assert r.answer["code"] == 0
        assert feishu_signature_ok("ops-secret", r.body["timestamp"], r.body["sign"])
        text = json.dumps(r.body, ensure_ascii=False)
        assert supplier in text and "退款率" in text
    # every other incident went to its own role's robot, each message once
    sent = tickets.read_events(lake).filter(pl.col("kind") == "notified")
    assert sent.height == first.sent
    assert sent.select("ticket_id", "phase", "route").is_duplicated().sum() == 0
    # the next publication's sync: nothing new, nothing sent again
    again = tickets.sync(lake, routes, delivery=delivery)
    assert (again.opened, again.sent) == (0, 0)
    assert len(webhook_server.requests()) == first.sent

    # people work the ticket from the command line; the serving file shows it
    listed = cardlake("tickets", "list", "--state", "all", "--role", "ops", "--lake", str(lake))
    assert listed.returncode == 0 and spike.ticket_id in listed.stdout, listed.stdout
    closed = cardlake(
        "tickets", "close", spike.ticket_id, "--by", "王芳", "--note", "供应商已换批次",
        "--lake", str(lake),
    )  # fmt: skip
    # the incident is over, so the system resolved it already: a second close is refused
    assert closed.returncode == 2 and "cannot become resolved" in closed.stderr
    shown = cardlake("tickets", "show", spike.ticket_id, "--lake", str(lake))
    assert shown.returncode == 0 and "alert_resolved" in shown.stdout and "notified" in shown.stdout
    con = tickets.open_ops_db(lake)
    row = con.execute(
        "select state, delivery, messages_sent from tickets where ticket_id = ?", [spike.ticket_id]
    ).fetchall()
    assert row == [("resolved", "sent", 2)]

    # a shop without injected mess: no ticket, no message
    before = len(webhook_server.requests())
    clean = _fresh_ticket_store(shops["clean"], tmp_path / "clean")
    nothing = tickets.sync(clean, routes, delivery=delivery)
    assert (nothing.opened, nothing.sent) == (0, 0)
    assert len(webhook_server.requests()) == before
