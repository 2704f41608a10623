"""The portal in a real browser: Debian's Chromium driven by Playwright, against the real portal
process (`zcx portal serve`) and the test Anvil, on loopback.

The wallet is an EIP-1193 provider injected before any page script runs: it answers
eth_requestAccounts/eth_accounts with the chosen test account and forwards everything else
(eth_sendTransaction included) to Anvil's JSON-RPC, which signs for its unlocked accounts. So
every action below is a real transaction the page encoded and the "wallet" sent.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from registry_helpers import claim_hourly

from zcx.deployments import Deployment, save
from zcx.dr import deploy_demand_response
from zcx.eip712 import Reading, sign_quorum
from zcx.ids import meter_id
from zcx.market import deploy_mock_yen
from zcx.statements import ChainReader, verify_pdf

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "img"
INTERVAL = 1800

playwright_sync = pytest.importorskip("playwright.sync_api")

PROVIDER_JS = """
(() => {
  const cfg = %s;
  const listeners = {};
  window.ethereum = {
    isZcxTestWallet: true,
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [cfg.account];
      if (method === "eth_chainId") return cfg.chainId;
      const response = await fetch(cfg.rpc, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: Date.now(), method, params: params || [] }),
      });
      const answer = await response.json();
      if (answer.error) {
        const err = new Error(answer.error.message);
        err.code = answer.error.code;
        throw err;
      }
      return answer.result;
    },
    on(event, fn) { (listeners[event] = listeners[event] || []).push(fn); },
    removeListener() {},
  };
})();
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def claimed(registered, admin, alice, bob, carol, operator, submitter, oracle_keys, chain, epoch):
    """Alice's meter reports 6 x 1.2 kWh, verified by 2 of 3 oracles; she claims 7.2 ZCV."""
    readings = [
        Reading(meter_id("ALICE-PV"), s, s + INTERVAL, 1200, 300, 900, 0)
        for s in range(epoch, epoch + 6 * INTERVAL, INTERVAL)
    ]
    signatures = sign_quorum(
        readings, chain.chain_id, str(registered.registry.address), oracle_keys[:2]
    )
    registered.registry.submitBatch([r.as_tuple() for r in readings], signatures, sender=submitter)
    claim_hourly(registered.exchange, registered.registry, meter_id("ALICE-PV"), sender=alice)
    return registered


@pytest.fixture(scope="module")
def demand_response(claimed, admin, operator):
    """DemandResponse paying in the mock yen token, on the test registry (task D's SDK)."""
    yen = deploy_mock_yen(admin, operator.address)
    return deploy_demand_response(admin, operator, yen, claimed.registry)


