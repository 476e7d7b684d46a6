"""Alert delivery to the Feishu and DingTalk group robots (pipelines/lib/notify.py): the exact
payloads for a fixed time, signatures computed here from the documented formulas, and real HTTP
against the loopback robots of tests/webhook_server.py (retries, permanent errors, timeouts)."""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import hashlib
import hmac
import itertools
import json
import logging
import socket
import time
import urllib.parse

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.lib.notify import (
    CUT_MARK,
    DINGTALK_TEXT_LIMIT,
    DINGTALK_TITLE_LIMIT,
    Delivery,
    Message,
    Route,
    RouteConfigError,
    classify,
    dingtalk_request,
    feishu_request,
    load_routes,
    send,
)
from tests.webhook_server import (
    DINGTALK_BUSY,
    DINGTALK_TOO_FAST,
    FEISHU_RATE_LIMITED,
    WebhookServer,
    dingtalk_signature_ok,
    feishu_signature_ok,
)

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 10, 5, 6, 30, 15, 123456, tzinfo=dt.UTC)
NOW_S = "1791181815"  # NOW in Unix seconds (Feishu)
NOW_MS = "1791181815123"  # NOW in Unix milliseconds (DingTalk)
SECRET = "SECabc123+/="  # characters that base64 and URLs care about
FAST = {"backoff_s": 0.01, "timeout_s": 2.0}

FIRING = Message(
    incident_id="INC-20261005-0007",
    phase="firing",
    rule="refund_spike",
    severity="critical",
    role="ops",
    title="退款率突增：供应商 S04",
    summary="近 1 小时退款率 12.5%，基线 2.1%。\n\n集中在 S04 的 Steam 充值卡。",
    facts=(("供应商", "S04"), ("退款率", "12.5%"), ("退款单数", "37")),
    main_cause="S04 的一批卡密已被使用",
    ticket_id="T-118",
    link="http://127.0.0.1:8088/superset/dashboard/alerts/",
    at=dt.datetime(2026, 10, 5, 6, 28, tzinfo=dt.UTC),
)
RESOLVED = Message(
    incident_id="INC-20261005-0007",
    phase="resolved",
    rule="refund_spike",
    severity="critical",
    role="ops",
    title="退款率突增：供应商 S04",
    summary="退款率回落到 2.4%。",
    ticket_id="T-118",
    at=dt.datetime(2026, 10, 5, 9, 5, tzinfo=dt.UTC),
)
WARNING = Message(
    incident_id="INC-9",
    phase="firing",
    rule="late_statement",
    severity="warning",
    role="finance",
    title="对账单迟到：支付宝",
    summary="10-04 的对账单尚未到达。",
    facts=(("渠道", "alipay"),),
    link="http://127.0.0.1:8088/d/finance",
)

FIRING_FOOTER = (
    "cardlake 告警 · 规则 refund_spike · 事件 INC-20261005-0007 · 工单 T-118 · "
    "发现于 2026-10-05 14:28（北京时间）"
)
RESOLVED_FOOTER = (
    "cardlake 告警 · 规则 refund_spike · 事件 INC-20261005-0007 · 工单 T-118 · 原级别 严重 · "
    "恢复于 2026-10-05 17:05（北京时间）"
)


