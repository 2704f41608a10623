"""The ingest API (FastAPI). Every error answer is application/problem+json naming each bad
reading by index and field; nothing of a refused request is stored."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from oracle.http import BodyRefused, StrictJsonBodies
from oracle.models import (
    Attestation,
    AttestationRequest,
    Health,
    MeterReadings,
    Problem,
    ProblemItem,
    ReadingResult,
    ReadingsAccepted,
    ReadingsIn,
    ReadingStatus,
)
from oracle.quorum import AttestationRefused, attest, check_quorum_config, quorum_mode
from oracle.service import NeedChain, Oracle
from oracle.store import Conflict
from oracle.submitter import Submitter
from oracle.validation import Issue, WireReading, check_batch

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM: {}}, "description": text}
    for code, text in {
        400: "malformed JSON",
        401: "missing or wrong gateway token",
        403: "a meter not bound to this gateway",
        409: "conflicts with stored readings (nothing is ever overwritten)",
        413: "body or batch too large",
        415: "not application/json in UTF-8",
        422: "invalid readings (each listed by index and field)",
        503: "backlog bound reached, or the chain is needed to check a reading and does not "
        "answer; retry after Retry-After seconds",
    }.items()
}


class ProblemError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        items: list[ProblemItem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(title)
        self.problem = Problem(
            type=f"https://zcx.invalid/problems/{status}",
            title=title,
            status=status,
            detail=detail,
            errors=items or [],
        )
        self.headers = headers or {}


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM,
        headers=headers,
    )


def _items(issues: list[Issue]) -> list[ProblemItem]:
    return [ProblemItem(index=i.index, field=i.field, message=i.message) for i in issues]


def _pydantic_items(exc: ValidationError | RequestValidationError) -> list[ProblemItem]:
    items = []
    for err in exc.errors():
        loc = [p for p in err.get("loc", ()) if p != "body"]
        index = next((p for p in loc if isinstance(p, int)), None)
        field = ".".join(str(p) for p in loc if not isinstance(p, int)) or None
        items.append(ProblemItem(index=index, field=field, message=str(err.get("msg", "invalid"))))
    return items


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def peer_of(oracle: Oracle, request: Request) -> str:
    """The peer oracle named by the request's per-peer credential, else 401."""
    token = _bearer(request)
    peer = oracle.store.authenticate_peer(token) if token else None
    if peer is None:
        raise ProblemError(
            401,
            "missing or wrong peer credential",
            "send Authorization: Bearer <the token this oracle issued to your oracle>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return peer


def add_attestation_route(app: FastAPI, oracle: Oracle) -> None:
    """POST /v1/attestations, quorum mode only. The caller's per-peer credential is checked
    before the body is even read (the strict-body middleware's gate): a wrong or missing one
    gets 401 and nothing is signed or stored."""

    @app.post(
        "/v1/attestations",
        response_model=Attestation,
        responses={k: PROBLEM_RESPONSES[k] for k in (400, 401, 409, 413, 422, 503)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": AttestationRequest.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        )
                    }
                },
            }
        },
        summary="A peer oracle's signature over a proposed batch (quorum; peer credential)",
    )
    async def post_attestation(request: Request) -> Attestation:
        peer = peer_of(oracle, request)
        try:
            body = AttestationRequest.model_validate(request.state.json_body)
        except ValidationError as exc:
            raise ProblemError(422, "invalid request", items=_pydantic_items(exc)) from exc
        from starlette.concurrency import run_in_threadpool

        try:
            return await run_in_threadpool(attest, oracle, body)
        except AttestationRefused as exc:
            log.info("refused peer %s: %s", peer, exc.title)
            raise ProblemError(exc.status, exc.title, items=exc.items) from exc