@pytest.fixture(scope="module")
def portal_url(claimed, demand_response, operator, chain, tmp_path_factory):
    """The real portal process on a free loopback port, over the test chain."""
    directory = tmp_path_factory.mktemp("portal")
    first = chain.blocks[0]
    record = Deployment(
        chain_id=chain.chain_id,
        network="ethereum:local:foundry",
        deployment_block=0,
        deployment_block_hash=bytes(first.hash).hex(),
        contracts={**claimed.addresses(), "DemandResponse": str(demand_response.address)},
        roles={"operator": str(operator.address)},
    )
    save(record, directory / "deployments")
    port = _free_port()
    command = [
        sys.executable,
        "-c",
        "from zcx.cli import main; main()",
        "portal",
        "serve",
        "--port",
        str(port),
        "--rpc-url",
        chain.provider.uri,
        "--deployments",
        str(directory / "deployments"),
        "--db",
        str(directory / "index.sqlite"),
    ]
    log = (directory / "portal.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((directory / "portal.log").read_text())
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    with playwright_sync.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def open_page(browser, chain, portal_url):
    """A page whose injected wallet is `account`, at `width` px."""
    contexts = []

    def _open(account, path: str, width: int = 1280, lang: str | None = None):
        context = browser.new_context(viewport={"width": width, "height": 900})
        config = {
            "account": str(account),
            "rpc": chain.provider.uri,
            "chainId": hex(chain.chain_id),
        }
        context.add_init_script(PROVIDER_JS % json.dumps(config))
        contexts.append(context)
        page = context.new_page()
        page.goto(portal_url + path + (f"?lang={lang}" if lang else ""))
        return page

    yield _open
    for context in contexts:
        context.close()


def _nonce(chain, account) -> int:
    return int(chain.provider.web3.eth.get_transaction_count(str(account)))


def _wait_done(page, form: str) -> None:
    status = page.locator(f'form[data-form="{form}"] .form-status')
    status.filter(has_text="0x").wait_for(timeout=30_000)
    page.wait_for_function(
        f"document.querySelector('form[data-form=\"{form}\"]').dataset.done !== undefined",
        timeout=30_000,
    )


# ---------------------------------------------------------------------------- member


def test_member_connects_sees_balance_and_retires(open_page, claimed, alice, chain, portal_url):
    page = open_page(alice, "/")
    page.get_by_role("button", name="ウォレットを接続").click()
    page.wait_for_url(f"**/member/{alice.address}")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("#balance-free").inner_text().startswith("7.200")
    assert "JST" in page.locator("main").inner_text()  # local time with its zone
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "portal-member-1280.png"), full_page=True)

    form = page.locator('form[data-form="retire"]')
    form.get_by_label("数量 (ZCV、小数 3 桁まで)").fill("1.5")
    form.get_by_label("受益者名").fill("Sato shop")
    form.get_by_label("理由").fill("Nov 2026 consumption")
    form.get_by_label("消費期間の開始日").fill("2026-11-01")
    form.get_by_label("消費期間の終了日(当日を含む)").fill("2026-11-30")
    form.get_by_role("button", name="償却する").click()
    _wait_done(page, "retire")

    assert int(claimed.zcv.retirementCount()) == 1
    record = claimed.zcv.retirement(1)
    assert (record.holder, record.beneficiary, record.units) == (alice.address, "Sato shop", 1500)
    assert int(claimed.zcv.balanceOf(alice)) == 5700

    page.goto(f"{portal_url}/member/{alice.address}/retirements?lang=en")
    row = page.locator("table").first.locator("tbody tr").first
    assert "Sato shop" in row.inner_text() and "1.500" in row.inner_text()
    link = row.get_by_role("link", name="Open statement")
    assert link.get_attribute("href").endswith("/retirement/1")
    with page.expect_download() as download:
        row.get_by_role("link", name="PDF").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    reader = ChainReader(
        chain.provider.web3,
        str(claimed.zcv.address),
        claimed.zcv.contract_type.model_dump(mode="json", by_alias=True)["abi"],
    )
    verified = verify_pdf(pdf, reader)
    assert verified.ok, verified.mismatches
    link.click()
    assert "Sato shop" in page.locator("body").inner_text()
    # The statement's QR code points to this portal's verification page, built from the chain.
    assert verified.statement is not None
    assert verified.statement.verify_url.startswith(portal_url + "/verify/retirement/")
    page.goto(verified.statement.verify_url)
    assert "Sato shop" in page.locator("body").inner_text()
    page.goto(f"{portal_url}/member/{alice.address}")
    assert page.locator("#balance-free").inner_text().startswith("5.700")
    assert int(claimed.zcv.counters(alice).amortized) == 1500


