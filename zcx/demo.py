"""The demo: a realistic community from meter to coin on a local chain (`ape run demo`).

Steps: deploy -> start the oracle -> register members, gateways and meters -> simulate the window
-> gateways post their readings over HTTP at accelerated time -> wait until the chain holds them
-> members claim their coins -> households sell coins to a business on the ZCV market (ZcvMarket,
paid in the mock yen JPYT) and pay coins, the business retires coins for its own consumption -> the
operator's 30-minute balance and monthly statements from the chain, one statement posted and paid
on chain -> a terminal summary and reports/demo/ (index.html, PNG charts, CSV tables).

Every process the demo starts is stopped on the way out, Ctrl-C and SIGTERM included: the oracle
(`run_demo`) and Anvil (`local_chain`, used by scripts/demo.py). `run_demo` needs a connected Ape
provider: `local_chain`, an `ape run --network ...` choice, or `ape test`.

Delivery `direct` is a labelled FALLBACK that bypasses the oracle service (see `deliver_direct`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from zcx import deployments
from zcx.claims import claim_args
from zcx.deploy import Contracts, deploy_all, describe
from zcx.domain import payment_reference
from zcx.eip712 import DOMAIN_NAME, DOMAIN_VERSION, READING_FIELDS, Reading
from zcx.ids import meter_id
from zcx.market import (
    MARKET_CONTRACT,
    PAYMENT_TOKEN_CONTRACT,
    MarketClient,
    deploy_market,
    deploy_mock_yen,
    format_kwh_price,
    format_token,
    unit_price_from_kwh,
)
from zcx.operator import balance as balance_mod
from zcx.operator import charts, ledger
from zcx.operator.prices import load_prices, spot_series
from zcx.operator.statements import statement_id, statements
from zcx.report import Report
from zcx.sim.community import SOLAR, MemberKind, MemberSpec, build_community
from zcx.sim.gateway import Gateway, GatewayError, deliver, write_broute_csv, write_csv
from zcx.sim.oracle_process import (
    OracleProcess,
    OracleUnavailable,
    free_port,
    oracle_available,
    provision,
)
from zcx.sim.simulate import Simulation, aligned_window, balance_errors, simulate

log = logging.getLogger(__name__)

DELIVERY_MODES = ("auto", "oracle", "direct")
FUNDING_WEI = 10**18  # 1 ETH of gas money per member that sends transactions
DIRECT_BATCH = 500
MARKET_FEE_BPS = 250
YEN = 10**18  # the devnet's mock yen stablecoin (JPYT) has 18 decimals
BUYER_JPYT = 1_000_000 * YEN
LISTING_PRICES_PER_KWH = ("32", "28", "30", "29")  # JPYT per kWh; the solar-only listing asks most
COMMISSIONED_BEFORE_S = 30 * 86400
JST = dt.timezone(dt.timedelta(hours=9), "JST")


class DemoError(RuntimeError):
    """A demo step failed; the message says which and what to look at."""


@dataclass
class DemoOptions:
    members: int = 60
    days: int = 7
    seed: int = 42
    out_dir: Path = Path("reports/demo")
    # The demo's chain is its own: its record never replaces the one of a devnet in use.
    deployments_dir: Path = Path("reports/demo/deployments")
    prices_path: Path | None = None
    delivery: str = "auto"  # auto: the real oracle if it can run, else direct (labelled)
    speedup: float = 0.0  # simulated seconds per wall second; 0: the window in ~30 s
    post_every: int = 12  # slots per gateway upload (12 = 6 hours)
    gateway_workers: int = 4
    confirm_timeout_s: float = 300.0
    write_csv: bool = True
    work_dir: Path | None = None  # oracle store and log; default: a temporary folder
    network_label: str = "ethereum:local:foundry"

    def __post_init__(self) -> None:
        if self.members < 2:
            raise ValueError("--members: at least 2 (a household and a business)")
        if not 1 <= self.days <= 366:
            raise ValueError("--days: 1 to 366")
        if self.delivery not in DELIVERY_MODES:
            raise ValueError(f"delivery: one of {', '.join(DELIVERY_MODES)}")


@dataclass
class Participant:
    spec: MemberSpec
    account: Any  # Ape account

    @property
    def address(self) -> str:
        return str(self.account.address)


@dataclass
class DemoResult:
    options: DemoOptions
    simulation: Simulation
    delivery: str
    delivery_note: str
    deployment: deployments.Deployment
    participants: list[Participant]
    chain_readings: pd.DataFrame
    members_frame: pd.DataFrame
    certificates: pd.DataFrame
    moves: pd.DataFrame
    payments: pd.DataFrame
    retirements: list[ledger.Retirement]
    balance: pd.DataFrame
    statements: pd.DataFrame
    by_kind: pd.DataFrame
    checks: dict[str, bool]
    figures: dict[str, Path]
    report_path: Path
    rate_units_per_kwh: int
    trades: pd.DataFrame = field(default_factory=pd.DataFrame)
    settlement: pd.DataFrame = field(default_factory=pd.DataFrame)
    demand_response: DemandResponseOutcome | None = None
    timings: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every `finally` runs and child processes are stopped."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - t0, 2)


def chain_now() -> int:
    """Wall-clock time, but never after the chain's head: readings must end <= block.timestamp
    and must not lie in the oracle's future."""
    from ape import chain

    return min(int(time.time()), int(chain.blocks.head.timestamp))


# ---------------------------------------------------------------------------------- chain


TEST_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_binary() -> str:
    local = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "anvil"
    found = str(local) if local.exists() else shutil.which("anvil")
    if not found:
        raise DemoError("anvil not found: run `make setup` (npm package @foundry-rs/anvil)")
    return found


