"""Alert incidents become tickets (工单) with their whole history, and messages to the team.

The ``alerts`` mart says, after every publication, which incidents exist and whether each still
holds. This module keeps the human side of them in the lake:

    lake/tickets/events/events-<seq>.parquet   the append-only event log (the source of truth)
    lake/ops.duckdb                            tickets + history for the dashboard, read-only (a
                                               symlink to its version in lake/_serving/)

Every change is an event (``opened``, ``alert_updated``, ``alert_resolved``, ``reopened``,
``notified``, ``delivery_failed``, ``acknowledged``, ``resolved``); a ticket's state is the fold of
its events. Writers append under a file lock, each batch one Parquet file written beside its final
name and renamed into place, so a crash never leaves half a batch and readers never block.

One incident (rule × entity × shop, while it holds) is one ticket and one message per route,
plus one follow-up when it resolves; a message is recorded as delivered only after the robot
said so, and every sync retries what is still owed (at least once: a crash between sending and
recording sends again). A ticket exists whether or not any message got through.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.lib import notify, serving
from pipelines.lib.lake import Lake, fsync
from pipelines.lib.publish import WarehouseMissing, open_warehouse, reader_config
from pipelines.lib.writer import writing

#: under the lake's tickets zone: the event log, the writers' lock, the deliverer's lock
EVENTS = "events"
LOCK = ".lock"
DELIVERY_LOCK = ".delivery.lock"
ROUTES = "routes.json"
SYSTEM = "cardlake"

STATES = ("open", "acknowledged", "resolved")
#: who may move a ticket where by hand (the system also resolves a ticket when its alert clears)
TRANSITIONS = {"acknowledged": {"open"}, "resolved": {"open", "acknowledged"}, "open": {"resolved"}}

EVENT_SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "ticket_id": pl.String(),
    "at": pl.Datetime("us", "UTC"),
    "kind": pl.String(),
    "actor": pl.String(),
    "state": pl.String(),  # the ticket's state after the event
    "alert_id": pl.String(),
    "incident_key": pl.String(),
    "rule": pl.String(),
    "entity": pl.String(),
    "shop": pl.String(),
    "role": pl.String(),
    "severity": pl.String(),
    "title": pl.String(),
    "summary": pl.String(),
    "main_cause": pl.String(),
    "first_day": pl.Date(),
    "last_day": pl.Date(),
    "is_alert_open": pl.Boolean(),
    "phase": pl.String(),  # notified / delivery_failed: firing | resolved | reopened
    "route": pl.String(),
    "detail": pl.String(),  # JSON: the note, or the delivery's attempts, code and answer
}
#: the alert's fields a ticket carries (copied on opening and on every change)
ALERT_FIELDS = ("rule", "entity", "shop", "role", "severity", "title", "summary", "main_cause")
ALERT_FIELDS += ("first_day", "last_day")

RULE_LABELS = {
    "refund_spike": "退款率突增",
    "stockout": "缺货未发货",
    "low_days_of_cover": "库存可售天数不足",
    "unpaid_rate_surge": "未支付率突增",
    "lost_callback": "掉单（渠道已付、商城未付）",
    "duplicate_payment": "重复支付",
    "source_stale": "数据源未到达",
    "quarantine_rate_high": "隔离率过高",
}
ROLE_LABELS = {
    "ops": "运营",
    "finance": "财务",
    "customer_service": "客服",
    "tech": "技术",
    "manager": "管理层",
}
STATE_LABELS = {"open": "待处理", "acknowledged": "处理中", "resolved": "已解决"}


class TicketError(ValueError):
    """A ticket command that cannot be done (unknown ticket, a move its state does not allow)."""


@dataclasses.dataclass
class Ticket:
    ticket_id: str
    incident_key: str
    alert_id: str
    state: str
    is_alert_open: bool
    fields: dict[str, Any]
    opened_at: dt.datetime
    notify: bool  # whether this incident is announced at all (not a backfilled, long-over one)
    delivered: set[tuple[str, str]] = dataclasses.field(default_factory=set)  # (phase, route)
    given_up: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    phases: list[str] = dataclasses.field(default_factory=list)  # messages owed, in order
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SyncResult:
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    reopened: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)


def incident_key(alert: Mapping[str, Any]) -> str:
    return "|".join(str(alert.get(k) or "") for k in ("rule", "entity_type", "entity", "shop"))


# --- the event log ------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(lake: Path, name: str = LOCK, blocking: bool = True) -> Iterator[bool]:
    path = Lake.of(lake).tickets / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def read_events(lake: Path) -> pl.DataFrame:
    """Every event in order (an empty frame with the schema when there are none)."""
    folder = Lake.of(lake).tickets / EVENTS
    files = sorted(folder.glob("events-*.parquet")) if folder.exists() else []
    if not files:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    return pl.concat([pl.read_parquet(f) for f in files], how="vertical").sort("seq")


def _append(lake: Path, events: list[dict[str, Any]]) -> None:
    """Append a batch of events as one file (call under the lock)."""
    if not events:
        return
    folder = Lake.of(lake).tickets / EVENTS
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("events-*.parquet"))  # the last file holds the highest seq
    last = pl.read_parquet(files[-1], columns=["seq"])["seq"].max() if files else None
    first = int(last) + 1 if last is not None else 1
    rows = [{**dict.fromkeys(EVENT_SCHEMA), **e, "seq": first + i} for i, e in enumerate(events)]
    frame = pl.DataFrame(rows, schema=EVENT_SCHEMA)
    final = folder / f"events-{first:012d}.parquet"
    tmp = folder / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
    frame.write_parquet(tmp, compression="zstd")
    fsync(tmp)
    os.replace(tmp, final)


def load_tickets(lake: Path) -> dict[str, Ticket]:
    """Every ticket, folded from its events (a few per ticket: folding in Python is plenty)."""
    tickets: dict[str, Ticket] = {}
    for e in read_events(lake).iter_rows(named=True):
        t = tickets.get(e["ticket_id"])
        if t is None:
            detail = json.loads(e["detail"] or "{}")
            t = tickets[e["ticket_id"]] = Ticket(
                ticket_id=e["ticket_id"],
                incident_key=e["incident_key"],
                alert_id=e["alert_id"],
                state=e["state"],
                is_alert_open=bool(e["is_alert_open"]),
                fields={k: e[k] for k in ALERT_FIELDS},
                opened_at=e["at"],
                notify=bool(detail.get("notify", True)),
            )
            if t.notify and t.is_alert_open:
                t.phases.append("firing")
        t.events.append(e)
        t.state = e["state"] or t.state
        kind = e["kind"]
        if kind in ("alert_updated", "alert_resolved", "reopened"):
            t.alert_id = e["alert_id"] or t.alert_id
            t.fields.update({k: e[k] for k in ALERT_FIELDS if e[k] is not None})
            t.is_alert_open = bool(e["is_alert_open"])
            if kind == "alert_resolved" and t.notify and "firing" in t.phases:
                t.phases.append("resolved")
            if kind == "reopened" and t.notify:
                t.phases.append("reopened")
        elif kind == "notified":
            t.delivered.add((e["phase"], e["route"]))
        elif kind == "delivery_failed" and json.loads(e["detail"] or "{}").get("permanent"):
            t.given_up.add((e["phase"], e["route"]))
    return tickets


# --- alerts → tickets ---------------------------------------------------------------------------


def read_alerts(lake: Path) -> pl.DataFrame | None:
    """The published ``alerts`` mart (None when this lake has none yet)."""
    try:
        con = open_warehouse(lake)
    except WarehouseMissing:
        return None
    try:
        exists = con.execute(
            "select count(*) from duckdb_tables() where table_name = 'alerts'"
        ).fetchall()
        if not exists[0][0]:
            return None
        return con.sql("select * from alerts order by first_day, alert_id").pl()
    finally:
        con.close()


def _alert_values(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {k: alert.get(k) for k in ALERT_FIELDS} | {"alert_id": alert["alert_id"]}


def reconcile(
    tickets: dict[str, Ticket], alerts: pl.DataFrame, now: dt.datetime, lookback_days: int
) -> tuple[list[dict[str, Any]], SyncResult]:
    """The events that bring the tickets in line with the alerts (pure: nothing is written).

    An alert is the same incident as a ticket with its id, or as the ticket still open for the
    same rule, entity and shop (an incident's first day can move when late data lands). An
    incident first seen long over (a backfill of history) gets a ticket, resolved at once and
    never announced: ``lookback_days`` after its last day, nobody needs a message about it.
    """
    result = SyncResult()
    events: list[dict[str, Any]] = []
    by_alert = {t.alert_id: t for t in tickets.values()}
    open_by_key = {t.incident_key: t for t in tickets.values() if t.is_alert_open}
    seen: set[str] = set()
    counter = len(tickets)

    def event(t: Ticket | None, kind: str, **values: Any) -> dict[str, Any]:
        e = {"at": now, "kind": kind, "actor": SYSTEM, **values}
        if t is not None:
            e |= {"ticket_id": t.ticket_id, "incident_key": t.incident_key}
        events.append(e)
        return e

    for alert in alerts.iter_rows(named=True):
        key = incident_key(alert)
        t = by_alert.get(alert["alert_id"])
        if t is None and key in open_by_key and open_by_key[key].ticket_id not in seen:
            t = open_by_key[key]
        is_open = bool(alert["is_open"])
        values = _alert_values(alert)
        if t is None:
            counter += 1
            ticket_id = f"T{counter:06d}"
            recent = (alert["evaluated_day"] - alert["last_day"]).days <= lookback_days
            announce = is_open or recent
            opened = event(
                None,
                "opened",
                ticket_id=ticket_id,
                incident_key=key,
                state="open",
                is_alert_open=True if announce else is_open,
                detail=json.dumps(
                    {"notify": announce}
                    | ({} if announce else {"note": "历史告警：首次发现时已结束，不推送"}),
                    ensure_ascii=False,
                ),
                **values,
            )
            result.opened += 1
            seen.add(ticket_id)
            if not announce:
                opened["state"] = "resolved"
                continue
            if not is_open:
                event(
                    None,
                    "alert_resolved",
                    ticket_id=ticket_id,
                    incident_key=key,
                    state="resolved",
                    is_alert_open=False,
                    detail=json.dumps({"note": "告警条件已恢复"}, ensure_ascii=False),
                    **values,
                )
                result.resolved += 1
            continue
        seen.add(t.ticket_id)
        # the summary's figures move with every live pass: they travel with the next change of
        # substance (a new day, a new severity, cause or title), not as an event each time
        changed = t.alert_id != alert["alert_id"] or any(
            t.fields.get(k) != alert.get(k) for k in ALERT_FIELDS if k != "summary"
        )
        if t.is_alert_open and not is_open:
            state = "resolved"
            event(
                t,
                "alert_resolved",
                state=state,
                is_alert_open=False,
                detail=json.dumps({"note": "告警条件已恢复"}, ensure_ascii=False),
                **values,
            )
            result.resolved += 1
        elif not t.is_alert_open and is_open:
            event(
                t,
                "reopened",
                state="open",
                is_alert_open=True,
                detail=json.dumps({"note": "告警再次触发"}, ensure_ascii=False),
                **values,
            )
            result.reopened += 1
        elif changed:
            event(t, "alert_updated", state=t.state, is_alert_open=t.is_alert_open, **values)
            result.updated += 1
    # an open incident that left the mart (its data was corrected): it no longer holds
    for t in tickets.values():
        if t.is_alert_open and t.ticket_id not in seen:
            event(
                t,
                "alert_resolved",
                state="resolved",
                is_alert_open=False,
                alert_id=t.alert_id,
                detail=json.dumps({"note": "告警已不在告警表中（数据已更正）"}, ensure_ascii=False),
            )
            result.resolved += 1
    return events, result


# --- messages -----------------------------------------------------------------------------------


def _message(t: Ticket, phase: str, link: str | None) -> notify.Message:
    f = t.fields
    days = f"{f['first_day']} ~ {f['last_day']}" if f.get("first_day") else ""
    facts = [
        ("规则", RULE_LABELS.get(f["rule"], f["rule"])),
        ("对象", f.get("entity") or ""),
        ("店铺", f.get("shop") or "all"),
        ("日期", days),
        ("负责", ROLE_LABELS.get(f.get("role") or "", f.get("role") or "")),
        ("工单", t.ticket_id),
    ]
    return notify.Message(
        incident_id=t.ticket_id,
        phase="resolved" if phase == "resolved" else "firing",
        rule=f["rule"],
        severity=f.get("severity") or "warning",
        role=f.get("role") or "",
        title=f["title"] if phase != "reopened" else f"再次触发：{f['title']}",
        summary=f.get("summary") or "",
        facts=tuple((k, str(v)) for k, v in facts if v),
        main_cause=f.get("main_cause"),
        ticket_id=t.ticket_id,
        link=link,
        at=None,
    )


def owed(
    tickets: Mapping[str, Ticket], routes: Mapping[str, Sequence[notify.Route]]
) -> list[tuple[Ticket, str, notify.Route]]:
    """Messages still owed: per ticket, each phase it reached, to each route of its role, not yet
    delivered nor refused for good; a follow-up only goes where the first message went."""
    out = []
    for t in sorted(tickets.values(), key=lambda t: t.ticket_id):
        for route in routes.get(t.fields.get("role") or "", ()):
            for phase in t.phases:
                key = (phase, route.name)
                if key in t.delivered or key in t.given_up:
                    continue
                if phase != "firing" and ("firing", route.name) not in t.delivered:
                    continue
                out.append((t, phase, route))
    return out


def sync(
    lake: Path,
    routes: Mapping[str, Sequence[notify.Route]],
    *,
    delivery: Mapping[str, Any] | None = None,
    link: str | None = None,
    now: Callable[[], dt.datetime] | None = None,
    alerts: pl.DataFrame | None = None,
) -> SyncResult:
    """Bring the tickets in line with the published alerts, send what is owed, refresh
    ``ops.duckdb``. Safe to run at any time and from several processes. ``delivery`` is the
    config's section (timeouts, attempts, backoff, lookback_days)."""
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    delivery = delivery or {}
    lookback_days = int(delivery.get("lookback_days", 2))
    alerts = read_alerts(lake) if alerts is None else alerts
    with _locked(lake):
        tickets = load_tickets(lake)
        if alerts is None:
            events, result = [], SyncResult(notes=["no alerts mart published yet"])
        else:
            events, result = reconcile(tickets, alerts, clock(), lookback_days)
        _append(lake, events)
    _deliver(lake, routes, result, delivery, link, clock)
    record_routes(lake, routes)
    refresh_ops_db(lake)
    return result


def _deliver(lake, routes, result: SyncResult, delivery, link, clock) -> None:
    with _locked(lake, DELIVERY_LOCK, blocking=False) as mine:
        if not mine:  # another process is delivering right now; what is left waits for the next
            result.notes.append("another process is delivering messages")
            return
        attempted: set[tuple[str, str, str]] = set()
        while True:  # a follow-up becomes owed once its first message went out
            todo = [
                (t, phase, route)
                for t, phase, route in owed(load_tickets(lake), routes)
                if (t.ticket_id, phase, route.name) not in attempted
            ]
            if not todo:
                break
            for t, phase, route in todo:
                attempted.add((t.ticket_id, phase, route.name))
                _send_one(lake, t, phase, route, result, delivery, link, clock)
        result.pending = len(owed(load_tickets(lake), routes))


def _send_one(
    lake, t: Ticket, phase: str, route, result: SyncResult, delivery, link, clock
) -> None:
    """Send one message and record what came of it (the event says nothing of the ticket's
    state: a person may have moved it meanwhile)."""
    sent = notify.send(
        _message(t, phase, link),
        route,
        timeout_s=float(delivery.get("timeout_s", 5)),
        attempts=int(delivery.get("attempts", 4)),
        backoff_s=float(delivery.get("backoff_s", 1)),
        max_backoff_s=float(delivery.get("max_backoff_s", 30)),
    )
    detail = {
        "attempts": sent.attempts,
        "status": sent.status,
        "code": sent.code,
        "answer": sent.detail,
        "permanent": sent.permanent,
    }
    with _locked(lake):
        _append(
            lake,
            [
                {
                    "at": clock(),
                    "kind": "notified" if sent.ok else "delivery_failed",
                    "actor": SYSTEM,
                    "ticket_id": t.ticket_id,
                    "incident_key": t.incident_key,
                    "alert_id": t.alert_id,
                    "state": t.state,
                    "is_alert_open": t.is_alert_open,
                    "phase": phase,
                    "route": route.name,
                    "detail": json.dumps(detail, ensure_ascii=False),
                }
            ],
        )
    if sent.ok:
        result.sent += 1
    else:
        result.failed += 1
        result.notes.append(f"{t.ticket_id} {phase} → {route.name}: {sent.detail}")


# --- people -------------------------------------------------------------------------------------


def change_state(
    lake: Path,
    ticket_id: str,
    state: str,
    actor: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> Ticket:
    """Move a ticket by hand: acknowledge it, resolve (close) it, or reopen a resolved one."""
    if state not in TRANSITIONS:
        raise TicketError(f"unknown state {state!r}: use {', '.join(TRANSITIONS)}")
    if not actor.strip():
        raise TicketError("say who does it (--by)")
    with writing(lake, what=f"a ticket change by {actor.strip()}"), _locked(lake):
        tickets = load_tickets(lake)
        t = tickets.get(ticket_id.strip().upper())
        if t is None:
            raise TicketError(f"no ticket {ticket_id!r}")
        if t.state not in TRANSITIONS[state]:
            raise TicketError(
                f"{t.ticket_id} is {t.state} ({STATE_LABELS[t.state]}); it cannot become {state}"
            )
        kind = {"acknowledged": "acknowledged", "resolved": "resolved", "open": "reopened_by_hand"}
        _append(
            lake,
            [
                {
                    "at": now or dt.datetime.now(dt.UTC),
                    "kind": kind[state],
                    "actor": actor.strip(),
                    "ticket_id": t.ticket_id,
                    "incident_key": t.incident_key,
                    "alert_id": t.alert_id,
                    "state": state,
                    "is_alert_open": t.is_alert_open,
                    "detail": json.dumps({"note": note}, ensure_ascii=False),
                }
            ],
        )
    with writing(lake, what=f"a ticket change by {actor.strip()}"):
        refresh_ops_db(lake)
    return load_tickets(lake)[t.ticket_id]


# --- serving ------------------------------------------------------------------------------------


def ticket_table(tickets: Mapping[str, Ticket], routes_count: Mapping[str, int]) -> pl.DataFrame:
    rows = []
    for t in sorted(tickets.values(), key=lambda t: t.ticket_id):
        ack = _last(t, ("acknowledged",))
        res = _last(t, ("resolved", "alert_resolved")) if t.state == "resolved" else None
        if not t.notify:
            delivery = "not_announced"
        elif not routes_count.get(t.fields.get("role") or ""):
            delivery = "no_route"
        elif any(p == "firing" for p, _ in t.delivered):
            delivery = "sent"
        elif t.given_up:
            delivery = "failed"
        else:
            delivery = "pending"
        rows.append(
            {
                "ticket_id": t.ticket_id,
                "state": t.state,
                "state_label": STATE_LABELS[t.state],
                "role": t.fields.get("role"),
                "role_label": ROLE_LABELS.get(t.fields.get("role") or "", t.fields.get("role")),
                "rule": t.fields.get("rule"),
                "rule_label": RULE_LABELS.get(t.fields.get("rule") or "", t.fields.get("rule")),
                "severity": t.fields.get("severity"),
                "entity": t.fields.get("entity"),
                "shop": t.fields.get("shop"),
                "title": t.fields.get("title"),
                "summary": t.fields.get("summary"),
                "main_cause": t.fields.get("main_cause"),
                "alert_id": t.alert_id,
                "first_day": t.fields.get("first_day"),
                "last_day": t.fields.get("last_day"),
                "is_alert_open": t.is_alert_open,
                "delivery": delivery,
                "messages_sent": len(t.delivered),
                "opened_at": t.opened_at,
                "acknowledged_at": ack["at"] if ack else None,
                "acknowledged_by": ack["actor"] if ack else None,
                "resolved_at": res["at"] if res else None,
                "resolved_by": res["actor"] if res else None,
                "last_event_at": t.events[-1]["at"],
                "events": len(t.events),
            }
        )
    schema = {
        "ticket_id": pl.String, "state": pl.String, "state_label": pl.String, "role": pl.String,
        "role_label": pl.String, "rule": pl.String, "rule_label": pl.String,
        "severity": pl.String, "entity": pl.String, "shop": pl.String, "title": pl.String,
        "summary": pl.String, "main_cause": pl.String, "alert_id": pl.String,
        "first_day": pl.Date, "last_day": pl.Date, "is_alert_open": pl.Boolean,
        "delivery": pl.String, "messages_sent": pl.Int64, "opened_at": pl.Datetime("us", "UTC"),
        "acknowledged_at": pl.Datetime("us", "UTC"), "acknowledged_by": pl.String,
        "resolved_at": pl.Datetime("us", "UTC"), "resolved_by": pl.String,
        "last_event_at": pl.Datetime("us", "UTC"), "events": pl.Int64,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def _last(t: Ticket, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    hits = [e for e in t.events if e["kind"] in kinds]
    return hits[-1] if hits else None


def refresh_ops_db(lake: Path, routes: Mapping[str, Sequence[Any]] | None = None) -> Path:
    """Build the next version of ``lake/ops.duckdb`` (tickets and their history) and swap the link
    to it (``pipelines.lib.serving``): readers open it read-only and never see it half-written."""
    target = Lake.of(lake).ops_db
    counts = _route_counts(lake) if routes is None else {k: len(v) for k, v in routes.items()}
    # under the log's lock throughout, so that an older snapshot never replaces a newer one
    with _locked(lake):
        serving.remove_stale(target)
        table = ticket_table(load_tickets(lake), counts)
        events = read_events(lake)
        tmp = serving.new_file(target)
        try:
            con = duckdb.connect(str(tmp))
            try:
                con.register("t", table.to_arrow())
                con.register("e", events.to_arrow())
                con.execute("create table tickets as select * from t order by ticket_id")
                con.execute("create table ticket_events as select * from e order by seq")
                con.execute(
                    "comment on table tickets is '工单：每个告警事件一张，状态为其事件的折叠'"
                )
                con.execute("comment on table ticket_events is '工单的全部历史（只追加）'")
                con.execute("checkpoint")
            finally:
                con.close()
            serving.install(target, tmp)
        except BaseException:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
            raise
    return target


def _route_counts(lake: Path) -> dict[str, int]:
    """Routes per role as the last sync recorded them (the ops file is rebuilt by commands that
    do not read the configuration)."""
    path = Lake.of(lake).tickets / ROUTES
    return json.loads(path.read_text()) if path.exists() else {}


def record_routes(lake: Path, routes: Mapping[str, Sequence[Any]]) -> None:
    path = Lake.of(lake).tickets / ROUTES
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".routes.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps({k: len(v) for k, v in sorted(routes.items())}))
    os.replace(tmp, path)


def open_ops_db(lake: Path) -> duckdb.DuckDBPyConnection:
    """Read-only, no file access: the way the dashboard's connection opens it."""
    path = Lake.of(lake).ops_db
    if not path.exists():
        refresh_ops_db(lake)
    return serving.connect_read_only(path, reader_config(lake))