def test_member_transfers_and_exports_history(open_page, claimed, alice, bob, portal_url):
    page = open_page(alice, f"/member/{alice.address}", lang="en")
    form = page.locator('form[data-form="transfer"]')
    form.get_by_label("Recipient address").fill(str(bob.address))
    form.get_by_label("Amount (ZCV, up to 3 decimals)").fill("0.25")
    form.get_by_role("button", name="Transfer").click()
    _wait_done(page, "transfer")
    assert int(claimed.zcv.balanceOf(bob)) == 250

    page.goto(f"{portal_url}/member/{alice.address}/history")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    kinds = [(r["kind"], int(r["units"])) for r in rows]
    assert kinds == [("Sent", -250), ("Issued", 7200)]
    assert rows[0]["counterparty"] == bob.address and rows[0]["transaction"].startswith("0x")

    page.goto(f"{portal_url}/member/{alice.address}/certificates")
    assert "ALICE-PV" in page.locator("table").inner_text()
    page.get_by_role("link", name="#1").click()
    trail = page.locator("table").inner_text()
    assert "Issued" in trail and "Bob Shoten KK" in trail


def test_member_page_fits_a_phone(open_page, alice):
    page = open_page(alice, f"/member/{alice.address}", width=375)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 375, f"the page scrolls sideways at 375 px ({overflow} px wide)"
    page.screenshot(path=str(SHOTS / "portal-member-375.png"), full_page=True)
    # Keyboard: the first Tab reaches the skip link, the transfer form's fields by label.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.get_by_label("送り先アドレス").focus()
    page.keyboard.type("0x1234")
    page.keyboard.press("Enter")
    assert "0x で始まる 40 桁" in page.locator("#transfer-to-error").inner_text()


# ---------------------------------------------------------------------------- bad input


MEMBER_BAD = {
    "transfer": [
        ("to", "0x1234", "Recipient address: give a 0x-prefixed address of 40 hex digits."),
        ("amount", "1.2345", "Amount (ZCV, up to 3 decimals): ZCV has 3 decimals"),
    ],
    "retire": [
        ("amount", "100000", "more than your free balance of 7.200 ZCV"),
        ("beneficiary", "", "Beneficiary: required."),
        ("from_date", "2026-11-30", None),
        ("to_date", "2026-11-01", "Consumption to (inclusive): must not be before the start date."),
    ],
    "pay": [
        ("to", "0x0000000000000000000000000000000000000000", "zero address cannot receive"),
        ("reference", "", "Statement id (payment reference): required."),
        ("amount", "-1", "Amount (ZCV, up to 3 decimals): not a number"),
    ],
}
OPERATOR_BAD = {
    "register_member": [
        ("account", "not an address", "Member address: give a 0x-prefixed address"),
        ("name", "", "Name: required."),
    ],
    "register_meter": [
        ("meter", "X" * 33, "Meter id: 1 to 32 bytes."),
        ("owner", "0x1234", "Owner address: give a 0x-prefixed address"),
        ("capacity_w", "0", "Capacity (W): a whole number from 1 to"),
        ("zone", "", "Zone: required."),
        ("commissioned", "", "Commissioned on: required."),
    ],
    "deactivate_meter": [("meter", "", "Meter id: required.")],
    "flag_meter": [
        ("meter", "", "Meter id: required."),
        ("flag_reason", "", "Reason for the flag: required."),
    ],
    "announce_dr": [
        ("zone", "", "Zone: required."),
        ("start", "", "Start (Japan time): required."),
        ("slots", "49", "Number of 30-minute slots: a whole number from 1 to 48."),
        ("target_kwh", "0.0001", "Target reduction (kWh): at most 3 decimals (1 Wh)."),
    ],
}


def _fill_bad(page, form_name, cases):
    form = page.locator(f'form[data-form="{form_name}"]')
    for name, value, _ in cases:
        form.locator(f'[name="{name}"]').fill(value)
    form.locator('button[type="submit"]').click()
    for name, _, message in cases:
        if message:
            error = form.locator(f'[data-error-for="{name}"]')
            assert message in error.inner_text(), (form_name, name, error.inner_text())
    assert "nothing was sent" in form.locator(".form-status").inner_text()