def create_app(
    oracle: Oracle, run_submitter: bool = True, on_fatal: Callable[[str], None] | None = None
) -> FastAPI:
    s = oracle.settings
    submitter = Submitter(oracle, on_fatal=on_fatal)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_submitter:
            submitter.start()
        yield
        submitter.stop()
        oracle.close()

    app = FastAPI(
        title="ZCX oracle",
        version="1",
        description="Meter gateways post 30-minute readings; the oracle signs and submits them "
        "to the GenerationRegistry exactly once.",
        lifespan=lifespan,
    )
    app.state.oracle = oracle
    app.state.submitter = submitter
    oracle.metrics.watch_backlog(oracle.backlog)

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.problem, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            Problem(title="invalid request", status=422, errors=_pydantic_items(exc))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(Problem(title=str(exc.detail), status=exc.status_code))

    def gateway_gate(scope: MutableMapping[str, Any]) -> BodyRefused | None:
        """The gateway token of a POST /v1/readings, or the peer credential of a POST
        /v1/attestations, checked before its body is read."""
        try:
            if scope["path"] == "/v1/readings":
                gateway_of(Request(scope))
            elif scope["path"] == "/v1/attestations" and quorum_mode(oracle):
                peer_of(oracle, Request(scope))
        except ProblemError as exc:
            return BodyRefused(
                401, exc.problem.title, "Authorization", exc.problem.detail, exc.headers
            )
        return None

    def gateway_of(request: Request) -> str:
        token = _bearer(request)
        gateway = oracle.store.authenticate(token) if token else None
        if gateway is None:
            raise ProblemError(
                401,
                "missing or wrong gateway token",
                "send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return gateway

    # Every POST route (this one's and any added later) gets the same strict body rules.
    app.add_middleware(
        StrictJsonBodies,
        max_body_bytes=s.max_body_bytes,
        max_depth=s.max_json_depth,
        gate=gateway_gate,
    )

    @app.post(
        "/v1/readings",
        status_code=202,
        response_model=ReadingsAccepted,
        responses=PROBLEM_RESPONSES,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": ReadingsIn.model_json_schema(
                            ref_template="#/components/schemas/{model}"
                        )
                    }
                },
            }
        },
        summary="Post readings (atomic: all stored, or none)",
    )
    async def post_readings(request: Request) -> ReadingsAccepted:
        gateway = gateway_of(request)
        body = request.state.json_body  # parsed strictly by StrictJsonBodies
        if isinstance(body, dict) and isinstance(body.get("readings"), list):
            if len(body["readings"]) > s.max_readings_per_request:
                raise ProblemError(
                    413,
                    "batch too large",
                    f"{len(body['readings'])} readings; at most {s.max_readings_per_request}",
                )
        try:
            parsed = ReadingsIn.model_validate(body)
        except ValidationError as exc:
            oracle.metrics.rejected.labels("ingest", "schema").inc()
            raise ProblemError(422, "invalid readings", items=_pydantic_items(exc)) from exc
        return await _accept(gateway, parsed)

    async def _accept(gateway: str, parsed: ReadingsIn) -> ReadingsAccepted:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_accept_sync, gateway, parsed)

    def _accept_sync(gateway: str, parsed: ReadingsIn) -> ReadingsAccepted:
        incoming = len(parsed.readings)
        refusal = oracle.backlog.admit(incoming)
        if refusal is not None:
            oracle.metrics.rejected.labels("ingest", "backpressure").inc(incoming)
            raise ProblemError(
                503,
                "backlog full",
                refusal.reason,
                items=[ProblemItem(field="readings", message=refusal.reason)],
                headers={"Retry-After": str(refusal.retry_after_s)},
            )
        stored = 0
        try:
            result = _validate_and_store(gateway, parsed)
            stored = result.accepted
            return result
        finally:
            oracle.backlog.settle(incoming, stored)

    def _validate_and_store(gateway: str, parsed: ReadingsIn) -> ReadingsAccepted:
        items: list[ProblemItem] = []
        wire: list[WireReading] = []
        for i, r in enumerate(parsed.readings):
            start, end = r.interval_start.timestamp(), r.interval_end.timestamp()
            if start != int(start) or end != int(end):
                items.append(
                    ProblemItem(index=i, field="interval_start", message="whole seconds only")
                )
            wire.append(
                WireReading(
                    r.meter_id,
                    int(start),
                    int(end),
                    r.generated_wh,
                    r.consumed_wh,
                    r.sold_wh,
                    r.purchased_wh,
                )
            )
        unbound = oracle.store.unbound(gateway, {w.meter for w in wire})
        if unbound:
            oracle.metrics.rejected.labels("ingest", "forbidden").inc(len(wire))
            raise ProblemError(
                403,
                "meter not bound to this gateway",
                items=[
                    ProblemItem(
                        index=i,
                        field="meter_id",
                        message=f"meter {w.meter!r} is not bound to gateway {gateway!r}",
                    )
                    for i, w in enumerate(wire)
                    if w.meter in unbound
                ],
            )
        try:
            oracle.prefetch_specs(w.meter for w in wire)
            issues = check_batch(wire, oracle.rules(), oracle.spec_of)
        except NeedChain as exc:
            # A live chain is only slow: the lookup goes on in the background and the retry
            # finds the spec cached. A dead one needs longer.
            retry = "1" if oracle.chain_ok else "5"
            raise ProblemError(
                503, "meter lookup pending", str(exc), headers={"Retry-After": retry}
            ) from exc
        items += _items([i for i in issues if i.kind != "conflict"])
        if items:
            oracle.metrics.rejected.labels("ingest", "invalid").inc(len(wire))
            raise ProblemError(422, "invalid readings", items=items)
        conflicts = [i for i in issues if i.kind == "conflict"]
        if conflicts:
            raise ProblemError(409, "conflicting readings", items=_items(conflicts))
        try:
            statuses = oracle.store.accept(wire, f"gateway:{gateway}")
        except Conflict as exc:
            oracle.metrics.rejected.labels("ingest", "conflict").inc(len(wire))
            raise ProblemError(
                409, "conflicting readings", "nothing is ever overwritten", items=_items(exc.issues)
            ) from exc
        accepted = statuses.count("accepted")
        oracle.metrics.accepted.inc(accepted)
        return ReadingsAccepted(
            accepted=accepted,
            duplicates=len(statuses) - accepted,
            results=[
                ReadingResult(index=i, meter_id=w.meter, interval_start=w.start, status=st)  # type: ignore[arg-type]
                for i, (w, st) in enumerate(zip(wire, statuses, strict=True))
            ],
        )

    @app.get(
        "/v1/meters/{meter_id}/readings",
        response_model=MeterReadings,
        responses={k: PROBLEM_RESPONSES[k] for k in (401, 403, 422)},
        summary="Status of a meter's intervals",
    )
    def meter_readings(
        request: Request,
        meter_id: str,
        from_: Annotated[
            datetime | None, Query(alias="from", description="ISO-8601; intervals ending after")
        ] = None,
        to: Annotated[
            datetime | None, Query(description="ISO-8601; intervals starting before")
        ] = None,
    ) -> MeterReadings:
        gateway = gateway_of(request)
        if not oracle.store.is_bound(gateway, meter_id):
            raise ProblemError(403, "meter not bound to this gateway")
        for name, value in (("from", from_), ("to", to)):
            if value is not None and value.tzinfo is None:
                raise ProblemError(
                    422,
                    "invalid query",
                    items=[ProblemItem(field=name, message="needs a UTC offset")],
                )
        rows = oracle.store.readings_of(
            meter_id,
            int(from_.timestamp()) if from_ else None,
            int(to.timestamp()) if to else None,
        )
        return MeterReadings(
            meter_id=meter_id,
            readings=[
                ReadingStatus(
                    meter_id=r.meter,
                    interval_start=r.start,
                    interval_end=r.end,
                    generated_wh=r.gen,
                    consumed_wh=r.cons,
                    sold_wh=r.sold,
                    purchased_wh=r.purchased,
                    status=r.state,  # type: ignore[arg-type]
                    tx_hash=r.tx_hash,
                    block_number=r.block,
                    reason=r.reason,
                )
                for r in rows
            ],
        )

    if quorum_mode(oracle):
        check_quorum_config(oracle)
        add_attestation_route(app, oracle)

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}})
    def healthz() -> JSONResponse:
        store_ok = oracle.store.ping()
        health = Health(
            store=store_ok,
            chain=oracle.chain_ok,
            chain_detail=oracle.chain.scrub(oracle.chain_detail),
            signer=oracle.signer.address if oracle.signer else None,
            leader=s.leader,
            queue_depth=oracle.store.queue_depth() if store_ok else 0,
            fatal=oracle.fatal,
        )
        ok = store_ok and oracle.chain_ok and not oracle.fatal
        return JSONResponse(health.model_dump(), status_code=200 if ok else 503)

    @app.get("/metrics", response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(oracle.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
