"""Alert delivery to Feishu (飞书) and DingTalk (钉钉) group robots: the messages, their signatures,
the HTTP call with retries, and the routes from ``config/alerts.yml``.

Pure code with no Dagster in it: the alert store decides what to send and when (it keeps the
incidents, the tickets and the de-duplication) and calls ``send`` once per message and route.

The robots ("custom bots" / "自定义机器人") take a JSON POST to the robot's webhook URL:

Feishu    ``{"msg_type": "interactive", "card": {...}}`` (a message card, JSON 1.0 form: a header
          coloured by ``template`` and ``elements``) or ``{"msg_type": "post", "content": {"post":
          {"zh_cn": {...}}}}`` (rich text, no colour). With signing (签名校验) the body also gets
          ``timestamp`` (Unix seconds, a string) and ``sign`` = base64(HMAC-SHA256(key =
          ``f"{timestamp}\\n{secret}"``, message = empty)); Feishu refuses a timestamp more than
          an hour from its clock. Answers: ``{"code": 0, "msg": "success", "data": {}}`` (plus
          the older ``StatusCode`` / ``StatusMessage``).
DingTalk  ``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}`` to the webhook URL
          (it carries ``access_token``). With signing (加签) the URL gets ``&timestamp=<Unix ms>
          &sign=<s>`` with s = urlencode(base64(HMAC-SHA256(key = secret, message =
          f"{timestamp}\\n{secret}"))), also valid for an hour. Answers: ``{"errcode": 0,
          "errmsg": "ok"}``. DingTalk markdown has no colours, so a coloured dot stands in for
          the card's header colour.

The signature is time-bound, so ``send`` signs every attempt anew. Messages are deterministic given
``now`` (the signing time): no random part, no clock read inside the builders. Every message
carries the words "cardlake 告警" in its footer, so a robot secured by keyword (自定义关键词)
instead of signing accepts all of them with the keyword ``告警`` or ``cardlake``.

What is retried (``ROBOT_CODES`` lists the robots' own codes and where they were documented):
connection errors and timeouts, HTTP 408, 429 and 5xx, the robots' rate-limit codes and any code
not known to be permanent. What is not: a bad signature or stale timestamp, a bad or unknown token,
a keyword missing, an IP not allowed, a malformed payload, an HTTP 4xx or an unusable URL; those
come back at once with ``permanent=True``, since sending the same thing again cannot succeed.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import urllib.parse
from collections.abc import Mapping

import requests
import tenacity

from pipelines.lib.calendar import CST  # the time shown in messages: Beijing time

log = logging.getLogger(__name__)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

PHASES = ("firing", "resolved")
SEVERITIES = ("warning", "critical")
ROLES = ("ops", "finance", "customer_service", "tech")
KINDS = ("feishu", "dingtalk")
FORMATS = {"feishu": ("card", "post"), "dingtalk": ("markdown",)}
DEFAULT_FORMAT = {"feishu": "card", "dingtalk": "markdown"}

SEVERITY_LABELS = {"critical": "严重", "warning": "警告"}
#: Feishu card header templates (colours) and the DingTalk stand-in for them
FEISHU_TEMPLATES = {"critical": "red", "warning": "orange", "resolved": "green"}
DINGTALK_MARKERS = {"critical": "🔴", "warning": "🟠", "resolved": "🟢"}
BRAND = "cardlake 告警"
LINK_TEXT = "打开看板"

#: the robots' limits: DingTalk markdown title ≤ 64 and text ≤ 5,000 characters; a Feishu request
#: body ≤ 20 KB. A summary longer than SUMMARY_LIMIT is cut (the dashboard has the rest).
DINGTALK_TITLE_LIMIT = 64
DINGTALK_TEXT_LIMIT = 5000
SUMMARY_LIMIT = 2000
CUT_MARK = "…（已截断）"


# ------------------------------------------------------------------------------ robot codes
@dataclasses.dataclass(frozen=True)
class RobotCode:
    """One of a robot's own result codes: what it means, whether a retry can help, and where it
    is documented."""

    meaning: str
    retry: bool
    source: str


_FEISHU_GUIDE = "Feishu custom bot guide (自定义机器人使用指南)"
_DINGTALK_GUIDE = "DingTalk custom robot docs (自定义机器人接入 / 安全设置)"
ROBOT_CODES: dict[str, dict[int, RobotCode]] = {
    "feishu": {
        9499: RobotCode(
            "Bad Request: body not of the message type's form, or over 20 KB", False, _FEISHU_GUIDE
        ),
        19001: RobotCode(
            "param invalid: incoming webhook access token invalid",
            False,
            "Feishu answers to a wrong hook token",
        ),
        19021: RobotCode(
            "sign match fail or timestamp is not within one hour from current time",
            False,
            _FEISHU_GUIDE,
        ),
        19022: RobotCode("Ip Not Allowed", False, _FEISHU_GUIDE),
        19024: RobotCode("Key Words Not Found", False, _FEISHU_GUIDE),
        11232: RobotCode("frequency limited (100/min, 5/s per robot)", True, _FEISHU_GUIDE),
    },
    "dingtalk": {
        310000: RobotCode(
            "security check failed: sign not match, invalid timestamp, keywords not in content"
            " or ip not in whitelist",
            False,
            _DINGTALK_GUIDE,
        ),
        300001: RobotCode("token is not exist", False, "DingTalk answers to a wrong access_token"),
        300005: RobotCode(
            "token is not exist (a robot of an external group)",
            False,
            "DingTalk answers to a wrong access_token",
        ),
        40035: RobotCode(
            "缺少参数 (a required parameter or the JSON body is missing)",
            False,
            "DingTalk global error codes",
        ),
        400105: RobotCode("不支持的 msgtype", False, "DingTalk robot send API"),
        130101: RobotCode("send too fast, exceed 20 times per minute", True, _DINGTALK_GUIDE),
        410100: RobotCode("send too fast (rate limited)", True, "DingTalk robot send API"),
        -1: RobotCode("系统繁忙 (system busy: retry later)", True, "DingTalk global error codes"),
    },
}


# ------------------------------------------------------------------------------------- the data
@dataclasses.dataclass(frozen=True)
class Message:
    """One alert message: the first one of an incident (``phase="firing"``) or the follow-up
    when it ends (``"resolved"``). ``summary`` and fact values are shown as Markdown."""

    incident_id: str
    phase: str
    rule: str
    severity: str
    role: str
    title: str
    summary: str
    facts: tuple[tuple[str, str], ...] = ()
    main_cause: str | None = None
    ticket_id: str | None = None
    link: str | None = None
    at: dt.datetime | None = None

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("phase", self.phase, PHASES),
            ("severity", self.severity, SEVERITIES),
            ("role", self.role, ROLES),
        ):
            if value not in allowed:
                raise ValueError(f"Message.{name} {value!r} is not one of {', '.join(allowed)}")
        # a list of lists from YAML or JSON becomes the hashable tuple form
        object.__setattr__(self, "facts", tuple((str(k), str(v)) for k, v in self.facts))


@dataclasses.dataclass(frozen=True)
class Route:
    """One robot a role's alerts go to."""

    role: str
    kind: str
    url: str
    secret: str | None
    format: str = "card"
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Route.kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "dingtalk" and self.format == "card":
            # the dataclass default is Feishu's; DingTalk has one format
            object.__setattr__(self, "format", "markdown")
        if self.format not in FORMATS[self.kind]:
            raise ValueError(
                f"Route.format {self.format!r} is not one of {', '.join(FORMATS[self.kind])} "
                f"for {self.kind}"
            )
        if not self.name:
            object.__setattr__(self, "name", f"{self.role}-{self.kind}")