@dataclass
class LocalAnvil:
    """An Anvil child process on a free loopback port, with Ape's test mnemonic.

    Ape's foundry provider always starts Anvil with --steps-tracing, which records every EVM step
    and makes a 1,000-reading batch take a minute instead of a fraction of a second. The demo
    therefore starts its own Anvil and lets Ape's foundry provider connect to it
    (APE_FOUNDRY_HOST); the demo stops it on the way out."""

    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        command = [
            anvil_binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--mnemonic",
            TEST_MNEMONIC,
            "--accounts",
            "10",
            "--balance",
            "10000",
            "--gas-limit",
            "30000000",
            "--hardfork",
            "cancun",
            "--chain-id",
            "31337",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - the project's pinned anvil
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"anvil exited with {self.process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise DemoError(f"anvil did not listen on port {self.port} within {timeout_s}s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # The child leads its own session (start_new_session): signal its whole group, which
        # holds only what it started (npm's anvil wrapper runs the anvil binary as a child).
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(5)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


@contextlib.contextmanager
def local_chain(log_path: Path, keep: bool = False) -> Iterator[str]:
    """Starts Anvil and connects Ape's foundry provider to it; stops both on exit (with `keep`,
    a demo that finished leaves Anvil running: --keep-chain)."""
    from ape import networks

    anvil = LocalAnvil(log_path)
    previous = os.environ.get("APE_FOUNDRY_HOST")
    with _sigterm_as_interrupt():
        try:
            anvil.start()
            os.environ["APE_FOUNDRY_HOST"] = anvil.url
            with networks.parse_network_choice("ethereum:local:foundry"):
                yield anvil.url
            if keep and anvil.process is not None:
                (log_path.parent / "anvil.pid").write_text(f"{anvil.process.pid}\n")
                anvil.process = None  # detached: it leads its own session and keeps running
        finally:
            if previous is None:
                os.environ.pop("APE_FOUNDRY_HOST", None)
            else:
                os.environ["APE_FOUNDRY_HOST"] = previous
            anvil.stop()


def export_accounts(result: DemoResult, rpc_url: str, path: Path) -> Path:
    """Writes the demo members' accounts (devnet keys from the public test mnemonic, never for
    a real network) and the chain's URL, so `zcx` commands can act as them afterwards."""
    import json

    rows = [
        {
            "name": p.spec.name,
            # the CLI's word (`zcx operator register-member --kind`), not the enum's number
            "kind": MemberKind(p.spec.kind).name.lower().replace("_", "-"),
            "meter": p.spec.meter_label,
            "address": p.address,
            "private_key": _hex_key(p.account.private_key),
        }
        for p in result.participants
    ]
    record = {
        "warning": "devnet test keys (public test mnemonic): never use them on a real network",
        "rpc_url": rpc_url,
        "deployments_dir": str(result.options.deployments_dir),
        "operator": "TEST::1",
        "members": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


# ---------------------------------------------------------------------------------- steps


def deploy_contracts(options: DemoOptions) -> tuple[Contracts, deployments.Deployment]:
    from ape import accounts, chain

    test = accounts.test_accounts
    admin, operator, signer = test[0], test[1], test[2]
    contracts, first_block = deploy_all(admin, str(operator.address), [str(signer.address)], 1)
    record = describe(
        contracts,
        first_block,
        options.network_label,
        str(admin.address),
        str(operator.address),
        [str(signer.address)],
        1,
    )
    # The market next to the core, as `ape run deploy` does on a devnet: a mock yen stablecoin
    # the operator can mint, and ZcvMarket with a 2.5 % fee to the operator.
    jpyt = deploy_mock_yen(admin, str(operator.address))
    market = deploy_market(
        admin, contracts.zcv, jpyt, MARKET_FEE_BPS, operator, operator=operator, treasury=operator
    )
    record.contracts[PAYMENT_TOKEN_CONTRACT] = str(jpyt.address)
    record.contracts[MARKET_CONTRACT] = str(market.address)
    deployments.save(record, options.deployments_dir)
    log.info("deployed on chain %s from block %s", chain.chain_id, first_block)
    return contracts, record


def register(
    contracts: Contracts, members: list[MemberSpec], commissioned_at: int, progress: Progress
) -> list[Participant]:
    """Creates an account per member, funds those that will send transactions, and registers
    members and meters through the operator."""
    from ape import accounts

    test = accounts.test_accounts
    admin, operator = test[0], test[1]
    participants = [Participant(spec, test.generate_test_account()) for spec in members]
    task = progress.add_task("register members and meters", total=len(participants))
    for p in participants:
        spec = p.spec
        if spec.pv is not None or spec.kind == MemberKind.BUSINESS:  # they send transactions
            admin.transfer(p.account, FUNDING_WEI)
        contracts.members.registerMember(p.account, spec.name, int(spec.kind), sender=operator)
        contracts.members.registerMeter(
            meter_id(spec.meter_label),
            p.account,
            SOLAR,
            spec.capacity_w,
            spec.zone,
            commissioned_at,
            sender=operator,
        )
        progress.advance(task)
    return participants


def domain_separator(chain_id: int, registry: str) -> bytes:
    """EIP-712 domain separator of the GenerationRegistry (zcx.eip712.domain, hashed)."""
    typehash = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [typehash, keccak(text=DOMAIN_NAME), keccak(text=DOMAIN_VERSION), chain_id, registry],
        )
    )


def fast_batch_digest(readings: list[Reading], separator: bytes) -> bytes:
    """zcx.eip712.batch_digest computed with eth_abi and keccak directly: eth-account's generic
    typed-data encoder needs about 40 ms per reading, this about 0.1 ms (parity is tested)."""
    fields = ",".join(f"{f['type']} {f['name']}" for f in READING_FIELDS)
    reading_type = f"Reading({fields})"
    reading_typehash = keccak(text=reading_type)
    batch_typehash = keccak(text=f"Batch(Reading[] readings){reading_type}")
    types = ["bytes32"] + [f["type"] for f in READING_FIELDS]
    hashes = b"".join(
        keccak(abi_encode(types, [reading_typehash, *r.as_tuple()])) for r in readings
    )
    struct = keccak(abi_encode(["bytes32", "bytes32"], [batch_typehash, keccak(hashes)]))
    return keccak(b"\x19\x01" + separator + struct)


def deliver_direct(
    contracts: Contracts,
    deployment: deployments.Deployment,
    readings: pd.DataFrame,
    progress: Progress,
) -> None:
    """FALLBACK without the oracle service: sign batches with the devnet oracle key (Ape test
    account 2, the deployment's only signer, quorum 1) and submit them from that account."""
    from ape import accounts, chain

    signer = accounts.test_accounts[2]
    key = signer.private_key
    ordered = readings.sort_values(["start", "meter_id"])
    rows = [
        Reading(
            meter_id(r.meter_id),
            int(r.start),
            int(r.end),
            int(r.generated_wh),
            int(r.consumed_wh),
            int(r.sold_wh),
            int(r.purchased_wh),
        )
        for r in ordered.itertuples()
    ]
    task = progress.add_task("submit signed batches (direct)", total=len(rows))
    registry = str(deployment.address("GenerationRegistry"))
    separator = domain_separator(chain.chain_id, registry)
    for i in range(0, len(rows), DIRECT_BATCH):
        batch = rows[i : i + DIRECT_BATCH]
        digest = fast_batch_digest(batch, separator)
        signatures = [bytes(Account.unsafe_sign_hash(digest, key).signature)]
        receipt = contracts.registry.submitBatch(
            [r.as_tuple() for r in batch], signatures, sender=signer
        )
        log.info("direct batch of %d readings: gas %s", len(batch), receipt.gas_used)
        progress.advance(task, len(batch))


