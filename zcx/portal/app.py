"""The portal's web application: server-rendered pages (FastAPI + Jinja2) over the event index
and a few live reads, and the "preview" endpoints that check a form before the member's own
wallet signs it (EIP-1193 in the browser; the server never sees a key nor builds a signed
transaction).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eth_utils import is_hex_address, to_checksum_address
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from zcx.holder import GENERATION_METHODS, MEMBER_KINDS, format_zcv
from zcx.portal import forms
from zcx.portal.chain import PortalChain
from zcx.portal.index import PortalIndex
from zcx.portal.messages import DEFAULT_LANGUAGE, LANGUAGES, client_messages, t
from zcx.portal.reports import OperatorReports

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parent.parent
ETHERS_UMD = PROJECT_ROOT / "node_modules" / "ethers" / "dist" / "ethers.umd.min.js"
DEFAULT_TIMEZONE = "Asia/Tokyo"
PAGE_SIZE = 50
ZERO = "0x" + "00" * 20


@dataclass
class Portal:
    """What every request needs: the index, the live chain, the operator's reports."""

    index: PortalIndex
    chain: PortalChain
    reports: OperatorReports
    statements_url: str = "/statements"
    extra_nav: list[tuple[str, str]] = field(default_factory=list)

    def fresh(self) -> int:
        """Indexes new blocks before a page is drawn (one cheap call when nothing is new)."""
        return self.index.sync()


# ---------------------------------------------------------------------------- helpers


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get("zcx_lang")
    return asked if asked in LANGUAGES else DEFAULT_LANGUAGE


def _zone(request: Request) -> ZoneInfo:
    name = request.query_params.get("tz") or request.cookies.get("zcx_tz") or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def _checked_address(address: str) -> str:
    if not is_hex_address(address):
        raise HTTPException(404, "not an address")
    return to_checksum_address(address)