@dataclasses.dataclass(frozen=True)
class Delivery:
    """How sending one message over one route ended."""

    ok: bool
    attempts: int
    status: int | None
    code: int | None
    detail: str
    permanent: bool


# --------------------------------------------------------------------------------- signatures
def feishu_sign(secret: str, timestamp: int) -> str:
    """Feishu's signature: base64(HMAC-SHA256(key = "<timestamp>\\n<secret>", message = b""))."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature, before URL encoding: base64(HMAC-SHA256(key = secret, message =
    "<timestamp_ms>\\n<secret>"))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def _utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC time (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def unix_seconds(moment: dt.datetime) -> int:
    return (_utc(moment) - EPOCH) // dt.timedelta(seconds=1)


def unix_millis(moment: dt.datetime) -> int:
    """Exact integer milliseconds (no float rounding)."""
    return (_utc(moment) - EPOCH) // dt.timedelta(milliseconds=1)


# ---------------------------------------------------------------------------------- the content
def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(CUT_MARK)] + CUT_MARK


def heading(message: Message) -> str:
    """The one-line heading: 【严重】/【警告】 while firing, 【已恢复】 once resolved."""
    tag = "已恢复" if message.phase == "resolved" else SEVERITY_LABELS[message.severity]
    return f"【{tag}】{message.title}"


def _colour_key(message: Message) -> str:
    return "resolved" if message.phase == "resolved" else message.severity


def _lead(message: Message) -> str | None:
    """The first line of a resolved follow-up: which incident (and ticket) ended."""
    if message.phase != "resolved":
        return None
    ticket = f"（工单 {message.ticket_id}）" if message.ticket_id else ""
    return f"已恢复：事件 {message.incident_id}{ticket}已结束。"


def _summary_lines(message: Message) -> list[str]:
    """The summary's non-blank lines (cut at SUMMARY_LIMIT characters)."""
    text = _clip(message.summary.strip(), SUMMARY_LIMIT)
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def footer(message: Message) -> str:
    """The note under every message: brand (the robots' keyword), rule, incident, ticket, time."""
    parts = [BRAND, f"规则 {message.rule}", f"事件 {message.incident_id}"]
    if message.ticket_id:
        parts.append(f"工单 {message.ticket_id}")
    if message.phase == "resolved":
        parts.append(f"原级别 {SEVERITY_LABELS[message.severity]}")
    if message.at is not None:
        verb = "恢复于" if message.phase == "resolved" else "发现于"
        parts.append(f"{verb} {_utc(message.at).astimezone(CST):%Y-%m-%d %H:%M}（北京时间）")
    return " · ".join(parts)