def feishu_expected_sign(secret: str, timestamp: str) -> str:
    """The documented formula, written out again here: HmacSHA256 keyed by timestamp + "\\n" +
    secret over an empty message, then Base64."""
    mac = hmac.new((timestamp + "\n" + secret).encode("utf-8"), digestmod=hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("utf-8")


def dingtalk_expected_sign(secret: str, timestamp: str) -> str:
    """The documented formula: HmacSHA256 keyed by the secret over timestamp + "\\n" + secret,
    Base64, then urlEncode (the doc's Python sample uses quote_plus)."""
    mac = hmac.new(secret.encode("utf-8"), (timestamp + "\n" + secret).encode("utf-8"), "sha256")
    return urllib.parse.quote_plus(base64.b64encode(mac.digest()))


def _feishu(server: WebhookServer, path: str = "feishu/ops", secret: str | None = SECRET, **kw):
    if secret is not None:
        server.secrets[path] = secret
    return Route(role="ops", kind="feishu", url=server.url(path), secret=secret, **kw)


def _dingtalk(server: WebhookServer, path: str = "dingtalk/finance", secret: str | None = SECRET):
    if secret is not None:
        server.secrets[path] = secret
    url = server.url(path, access_token="t0k3n")
    return Route(role="finance", kind="dingtalk", url=url, secret=secret)


# ---------------------------------------------------------------------------- exact payloads
def test_feishu_card_is_the_documented_interactive_message_signed_at_now() -> None:
    route = Route("ops", "feishu", "http://127.0.0.1:9/feishu/ops", SECRET)
    url, body = feishu_request(FIRING, route, NOW)
    assert url == "http://127.0.0.1:9/feishu/ops"
    assert body == {
        "timestamp": NOW_S,
        "sign": feishu_expected_sign(SECRET, NOW_S),
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {
                "template": "red",
                "title": {"tag": "plain_text", "content": "【严重】退款率突增：供应商 S04"},
            },
            "elements": [
                {
                    "tag": "div",
                    "text": {
                        "tag": "lark_md",
                        "content": "近 1 小时退款率 12.5%，基线 2.1%。\n集中在 S04 的 Steam 充值卡。",
                    },
                },
                {
                    "tag": "div",
                    "fields": [
                        {
                            "is_short": True,
                            "text": {"tag": "lark_md", "content": "**供应商**\nS04"},
                        },
                        {
                            "is_short": True,
                            "text": {"tag": "lark_md", "content": "**退款率**\n12.5%"},
                        },
                        {
                            "is_short": True,
                            "text": {"tag": "lark_md", "content": "**退款单数**\n37"},
                        },
                    ],
                },
                {
                    "tag": "div",
                    "text": {"tag": "lark_md", "content": "**主要原因**\nS04 的一批卡密已被使用"},
                },
                {
                    "tag": "action",
                    "actions": [
                        {
                            "tag": "button",
                            "text": {"tag": "plain_text", "content": "打开看板"},
                            "type": "danger",
                            "url": "http://127.0.0.1:8088/superset/dashboard/alerts/",
                        }
                    ],
                },
                {"tag": "hr"},
                {"tag": "note", "elements": [{"tag": "plain_text", "content": FIRING_FOOTER}]},
            ],
        },
    }


def test_feishu_post_is_rich_text_with_the_link_as_an_a_element() -> None:
    route = Route("finance", "feishu", "http://127.0.0.1:9/feishu/fin", None, format="post")
    _, body = feishu_request(WARNING, route, NOW)
    assert body == {  # no secret: no timestamp, no sign
        "msg_type": "post",
        "content": {
            "post": {
                "zh_cn": {
                    "title": "【警告】对账单迟到：支付宝",
                    "content": [
                        [{"tag": "text", "text": "10-04 的对账单尚未到达。"}],
                        [{"tag": "text", "text": "渠道：alipay"}],
                        [
                            {
                                "tag": "a",
                                "text": "打开看板",
                                "href": "http://127.0.0.1:8088/d/finance",
                            }
                        ],
                        [
                            {
                                "tag": "text",
                                "text": "cardlake 告警 · 规则 late_statement · 事件 INC-9",
                            }
                        ],
                    ],
                }
            }
        },
    }


def test_dingtalk_markdown_and_the_signed_url() -> None:
    route = Route("ops", "dingtalk", "http://127.0.0.1:9/dingtalk/ops?access_token=t0k3n", SECRET)
    url, body = dingtalk_request(FIRING, route, NOW)
    sign = dingtalk_expected_sign(SECRET, NOW_MS)
    assert (
        url == f"http://127.0.0.1:9/dingtalk/ops?access_token=t0k3n&timestamp={NOW_MS}&sign={sign}"
    )
    assert body == {
        "msgtype": "markdown",
        "markdown": {
            "title": "【严重】退款率突增：供应商 S04",
            "text": (
                "### 🔴 【严重】退款率突增：供应商 S04\n\n"
                "近 1 小时退款率 12.5%，基线 2.1%。\n\n"
                "集中在 S04 的 Steam 充值卡。\n\n"
                "- **供应商**：S04\n- **退款率**：12.5%\n- **退款单数**：37\n\n"
                "**主要原因**：S04 的一批卡密已被使用\n\n"
                "[打开看板](http://127.0.0.1:8088/superset/dashboard/alerts/)\n\n"
                f"> {FIRING_FOOTER}"
            ),
        },
    }