def _page(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return max(1, int(text)) if text.isdigit() else 1


def _short(value: str, keep: int = 6) -> str:
    return value if len(value) <= 2 * keep + 2 else f"{value[: keep + 2]}…{value[-keep:]}"


def _dr_status(lang: str, status: str) -> str:
    """zcx.dr's measurement status ("too few like days (3 of 5)") in the reader's language."""
    head, _, detail = status.partition(" (")
    key = "dr_" + head.strip().replace(" ", "_")
    try:
        text = t(lang, key)
    except KeyError:
        return status
    return f"{text} ({detail}" if detail else text


class Renderer:
    """Jinja2 with the portal's filters: messages, ZCV amounts, local times."""

    def __init__(self) -> None:
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))

    def render(
        self, request: Request, portal: Portal, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        lang = _lang(request)
        zone = _zone(request)

        def fmt_time(ts: int | None, date_only: bool = False) -> str:
            if not ts:
                return "-"
            moment = datetime.fromtimestamp(int(ts), UTC).astimezone(zone)
            return moment.strftime("%Y-%m-%d" if date_only else "%Y-%m-%d %H:%M %Z")

        context = {
            "lang": lang,
            "other_lang": "en" if lang == "ja" else "ja",
            "t": lambda key, **kw: t(lang, key, **kw),
            "dr_status": lambda status: _dr_status(lang, status),
            "zcv": format_zcv,
            "when": fmt_time,
            "short": _short,
            "zone": zone.key,
            "zones": ("Asia/Tokyo", "UTC", "Europe/London", "America/New_York"),
            "block": portal.index.last_block,
            "path": request.url.path,
            "client_messages": json.dumps(client_messages(lang), ensure_ascii=False),
            "kinds": MEMBER_KINDS,
            "methods": GENERATION_METHODS,
            "extra_nav": portal.extra_nav,
            **values,
        }
        response = self.templates.TemplateResponse(request, template, context, status_code=status)
        for key, cookie in (("lang", "zcx_lang"), ("tz", "zcx_tz")):
            if key in request.query_params:
                response.set_cookie(cookie, request.query_params[key], samesite="lax")
        return response


# ---------------------------------------------------------------------------- member data


def member_name(portal: Portal, address: str) -> str | None:
    row = portal.index.query("SELECT name FROM members WHERE account = ?", (address,))
    return str(row[0]["name"]) if row else None


def coins_for(jpy: float, jpy_per_zcv: float) -> str:
    """ZCV that settle `jpy` at the coin price, rounded up to the unit (0.001 ZCV)."""
    if jpy <= 0 or jpy_per_zcv <= 0:
        return ""
    return format_zcv(math.ceil(jpy / jpy_per_zcv * 1000)).replace(",", "")


def dr_view(portal: Portal) -> Any:
    """Demand-response events and results, or None without a DemandResponse contract."""
    if portal.chain.dr_address is None:
        return None
    return portal.reports.dr_view(portal.chain.dr_reader, portal.chain.head_time())


def member_names(portal: Portal) -> dict[str, str]:
    return {
        r["account"]: r["name"] for r in portal.index.query("SELECT account, name FROM members")
    }


def revoked_ids(portal: Portal) -> set[int]:
    return {int(r[0]) for r in portal.index.query("SELECT id FROM certificates WHERE revoked")}


def history_rows(
    portal: Portal, address: str, limit: int | None, offset: int = 0
) -> list[dict[str, Any]]:
    """The member's coin movements, newest first: transfers in and out, issues, retirements and
    payments (a payment is a transfer tagged by the Paid event of the same transaction)."""
    sql = """
        SELECT t.pos, t.block, t.tx, t.sender, t.recipient, t.units,
               p.reference AS reference, r.id AS retirement_id
        FROM transfers t
        LEFT JOIN payments p ON p.tx = t.tx AND p.sender = t.sender AND p.recipient = t.recipient
             AND p.units = t.units
        LEFT JOIN retirements r ON r.tx = t.tx AND t.recipient = ?
        WHERE t.sender = ? OR t.recipient = ?
        ORDER BY t.pos DESC"""
    params: list[Any] = [ZERO, address, address]
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    rows = []
    for r in portal.index.query(sql, params):
        outgoing = r["sender"] == address
        if r["sender"] == ZERO:
            kind, other = "h_issued", ""
        elif r["recipient"] == ZERO:
            kind, other = "h_retired", ""
        elif r["reference"]:
            kind = "h_paid" if outgoing else "h_paid_in"
            other = r["recipient"] if outgoing else r["sender"]
        else:
            kind = "h_sent" if outgoing else "h_received"
            other = r["recipient"] if outgoing else r["sender"]
        rows.append(
            {
                "block": r["block"],
                "tx": r["tx"],
                "kind": kind,
                "counterparty": other,
                "units": -r["units"] if outgoing else r["units"],
                "reference": r["reference"] or "",
                "retirement_id": r["retirement_id"],
            }
        )
    return rows


def history_count(portal: Portal, address: str) -> int:
    return int(
        portal.index.scalar(
            "SELECT (SELECT COUNT(*) FROM transfers WHERE sender = ?) + "
            "(SELECT COUNT(*) FROM transfers WHERE recipient = ? AND sender != ?)",
            (address, address, address),
        )
    )


def block_times(portal: Portal, blocks: set[int]) -> dict[int, int]:
    """Block timestamps, cached in the index's meta table by block number."""
    return portal.index.block_times(blocks)


def certificate_rows(portal: Portal, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = portal.index.query(
        f"""SELECT c.*, m.method, m.capacity_w, m.zone, mem.name AS owner_name
            FROM certificates c LEFT JOIN meters m ON m.meter = c.meter
            LEFT JOIN members mem ON mem.account = m.owner
            WHERE c.id IN ({marks})""",  # noqa: S608 - placeholders only
        ids,
    )
    return {int(r["id"]): dict(r) for r in rows}


# ---------------------------------------------------------------------------- the app


def create_app(portal: Portal) -> FastAPI:
    app = FastAPI(title="ZCX portal", docs_url=None, redoc_url=None)
    view = Renderer()
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/vendor/ethers.umd.min.js")
    def ethers_js() -> FileResponse:
        if not ETHERS_UMD.is_file():
            raise HTTPException(404, "ethers is not installed: run `npm ci`")
        return FileResponse(ETHERS_UMD, media_type="text/javascript")

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        portal.fresh()
        return view.render(request, portal, "home.html")

    @app.get("/go")
    def go(address: str = "") -> RedirectResponse:
        if not is_hex_address(address.strip()):
            return RedirectResponse("/?bad_address=1", status_code=303)
        return RedirectResponse(f"/member/{to_checksum_address(address.strip())}", 303)

    @app.get("/member/{address}", response_class=HTMLResponse)
    def member(request: Request, address: str) -> HTMLResponse:
        address = _checked_address(address)
        portal.fresh()
        holdings = portal.chain.holdings(address, revoked_ids(portal))
        recent = history_rows(portal, address, limit=5)
        times = block_times(portal, {r["block"] for r in recent})
        return view.render(
            request,
            portal,
            "member.html",
            tab="summary",
            address=address,
            name=member_name(portal, address),
            holdings=holdings,
            recent=recent,
            times=times,
            zcv_address=portal.chain.address("ZeroCarbonValue"),
        )

    @app.get("/member/{address}/certificates", response_class=HTMLResponse)
    def member_certificates(request: Request, address: str) -> HTMLResponse:
        address = _checked_address(address)
        portal.fresh()
        page = _page(request)
        total = portal.chain.lot_count(address)
        lots = portal.chain.lots(address, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        certs = certificate_rows(portal, sorted({c for c, _ in lots}))
        return view.render(
            request,
            portal,
            "certificates.html",
            tab="certificates",
            address=address,
            name=member_name(portal, address),
            lots=lots,
            certs=certs,
            page=page,
            pages=max(1, math.ceil(total / PAGE_SIZE)),
        )

    @app.get("/member/{address}/history", response_class=HTMLResponse)
    def member_history(request: Request, address: str) -> HTMLResponse:
        address = _checked_address(address)
        portal.fresh()
        page = _page(request)
        rows = history_rows(portal, address, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        return view.render(
            request,
            portal,
            "history.html",
            tab="history",
            address=address,
            name=member_name(portal, address),
            rows=rows,
            times=block_times(portal, {r["block"] for r in rows}),
            page=page,
            pages=max(1, math.ceil(history_count(portal, address) / PAGE_SIZE)),
        )

    @app.get("/member/{address}/history.csv")
    def member_history_csv(request: Request, address: str) -> Response:
        address = _checked_address(address)
        portal.fresh()
        lang = _lang(request)
        rows = history_rows(portal, address, limit=None)
        times = block_times(portal, {r["block"] for r in rows})
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "time_utc",
                "block",
                "transaction",
                "kind",
                "counterparty",
                "units",
                "zcv",
                "payment_reference",
                "retirement_id",
            ]
        )
        for r in rows:
            moment = datetime.fromtimestamp(times.get(r["block"], 0), UTC).isoformat()
            writer.writerow(
                [
                    moment,
                    r["block"],
                    r["tx"],
                    t(lang, r["kind"]),
                    r["counterparty"],
                    r["units"],
                    format_zcv(r["units"]),
                    r["reference"],
                    r["retirement_id"] or "",
                ]
            )
        filename = f"zcx-history-{address[:10]}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @app.get("/member/{address}/retirements", response_class=HTMLResponse)
    def member_retirements(request: Request, address: str) -> HTMLResponse:
        address = _checked_address(address)
        portal.fresh()
        retirements = [
            {**dict(r), "certificates": json.loads(r["certificates"])}
            for r in portal.index.query(
                "SELECT * FROM retirements WHERE holder = ? ORDER BY id DESC", (address,)
            )
        ]
        statements = portal.reports.statements_of(address)
        due = next((s for s in statements if s["due_jpy"] > 0), None)
        holdings = portal.chain.holdings(address, revoked_ids(portal))
        return view.render(
            request,
            portal,
            "retirements.html",
            tab="retirements",
            address=address,
            name=member_name(portal, address),
            retirements=retirements,
            times=block_times(portal, {r["block"] for r in retirements}),
            statements=statements,
            holdings=holdings,
            operator=portal.chain.operator,
            jpy_per_zcv=portal.reports.jpy_per_zcv,
            due=due,
            due_zcv=coins_for(due["due_jpy"], portal.reports.jpy_per_zcv) if due else "",
            statements_url=portal.statements_url,
        )

    @app.get("/certificate/{certificate_id}", response_class=HTMLResponse)
    def certificate(request: Request, certificate_id: int) -> HTMLResponse:
        portal.fresh()
        record = portal.chain.certificate(certificate_id)
        if record is None:
            raise HTTPException(404, f"no certificate {certificate_id}")
        attrs = certificate_rows(portal, [certificate_id]).get(certificate_id, {})
        trail = [
            dict(r)
            for r in portal.index.query(
                "SELECT * FROM lot_moves WHERE certificate_id = ? ORDER BY pos LIMIT 500",
                (certificate_id,),
            )
        ]
        if attrs and not any(m["sender"] == ZERO for m in trail):
            # An issue is a CertificateIssued (no LotMoved): the trail starts there.
            issue = {"block": attrs["block"], "tx": attrs["tx"], "sender": ZERO}
            trail.insert(0, {**issue, "recipient": attrs["issued_to"], "units": attrs["units"]})
        names = {
            r["account"]: r["name"] for r in portal.index.query("SELECT account, name FROM members")
        }
        return view.render(
            request,
            portal,
            "certificate.html",
            record=record,
            attrs=attrs,
            trail=trail,
            names=names,
            times=block_times(portal, {r["block"] for r in trail}),
        )

    # -- operator

    @app.get("/operator", response_class=HTMLResponse)
    def operator(request: Request) -> HTMLResponse:
        portal.fresh()
        members = portal.index.query(
            "SELECT m.*, (SELECT COUNT(*) FROM meters WHERE owner = m.account) AS meters "
            "FROM members m ORDER BY pos"
        )
        meters = portal.index.query(
            "SELECT mt.*, mem.name AS owner_name FROM meters mt "
            "LEFT JOIN members mem ON mem.account = mt.owner ORDER BY mt.pos"
        )
        return view.render(
            request,
            portal,
            "operator.html",
            tab="members",
            members=members,
            meters=meters,
            members_address=portal.chain.address("MemberRegistry"),
            operator=portal.chain.operator,
        )

    @app.get("/operator/balance", response_class=HTMLResponse)
    def operator_balance(request: Request) -> HTMLResponse:
        portal.fresh()
        chart = portal.reports.balance()
        return view.render(request, portal, "balance.html", tab="balance", chart=chart)

    @app.get("/operator/statements", response_class=HTMLResponse)
    def operator_statements(request: Request) -> HTMLResponse:
        portal.fresh()
        return view.render(
            request,
            portal,
            "statements.html",
            tab="statements",
            statements=portal.reports.all_statements(),
        )

    @app.get("/operator/dr", response_class=HTMLResponse)
    def operator_dr(request: Request) -> HTMLResponse:
        portal.fresh()
        view_ = dr_view(portal)
        grid_zones = [
            r[0] for r in portal.index.query("SELECT DISTINCT zone FROM meters ORDER BY 1")
        ]
        return view.render(
            request,
            portal,
            "dr.html",
            tab="dr",
            dr=view_,
            grid_zones=grid_zones,
            operator=portal.chain.operator,
            names=member_names(portal),
        )

    @app.get("/member/{address}/dr", response_class=HTMLResponse)
    def member_dr(request: Request, address: str) -> HTMLResponse:
        address = _checked_address(address)
        portal.fresh()
        view_ = dr_view(portal)
        zones = {
            r[0] for r in portal.index.query("SELECT zone FROM meters WHERE owner = ?", (address,))
        }
        rows = []
        if view_ is not None:
            for event in sorted(view_.events.values(), key=lambda e: -e.event_id):
                invited = (
                    address in event.participants if event.participants else (event.zone in zones)
                )
                if not invited:
                    continue
                result = view_.results.get(event.event_id)
                mine = (
                    next((m for m in result.members if m.member == address), None)
                    if (result)
                    else None
                )
                rows.append((event, mine))
        return view.render(
            request,
            portal,
            "member_dr.html",
            tab="dr",
            address=address,
            name=member_name(portal, address),
            rows=rows,
            available=view_ is not None,
        )

    # -- previews

    @app.post("/api/preview/{form_name}")
    async def preview(request: Request, form_name: str) -> JSONResponse:
        lang = _lang(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            return JSONResponse({"ok": False, "message": t(lang, "err_form"), "errors": {}}, 400)
        return preview_form(portal, lang, form_name, body)

    return app


def preview_form(portal: Portal, lang: str, form_name: str, body: dict[str, Any]) -> JSONResponse:
    """Checks one form: 422 with a message per field, or 200 with the call to sign."""
    portal.fresh()
    fields = {str(k): str(v) for k, v in body["fields"].items()}
    sender = str(body.get("sender") or "")
    if not is_hex_address(sender):
        return JSONResponse(
            {"ok": False, "message": t(lang, "err_not_connected"), "errors": {}}, 422
        )
    sender = to_checksum_address(sender)
    ctx = forms.FormContext(
        sender=sender,
        operator=portal.chain.operator,
        is_member=lambda a: bool(
            portal.index.query("SELECT 1 FROM members WHERE account = ?", (a,))
        ),
        meter_exists=lambda m: bool(
            portal.index.query("SELECT 1 FROM meters WHERE meter = ?", (m,))
        ),
        zone_exists=lambda z: bool(portal.index.query("SELECT 1 FROM meters WHERE zone = ?", (z,))),
        now=portal.chain.head_time(),
        slot_seconds=int(portal.chain.deployment.config.get("interval_seconds", 1800)),
    )
    if form_name in forms.MEMBER_FORMS:
        ctx.free_units = portal.chain.holdings(sender, revoked_ids(portal)).free_units
        checked = forms.MEMBER_FORMS[form_name](
            fields, ctx, portal.chain.address("ZeroCarbonValue")
        )
    elif form_name == "announce_dr" and portal.chain.dr_address is not None:
        checked = forms.check_announce_dr(fields, ctx, portal.chain.dr_address)
    elif form_name in forms.OPERATOR_FORMS and form_name != "announce_dr":
        checked = forms.OPERATOR_FORMS[form_name](
            fields, ctx, portal.chain.address("MemberRegistry")
        )
    else:
        raise HTTPException(404, f"no form {form_name}")
    if not checked.ok or checked.call is None:
        errors = {
            name: t(lang, key, field=t(lang, f"field_{name}"), **values)
            for name, (key, values) in checked.errors.items()
        }
        return JSONResponse({"ok": False, "message": t(lang, "err_form"), "errors": errors}, 422)
    refused = portal.chain.simulate(sender, checked.call)
    if refused is not None:
        message = t(lang, "err_chain", error=str(refused))
        return JSONResponse({"ok": False, "message": message, "errors": {}}, 422)
    call = checked.call
    return JSONResponse(
        {
            "ok": True,
            "call": {
                "to": call.contract,
                "signature": call.signature,
                "method": call.method,
                "args": call.args,
            },
            "summary": call.summary,
        }
    )