def feishu_card(message: Message) -> dict:
    """The interactive card (JSON 1.0 form, shown by every Feishu client): a header coloured by
    phase and severity, the summary, the facts as short fields, the main cause, a button to the
    dashboard when there is a link, and the footer note."""
    elements: list[dict] = []
    lead = _lead(message)
    if lead:
        elements.append({"tag": "div", "text": {"tag": "lark_md", "content": f"**{lead}**"}})
    elements.append(
        {"tag": "div", "text": {"tag": "lark_md", "content": "\n".join(_summary_lines(message))}}
    )
    if message.facts:
        fields = [
            {"is_short": True, "text": {"tag": "lark_md", "content": f"**{label}**\n{value}"}}
            for label, value in message.facts
        ]
        elements.append({"tag": "div", "fields": fields})
    if message.main_cause:
        content = f"**主要原因**\n{message.main_cause}"
        elements.append({"tag": "div", "text": {"tag": "lark_md", "content": content}})
    if message.link:
        button = {
            "tag": "button",
            "text": {"tag": "plain_text", "content": LINK_TEXT},
            "type": "danger" if _colour_key(message) == "critical" else "primary",
            "url": message.link,
        }
        elements.append({"tag": "action", "actions": [button]})
    elements.append({"tag": "hr"})
    elements.append(
        {"tag": "note", "elements": [{"tag": "plain_text", "content": footer(message)}]}
    )
    return {
        "config": {"wide_screen_mode": True},
        "header": {
            "template": FEISHU_TEMPLATES[_colour_key(message)],
            "title": {"tag": "plain_text", "content": heading(message)},
        },
        "elements": elements,
    }


def _text(line: str) -> list[dict]:
    """A post paragraph of plain text."""
    return [{"tag": "text", "text": line}]