def test_bad_input_in_every_form_is_named_and_nothing_is_sent(
    open_page, alice, operator, chain, portal_url
):
    nonces = (_nonce(chain, alice), _nonce(chain, operator))
    head = chain.provider.web3.eth.block_number
    page = open_page(alice, f"/member/{alice.address}", lang="en")
    _fill_bad(page, "transfer", MEMBER_BAD["transfer"])
    _fill_bad(page, "retire", MEMBER_BAD["retire"])
    page.goto(f"{portal_url}/member/{alice.address}/retirements")
    _fill_bad(page, "pay", MEMBER_BAD["pay"])
    page = open_page(operator, "/operator", lang="en")
    for form_name, cases in OPERATOR_BAD.items():
        if form_name == "announce_dr":
            page.goto(f"{portal_url}/operator/dr")
        _fill_bad(page, form_name, cases)
    page.screenshot(path=str(SHOTS / "portal-operator-errors-1280.png"))
    assert (_nonce(chain, alice), _nonce(chain, operator)) == nonces
    assert chain.provider.web3.eth.block_number == head


def test_server_preview_refuses_what_the_browser_would(portal_url, alice, bob, operator, chain):
    """The preview endpoint checks on its own (a script may skip the page's checks) and dry-runs
    the call: a chain refusal comes back as the custom error's sentence, nothing sent."""
    nonce = _nonce(chain, alice)
    bad = httpx.post(
        f"{portal_url}/api/preview/transfer?lang=en",
        json={"sender": str(alice.address), "fields": {"to": "0xnope", "amount": "1e3"}},
    )
    assert bad.status_code == 422
    errors = bad.json()["errors"]
    assert errors["to"].startswith("Recipient address: give a 0x-prefixed address")
    assert "more than your free balance" in errors["amount"]
    refused = httpx.post(
        f"{portal_url}/api/preview/register_member?lang=en",
        json={
            "sender": str(alice.address),
            "fields": {"account": "0x" + "ab" * 20, "name": "Mallory", "kind": "household"},
        },
    )
    assert refused.status_code == 422
    assert "AccessControlUnauthorizedAccount" in refused.json()["message"]
    good = httpx.post(
        f"{portal_url}/api/preview/transfer",
        json={"sender": str(alice.address), "fields": {"to": str(bob.address), "amount": "1"}},
    )
    assert good.status_code == 200 and good.json()["call"]["args"] == [str(bob.address), "1000"]
    assert _nonce(chain, alice) == nonce


# ---------------------------------------------------------------------------- operator


def test_operator_registers_member_and_meter(open_page, claimed, operator, carol, portal_url):
    page = open_page(operator, "/operator", lang="en")
    form = page.locator('form[data-form="register_member"]')
    form.get_by_label("Member address").fill(str(carol.address))
    form.get_by_label("Name").fill("Carol Elementary School")
    form.get_by_label("Member kind").select_option("publicfacility")
    form.get_by_role("button", name="Register member").click()
    _wait_done(page, "register_member")
    assert bool(claimed.members.isMember(carol))

    page.goto(f"{portal_url}/operator")
    assert "Carol Elementary School" in page.locator("#members-table").inner_text()
    form = page.locator('form[data-form="register_meter"]')
    form.get_by_label("Meter id").fill("CAROL-PV")
    form.get_by_label("Owner address").fill(str(carol.address))
    form.get_by_label("Capacity (W)").fill("20000")
    form.get_by_label("Zone").fill("TEPCO-13")
    form.get_by_label("Commissioned on").fill("2026-01-01")
    form.get_by_role("button", name="Register meter").click()
    _wait_done(page, "register_meter")
    meter = claimed.members.meter(meter_id("CAROL-PV"))
    assert meter.spec.owner == carol.address and meter.spec.capacityW == 20_000

    page.goto(f"{portal_url}/operator")
    form = page.locator('form[data-form="flag_meter"]')
    form.get_by_label("Meter id").fill("CAROL-PV")
    form.get_by_label("Reason for the flag").fill("tamper alarm")
    form.get_by_role("button", name="Set flag").click()
    _wait_done(page, "flag_meter")
    assert bool(claimed.members.meter(meter_id("CAROL-PV")).spec.flagged)
    page.goto(f"{portal_url}/operator")
    assert "tamper alarm" in page.locator("#meters-table").inner_text()
    page.screenshot(path=str(SHOTS / "portal-operator-1280.png"), full_page=True)


