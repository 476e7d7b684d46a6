"""A loopback stand-in for the Feishu and DingTalk group robots, for tests that send real HTTP.

One HTTP server on 127.0.0.1 (a free port) plays both robots, chosen by the first segment of the
path: ``/feishu/...`` answers as a Feishu custom bot, ``/dingtalk/...`` as a DingTalk custom
robot. It records every request, checks signatures itself, the documented way, when a path has a
secret, and answers with the robots' own result codes::

    with WebhookServer() as server:                     # or the ``webhook_server`` fixture
        server.secrets["feishu/ops"] = "s3cret"          # this robot signs (签名校验 / 加签)
        server.keywords["dingtalk/finance"] = "告警"     # this robot wants a keyword
        server.tokens["dingtalk/finance"] = "t0k"        # ... and this access_token
        url = server.url("dingtalk/finance", access_token="t0k")
        server.fail_next(2)                              # the next 2 requests: HTTP 500
        server.fail_next(body=FEISHU_RATE_LIMITED)       # then the rate-limit answer (HTTP 200)
        server.fail_next(delay_s=1.0)                    # then an answer too late (HTTP 500)
        ...
        server.requests("feishu/ops")                    # what arrived there, in order

Answers when nothing is scripted:

Feishu    body not JSON, or not of its ``msg_type``'s form: HTTP 400 ``{"code": 9499, "msg":
          "Bad Request"}``; a path with a secret and a missing, wrong or stale (more than
          ``max_skew_s`` from now) ``timestamp`` / ``sign``: ``19021``; keyword missing:
          ``19024``; else ``{"code": 0, "msg": "success", ...}``.
DingTalk  no ``access_token``: ``40035``; not the one in ``tokens``: ``300001``; a path with a
          secret and a missing, stale or wrong ``timestamp`` / ``sign`` query: ``310000``
          ("invalid timestamp" / "sign not match"); keyword missing: ``310000`` ("keywords not in
          content"); body not JSON or missing its message: ``40035``; unknown ``msgtype``:
          ``400105``; else ``{"errcode": 0, "errmsg": "ok"}``.

Robot errors come with HTTP 200, as the robots send them (except Feishu's 9499: HTTP 400). The
robots' answers are module constants (``FEISHU_RATE_LIMITED``, ``DINGTALK_TOO_FAST``, ...) to
script with ``fail_next``; ``feishu_signature_ok`` / ``dingtalk_signature_ok`` are the server's
own signature checks, for tests that want to verify a signature without sending it.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.parse
from typing import Any

FEISHU_OK = {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}
FEISHU_BAD_REQUEST = {"code": 9499, "msg": "Bad Request", "data": {}}
FEISHU_BAD_TOKEN = {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}
FEISHU_SIGN_FAIL = {
    "code": 19021,
    "msg": "sign match fail or timestamp is not within one hour from current time",
    "data": {},
}
FEISHU_IP_NOT_ALLOWED = {"code": 19022, "msg": "Ip Not Allowed"}
FEISHU_KEYWORD_MISSING = {"code": 19024, "msg": "Key Words Not Found"}
FEISHU_RATE_LIMITED = {
    "code": 11232,
    "msg": "frequency limited psm[lark.oapi.app_platform_runtime]appID[1500]",
    "data": {},
}

DINGTALK_OK = {"errcode": 0, "errmsg": "ok"}
DINGTALK_MISSING_TOKEN = {"errcode": 40035, "errmsg": "缺少参数 access_token"}
DINGTALK_MISSING_JSON = {"errcode": 40035, "errmsg": "缺少参数 json"}
DINGTALK_BAD_TOKEN = {"errcode": 300001, "errmsg": "token is not exist"}
DINGTALK_SIGN_NOT_MATCH = {"errcode": 310000, "errmsg": "sign not match"}
DINGTALK_INVALID_TIMESTAMP = {"errcode": 310000, "errmsg": "invalid timestamp"}
DINGTALK_KEYWORD_MISSING = {"errcode": 310000, "errmsg": "keywords not in content"}
DINGTALK_UNSUPPORTED = {"errcode": 400105, "errmsg": "不支持的 msgtype"}
DINGTALK_TOO_FAST = {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
DINGTALK_BUSY = {"errcode": -1, "errmsg": "系统繁忙"}

#: what each message type of a robot must carry (a Feishu key, or a DingTalk msgtype's keys)
FEISHU_SHAPES = {"text": "content", "post": "content", "interactive": "card", "image": "content"}
DINGTALK_SHAPES = {
    "text": ("content",),
    "markdown": ("title", "text"),
    "link": ("title", "text", "messageUrl"),
    "actionCard": ("title", "text"),
    "feedCard": ("links",),
}


def feishu_signature_ok(secret: str, timestamp: str, sign: str) -> bool:
    """Feishu's check: sign == base64(HMAC-SHA256(key = "<timestamp>\\n<secret>", msg = b""))."""
    key = f"{timestamp}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    return hmac.compare_digest(sign.encode(), expected.encode())


