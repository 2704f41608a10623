"""The HTTP edge: strict JSON bodies for every POST route, and a uvicorn server that a slow or
flooding client cannot lock everyone else out of.

uvicorn (0.54) has `timeout_keep_alive` (idle time between requests) and `limit_concurrency`
(503 past N connections or tasks), but no deadline for receiving a request: its keep-alive
timer is cancelled by every byte received, so a client trickling a header line a byte at a
time holds its connection forever, and `limit_concurrency` still accepts and keeps such
connections open (uvicorn issue #157, "--timeout-request-start", is still open). ASGI
middleware cannot help: it runs only once the head is parsed. Hence GuardedH11Protocol below,
a small subclass of uvicorn's h11 protocol."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import resource
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from oracle.models import Problem, ProblemItem

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
# File descriptors kept free for the store, the chain connection and the runtime when the
# connection cap is fitted under the process's open-files limit.
FD_RESERVE = 64
# The listen backlog. asyncio accepts up to this many connections in one go before any of
# them reaches connection_made (where the cap is applied), and a dropped connection's socket
# is closed only on the loop's next turn, after the next burst: so the cap leaves room for two
# bursts. Past the open-files limit accept() fails with EMFILE and asyncio stops accepting for
# a whole second, valid clients included.
ACCEPT_BACKLOG = 128

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# ---------------------------------------------------------------------- strict JSON bodies


class BodyRefused(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        field: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(title)
        self.status, self.title, self.field, self.message = status, title, field, message
        self.headers = headers or {}


# Checks a request's head before its body is read (e.g. the gateway token), so that an
# unauthenticated client cannot make the oracle read and parse megabytes.
Gate = Callable[[Scope], "BodyRefused | None"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise BodyRefused(400, "duplicate key", "body", f"key {key!r} appears twice")
        obj[key] = value
    return obj


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text`, brackets inside strings ignored.
    Counted before parsing: Python's parser recurses, so a deep enough body makes it raise
    RecursionError (a 500) after spending its time, before any limit could be checked."""
    depth = deepest = 0
    for ch in _brackets(text):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _brackets(text: str) -> str:
    """The brackets of `text` outside strings, in order (C-speed passes, so that a 2 MB body
    costs milliseconds: a per-character Python loop would cost ~100 ms)."""
    outside = _STRING.sub("", text) if '"' in text else text
    return _NOT_BRACKET.sub("", outside)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def parse_strict_json(raw: bytes, max_depth: int) -> Any:
    """UTF-8 JSON without a byte-order mark, duplicate keys, NaN/Infinity or nesting deeper than
    max_depth; raises BodyRefused naming the reason."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) > 1 and b"\x00" in raw[:4]):
        raise BodyRefused(
            415, "unsupported encoding", "body", "the body must be UTF-8, not UTF-16/32"
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raise BodyRefused(400, "byte-order mark", "body", "UTF-8 without a byte-order mark only")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRefused(400, "invalid UTF-8", "body", str(exc)) from exc
    depth = json_depth(text)
    if depth > max_depth:
        raise BodyRefused(
            400, "nesting too deep", "body", f"nesting depth {depth}; at most {max_depth}"
        )
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except BodyRefused:
        raise
    except (ValueError, RecursionError) as exc:
        raise BodyRefused(400, "malformed JSON", "body", str(exc)) from exc


def _content_type_problem(header: str) -> BodyRefused | None:
    media, _, params = header.partition(";")
    if media.strip().lower() != "application/json":
        shown = media.strip() or "none"
        return BodyRefused(
            415, "unsupported media type", "Content-Type", f"{shown}; send application/json"
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return BodyRefused(
                415, "unsupported charset", "Content-Type", f"charset {value.strip()}; UTF-8 only"
            )
    return None


class StrictJsonBodies:
    """ASGI middleware for every POST/PUT/PATCH: application/json (UTF-8) only, a size limit,
    strict parsing. Refusals are problem+json and the route never runs, so nothing is stored.
    The parsed body is left in scope["state"]["json_body"] and the raw body replayed, so routes
    that let FastAPI parse it see the same bytes."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, max_depth: int, gate: Gate | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        try:
            refused = self.gate(scope) if self.gate else None
            if refused is not None:
                raise refused
            raw = await self._checked_body(scope, receive)
            if raw is None:
                return  # the client went away
            scope.setdefault("state", {})["json_body"] = parse_strict_json(raw, self.max_depth)
        except BodyRefused as exc:
            await _send_problem(send, exc)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _checked_body(self, scope: Scope, receive: Receive) -> bytes | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = _content_type_problem(headers.get("content-type", ""))
        if problem:
            raise problem
        too_big = BodyRefused(413, "body too large", "body", f"at most {self.max_body_bytes} bytes")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _send_problem(send: Send, exc: BodyRefused) -> None:
    problem = Problem(
        type=f"https://zcx.invalid/problems/{exc.status}",
        title=exc.title,
        status=exc.status,
        detail=exc.message,
        errors=[ProblemItem(field=exc.field, message=exc.message)],
    )
    body = problem.model_dump_json(exclude_none=True).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(body)).encode()),
                # The unread rest of a refused body must not be parsed as the next request.
                (b"connection", b"close"),
                *((k.lower().encode(), v.encode()) for k, v in exc.headers.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------- slow clients


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each request (head within
    header_timeout_s of the connection or of the previous response, body within
    body_timeout_s of the head) and a cap on open connections. Past the cap the oldest
    connection that is still sending its request is dropped: an honest client sends its
    request at once, so it is never the oldest such connection, and a flood of half-sent
    requests cannot keep it out."""

    header_timeout_s = 10.0
    body_timeout_s = 30.0
    max_connections = 900
    dropped = 0  # connections closed by a deadline or the cap (all servers of the process)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.opened_at = time.monotonic()
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm(self.header_timeout_s)
        if len(self.connections) > self.max_connections:
            self._shed()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.opened_at = time.monotonic()
            self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    @property
    def receiving(self) -> bool:
        """Still waiting for (part of) a request from the client."""
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

    def _follow_request(self) -> None:
        state = self.conn.their_state
        if state is h11.SEND_BODY and self._phase != "body":
            self._arm(self.body_timeout_s, "body")
        elif state is h11.IDLE and self._phase != "head":
            self._arm(self.header_timeout_s)
        elif state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the request is in; the app's time is its own

    def _arm(self, seconds: float, phase: str = "head") -> None:
        self._disarm()
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
        self._deadline = None
        self._phase = ""

    def _expire(self) -> None:
        self._deadline = None
        if self.receiving and not self.transport.is_closing():
            log.warning("closed a connection that did not send its request in time")
            self._drop()

    def _shed(self) -> None:
        candidates = [c for c in self.connections if isinstance(c, GuardedH11Protocol)]
        waiting = [c for c in candidates if c.receiving and not c.transport.is_closing()]
        victim = min(waiting, key=lambda c: c.opened_at) if waiting else self
        log.warning(
            "connection cap of %d reached: dropped the oldest unfinished request",
            self.max_connections,
        )
        victim._drop()

    def _drop(self) -> None:
        type(self).dropped += 1
        self._disarm()
        self.connections.discard(self)
        self.transport.close()


def connection_cap(wanted: int) -> int:
    """The configured cap, lowered to fit under the process's open-files limit with room for
    one accept burst and the oracle's own files."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - 2 * ACCEPT_BACKLOG - FD_RESERVE))


def server_config(app: Any, host: str, port: int, settings: Any = None) -> uvicorn.Config:
    """uvicorn settings shared by `oracle serve` and the in-process test server."""
    from oracle.settings import OracleSettings

    s = settings or OracleSettings()
    protocol = type(
        "OracleH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": s.header_timeout_s,
            "body_timeout_s": s.body_timeout_s,
            "max_connections": connection_cap(s.max_connections),
        },
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,  # type: ignore[arg-type]
        loop="asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=s.keep_alive_s,
        h11_max_incomplete_event_size=16 * 1024,
        backlog=ACCEPT_BACKLOG,
    )