def wait_on_chain(
    contracts: Contracts,
    simulation: Simulation,
    timeout_s: float,
    progress: Progress,
    oracle: OracleProcess | None,
    tokens: dict[str, str] | None = None,
) -> dict[str, int]:
    """Waits until every meter's watermark on chain reaches the window's end and, with the
    oracle, until the oracle reports every reading `confirmed`. Returns the oracle's status
    counts (empty without the oracle)."""
    labels = [m.meter_label for m in simulation.members]
    ids = {label: meter_id(label) for label in labels}
    total = simulation.slots * len(labels)
    task = progress.add_task("confirmed on chain", total=total)
    deadline = time.monotonic() + timeout_s
    remaining = dict.fromkeys(labels, simulation.slots)
    while True:
        for label in [x for x, left in remaining.items() if left]:
            last = max(int(contracts.registry.lastEnd(ids[label])), simulation.start)
            remaining[label] = max(0, (simulation.end - last) // 1800)
        progress.update(task, completed=total - sum(remaining.values()))
        pending = sorted(x for x, left in remaining.items() if left)
        if not pending:
            break
        if oracle is not None and oracle.process is not None and oracle.process.poll() is not None:
            raise DemoError(f"the oracle exited ({oracle.process.returncode}):\n{oracle.tail()}")
        if time.monotonic() > deadline:
            detail = ""
            if oracle is not None and tokens:
                statuses = oracle.meter_statuses(pending[0], tokens[pending[0]])
                rejected = [s for s in statuses if s.get("status") == "rejected"]
                detail = f"; oracle reports for {pending[0]}: " + (
                    f"{len(rejected)} rejected, first reason {rejected[0].get('reason')}"
                    if rejected
                    else f"{len(statuses)} readings, none rejected"
                )
                detail += f"; oracle log tail:\n{oracle.tail()}"
            raise DemoError(
                f"{len(pending)} meters not confirmed on chain after {timeout_s:.0f}s{detail}"
            )
        time.sleep(0.5)
    counts: dict[str, int] = {}
    if oracle is None or not tokens:
        return counts
    while True:  # the chain has them; the oracle marks them confirmed once it sees the receipts
        counts = {}
        for label in labels:
            for entry in oracle.meter_statuses(label, tokens[label]):
                state = str(entry.get("status"))
                counts[state] = counts.get(state, 0) + 1
        if counts.get("confirmed", 0) >= total or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def claim_all(contracts: Contracts, participants: list[Participant], progress: Progress) -> int:
    generating = [p for p in participants if p.spec.pv is not None]
    task = progress.add_task("members claim their coins", total=len(generating))
    claims = 0
    for p in generating:
        mid = meter_id(p.spec.meter_label)
        if int(contracts.registry.unclaimedWh(mid)) > 0:
            readings = claim_args(
                contracts.exchange.provider.web3, str(contracts.registry.address), mid
            )[2]
            contracts.exchange.claim(contracts.registry, mid, readings, sender=p.account)
            claims += 1
        progress.advance(task)
    return claims


@dataclass
class CoinActivity:
    business: Participant
    transfers: list[tuple[str, str, int]]  # (from name, to name, units)
    payments: list[tuple[str, str, int]]  # (payer name, statement id, units)
    retirement_id: int
    trades: list[dict[str, Any]] = field(default_factory=list)  # one row per fill


def _pick_lots(lots: list[tuple[int, int]], target: int) -> list[tuple[int, int]]:
    """(certificate id, units) from a wallet's lots, oldest certificate first, up to `target`."""
    held: dict[int, int] = {}
    for certificate_id, units in lots:
        held[certificate_id] = held.get(certificate_id, 0) + units
    picked: list[tuple[int, int]] = []
    for certificate_id in sorted(held):
        if target <= 0 or len(picked) == 8:
            break
        take = min(held[certificate_id], target)
        picked.append((certificate_id, take))
        target -= take
    return picked


def market_trades(
    client: MarketClient,
    sellers: list[Participant],
    business: Participant,
    simulation: Simulation,
) -> list[dict[str, Any]]:
    """Sellers list about 60 % of their coins on the market, pulled from their wallets by the
    market itself (the SDK approves it first; the first listing
    restricted to solar certificates, the second to the window's period); the business buys
    half of the first listing (a partial fill) and all of the others, each within a maximum
    total price (the quote) and a 10-minute deadline. The certificates it receives are the
    ones that were listed (the Bought event names them)."""
    from ape import accounts, chain

    operator = accounts.test_accounts[1]
    client.payment_token.mint(business.account, BUYER_JPYT, sender=operator)
    trades: list[dict[str, Any]] = []
    for i, seller in enumerate(sellers):
        target = int(client.zcv.balanceOf(seller.account)) * 6 // 10
        lots = _pick_lots(client.lots(seller.address), target)
        if not lots:
            continue
        method, period, restriction = 255, (0, 0), "any"
        if i == 0:
            method, restriction = SOLAR, "solar only"
        elif i == 1:
            period, restriction = (simulation.start, simulation.end), "this window only"
        price = unit_price_from_kwh(LISTING_PRICES_PER_KWH[i % len(LISTING_PRICES_PER_KWH)], 18)
        expiry = int(chain.pending_timestamp) + 7 * 86400
        listed = client.list_lots(seller.account, lots, price, expiry, method, period)
        listing_id = int(listed.values["listing_id"])
        units = int(listed.values["units"])
        wanted = units // 2 if i == 0 and units > 1 else units
        cost, _fee = client.quote(listing_id, wanted)
        deadline = int(chain.pending_timestamp) + 600
        bought = client.buy(business.account, listing_id, wanted, cost, deadline)
        view = client.listing(listing_id)
        trades.append(
            {
                "listing": listing_id,
                "seller": seller.spec.name,
                "buyer": business.spec.name,
                "restriction": restriction,
                "price_jpyt_per_kwh": format_kwh_price(price, 18),
                "listed_zcv": units / 1000,
                "bought_zcv": int(bought.values["units"]) / 1000,
                "cost_jpyt": format_token(int(bought.values["cost"]), 18),
                "fee_jpyt": format_token(int(bought.values["fee"]), 18),
                "left_zcv": view.remaining / 1000,
                "status": view.status,
                "listed_certificates": [c for c, _ in lots],
                "bought_certificates": [c for c, _ in bought.values["certificates"]],
            }
        )
    return trades


def coin_activity(
    contracts: Contracts,
    deployment: deployments.Deployment,
    participants: list[Participant],
    simulation: Simulation,
) -> CoinActivity:
    """Households (and a small generator) sell coins to a business on the market; other
    households pay part of their statement to the operator in coins; the business retires what
    it holds for its own consumption over the window, naming itself as the beneficiary."""
    from ape import accounts, project

    operator = accounts.test_accounts[1]
    zcv = contracts.zcv
    businesses = [p for p in participants if p.spec.kind == MemberKind.BUSINESS]
    if not businesses:
        raise DemoError("no business in the community; use --members >= 2")
    business = next((p for p in businesses if p.spec.pv is not None), businesses[0])
    households = [
        p
        for p in participants
        if p.spec.kind == MemberKind.HOUSEHOLD
        and p.spec.pv is not None
        and int(zcv.balanceOf(p.account)) > 0
    ]
    sellers = households[: max(1, (len(households) + 1) // 2)] if households else []
    payers = households[len(sellers) :] or households[:1]
    generator = next(
        (
            p
            for p in participants
            if p.spec.profile == "generator_lv" and int(zcv.balanceOf(p.account)) > 0
        ),
        None,
    )
    client = MarketClient(deployment, project)
    trades = market_trades(
        client, sellers[:3] + ([generator] if generator else []), business, simulation
    )
    month = dt.datetime.fromtimestamp(simulation.end - 1, JST).strftime("%Y-%m")
    payments = []
    for p in payers[:3]:
        units = int(zcv.balanceOf(p.account)) * 3 // 10
        if units > 0:
            statement = statement_id(month, p.address)
            zcv.pay(operator, units, payment_reference(statement), sender=p.account)
            payments.append((p.spec.name, statement, units))
    held = int(zcv.balanceOf(business.account))
    if held == 0:
        raise DemoError(f"{business.spec.name} holds no coins to retire")
    beneficiary = (
        f"{business.spec.name}: electricity consumed at its {business.spec.site.name} site"
    )
    receipt = zcv.retire(
        held,
        beneficiary,
        "Zero-carbon claim for own consumption (Scope 2, market-based)",
        simulation.start,
        simulation.end,
        sender=business.account,
    )
    retired = receipt.decode_logs(zcv.Retired)
    retirement_id = int(retired[0].retirementId) if retired else int(zcv.retirementCount())
    return CoinActivity(business, [], payments, retirement_id, trades)


def settle_bill(
    deployment: deployments.Deployment,
    participants: list[Participant],
    monthly: pd.DataFrame,
) -> pd.DataFrame:
    """The operator posts one member's monthly statement on the market (the largest balance
    due among members that send transactions) and the member pays it in JPYT: the statement
    then reads PaidInToken on chain."""
    from ape import accounts, chain, project

    operator = accounts.test_accounts[1]
    client = MarketClient(deployment, project)
    by_address = {p.address: p for p in participants}
    funded = {
        a
        for a, p in by_address.items()
        if p.spec.pv is not None or p.spec.kind == MemberKind.BUSINESS
    }  # the members `register` gave gas money
    rows = monthly[monthly["account"].isin(funded)]
    if rows.empty:
        return pd.DataFrame()
    row = rows.sort_values(["due_jpy", "charged_to_member_jpy"], ascending=False).iloc[0]
    due_jpy = int(row["due_jpy"]) if row["due_jpy"] > 0 else int(row["charged_to_member_jpy"])
    amount = max(1, due_jpy) * YEN
    member = by_address[str(row["account"])]
    sid = str(row["statement_id"])
    due_at = int(chain.pending_timestamp) + 30 * 86400
    client.post_statement(operator, sid, member.address, amount, due_at)
    client.payment_token.mint(member.account, amount, sender=operator)
    paid = client.pay_statement(member.account, sid)
    view = client.statement(sid)
    return pd.DataFrame(
        [
            {
                "statement_id": sid,
                "member": member.spec.name,
                "amount_due_jpyt": format_token(view.amount_due, 18),
                "paid_in": "JPYT (payment token)",
                "status": view.status,
                "tx": paid.txn_hash,
            }
        ]
    )


def _hex_key(key: Any) -> str:
    raw = (
        bytes(key)
        if isinstance(key, bytes | bytearray)
        else bytes.fromhex(str(key).removeprefix("0x"))
    )
    return "0x" + raw.hex()


# ---------------------------------------------------------------------------------- demand response

DR_SLOTS = 4  # 17:00-19:00 JST, the evening peak
DR_HOUR_JST = 17
DR_RATE_JPYT_PER_KWH = 30
DR_CUT = 0.3  # responding members consume 30 % less in the event's slots (zcx.sim.curtail)


@dataclass
class DemandResponseOutcome:
    """The demo's demand-response event: per-member figures, or why it did not run."""

    note: str
    results: pd.DataFrame = field(default_factory=pd.DataFrame)
    checks: dict[str, bool] = field(default_factory=dict)


def _dr_event_day(simulation: Simulation, now: int) -> dt.date | None:
    """The next weekday evening peak after `now`, when it has >= 5 earlier weekday peaks from the
    window's start on (ERAB's 5 like days); None when the window is too short."""
    from zcx.dr import CANDIDATE_DAYS, WEEKDAY, day_type

    def peak(day: dt.date) -> int:
        return int(dt.datetime(day.year, day.month, day.day, DR_HOUR_JST, tzinfo=JST).timestamp())

    day = dt.datetime.fromtimestamp(now, JST).date()
    while peak(day) <= now + 3600 or day_type(day) != WEEKDAY:  # the next weekday peak
        day += dt.timedelta(days=1)
    like = [
        day - dt.timedelta(days=k)
        for k in range(1, 31)
        if day_type(day - dt.timedelta(days=k)) == WEEKDAY
        and peak(day - dt.timedelta(days=k)) >= simulation.start
    ]
    return day if len(like) >= CANDIDATE_DAYS else None


def demand_response_phase(
    contracts: Contracts,
    deployment: deployments.Deployment,
    participants: list[Participant],
    simulation: Simulation,
    options: DemoOptions,
    console: Console,
) -> DemandResponseOutcome:
    """One demand-response event after the window: announce it on chain before its readings
    exist, simulate the days up to its end with half the zone's members cutting load in its
    slots, move the devnet's clock past its end, record those readings (signed with the devnet
    oracle key: the oracle service has stopped by now), measure High 4 of 5 from the chain, pay
    every reward in one transaction, and check the payments against a fresh recomputation."""
    from ape import accounts, chain, project

    from zcx.dr import DR_CONTRACT, DemandResponseClient, deploy_demand_response
    from zcx.sim.curtail import curtail

    community = [p.spec for p in participants]
    now = chain_now()
    day = _dr_event_day(simulation, now)
    if day is None:
        return DemandResponseOutcome(
            f"no demand-response event: --days {options.days} gives fewer than 5 earlier "
            "weekday evening peaks (ERAB High 4 of 5 needs 5 like days; use --days 7)"
        )
    admin, operator = accounts.test_accounts[0], accounts.test_accounts[1]
    if DR_CONTRACT not in deployment.contracts:
        jpyt = deployment.address(PAYMENT_TOKEN_CONTRACT)
        dr = deploy_demand_response(admin, operator, jpyt, contracts.registry)
        deployment.contracts[DR_CONTRACT] = str(dr.address)
        deployments.save(deployment, options.deployments_dir)
    client = DemandResponseClient(deployment, project)
    zone = max(
        sorted({m.zone for m in community}), key=lambda z: sum(m.zone == z for m in community)
    )
    start = int(dt.datetime(day.year, day.month, day.day, DR_HOUR_JST, tzinfo=JST).timestamp())
    rate = DR_RATE_JPYT_PER_KWH * YEN
    announced = client.announce(operator, zone, start, DR_SLOTS, 5_000, rate)
    event_id = int(announced.values["event_id"])
    end = start + DR_SLOTS * 1800
    window_end = simulation.start + simulation.slots * 1800
    extra = simulate(community, window_end, (end - window_end) // 1800, options.seed + 1)
    in_zone = [m for m in community if m.zone == zone]
    responders = [m.meter_label for m in in_zone[::2]]  # every second member answers
    readings = curtail(extra.readings, responders, range(start, end, 1800), DR_CUT)
    chain.pending_timestamp = max(end + 60, int(chain.pending_timestamp))
    chain.mine()
    with _progress(console) as progress:
        deliver_direct(contracts, deployment, readings, progress)
    results = client.results(event_id)
    jpyt_token = project.MockYenToken.at(deployment.address(PAYMENT_TOKEN_CONTRACT))
    jpyt_token.mint(operator, results.total_reward, sender=operator)
    settled = client.settle(operator, results)
    receipt = chain.provider.get_receipt(settled.txn_hash)
    paid = {
        str(e.member): (int(e.reducedWh), int(e.amount))
        for e in receipt.events
        if e.event_name == "DemandResponseRewarded"
    }
    fresh = client.results(event_id)  # recomputed from the chain after the payment
    expected = {m.member: (m.reduced_wh, m.reward) for m in fresh.members if m.status == "measured"}
    spec_of = {p.address: p.spec for p in participants}
    table = fresh.table()
    table.insert(1, "name", [spec_of[a].name if a in spec_of else "" for a in table["member"]])
    table.insert(
        2,
        "responded",
        [a in spec_of and spec_of[a].meter_label in responders for a in table["member"]],
    )
    return DemandResponseOutcome(
        f"event {event_id} in {zone}, {day} {DR_HOUR_JST}:00-{DR_HOUR_JST + 2}:00 JST, "
        f"{DR_RATE_JPYT_PER_KWH} JPYT/kWh: announced before its readings existed; "
        f"{len(responders)} of {len(in_zone)} members in the zone cut load by "
        f"{DR_CUT:.0%}; {fresh.total_reduced_wh:,} Wh reduced, "
        f"{settled.values['total_paid'] / YEN:,.3f} JPYT paid to {len(paid)} members in one "
        f"transaction (block {settled.block})",
        table,
        {"demand response: rewards paid = High 4 of 5 recomputed from the chain": paid == expected},
    )


# ---------------------------------------------------------------------------------- checks


def verify(
    contracts: Contracts,
    simulation: Simulation,
    chain_readings: pd.DataFrame,
    certificates: pd.DataFrame,
    rate: int,
) -> dict[str, bool]:
    """The demo's own end-to-end checks (the test asserts them too)."""
    sim = simulation.readings
    keys = ["meter_id", "start", "end", "generated_wh", "consumed_wh", "sold_wh", "purchased_wh"]
    merged = sim[keys].merge(chain_readings[keys], on=keys, how="outer", indicator=True)
    issued_ok = True
    for member in simulation.members:
        mid = meter_id(member.meter_label)
        claimed = int(contracts.registry.claimedWh(mid))
        issued = int(contracts.exchange.meterClaims(contracts.members, mid).issuedUnits)
        if issued != claimed * rate // 1000:
            issued_ok = False
    chain_generation = int(chain_readings["generated_wh"].sum())
    zcv = contracts.zcv
    return {
        "every simulated reading balances (gen + bought + discharge = cons + sold + charge)": (
            balance_errors(sim).empty
        ),
        "the chain holds exactly the simulated readings": (
            bool((merged["_merge"] == "both").all()) and len(chain_readings) == len(sim)
        ),
        "coins issued per meter = claimed verified generation x rate": issued_ok,
        "coins issued in total = verified generation x rate (all claimed)": (
            int(certificates["units"].sum()) == chain_generation * rate // 1000
        ),
        "supply + retired = issued (ZCV)": (
            int(zcv.totalSupply()) + int(zcv.totalRetired()) == int(zcv.totalIssued())
        ),
    }


# ---------------------------------------------------------------------------------- report


def kind_table(
    chain_readings: pd.DataFrame,
    members_frame: pd.DataFrame,
    certificates: pd.DataFrame,
    retired_by: dict[str, int],
    contracts: Contracts,
) -> pd.DataFrame:
    meters = members_frame.dropna(subset=["meter_id"])
    frame = chain_readings.merge(meters[["meter_id", "kind"]], on="meter_id", how="left")
    sums = frame.groupby("kind")[["generated_wh", "consumed_wh", "sold_wh", "purchased_wh"]].sum()
    owner_kind = members_frame.drop_duplicates("account").set_index("account")["kind"]
    issued = (
        certificates.assign(kind=certificates["to"].map(owner_kind)).groupby("kind")["units"].sum()
    )
    accounts_by_kind = (
        members_frame.drop_duplicates("account").groupby("kind")["account"].apply(list)
    )
    rows = []
    for kind in ledger.KIND_NAMES:
        if kind not in accounts_by_kind.index:
            continue
        held = sum(int(contracts.zcv.balanceOf(a)) for a in accounts_by_kind[kind])
        retired = sum(retired_by.get(a, 0) for a in accounts_by_kind[kind])
        s = sums.loc[kind] if kind in sums.index else pd.Series(0, index=sums.columns)
        rows.append(
            {
                "kind": kind,
                "members": len(accounts_by_kind[kind]),
                "generated_kwh": round(s["generated_wh"] / 1000, 1),
                "consumed_kwh": round(s["consumed_wh"] / 1000, 1),
                "sold_kwh": round(s["sold_wh"] / 1000, 1),
                "purchased_kwh": round(s["purchased_wh"] / 1000, 1),
                "zcv_issued": round(int(issued.get(kind, 0)) / 1000, 3),
                "zcv_held": round(held / 1000, 3),
                "zcv_retired": round(retired / 1000, 3),
            }
        )
    table = pd.DataFrame(rows)
    total = {"kind": "total", **{c: table[c].sum() for c in table.columns if c != "kind"}}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def daily_balance(frame: pd.DataFrame) -> pd.DataFrame:
    day = frame["slot_local"].str[:10]
    grouped = frame.groupby(day).agg(
        supply_kwh=("supply_wh", "sum"),
        demand_kwh=("demand_wh", "sum"),
        wholesale_purchase_kwh=("wholesale_purchase_wh", "sum"),
        wholesale_sale_kwh=("wholesale_sale_wh", "sum"),
        imbalance_abs_kwh=("imbalance_wh", lambda s: s.abs().sum()),
        wholesale_cost_jpy=("wholesale_cost_jpy", "sum"),
        imbalance_cost_jpy=("imbalance_cost_jpy", "sum"),
        mean_spot=("spot_jpy_per_kwh", "mean"),
    )
    for column in grouped.columns:
        if column.endswith("_kwh"):
            grouped[column] = (grouped[column] / 1000).round(1)
        else:
            grouped[column] = grouped[column].round(1)
    return grouped.reset_index(names="date")


def build_report(
    result_parts: dict[str, Any], options: DemoOptions
) -> tuple[Path, dict[str, Path]]:
    r = result_parts
    report = Report("ZCX demo: a community from meter to coin", options.out_dir, zone=JST)
    sim: Simulation = r["simulation"]
    start = dt.datetime.fromtimestamp(sim.start, JST)
    end = dt.datetime.fromtimestamp(sim.end, JST)
    report.add_text(
        f"{len(sim.members)} members, {len(sim.readings):,} readings of 30 minutes from "
        f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} JST, seed {sim.seed}. "
        f"Delivery: {r['delivery_note']} Chain id {r['deployment'].chain_id}, contracts from block "
        f"{r['deployment'].deployment_block}. Every figure below is read back from the chain's "
        "events (ReadingRecorded, CertificateIssued, LotMoved, Paid, Retired).",
        "What ran",
    )
    report.add_checks(r["checks"], "Checks")
    report.add_table("members_by_kind", r["by_kind"], "Energy and coins per member kind")
    figures: dict[str, Path] = {}
    meter_kinds = r["members_frame"].dropna(subset=["meter_id"]).set_index("meter_id")["kind"]
    owner_kinds = r["members_frame"].drop_duplicates("account").set_index("account")["kind"]
    figures["generation_vs_consumption"] = report.add_figure(
        "generation_vs_consumption",
        charts.generation_vs_consumption(r["chain_readings"], meter_kinds),
        "Generation against consumption over the window",
    )
    figures["coins_by_kind"] = report.add_figure(
        "coins_by_kind",
        charts.coins_by_kind(r["certificates"], owner_kinds),
        "Coins issued per member kind",
    )
    figures["balance"] = report.add_figure(
        "balance",
        charts.balance_chart(r["balance"]),
        "The 30-minute balance and wholesale purchases",
    )
    summary = balance_mod.summary(r["balance"])
    report.add_table(
        "balance_summary",
        pd.DataFrame([{k: round(v, 1) for k, v in summary.items()}]),
        "Balance totals over the window (kWh, JPY)",
    )
    report.add_table("balance_daily", daily_balance(r["balance"]), "The balance per day")
    report.add_table("balance_30min", r["balance"], "The balance slot by slot", max_rows=96)
    retirement = r["retirement"]
    if retirement is not None:
        figures["certificate_trail"] = report.add_figure(
            "certificate_trail",
            charts.certificate_trail(retirement, r["trail"], r["names"].get(retirement.holder, "")),
            f"The certificate trail of retirement #{retirement.retirement_id}",
        )
        report.add_table(
            "retirement_trail",
            r["trail"],
            "Certificates consumed by the retirement, their meters, periods and hops",
        )
    report.add_table("transfers_and_payments", r["activity"], "Coin transfers and payments")
    if len(r["trades"]):
        report.add_table(
            "market_trades",
            r["trades"],
            "Trades on the ZCV market (ZcvMarket, paid in the mock yen JPYT, 2.5 % fee): "
            "listing, restriction, partial fill, and the certificates that moved",
        )
    if len(r["settlement"]):
        report.add_table(
            "settled_bill", r["settlement"], "A monthly statement posted and paid on chain"
        )
    report.add_table(
        "statements", r["statements"], "Monthly statements per member (from PQ3/PQ4 on chain)"
    )
    demand: DemandResponseOutcome = r["demand_response"]
    report.add_text(demand.note, "Demand response (ERAB High 4 of 5)")
    if len(demand.results):
        report.add_table(
            "demand_response",
            demand.results,
            "Each member's like days, baseline, actual PQ4 and reward (docs/demand-response.md)",
        )
    report.add_text(
        f"Contract prices from {r['prices'].source}; wholesale prices: "
        f"{r['prices'].wholesale_source}. The operator plans each slot's wholesale position from "
        "the same slot on the latest earlier day of the same type (working day or weekend/holiday)"
        "; on the first day there is no history and the plan is taken as exact.",
        "Prices and planning",
    )
    if options.write_csv:
        report.add_links(
            "Gateway files",
            {
                "gateway_readings.csv (each reading as posted)": "gateway_readings.csv",
                "gateway_broute.csv (the same as B-route cumulative registers)": (
                    "gateway_broute.csv"
                ),
            },
            "For `zcx oracle import-csv` and the audit's cross-check (`zcx audit run --csv`).",
        )
    path = report.write()
    return path, figures


SUMMARY_HEADERS = {
    "kind": "kind",
    "members": "n",
    "generated_kwh": "gen kWh",
    "consumed_kwh": "cons kWh",
    "sold_kwh": "sold kWh",
    "purchased_kwh": "bought kWh",
    "zcv_issued": "ZCV issued",
    "zcv_held": "ZCV held",
    "zcv_retired": "ZCV retired",
}


def summary_table(by_kind: pd.DataFrame, balance_summary: dict[str, float], delivery: str) -> Table:
    table = Table(title=f"ZCX demo summary (delivery: {delivery})")
    for column in by_kind.columns:
        table.add_column(
            SUMMARY_HEADERS.get(column, column), justify="left" if column == "kind" else "right"
        )
    for row in by_kind.itertuples(index=False):
        table.add_row(
            *[
                str(v).replace("public_facility", "public")
                if c == "kind"
                else f"{v:,.0f}"
                if isinstance(v, float)
                else str(v)
                for c, v in zip(by_kind.columns, row, strict=True)
            ]
        )
    table.caption = (
        f"30-min balance: wholesale purchase {balance_summary['wholesale_purchase_kwh']:,.0f} kWh, "
        f"sale {balance_summary['wholesale_sale_kwh']:,.0f} kWh (net "
        f"{balance_summary['wholesale_cost_jpy']:,.0f} JPY); imbalance shortage "
        f"{balance_summary['imbalance_shortage_kwh']:,.0f} kWh, surplus "
        f"{balance_summary['imbalance_surplus_kwh']:,.0f} kWh"
    )
    return table


def dr_table(results: pd.DataFrame) -> Table:
    table = Table(title="Demand response: High 4 of 5 baseline vs actual PQ4 in the event (Wh)")
    columns = ("name", "responded", "status", "baseline_wh", "actual_wh", "reduced_wh", "reward")
    for key in columns:
        table.add_column(key, justify="left" if key in ("name", "status") else "right")
    for row in results.to_dict("records"):
        reward = f"{row['reward'] / YEN:,.3f} JPYT"
        table.add_row(*[reward if k == "reward" else str(row[k]) for k in columns])
    return table


def trades_table(trades: pd.DataFrame) -> Table:
    table = Table(title="Trades on the ZCV market (JPYT)")
    columns = [
        ("listing", "#"),
        ("seller", "seller"),
        ("buyer", "buyer"),
        ("restriction", "restriction"),
        ("price_jpyt_per_kwh", "JPYT/kWh"),
        ("listed_zcv", "listed ZCV"),
        ("bought_zcv", "bought ZCV"),
        ("cost_jpyt", "cost JPYT"),
        ("status", "status"),
    ]
    for key, title in columns:
        table.add_column(title, justify="left" if key in ("seller", "buyer") else "right")
    for row in trades.to_dict("records"):
        table.add_row(*[str(row[key]) for key, _ in columns])
    return table


# ---------------------------------------------------------------------------------- main


def run_demo(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """Runs every step on the connected chain. Raises DemoError when a step fails."""
    if console is None:
        # Keep the summary table readable in logs and CI, where rich assumes 80 columns.
        console = Console() if sys.stdout.isatty() else Console(width=120)
    with _sigterm_as_interrupt(), contextlib.ExitStack() as stack:
        work_dir = options.work_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="zcx-demo-"))
        )
        return _run(options, console, stack, work_dir)


def _run(
    options: DemoOptions, console: Console, stack: contextlib.ExitStack, work_dir: Path
) -> DemoResult:
    from ape import accounts, chain

    timer = _Timer()
    prices = load_prices(options.prices_path)
    with timer.step("deploy"):
        contracts, deployment = deploy_contracts(options)
    console.print(
        f"[green]Deployed[/] on chain {chain.chain_id}: "
        + ", ".join(f"{k} {v}" for k, v in deployment.contracts.items())
    )

    community = build_community(options.members, options.seed)
    now = chain_now()
    start, slots = aligned_window(now, options.days)
    with timer.step("simulate"):
        simulation = simulate(community, start, slots, options.seed)
    errors = balance_errors(simulation.readings)
    if not errors.empty:
        raise DemoError(f"simulator bug: {len(errors)} readings do not balance")
    if options.write_csv:
        csv_path = write_csv(simulation.readings, options.out_dir / "gateway_readings.csv")
        broute = write_broute_csv(
            simulation.readings, options.out_dir / "gateway_broute.csv", seed=options.seed
        )
        console.print(f"Gateway CSVs for `python -m oracle import-csv`: {csv_path}, {broute}")

    delivery = options.delivery
    if delivery == "auto":
        delivery = "oracle" if oracle_available() else "direct"
    oracle: OracleProcess | None = None
    tokens: dict[str, str] = {}

    with _progress(console) as progress:
        with timer.step("register"):
            participants = register(contracts, community, start - COMMISSIONED_BEFORE_S, progress)
        if delivery == "oracle":
            db_path = work_dir / "oracle.db"
            wanted = {p.spec.gateway: [p.spec.meter_label] for p in participants}
            gateways: list[Gateway] = provision(db_path, wanted)
            tokens = {meter: gw.token for gw in gateways for meter in gw.meters}
            oracle = OracleProcess(
                rpc_url=str(chain.provider.uri),
                db_path=db_path,
                deployments_dir=options.deployments_dir,
                dev_private_key=_hex_key(accounts.test_accounts[2].private_key),
                log_path=work_dir / "oracle.log",
            )
            try:
                with timer.step("oracle start"):
                    oracle.start()
            except OracleUnavailable as exc:
                if options.delivery == "oracle":
                    raise DemoError(str(exc)) from exc
                log.warning("the oracle did not start; falling back to direct submission")
                console.print(f"[yellow]The oracle did not start:[/]\n{oracle.tail()}")
                oracle = None
                delivery = "direct"
            else:
                stack.callback(oracle.stop)
                console.print(f"Oracle serving on {oracle.base_url} with {len(gateways)} gateways")
        if delivery == "oracle":
            assert oracle is not None
            window = simulation.slots * 1800
            speedup = options.speedup or window / 30.0
            steps = -(-simulation.slots // options.post_every)
            task = progress.add_task(f"gateways post readings ({speedup:,.0f}x time)", total=steps)
            with timer.step("deliver"):
                try:
                    outcome = deliver(
                        simulation.readings,
                        gateways,
                        oracle.base_url,
                        speedup,
                        post_every=options.post_every,
                        workers=options.gateway_workers,
                        on_step=lambda n, total: progress.update(task, completed=n),
                    )
                except GatewayError as exc:
                    raise DemoError(f"{exc}\noracle log tail:\n{oracle.tail()}") from exc
            note = (
                f"the real oracle service over HTTP ({outcome.requests} POSTs by "
                f"{len(gateways)} gateways, {outcome.accepted} readings accepted, "
                f"{outcome.duplicates} duplicates, {outcome.retries} retries), which signed "
                "and submitted them in batches."
            )
        else:
            console.print(
                "[bold yellow]FALLBACK: the oracle service is not used; the demo signs "
                "batches itself with the devnet oracle key (Ape test account 2).[/]"
            )
            with timer.step("deliver"):
                deliver_direct(contracts, deployment, simulation.readings, progress)
            note = (
                "FALLBACK, not the oracle service: the demo signed batches with the devnet "
                "oracle key (test account 2, quorum 1) and submitted them itself."
            )
        with timer.step("confirm"):
            oracle_states = wait_on_chain(
                contracts, simulation, options.confirm_timeout_s, progress, oracle, tokens
            )
        if oracle is not None:
            note += (
                f" The oracle reports {oracle_states.get('confirmed', 0)} of "
                f"{len(simulation.readings)} readings confirmed on chain."
            )
        if oracle is not None:
            oracle.stop()
        with timer.step("claim"):
            claim_all(contracts, participants, progress)

    with timer.step("coins"):
        activity = coin_activity(contracts, deployment, participants, simulation)

    with timer.step("operator reports"):
        w3 = chain.provider.web3
        head = int(chain.blocks.height)
        chain_readings = ledger.readings(w3, deployment, head)
        members_frame = ledger.members(w3, deployment, head)
        certificates = ledger.certificates(w3, deployment, head)
        moves = ledger.lot_moves(w3, deployment, head)
        payments = ledger.payments(w3, deployment, head)
        retirements = ledger.retirements(w3, deployment, head)
        spot = spot_series(prices, simulation.start, simulation.slots, options.seed)
        balance = balance_mod.balance(
            chain_readings, spot, prices, simulation.start, simulation.slots
        )
        monthly = statements(
            chain_readings,
            members_frame,
            prices,
            payments,
            operator=str(accounts.test_accounts[1].address),
        )
        settlement = settle_bill(deployment, participants, monthly)
        rate = int(contracts.exchange.rateAt(int(chain.blocks.head.timestamp)))
        checks = verify(contracts, simulation, chain_readings, certificates, rate)
        retired_by: dict[str, int] = {}
        for ret in retirements:
            retired_by[ret.holder] = retired_by.get(ret.holder, 0) + ret.units
        by_kind = kind_table(chain_readings, members_frame, certificates, retired_by, contracts)
        names = members_frame.drop_duplicates("account").set_index("account")["name"].to_dict()
        names[str(accounts.test_accounts[1].address)] = "operator"
        if MARKET_CONTRACT in deployment.contracts:
            # Listed units sit at the market itself: it appears as a hop in certificate trails.
            names[str(deployment.contracts[MARKET_CONTRACT])] = "ZCV market"
        meter_names = (
            members_frame.dropna(subset=["meter_id"]).set_index("meter_id")["name"].to_dict()
        )
        retirement = next(
            (x for x in retirements if x.retirement_id == activity.retirement_id), None
        )
        trail = (
            charts.trail_table(retirement, certificates, moves, names, meter_names)
            if retirement
            else pd.DataFrame()
        )
        trades = pd.DataFrame(activity.trades)
        activity_frame = pd.DataFrame(
            [
                {"action": "transfer", "from": a, "to": b, "zcv": u / 1000, "reference": ""}
                for a, b, u in activity.transfers
            ]
            + [
                {
                    "action": "market buy",
                    "from": t["seller"],
                    "to": t["buyer"],
                    "zcv": t["bought_zcv"],
                    "reference": f"listing #{t['listing']}",
                }
                for t in activity.trades
            ]
            + [
                {"action": "pay", "from": a, "to": "operator", "zcv": u / 1000, "reference": s}
                for a, s, u in activity.payments
            ]
            + (
                [
                    {
                        "action": "retire",
                        "from": activity.business.spec.name,
                        "to": retirement.beneficiary,
                        "zcv": retirement.units / 1000,
                        "reference": f"retirement #{retirement.retirement_id}",
                    }
                ]
                if retirement
                else []
            )
        )

    with timer.step("demand response"):
        demand = demand_response_phase(
            contracts, deployment, participants, simulation, options, console
        )
    checks.update(demand.checks)

    with timer.step("report"):
        report_path, figures = build_report(
            {
                "simulation": simulation,
                "delivery_note": note,
                "deployment": deployment,
                "checks": checks,
                "by_kind": by_kind,
                "members_frame": members_frame,
                "chain_readings": chain_readings,
                "certificates": certificates,
                "balance": balance,
                "retirement": retirement,
                "trail": trail,
                "names": names,
                "activity": activity_frame,
                "statements": monthly,
                "prices": prices,
                "trades": trades,
                "settlement": settlement,
                "demand_response": demand,
            },
            options,
        )

    console.print(summary_table(by_kind, balance_mod.summary(balance), delivery))
    if len(trades):
        console.print(trades_table(trades))
    for bill in settlement.itertuples():
        console.print(
            f"Statement {bill.statement_id} of {bill.member}: {bill.amount_due_jpyt} JPYT, "
            f"paid on chain ({bill.status})"
        )
    console.print(f"Demand response: {demand.note}")
    if len(demand.results):
        console.print(dr_table(demand.results))
    for name, ok in checks.items():
        console.print(f"  {'[green]PASS[/]' if ok else '[red]FAIL[/]'} {name}")
    console.print(f"Report: [bold]{report_path}[/]  (timings: {timer.timings})")
    return DemoResult(
        options=options,
        simulation=simulation,
        delivery=delivery,
        delivery_note=note,
        deployment=deployment,
        participants=participants,
        chain_readings=chain_readings,
        members_frame=members_frame,
        certificates=certificates,
        moves=moves,
        payments=payments,
        retirements=retirements,
        balance=balance,
        statements=monthly,
        by_kind=by_kind,
        checks=checks,
        figures=figures,
        report_path=report_path,
        rate_units_per_kwh=rate,
        trades=trades,
        settlement=settlement,
        demand_response=demand,
        timings=timer.timings,
    )


__all__ = ["DemoError", "DemoOptions", "DemoResult", "run_demo"]