def dingtalk_signature_ok(secret: str, timestamp: str, sign: str) -> bool:
    """DingTalk's check on the query's (already URL-decoded) ``sign``: base64(HMAC-SHA256(key =
    secret, msg = "<timestamp>\\n<secret>"))."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(sign.encode(), base64.b64encode(digest))


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One request as it arrived, and what the server answered."""

    path: str  # without the leading slash: "feishu/ops"
    query: dict[str, str]  # decoded once (as the robot reads it); last value of a repeated key
    raw_query: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None when it was not JSON
    raw_body: bytes
    at: float  # time.time() on arrival
    status: int
    answer: dict


@dataclasses.dataclass(frozen=True)
class _Script:
    status: int
    body: dict | str
    delay_s: float


class WebhookServer:
    """Both robots on loopback; a context manager (``start``/``close`` by hand also work)."""

    def __init__(self, *, max_skew_s: float = 3600.0) -> None:
        self.max_skew_s = max_skew_s
        #: path → signing secret; a path without one takes unsigned requests (and ignores a sign)
        self.secrets: dict[str, str] = {}
        #: path → a keyword the message must contain (the robots' 自定义关键词)
        self.keywords: dict[str, str] = {}
        #: DingTalk path → the access_token it takes (any non-empty one when absent)
        self.tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._records: list[Recorded] = []
        self._scripts: collections.deque[_Script] = collections.deque()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> WebhookServer:
        handler = type("Handler", (_Handler,), {"robots": self})
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a deliberately slow answer must not hold close()
        # a short poll interval: shutdown() waits for one, and every test closes a server
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ API
    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return self._httpd.server_address[1]

    def url(self, path: str, **query: str) -> str:
        """The webhook URL of ``path`` ("feishu/ops", "dingtalk/finance"), with ``query``
        (e.g. ``access_token="t0k"``) as its query string."""
        url = f"http://127.0.0.1:{self.port}/{path.strip('/')}"
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def requests(self, path: str | None = None) -> list[Recorded]:
        """Every request so far (to ``path`` only, when given), in arrival order."""
        with self._lock:
            return [r for r in self._records if path is None or r.path == path.strip("/")]

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int | None = None,
        body: dict | str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Script the next ``n`` requests (to any path, after those already scripted): answer
        ``body`` (a robot's error, e.g. ``FEISHU_RATE_LIMITED``) with ``status`` (200 when a body
        is given, else 500 with a plain-text body), after waiting ``delay_s`` seconds."""
        if status is None:
            status = 200 if body is not None else 500
        if body is None:
            body = "Internal Server Error" if status >= 500 else f"HTTP {status}"
        with self._lock:
            self._scripts.extend(_Script(status, body, delay_s) for _ in range(n))

    # ------------------------------------------------------------------------------ answering
    def _answer(self, path: str, query: dict[str, str], body: Any, raw: bytes) -> tuple[int, dict]:
        robot = path.split("/", 1)[0]
        if robot == "feishu":
            return self._feishu(path, body, raw)
        if robot == "dingtalk":
            return self._dingtalk(path, query, body, raw)
        return 404, {"error": f"no robot at /{path}: use /feishu/... or /dingtalk/..."}

    def _fresh(self, timestamp_s: float) -> bool:
        return abs(time.time() - timestamp_s) <= self.max_skew_s

    def _feishu(self, path: str, body: Any, raw: bytes) -> tuple[int, dict]:
        if not isinstance(body, dict):
            return 400, FEISHU_BAD_REQUEST
        secret = self.secrets.get(path)
        if secret is not None:
            timestamp, sign = body.get("timestamp"), body.get("sign")
            if not isinstance(timestamp, str | int) or not str(timestamp).isdigit():
                return 200, FEISHU_SIGN_FAIL
            if not self._fresh(int(timestamp)) or not feishu_signature_ok(
                secret, str(timestamp), str(sign)
            ):
                return 200, FEISHU_SIGN_FAIL
        if not self._has_keyword(path, raw):
            return 200, FEISHU_KEYWORD_MISSING
        need = FEISHU_SHAPES.get(body.get("msg_type"))
        if need is None or not isinstance(body.get(need), dict):
            return 400, FEISHU_BAD_REQUEST
        return 200, FEISHU_OK

    def _dingtalk(
        self, path: str, query: dict[str, str], body: Any, raw: bytes
    ) -> tuple[int, dict]:
        token = query.get("access_token")
        if not token:
            return 200, DINGTALK_MISSING_TOKEN
        if path in self.tokens and token != self.tokens[path]:
            return 200, DINGTALK_BAD_TOKEN
        secret = self.secrets.get(path)
        if secret is not None:
            timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
            if not timestamp.isdigit() or not self._fresh(int(timestamp) / 1000):
                return 200, DINGTALK_INVALID_TIMESTAMP
            if not dingtalk_signature_ok(secret, timestamp, sign):
                return 200, DINGTALK_SIGN_NOT_MATCH
        if not self._has_keyword(path, raw):
            return 200, DINGTALK_KEYWORD_MISSING
        if not isinstance(body, dict) or not isinstance(body.get("msgtype"), str):
            return 200, DINGTALK_MISSING_JSON
        need = DINGTALK_SHAPES.get(body["msgtype"])
        if need is None:
            return 200, DINGTALK_UNSUPPORTED
        content = body.get(body["msgtype"])
        if not isinstance(content, dict) or any(not content.get(k) for k in need):
            return 200, DINGTALK_MISSING_JSON
        return 200, DINGTALK_OK

    def _has_keyword(self, path: str, raw: bytes) -> bool:
        keyword = self.keywords.get(path)
        if keyword is None:
            return True
        try:
            text = json.dumps(json.loads(raw), ensure_ascii=False)  # \u escapes count too
        except ValueError:
            text = raw.decode("utf-8", "replace")
        return keyword in text

    def _handle(self, handler: _Handler) -> tuple[int, dict | str, float]:
        split = urllib.parse.urlsplit(handler.path)
        path = split.path.strip("/")
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            script = self._scripts.popleft() if self._scripts else None
        if script is not None:
            status, answer, delay_s = script.status, script.body, script.delay_s
        else:
            (status, answer), delay_s = self._answer(path, query, body, raw), 0.0
        record = Recorded(
            path=path,
            query=query,
            raw_query=split.query,
            headers=dict(handler.headers.items()),
            body=body,
            raw_body=raw,
            at=time.time(),
            status=status,
            answer=answer if isinstance(answer, dict) else {"text": answer},
        )
        with self._lock:
            self._records.append(record)
        return status, answer, delay_s


class _Handler(http.server.BaseHTTPRequestHandler):
    robots: WebhookServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        status, answer, delay_s = self.robots._handle(self)
        if delay_s:
            time.sleep(delay_s)
        if isinstance(answer, dict):
            payload = json.dumps(answer, ensure_ascii=False).encode()
            content_type = "application/json;charset=utf-8"
        else:
            payload, content_type = answer.encode(), "text/plain;charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the records say what arrived