def feishu_post(message: Message) -> dict:
    """The rich-text (post) form: the same content as the card, one paragraph per line, the link
    as an ``a`` element; no colours."""
    paragraphs: list[list[dict]] = []
    lead = _lead(message)
    if lead:
        paragraphs.append(_text(lead))
    paragraphs += [_text(line) for line in _summary_lines(message)]
    paragraphs += [_text(f"{label}：{value}") for label, value in message.facts]
    if message.main_cause:
        paragraphs.append(_text(f"主要原因：{message.main_cause}"))
    if message.link:
        paragraphs.append([{"tag": "a", "text": LINK_TEXT, "href": message.link}])
    paragraphs.append(_text(footer(message)))
    return {"post": {"zh_cn": {"title": heading(message), "content": paragraphs}}}


def dingtalk_markdown(message: Message) -> dict:
    """The markdown message: a dot for the colour, the heading, the summary (one paragraph per
    line), the facts as a list, the main cause, the link and the footer as a quote."""
    blocks = [f"### {DINGTALK_MARKERS[_colour_key(message)]} {heading(message)}"]
    lead = _lead(message)
    if lead:
        blocks.append(f"**{lead}**")
    blocks += _summary_lines(message)
    if message.facts:
        blocks.append("\n".join(f"- **{label}**：{value}" for label, value in message.facts))
    if message.main_cause:
        blocks.append(f"**主要原因**：{message.main_cause}")
    if message.link:
        blocks.append(f"[{LINK_TEXT}]({message.link})")
    tail = f"\n\n> {footer(message)}"
    body = _clip("\n\n".join(blocks), DINGTALK_TEXT_LIMIT - len(tail))
    return {"title": _clip(heading(message), DINGTALK_TITLE_LIMIT), "text": body + tail}


# ------------------------------------------------------------------------------------ requests
def feishu_request(message: Message, route: Route, now: dt.datetime) -> tuple[str, dict]:
    """The URL and JSON body for a Feishu robot, signed at ``now`` when the route has a secret."""
    if route.format == "post":
        body: dict = {"msg_type": "post", "content": feishu_post(message)}
    else:
        body = {"msg_type": "interactive", "card": feishu_card(message)}
    if route.secret:
        timestamp = unix_seconds(now)
        body = {"timestamp": str(timestamp), "sign": feishu_sign(route.secret, timestamp), **body}
    return route.url, body


def dingtalk_request(message: Message, route: Route, now: dt.datetime) -> tuple[str, dict]:
    """The signed URL (``timestamp`` and ``sign`` appended, replacing any already there) and the
    JSON body for a DingTalk robot."""
    url = route.url
    if route.secret:
        timestamp = unix_millis(now)
        sign = urllib.parse.quote(dingtalk_sign(route.secret, timestamp), safe="")
        base, _, query = url.partition("?")
        kept = [p for p in query.split("&") if p and not p.startswith(("timestamp=", "sign="))]
        url = f"{base}?{'&'.join([*kept, f'timestamp={timestamp}', f'sign={sign}'])}"
    return url, {"msgtype": "markdown", "markdown": dingtalk_markdown(message)}


# ------------------------------------------------------------------------------------- sending
@dataclasses.dataclass(frozen=True)
class Verdict:
    """One attempt's outcome: delivered, worth another try, or neither (permanent)."""

    ok: bool
    retry: bool
    status: int | None
    code: int | None
    detail: str


_URL_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)