def test_an_unsigned_dingtalk_url_is_left_alone_and_a_stale_signature_is_replaced() -> None:
    plain = Route("ops", "dingtalk", "http://127.0.0.1:9/d?access_token=t", None)
    assert dingtalk_request(FIRING, plain, NOW)[0] == "http://127.0.0.1:9/d?access_token=t"
    old = Route("ops", "dingtalk", "http://127.0.0.1:9/d?access_token=t&timestamp=1&sign=x", "s")
    url = dingtalk_request(FIRING, old, NOW)[0]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["access_token"] == ["t"]
    assert query["timestamp"] == [NOW_MS]
    assert len(query["sign"]) == 1 and query["sign"][0] != "x"


def test_payloads_depend_on_now_only_through_the_signature() -> None:
    route = Route("ops", "feishu", "http://127.0.0.1:9/f", SECRET)
    later = NOW + dt.timedelta(minutes=5)
    (_, a), (_, b) = feishu_request(FIRING, route, NOW), feishu_request(FIRING, route, later)
    assert a == feishu_request(FIRING, route, NOW)[1]  # deterministic
    assert {k: v for k, v in a.items() if k not in ("timestamp", "sign")} == {
        k: v for k, v in b.items() if k not in ("timestamp", "sign")
    }
    assert b["timestamp"] == str(int(NOW_S) + 300)


def test_colours_follow_phase_and_severity() -> None:
    route = Route("ops", "feishu", "http://127.0.0.1:9/f", None)
    templates = {
        m.phase + "/" + m.severity: feishu_request(m, route, NOW)[1]["card"]["header"]["template"]
        for m in (FIRING, RESOLVED, WARNING)
    }
    assert templates == {
        "firing/critical": "red",
        "resolved/critical": "green",
        "firing/warning": "orange",
    }
    ding = Route("ops", "dingtalk", "http://127.0.0.1:9/d?access_token=t", None)
    marks = [
        dingtalk_request(m, ding, NOW)[1]["markdown"]["text"][:5]
        for m in (FIRING, RESOLVED, WARNING)
    ]
    assert marks == ["### 🔴", "### 🟢", "### 🟠"]


def test_the_resolved_follow_up_says_so_and_names_incident_and_ticket() -> None:
    feishu = Route("ops", "feishu", "http://127.0.0.1:9/f", None)
    card = feishu_request(RESOLVED, feishu, NOW)[1]["card"]
    assert card["header"]["title"]["content"] == "【已恢复】退款率突增：供应商 S04"
    assert card["elements"][0] == {
        "tag": "div",
        "text": {
            "tag": "lark_md",
            "content": "**已恢复：事件 INC-20261005-0007（工单 T-118）已结束。**",
        },
    }
    assert card["elements"][-1]["elements"][0]["content"] == RESOLVED_FOOTER
    assert not any(e["tag"] == "action" for e in card["elements"])  # no link given

    post = feishu_request(RESOLVED, Route("ops", "feishu", "http://x/f", None, format="post"), NOW)
    paragraphs = post[1]["content"]["post"]["zh_cn"]["content"]
    assert paragraphs[0] == [
        {"tag": "text", "text": "已恢复：事件 INC-20261005-0007（工单 T-118）已结束。"}
    ]

    ding = Route("ops", "dingtalk", "http://127.0.0.1:9/d?access_token=t", None)
    markdown = dingtalk_request(RESOLVED, ding, NOW)[1]["markdown"]
    assert markdown["title"] == "【已恢复】退款率突增：供应商 S04"
    assert markdown["text"] == (
        "### 🟢 【已恢复】退款率突增：供应商 S04\n\n"
        "**已恢复：事件 INC-20261005-0007（工单 T-118）已结束。**\n\n"
        "退款率回落到 2.4%。\n\n"
        f"> {RESOLVED_FOOTER}"
    )


def test_a_long_summary_is_cut_within_the_robots_limits() -> None:
    long = Message(
        "INC-L", "firing", "r", "warning", "tech", "很长的标题" * 20, "一行很长的说明。\n" * 1500
    )
    markdown = dingtalk_request(long, Route("tech", "dingtalk", "http://x/d?a=1", None), NOW)[1]
    assert len(markdown["markdown"]["title"]) <= DINGTALK_TITLE_LIMIT
    assert len(markdown["markdown"]["text"]) <= DINGTALK_TEXT_LIMIT
    assert CUT_MARK in markdown["markdown"]["text"]
    assert markdown["markdown"]["text"].endswith("事件 INC-L")  # the footer survives
    _, body = feishu_request(long, Route("tech", "feishu", "http://x/f", "s"), NOW)
    assert len(json.dumps(body, ensure_ascii=False).encode()) < 20 * 1024


