"""Tickets from alert incidents: one ticket and one message per incident and route, a follow-up
when it resolves, nothing lost when delivery fails, a history that says everything; the robots
are the loopback stand-ins (real HTTP, signatures checked by the server)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.lib import tickets
from pipelines.lib.notify import Route
from tests.webhook_server import FEISHU_RATE_LIMITED, feishu_signature_ok

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 10, 20, 2, 0, tzinfo=dt.UTC)
DELIVERY = {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.02, "timeout_s": 2}


def alert(**over) -> dict:
    base = {
        "alert_id": "a1",
        "rule": "refund_spike",
        "entity_type": "supplier",
        "entity": "S04",
        "entity_name": "S04 某卡商",
        "shop": "all",
        "role": "ops",
        "severity": "critical",
        "first_day": dt.date(2026, 10, 15),
        "last_day": dt.date(2026, 10, 19),
        "evaluated_day": dt.date(2026, 10, 19),
        "is_open": True,
        "resolved_day": None,
        "title": "退款率突增：供应商 S04 某卡商",
        "summary": "退款率 14.2%（基线 1.1%），z=9.3",
        "main_cause": "供应商 S04 的批次 B0412、B0413 解释了 93% 的超额退款",
        "causes": None,
        "metric_value": 0.142,
        "baseline_value": 0.011,
        "score": 9.3,
    }
    return base | over


def frame(*alerts: dict) -> pl.DataFrame:
    return pl.DataFrame(list(alerts), infer_schema_length=None)


@pytest.fixture
def robots(webhook_server):
    webhook_server.secrets["feishu/ops"] = "ops-secret"
    webhook_server.secrets["dingtalk/finance"] = "fin-secret"
    webhook_server.tokens["dingtalk/finance"] = "tok"
    routes = {
        "ops": [Route("ops", "feishu", webhook_server.url("feishu/ops"), "ops-secret")],
        "finance": [
            Route(
                "finance",
                "dingtalk",
                webhook_server.url("dingtalk/finance", access_token="tok"),
                "fin-secret",
            )
        ],
        "customer_service": [],
        "tech": [],
    }
    return webhook_server, routes


def clock(start: dt.datetime = T0):
    moments = iter(start + dt.timedelta(seconds=i) for i in range(10_000))
    return lambda: next(moments)


def test_one_ticket_and_one_message_per_incident_then_one_follow_up(tmp_path: Path, robots):
    server, routes = robots
    first = tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert()), now=clock())
    assert (first.opened, first.sent, first.failed, first.pending) == (1, 1, 0, 0)
    sent = server.requests("feishu/ops")
    assert len(sent) == 1
    body = sent[0].body
    assert feishu_signature_ok("ops-secret", body["timestamp"], body["sign"])
    text = json.dumps(body, ensure_ascii=False)
    assert "退款率突增：供应商 S04 某卡商" in text and "T000001" in text and "B0412" in text

    # the same incident on the next runs, a day longer: no new ticket, no new message
    for day in (20, 21):
        again = tickets.sync(
            tmp_path,
            routes,
            delivery=DELIVERY,
            alerts=frame(
                alert(last_day=dt.date(2026, 10, day), evaluated_day=dt.date(2026, 10, day))
            ),
            now=clock(T0 + dt.timedelta(days=day - 19)),
        )
        assert (again.opened, again.sent) == (0, 0)
    assert len(server.requests("feishu/ops")) == 1

    # the incident's first day moves (late refunds): still the same incident
    moved = frame(
        alert(alert_id="a1b", first_day=dt.date(2026, 10, 14), last_day=dt.date(2026, 10, 21))
    )
    assert tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=moved).opened == 0

    # it ends: one follow-up, the ticket resolves by itself, and nothing more after that
    over = frame(
        alert(
            alert_id="a1b",
            first_day=dt.date(2026, 10, 14),
            last_day=dt.date(2026, 10, 21),
            evaluated_day=dt.date(2026, 10, 23),
            is_open=False,
            resolved_day=dt.date(2026, 10, 22),
        )
    )
    done = tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=over)
    assert (done.resolved, done.sent) == (1, 1)
    assert tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=over).sent == 0
    follow_up = server.requests("feishu/ops")[-1].body
    assert len(server.requests("feishu/ops")) == 2
    assert "已恢复" in json.dumps(follow_up, ensure_ascii=False)
    t = tickets.load_tickets(tmp_path)["T000001"]
    assert t.state == "resolved" and not t.is_alert_open
    kinds = [e["kind"] for e in t.events]
    assert kinds == [
        "opened",
        "notified",
        "alert_updated",
        "alert_updated",
        "alert_updated",
        "alert_resolved",
        "notified",
    ]


def test_delivery_retries_and_nothing_is_lost_when_the_robot_is_down(tmp_path: Path, robots):
    server, routes = robots
    # rate-limited once, then fine: delivered within one sync, after two attempts
    server.fail_next(body=FEISHU_RATE_LIMITED)
    r = tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert()))
    assert (r.sent, r.failed) == (1, 0)
    notified = [
        e for e in tickets.load_tickets(tmp_path)["T000001"].events if e["kind"] == "notified"
    ]
    assert json.loads(notified[0]["detail"])["attempts"] == 2

    # a finance incident while the robot is down for longer than the retries last
    lost = alert(alert_id="b1", rule="lost_callback", entity="alipay:main", role="finance",
                 title="掉单：支付宝 main", main_cause=None)  # fmt: skip
    server.fail_next(3, status=503)
    down = tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert(), lost))
    assert (down.opened, down.sent, down.failed, down.pending) == (1, 0, 1, 1)
    t = tickets.load_tickets(tmp_path)["T000002"]
    assert t.state == "open" and [e["kind"] for e in t.events] == ["opened", "delivery_failed"]
    # the robot is back: the next sync delivers it, once
    back = tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert(), lost))
    assert (back.sent, back.pending) == (1, 0)
    assert tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert(), lost)).sent == 0
    dingtalk = [q for q in server.requests("dingtalk/finance") if q.answer.get("errcode") == 0]
    assert len(dingtalk) == 1 and dingtalk[0].body["msgtype"] == "markdown"


def test_a_permanent_refusal_is_not_retried_but_the_ticket_stays(tmp_path: Path, robots):
    server, routes = robots
    wrong = {**routes, "ops": [Route("ops", "feishu", server.url("feishu/ops"), "not-the-secret")]}
    r = tickets.sync(tmp_path, wrong, delivery=DELIVERY, alerts=frame(alert()))
    assert (r.opened, r.sent, r.failed, r.pending) == (1, 0, 1, 0)
    assert len(server.requests("feishu/ops")) == 1  # one attempt: a bad signature stays bad
    assert tickets.sync(tmp_path, wrong, delivery=DELIVERY, alerts=frame(alert())).failed == 0
    con = tickets.open_ops_db(tmp_path)
    assert con.execute("select state, delivery from tickets").fetchall() == [("open", "failed")]


def test_history_long_over_is_recorded_but_not_announced(tmp_path: Path, robots):
    server, routes = robots
    old = alert(alert_id="old", first_day=dt.date(2026, 9, 1), last_day=dt.date(2026, 9, 5),
                evaluated_day=dt.date(2026, 10, 19), is_open=False, resolved_day=dt.date(2026, 9, 6))  # fmt: skip
    recent = alert(alert_id="new", entity="S07", first_day=dt.date(2026, 10, 16),
                   last_day=dt.date(2026, 10, 18), is_open=False, resolved_day=dt.date(2026, 10, 19))  # fmt: skip
    r = tickets.sync(
        tmp_path, routes, delivery={**DELIVERY, "lookback_days": 2}, alerts=frame(old, recent)
    )
    assert (r.opened, r.sent) == (2, 2)  # the recent one: its message and its follow-up
    states = {t.alert_id: (t.state, t.notify) for t in tickets.load_tickets(tmp_path).values()}
    assert states == {"old": ("resolved", False), "new": ("resolved", True)}
    assert len(server.requests("feishu/ops")) == 2


def test_people_move_tickets_through_their_states(tmp_path: Path, robots):
    _, routes = robots
    tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert()))
    with pytest.raises(tickets.TicketError, match="no ticket"):
        tickets.change_state(tmp_path, "T999999", "acknowledged", "王芳")
    with pytest.raises(tickets.TicketError, match="cannot become open"):
        tickets.change_state(tmp_path, "T000001", "open", "王芳")
    with pytest.raises(tickets.TicketError, match="--by"):
        tickets.change_state(tmp_path, "T000001", "acknowledged", " ")
    assert tickets.change_state(tmp_path, "t000001", "acknowledged", "王芳").state == "acknowledged"
    done = tickets.change_state(tmp_path, "T000001", "resolved", "王芳", "已联系供应商更换批次")
    assert done.state == "resolved"
    with pytest.raises(tickets.TicketError, match="cannot become resolved"):
        tickets.change_state(tmp_path, "T000001", "resolved", "王芳")
    # the serving file shows it, read-only, with the whole history
    con = tickets.open_ops_db(tmp_path)
    row = con.execute("select state, acknowledged_by, resolved_by, events from tickets").fetchone()
    assert row == ("resolved", "王芳", "王芳", 4)
    notes = con.execute("select detail from ticket_events where kind = 'resolved'").fetchone()
    assert json.loads(notes[0])["note"] == "已联系供应商更换批次"
    with pytest.raises(duckdb.Error):
        con.execute("copy tickets to '/tmp/x.csv'")
    # a human close does not stop the follow-up when the incident itself ends
    over = frame(
        alert(
            is_open=False, evaluated_day=dt.date(2026, 10, 21), resolved_day=dt.date(2026, 10, 20)
        )
    )
    assert tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=over).sent == 1


def test_an_incident_that_leaves_the_mart_is_closed(tmp_path: Path, robots):
    _, routes = robots
    tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert()))
    gone = tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert()).clear())
    assert gone.resolved == 1
    t = tickets.load_tickets(tmp_path)["T000001"]
    assert t.state == "resolved" and "数据已更正" in t.events[-2]["detail"]


def test_the_event_log_is_append_only_files(tmp_path: Path, robots):
    _, routes = robots
    tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert()))
    tickets.change_state(tmp_path, "T000001", "acknowledged", "李雷")
    files = sorted((tmp_path / "tickets" / "events").glob("*.parquet"))
    assert [f.name for f in files] == [
        "events-000000000001.parquet",
        "events-000000000002.parquet",
        "events-000000000003.parquet",
    ]
    assert tickets.read_events(tmp_path)["seq"].to_list() == [1, 2, 3]
    assert not list((tmp_path / "tickets" / "events").glob(".*"))


def test_every_rule_of_the_alerts_mart_has_a_chinese_label():
    import yaml

    from pipelines.lib.dbt import DBT_DIR

    doc = yaml.safe_load((DBT_DIR / "models" / "marts" / "alerts" / "alerts.yml").read_text())
    (alerts,) = [m for m in doc["models"] if m["name"] == "alerts"]
    (rule,) = [c for c in alerts["columns"] if c["name"] == "rule"]
    (accepted,) = [t["accepted_values"] for t in rule["data_tests"] if "accepted_values" in t]
    assert set(accepted["arguments"]["values"]) == set(tickets.RULE_LABELS)


def test_new_figures_alone_add_no_event(tmp_path: Path, robots):
    """Live passes republish every few seconds; an open incident's figures change each time."""
    _, routes = robots
    tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=frame(alert()))
    for z in (9.4, 9.6, 9.9):
        moved = frame(alert(summary=f"退款率 14.{int(z * 10)}%（基线 1.1%），z={z}", score=z))
        r = tickets.sync(tmp_path, routes, delivery=DELIVERY, alerts=moved)
        assert (r.updated, r.sent) == (0, 0)
    assert [e["kind"] for e in tickets.load_tickets(tmp_path)["T000001"].events] == [
        "opened",
        "notified",
    ]