def classify(kind: str, status: int, text: str) -> Verdict:
    """Read a robot's answer: success, a failure worth retrying, or a permanent one."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    code = message = None
    if isinstance(body, dict):
        if kind == "feishu":
            code = body.get("code", body.get("StatusCode"))
            message = body.get("msg", body.get("StatusMessage"))
        else:
            code, message = body.get("errcode"), body.get("errmsg")
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    detail = str(message) if message else f"HTTP {status}: {text.strip()[:200] or '(empty)'}"
    if 200 <= status < 300 and code == 0:
        return Verdict(True, False, status, code, detail)
    known = ROBOT_CODES[kind].get(code) if code is not None else None
    if known is not None:
        return Verdict(False, known.retry, status, code, detail)
    if status in (408, 429) or status >= 500:
        return Verdict(False, True, status, code, detail)
    if 400 <= status < 500:
        return Verdict(False, False, status, code, detail)
    # a 2xx with an unknown code or no robot answer at all: a retry may help, so try again
    return Verdict(False, True, status, code, detail)


def _redact(text: str, url: str) -> str:
    """Exception text without the webhook's secrets (the access token, a Feishu hook id, the
    signature): it ends up in logs and in the alert store."""
    parts = urllib.parse.urlsplit(url)
    for secret_part in (url, f"{parts.path}?{parts.query}", parts.path):
        if secret_part and secret_part not in ("/", "?"):
            text = text.replace(secret_part, "<webhook URL>")
    return re.sub(r"(access_token|sign|timestamp)=[^&\s'\")]+", r"\1=***", text)


def send(
    message: Message,
    route: Route,
    *,
    timeout_s: float = 5.0,
    attempts: int = 4,
    backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
    now: dt.datetime | None = None,
    session: requests.Session | None = None,
) -> Delivery:
    """Send ``message`` to ``route``'s robot, retrying transient failures up to ``attempts`` times.

    Waits between attempts grow exponentially (``backoff_s``, 2×, 4×, … capped at
    ``max_backoff_s``), without jitter: one process sends its alerts one after another and the
    robots count per minute, so a random fraction of a second would spread nothing, and fixed
    waits keep the timings testable. Every attempt is signed anew at ``now`` if given (tests),
    else at the current time. Never raises for a delivery failure: the ``Delivery`` says how it
    ended, with ``permanent=True`` when retrying cannot help (see the module docstring).
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    build = feishu_request if route.kind == "feishu" else dingtalk_request
    http = session if session is not None else requests.Session()
    count = 0

    def attempt() -> Verdict:
        nonlocal count
        count += 1
        url, body = build(message, route, now if now is not None else dt.datetime.now(dt.UTC))
        try:
            response = http.post(
                url,
                data=json.dumps(body, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=timeout_s,
            )
        except _URL_ERRORS as exc:
            return Verdict(False, False, None, None, _redact(f"{type(exc).__name__}: {exc}", url))
        except requests.RequestException as exc:
            return Verdict(False, True, None, None, _redact(f"{type(exc).__name__}: {exc}", url))
        return classify(route.kind, response.status_code, response.text)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        result: Verdict = state.outcome.result()
        log.warning(
            "alert %s to %s: attempt %d failed (status %s, code %s: %s); retrying in %.2f s",
            message.incident_id,
            route.name,
            state.attempt_number,
            result.status,
            result.code,
            result.detail,
            state.next_action.sleep if state.next_action else 0.0,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=backoff_s, max=max_backoff_s),
        retry=tenacity.retry_if_result(lambda result: result.retry),
        before_sleep=before_sleep,
        retry_error_callback=lambda state: state.outcome.result(),
    )
    try:
        result: Verdict = retrying(attempt)
    finally:
        if session is None:
            http.close()
    if not result.ok:
        log.warning(
            "alert %s to %s not delivered after %d attempt(s): %s",
            message.incident_id,
            route.name,
            count,
            result.detail,
        )
    return Delivery(
        ok=result.ok,
        attempts=count,
        status=result.status,
        code=result.code,
        detail=result.detail,
        permanent=not result.ok and not result.retry,
    )


# -------------------------------------------------------------------------------------- routes
class RouteConfigError(ValueError):
    """The ``routes:`` section of config/alerts.yml is malformed; the message says where."""