def test_operator_balance_and_statements_pages(open_page, operator, portal_url):
    page = open_page(operator, "/operator/balance", lang="en")
    assert page.locator("figure.chart svg").count() == 1
    page.goto(f"{portal_url}/operator/statements")
    assert "Alice Tanaka" in page.locator("table").inner_text()
    page.set_viewport_size({"width": 375, "height": 900})
    page.goto(f"{portal_url}/operator/statements")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_unknown_pages_are_not_found(portal_url):
    assert httpx.get(f"{portal_url}/member/0xnot-an-address").status_code == 404
    assert httpx.get(f"{portal_url}/certificate/999").status_code == 404


def test_operator_announces_demand_response_and_members_see_it(
    open_page, demand_response, operator, alice, chain, portal_url
):
    now = chain.pending_timestamp
    start = (now + 2 * 86400) // INTERVAL * INTERVAL
    local = datetime.fromtimestamp(start, ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%dT%H:%M")
    page = open_page(operator, "/operator/dr", lang="en")
    form = page.locator('form[data-form="announce_dr"]')
    form.get_by_label("Zone").fill("NOWHERE-99")
    form.get_by_label("Start (Japan time)").fill(local)
    form.get_by_label("Target reduction (kWh)").fill("12.5")
    form.get_by_role("button", name="Announce event").click()
    error = form.locator('[data-error-for="zone"]')
    error.filter(has_text="no meter is registered in this zone").wait_for(timeout=10_000)
    assert int(demand_response.eventCount()) == 0

    form.get_by_label("Zone").fill("TEPCO-13")
    form.get_by_role("button", name="Announce event").click()
    _wait_done(page, "announce_dr")
    assert int(demand_response.eventCount()) == 1
    event = demand_response.drEvent(1)
    assert (int(event.start), int(event.slots), int(event.targetWh)) == (start, 4, 12_500)
    assert event.zone == "TEPCO-13" and int(event.rewardPerKwh) == 10

    page.goto(f"{portal_url}/operator/dr")
    row = page.locator("#dr-events tbody tr").first.inner_text()
    assert "TEPCO-13" in row and "12.500" in row and "Announced" in row
    assert page.locator("#tz option").all_inner_texts()[0] == "Asia/Tokyo"  # the footer's zones
    page.screenshot(path=str(SHOTS / "portal-operator-dr-1280.png"), full_page=True)
    member = open_page(alice, f"/member/{alice.address}/dr", lang="en")
    mine = member.locator("#dr-events tbody tr").first.inner_text()
    assert "TEPCO-13" in mine and "Measured after the event ends." in mine


def test_member_pays_a_statement(open_page, claimed, alice, operator, portal_url):
    page = open_page(alice, f"/member/{alice.address}/retirements", lang="en")
    form = page.locator('form[data-form="pay"]')
    reference = form.get_by_label("Statement id (payment reference)").input_value()
    assert reference.endswith(alice.address[:10].lower())  # the member's own statement id
    assert form.get_by_label("Recipient address").input_value() == operator.address
    form.get_by_label("Amount (ZCV, up to 3 decimals)").fill("0.5")
    form.get_by_role("button", name="Pay").click()
    _wait_done(page, "pay")
    assert int(claimed.zcv.counters(alice).used) == 500
    page.goto(f"{portal_url}/member/{alice.address}/retirements")
    row = page.locator("table").filter(has_text=reference).locator("tbody tr").first
    assert "0.500" in row.inner_text()  # the statement credits the coins paid with its reference
    page.goto(f"{portal_url}/member/{alice.address}/history")
    assert "Paid" in page.locator("table").inner_text()