def test_messages_and_routes_reject_unknown_values() -> None:
    with pytest.raises(ValueError, match="phase"):
        Message("i", "open", "r", "critical", "ops", "t", "s")
    with pytest.raises(ValueError, match="severity"):
        Message("i", "firing", "r", "fatal", "ops", "t", "s")
    with pytest.raises(ValueError, match="role"):
        Message("i", "firing", "r", "critical", "sales", "t", "s")
    with pytest.raises(ValueError, match="kind"):
        Route("ops", "wecom", "http://x", None)
    with pytest.raises(ValueError, match="format"):
        Route("ops", "feishu", "http://x", None, format="markdown")
    facts = Message("i", "firing", "r", "critical", "ops", "t", "s", facts=[["a", 1]]).facts
    assert facts == (("a", "1"),)
    assert Route("ops", "dingtalk", "http://x", None).format == "markdown"
    assert Route("ops", "dingtalk", "http://x", None).name == "ops-dingtalk"


# ------------------------------------------------------------------------- real HTTP: success
def test_signed_messages_are_accepted_by_both_robots(webhook_server: WebhookServer) -> None:
    feishu, post = _feishu(webhook_server), _feishu(webhook_server, "feishu/cs", format="post")
    dingtalk = _dingtalk(webhook_server)
    for message, route in ((FIRING, feishu), (WARNING, post), (RESOLVED, dingtalk)):
        delivery = send(message, route, **FAST)
        assert delivery == Delivery(
            ok=True,
            attempts=1,
            status=200,
            code=0,
            detail="ok" if route.kind == "dingtalk" else "success",
            permanent=False,
        )
    (card,) = webhook_server.requests("feishu/ops")
    assert card.headers["Content-Type"] == "application/json; charset=utf-8"
    assert feishu_signature_ok(SECRET, card.body["timestamp"], card.body["sign"])
    assert abs(int(card.body["timestamp"]) - time.time()) < 60  # signed now, not at FIRING.at
    assert card.body["card"] == feishu_request(FIRING, feishu, NOW)[1]["card"]
    (markdown,) = webhook_server.requests("dingtalk/finance")
    assert markdown.query["access_token"] == "t0k3n"
    assert dingtalk_signature_ok(SECRET, markdown.query["timestamp"], markdown.query["sign"])
    assert markdown.body == dingtalk_request(RESOLVED, dingtalk, NOW)[1]


def test_a_robot_guarded_by_keyword_takes_every_message(webhook_server: WebhookServer) -> None:
    webhook_server.keywords["feishu/kw"] = "告警"
    webhook_server.keywords["dingtalk/kw"] = "cardlake"
    assert send(WARNING, _feishu(webhook_server, "feishu/kw", secret=None), **FAST).ok
    assert send(RESOLVED, _dingtalk(webhook_server, "dingtalk/kw", secret=None), **FAST).ok


def test_a_caller_session_is_used_and_left_open(webhook_server: WebhookServer) -> None:
    with requests.Session() as session:
        session.headers["X-Probe"] = "1"
        assert send(FIRING, _feishu(webhook_server), session=session, **FAST).ok
        assert send(FIRING, _feishu(webhook_server), session=session, **FAST).ok
    assert [r.headers.get("X-Probe") for r in webhook_server.requests()] == ["1", "1"]


# -------------------------------------------------------------------------- real HTTP: retries
def test_http_500_twice_then_ok_is_delivered_on_the_third_attempt_signed_each_time(
    webhook_server: WebhookServer,
) -> None:
    route = _dingtalk(webhook_server)
    webhook_server.fail_next(2)
    delivery = send(FIRING, route, **FAST)
    assert (delivery.ok, delivery.attempts, delivery.status, delivery.code) == (True, 3, 200, 0)
    seen = webhook_server.requests("dingtalk/finance")
    assert [r.status for r in seen] == [500, 500, 200]
    stamps = [int(r.query["timestamp"]) for r in seen]
    assert stamps == sorted(set(stamps))  # a fresh timestamp (ms) for every attempt
    assert all(
        dingtalk_signature_ok(SECRET, str(t), r.query["sign"])
        for t, r in zip(stamps, seen, strict=True)
    )