ROUTE_KEYS = ("kind", "url_env", "secret_env", "format", "name")
#: the only hosts a robot URL may reach over plain http:// (a robot on this machine, such as the
#: tests' tests/webhook_server.py); every other robot URL must be https://, since the URL carries
#: the robot's token and the messages carry the incidents
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def load_routes(
    config: Mapping | None, environ: Mapping[str, str]
) -> tuple[dict[str, list[Route]], list[str]]:
    """The robots of every role, from the parsed ``routes:`` section and the environment.

    ``config`` maps a role to a list of ``{kind, url_env, secret_env?, format?, name?}``; the URL
    and the secret are read from the named environment variables (never from the file). Returns
    the routes of every role (an empty list for a role without robots) and notes about routes
    skipped because their URL (or their named secret) is not set: not an error, those alerts then
    only open tickets. Raises ``RouteConfigError`` for a malformed section, and for a robot URL
    that is plain ``http://`` to a host other than ``LOOPBACK_HOSTS`` (it must be ``https://``).
    """
    routes: dict[str, list[Route]] = {role: [] for role in ROLES}
    notes: list[str] = []
    if config is None:
        return routes, notes
    if not isinstance(config, Mapping):
        raise RouteConfigError(f"routes: expected a mapping of role to robots, got {config!r}")
    for role, entries in config.items():
        if role not in ROLES:
            raise RouteConfigError(f"routes: unknown role {role!r} (known: {', '.join(ROLES)})")
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise RouteConfigError(f"routes.{role}: expected a list of robots, got {entries!r}")
        kinds = [e.get("kind") if isinstance(e, Mapping) else None for e in entries]
        for i, entry in enumerate(entries):
            where = f"routes.{role}[{i}]"
            route_or_note = _route(
                role, entry, where, environ, numbered=kinds.count(kinds[i]) > 1, i=i
            )
            if isinstance(route_or_note, Route):
                routes[role].append(route_or_note)
            else:
                notes.append(route_or_note)
    return routes, notes


def _route(
    role: str, entry: object, where: str, environ: Mapping[str, str], *, numbered: bool, i: int
) -> Route | str:
    """One robot of a role: its Route, or a note saying why it is skipped."""
    if not isinstance(entry, Mapping):
        raise RouteConfigError(f"{where}: expected a mapping with kind and url_env, got {entry!r}")
    unknown = sorted(set(entry) - set(ROUTE_KEYS))
    if unknown:
        raise RouteConfigError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))} "
            f"(known: {', '.join(ROUTE_KEYS)})"
        )
    kind = entry.get("kind")
    if kind not in KINDS:
        raise RouteConfigError(f"{where}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    fmt = entry.get("format", DEFAULT_FORMAT[kind])
    if fmt not in FORMATS[kind]:
        raise RouteConfigError(
            f"{where}: unknown format {fmt!r} for {kind} (known: {', '.join(FORMATS[kind])})"
        )
    url_env = entry.get("url_env")
    if not isinstance(url_env, str) or not url_env.strip():
        raise RouteConfigError(
            f"{where}: url_env (the environment variable with the URL) is missing"
        )
    secret_env = entry.get("secret_env")
    if secret_env is not None and (not isinstance(secret_env, str) or not secret_env.strip()):
        raise RouteConfigError(f"{where}: secret_env must name an environment variable")
    name = entry.get("name") or (f"{role}-{kind}-{i + 1}" if numbered else f"{role}-{kind}")
    url = environ.get(url_env, "").strip()
    if not url:
        return (
            f"{name} ({where}): {url_env} is not set, so {role} alerts skip this robot "
            "(tickets only)"
        )
    if not url.startswith(("http://", "https://")):
        return (
            f"{name} ({where}): {url_env} is not an http(s) URL, so {role} alerts skip this robot"
        )
    if url.startswith("http://"):
        try:
            host = urllib.parse.urlsplit(url).hostname  # lower case, no brackets, no port
        except ValueError:  # e.g. an unclosed [ipv6 literal: not a host known to be local
            host = None
        if host not in LOOPBACK_HOSTS:
            raise RouteConfigError(
                f"{where}: {url_env} is a plain http:// URL (host {host or '?'}): robot webhook "
                "URLs must be https://, as the URL carries the robot's token (http:// is allowed "
                f"only to a loopback host: {', '.join(LOOPBACK_HOSTS)})"
            )
    secret = None
    if secret_env:
        secret = environ.get(secret_env, "").strip()
        if not secret:
            return (
                f"{name} ({where}): {secret_env} (the signing secret) is not set, so {role} alerts "
                "skip this robot (it would refuse unsigned messages)"
            )
    return Route(role=role, kind=kind, url=url, secret=secret, format=fmt, name=str(name))