def test_the_robots_rate_limit_codes_are_retried(webhook_server: WebhookServer) -> None:
    webhook_server.fail_next(body=FEISHU_RATE_LIMITED)
    delivery = send(FIRING, _feishu(webhook_server), **FAST)
    assert (delivery.ok, delivery.attempts) == (True, 2)
    webhook_server.fail_next(body=DINGTALK_TOO_FAST)
    webhook_server.fail_next(body=DINGTALK_BUSY)
    delivery = send(FIRING, _dingtalk(webhook_server), **FAST)
    assert (delivery.ok, delivery.attempts) == (True, 3)
    webhook_server.fail_next(status=429, body={"code": 11232, "msg": "too many requests"})
    assert send(FIRING, _feishu(webhook_server), **FAST).attempts == 2


def test_it_gives_up_after_the_attempts_without_calling_it_permanent(
    webhook_server: WebhookServer,
) -> None:
    webhook_server.fail_next(5, status=502)
    delivery = send(FIRING, _feishu(webhook_server), attempts=3, **FAST)
    assert delivery == Delivery(
        ok=False,
        attempts=3,
        status=502,
        code=None,
        detail="HTTP 502: Internal Server Error",
        permanent=False,
    )
    assert len(webhook_server.requests()) == 3


def test_waits_grow_exponentially_up_to_the_cap(
    webhook_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    webhook_server.fail_next(3)
    route = _feishu(webhook_server)
    with caplog.at_level(logging.WARNING, logger="pipelines.lib.notify"):
        delivery = send(FIRING, route, attempts=4, backoff_s=0.05, max_backoff_s=0.08)
    assert delivery.ok and delivery.attempts == 4
    waits = [r.args[-1] for r in caplog.records if "retrying in" in r.msg]
    assert waits == pytest.approx([0.05, 0.08, 0.08])  # 0.05 × 1, 2, 4, capped at 0.08
    at = [r.at for r in webhook_server.requests()]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert all(gap >= wait - 0.005 for gap, wait in zip(gaps, waits, strict=True))


def test_a_robot_slower_than_the_timeout_is_a_transient_failure(
    webhook_server: WebhookServer,
) -> None:
    webhook_server.fail_next(2, delay_s=0.6)
    started = time.monotonic()
    delivery = send(FIRING, _feishu(webhook_server), timeout_s=0.2, attempts=2, backoff_s=0.01)
    assert time.monotonic() - started < 1.0  # gave up on each answer after 0.2 s
    assert (delivery.ok, delivery.permanent, delivery.attempts) == (False, False, 2)
    assert delivery.status is None and "Timeout" in delivery.detail
    assert send(FIRING, _feishu(webhook_server), attempts=1).ok  # the next answer is on time


def test_an_unreachable_robot_is_transient_and_the_detail_keeps_the_webhook_secret() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    base = f"http://127.0.0.1:{port}"
    for route in (
        Route("ops", "dingtalk", f"{base}/robot/send?access_token=t0psecret", "s"),
        Route("ops", "feishu", f"{base}/open-apis/bot/v2/hook/t0psecret", "s"),
    ):
        delivery = send(FIRING, route, attempts=2, **FAST)
        assert (delivery.ok, delivery.permanent, delivery.attempts) == (False, False, 2)
        assert delivery.detail.startswith("ConnectionError: ")
        assert "<webhook URL>" in delivery.detail and "t0psecret" not in delivery.detail


# ------------------------------------------------------------------------ real HTTP: permanent
@pytest.mark.parametrize(
    ("kind", "code", "detail"),
    [
        ("feishu", 19021, "sign match fail or timestamp is not within one hour from current time"),
        ("dingtalk", 310000, "sign not match"),
    ],
)
def test_a_wrong_secret_fails_at_once_as_permanent(
    webhook_server: WebhookServer, kind: str, code: int, detail: str
) -> None:
    route = _feishu(webhook_server) if kind == "feishu" else _dingtalk(webhook_server)
    wrong = Route(route.role, kind, route.url, "not-the-secret")
    assert send(FIRING, wrong, **FAST) == Delivery(
        ok=False, attempts=1, status=200, code=code, detail=detail, permanent=True
    )
    assert len(webhook_server.requests()) == 1


def test_a_signature_older_than_an_hour_is_refused(webhook_server: WebhookServer) -> None:
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    feishu = send(FIRING, _feishu(webhook_server), now=stale, **FAST)
    assert (feishu.code, feishu.permanent, feishu.attempts) == (19021, True, 1)
    dingtalk = send(FIRING, _dingtalk(webhook_server), now=stale, **FAST)
    assert (dingtalk.code, dingtalk.detail, dingtalk.permanent) == (
        310000,
        "invalid timestamp",
        True,
    )
    fresh = send(FIRING, _feishu(webhook_server), now=dt.datetime.now(dt.UTC), **FAST)
    assert fresh.ok


def test_bad_tokens_keywords_and_payloads_are_permanent(webhook_server: WebhookServer) -> None:
    webhook_server.tokens["dingtalk/finance"] = "the-real-one"
    wrong_token = send(FIRING, _dingtalk(webhook_server), **FAST)
    assert (wrong_token.code, wrong_token.detail, wrong_token.permanent) == (
        300001,
        "token is not exist",
        True,
    )
    no_token = Route("finance", "dingtalk", webhook_server.url("dingtalk/x"), None)
    assert (send(FIRING, no_token, **FAST).code, send(FIRING, no_token, **FAST).permanent) == (
        40035,
        True,
    )
    webhook_server.keywords["feishu/kw"] = "监控报警"
    keyword = send(FIRING, _feishu(webhook_server, "feishu/kw", secret=None), **FAST)
    assert (keyword.code, keyword.detail, keyword.permanent, keyword.attempts) == (
        19024,
        "Key Words Not Found",
        True,
        1,
    )
    webhook_server.fail_next(status=400, body={"code": 9499, "msg": "Bad Request", "data": {}})
    bad = send(FIRING, _feishu(webhook_server), **FAST)
    assert (bad.status, bad.code, bad.permanent, bad.attempts) == (400, 9499, True, 1)
    webhook_server.fail_next(status=404)
    assert send(FIRING, _feishu(webhook_server), **FAST).permanent


def test_an_unusable_url_is_permanent_without_a_request() -> None:
    delivery = send(FIRING, Route("ops", "feishu", "127.0.0.1/no-scheme", None), **FAST)
    assert (delivery.ok, delivery.permanent, delivery.attempts) == (False, True, 1)


@pytest.mark.parametrize(
    ("kind", "status", "text", "ok", "retry"),
    [
        ("feishu", 200, '{"code":0,"msg":"success","data":{}}', True, False),
        ("feishu", 200, '{"StatusCode":0,"StatusMessage":"success"}', True, False),  # older form
        (
            "feishu",
            200,
            '{"code":19001,"msg":"param invalid: incoming webhook access token invalid"}',
            False,
            False,
        ),
        ("feishu", 200, '{"code":19022,"msg":"Ip Not Allowed"}', False, False),
        ("feishu", 200, '{"code":11232,"msg":"frequency limited"}', False, True),
        ("feishu", 200, '{"code":2200,"msg":"Internal Error"}', False, True),  # unknown: retry
        ("feishu", 503, "<html>bad gateway</html>", False, True),
        ("feishu", 200, "<html>a captive portal</html>", False, True),
        ("dingtalk", 200, '{"errcode":0,"errmsg":"ok"}', True, False),
        (
            "dingtalk",
            200,
            '{"errcode":310000,"errmsg":"ip 1.2.3.4 not in whitelist"}',
            False,
            False,
        ),
        ("dingtalk", 200, '{"errcode":300005,"errmsg":"token is not exist"}', False, False),
        ("dingtalk", 200, '{"errcode":410100,"errmsg":"too many requests"}', False, True),
        ("dingtalk", 408, "", False, True),
        ("dingtalk", 403, "", False, False),
        ("dingtalk", 500, '{"errcode":0,"errmsg":"ok"}', False, True),  # not a success at 500
    ],
)
def test_classify(kind: str, status: int, text: str, ok: bool, retry: bool) -> None:
    result = classify(kind, status, text)
    assert (result.ok, result.retry) == (ok, retry)


# --------------------------------------------------------------------------- signature property
@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(min_size=1, max_size=80),
    moment=st.datetimes(
        min_value=dt.datetime(2001, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
)
def test_dingtalk_signatures_are_url_safe_and_verify_server_side(
    secret: str, moment: dt.datetime
) -> None:
    route = Route("ops", "dingtalk", "http://127.0.0.1:9/d?access_token=t", secret)
    url, _ = dingtalk_request(WARNING, route, moment)
    raw_query = urllib.parse.urlsplit(url).query
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%=&")
    assert set(raw_query) <= allowed  # nothing a proxy or the robot could read differently
    query = dict(urllib.parse.parse_qsl(raw_query))  # the server's one decoding
    assert query["timestamp"] == str(
        calendar.timegm(moment.utctimetuple()) * 1000 + moment.microsecond // 1000
    )
    assert dingtalk_signature_ok(secret, query["timestamp"], query["sign"])
    assert query["sign"] == urllib.parse.unquote_plus(
        dingtalk_expected_sign(secret, query["timestamp"])
    )
    _, body = feishu_request(WARNING, Route("ops", "feishu", "http://x/f", secret), moment)
    assert feishu_signature_ok(secret, body["timestamp"], body["sign"])


# ----------------------------------------------------------------------------------- routes
ENV = {
    "CARDLAKE_FEISHU_OPS_URL": "http://127.0.0.1:9/feishu/ops",
    "CARDLAKE_FEISHU_OPS_SECRET": "fs",
    "CARDLAKE_DINGTALK_FINANCE_URL": " http://127.0.0.1:9/dingtalk/fin?access_token=t \n",
    "CARDLAKE_DINGTALK_FINANCE_SECRET": "ds",
    "CARDLAKE_FEISHU_TECH_URL": "http://127.0.0.1:9/feishu/tech",
}
CONFIG = {
    "ops": [
        {
            "kind": "feishu",
            "url_env": "CARDLAKE_FEISHU_OPS_URL",
            "secret_env": "CARDLAKE_FEISHU_OPS_SECRET",
            "format": "card",
        },
    ],
    "finance": [
        {
            "kind": "dingtalk",
            "url_env": "CARDLAKE_DINGTALK_FINANCE_URL",
            "secret_env": "CARDLAKE_DINGTALK_FINANCE_SECRET",
        },
    ],
    "customer_service": [
        {"kind": "feishu", "url_env": "CARDLAKE_FEISHU_CS_URL", "format": "post"},
    ],
    "tech": [
        {
            "kind": "feishu",
            "url_env": "CARDLAKE_FEISHU_TECH_URL",
            "format": "post",
            "name": "tech-chat",
        },
        {
            "kind": "feishu",
            "url_env": "CARDLAKE_FEISHU_TECH_URL",
            "secret_env": "CARDLAKE_FEISHU_TECH_SECRET",
        },
    ],
}


def test_load_routes_reads_urls_and_secrets_from_the_environment() -> None:
    routes, notes = load_routes(CONFIG, ENV)
    assert routes == {
        "ops": [Route("ops", "feishu", ENV["CARDLAKE_FEISHU_OPS_URL"], "fs", "card", "ops-feishu")],
        "finance": [
            Route(
                "finance",
                "dingtalk",
                "http://127.0.0.1:9/dingtalk/fin?access_token=t",
                "ds",
                "markdown",
                "finance-dingtalk",
            )
        ],
        "customer_service": [],
        "tech": [
            Route("tech", "feishu", ENV["CARDLAKE_FEISHU_TECH_URL"], None, "post", "tech-chat")
        ],
    }
    assert notes == [
        "customer_service-feishu (routes.customer_service[0]): CARDLAKE_FEISHU_CS_URL is not set, "
        "so customer_service alerts skip this robot (tickets only)",
        "tech-feishu-2 (routes.tech[1]): CARDLAKE_FEISHU_TECH_SECRET (the signing secret) is not "
        "set, so tech alerts skip this robot (it would refuse unsigned messages)",
    ]


def test_with_no_environment_every_route_is_a_note_not_an_error() -> None:
    routes, notes = load_routes(CONFIG, {})
    assert routes == {"ops": [], "finance": [], "customer_service": [], "tech": []}
    assert len(notes) == 5 and all("is not set" in n for n in notes)
    assert load_routes(None, ENV) == (
        {"ops": [], "finance": [], "customer_service": [], "tech": []},
        [],
    )
    assert load_routes({"ops": None}, ENV)[0]["ops"] == []
    _, notes = load_routes({"ops": [{"kind": "feishu", "url_env": "U"}]}, {"U": "ftp://x"})
    assert notes == [
        "ops-feishu (routes.ops[0]): U is not an http(s) URL, so ops alerts skip this robot"
    ]


@pytest.mark.parametrize(
    ("config", "error"),
    [
        (
            {"sales": []},
            r"routes: unknown role 'sales' \(known: ops, finance, customer_service, tech\)",
        ),
        ({"ops": [{"kind": "wecom", "url_env": "U"}]}, r"routes.ops\[0\]: unknown kind 'wecom'"),
        (
            {"ops": [{"kind": "dingtalk", "url_env": "U", "format": "card"}]},
            r"unknown format 'card' for dingtalk",
        ),
        (
            {"ops": [{"kind": "feishu", "url_env": "U", "format": "markdown"}]},
            r"unknown format 'markdown' for feishu",
        ),
        ({"finance": [{"kind": "feishu"}]}, r"routes.finance\[0\]: url_env .* is missing"),
        ({"ops": [{"kind": "feishu", "url_env": ""}]}, r"url_env .* is missing"),
        ({"ops": [{"kind": "feishu", "url_env": "U", "secret": "x"}]}, r"unknown key\(s\) secret"),
        ({"ops": [{"kind": "feishu", "url_env": "U", "secret_env": 3}]}, r"secret_env must name"),
        ({"ops": {"kind": "feishu", "url_env": "U"}}, r"routes.ops: expected a list"),
        ({"ops": ["CARDLAKE_FEISHU_OPS_URL"]}, r"routes.ops\[0\]: expected a mapping"),
        (["ops"], r"routes: expected a mapping"),
    ],
)
def test_load_routes_rejects_a_malformed_section(config: object, error: str) -> None:
    with pytest.raises(RouteConfigError, match=error):
        load_routes(config, ENV)  # type: ignore[arg-type]


# ------------------------------------------------------------------- https only (but loopback)
FINANCE = {"finance": [{"kind": "dingtalk", "url_env": "CARDLAKE_DINGTALK_FINANCE_URL"}]}


@pytest.mark.parametrize(
    "url",
    [
        "http://oapi.dingtalk.com/robot/send?access_token=t0k3n",
        "http://open.feishu.cn/open-apis/bot/v2/hook/h00k1d",
        "http://10.0.0.5:8080/robot/send?access_token=t0k3n",  # a private address is not local
        "http://127.0.0.2/robot/send?access_token=t0k3n",  # loopback means the three hosts
        "http://127.0.0.1.evil.example/robot/send?access_token=t0k3n",
        "http://localhost@evil.example/robot/send?access_token=t0k3n",  # the host is evil.example
        "http://evil.example#@127.0.0.1/?access_token=t0k3n",
        "http://[::1/robot/send?access_token=t0k3n",  # no host to recognise
    ],
)
def test_a_plain_http_robot_url_is_refused(url: str) -> None:
    with pytest.raises(RouteConfigError) as refused:
        load_routes(FINANCE, {"CARDLAKE_DINGTALK_FINANCE_URL": f" {url}\n"})
    error = str(refused.value)
    assert error.startswith(
        "routes.finance[0]: CARDLAKE_DINGTALK_FINANCE_URL is a plain http:// URL (host "
    )
    assert "must be https://" in error and "127.0.0.1, ::1, localhost" in error
    assert "t0k3n" not in error and "h00k1d" not in error  # the error names no secret


def test_https_and_loopback_robot_urls_are_taken() -> None:
    for url in (
        "https://oapi.dingtalk.com/robot/send?access_token=t",
        "https://open.feishu.cn/open-apis/bot/v2/hook/abc",
        "https://10.0.0.5:8443/robot/send",
        "http://127.0.0.1:9/dingtalk/fin?access_token=t",
        "http://[::1]:9/dingtalk/fin",
        "http://localhost:9/dingtalk/fin",
        "http://LocalHost/dingtalk/fin",
    ):
        routes, notes = load_routes(FINANCE, {"CARDLAKE_DINGTALK_FINANCE_URL": url})
        assert [r.url for r in routes["finance"]] == [url] and notes == [], url


def test_the_local_test_robot_is_reached_through_the_routes(webhook_server: WebhookServer) -> None:
    env = {
        "CARDLAKE_FEISHU_OPS_URL": webhook_server.url("feishu/ops"),
        "CARDLAKE_FEISHU_OPS_SECRET": SECRET,
    }
    config = {
        "ops": [
            {
                "kind": "feishu",
                "url_env": "CARDLAKE_FEISHU_OPS_URL",
                "secret_env": "CARDLAKE_FEISHU_OPS_SECRET",
            }
        ]
    }
    routes, notes = load_routes(config, env)
    assert notes == [] and send(FIRING, routes["ops"][0], **FAST).ok
    assert len(webhook_server.requests("feishu/ops")) == 1
