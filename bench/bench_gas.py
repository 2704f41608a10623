"""Gas: readings per batch, the naive one-reading-per-tx baseline, ZCV vs ERC-20 transfers,
claim and retire, all measured from real receipts on a fresh Anvil started by Ape.

Every figure is a receipt's `gas_used` (so it includes the 21,000 base and the calldata), taken
after a warm-up that puts the touched accounts and meters in the steady state the note names.
Scenarios that change ZCV state run inside an Anvil snapshot, so each starts from the same state.
A figure is returned only after the receipt's events prove the scenario did what it says
(readings accepted, lots moved); anything else raises.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BENCH_CONTRACTS = ROOT / "bench" / "contracts"
CACHE_DIR = ROOT / "bench" / "out"
OZ_REMAPPING = "@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"
NETWORK = "ethereum:local:foundry"

INTERVAL = 1800
READINGS_PER_DAY = 48
# The registry keeps one bit per 30-minute slot, 256 slots per storage word. The epoch starts a
# word, so every measured slot (< 256) shares its meter's word with the warm-up reading: the
# figures are the steady state, not the day of the date they run on. A meter's first reading in
# a new word pays about 17,100 gas more once per 256 slots (about 67 gas/reading amortized).
WORD_SPAN = 256 * INTERVAL
BATCH_SIZES = (1, 10, 100, 500)
SIGNERS = 3
QUORUM = 2
BATCH_100_TARGET = 8_000
ZCV_VS_ERC20_TARGET = 1.4
ZCV_VS_ERC1155_TARGET = 1.2
DUST_TARGET = 1.1
DUST_TRANSFERS = 1_000
DUST_CERTIFICATES = 4

# A rooftop-PV household's day in 48 intervals: slots 12..35 of each day are daytime with PV
# surplus (1.2 kWh generated, 0.4 used on site, 0.8 exported), the others night-time import
# (0.3 kWh used, all bought). 1,200 Wh is within a 5 kW meter's 30-minute limit (2,500 Wh x 1.1
# margin), so no reading is rejected. Calldata and storage costs depend on which fields are zero,
# so the mix matters for the figures.
DAY_SLOTS = range(12, 36)
DAY_WH = (1_200, 400, 800, 0)  # generated, consumed, sold, purchased
NIGHT_WH = (0, 300, 0, 300)
GEN_WH = DAY_WH[0]
FIRST_DAY_SLOT = DAY_SLOTS.start  # where ZCV scenarios take their generating readings
# Measured batches start at slot 31 (after a slot-0 warm-up), so a 1-reading batch is a daytime
# reading (the dearer kind) and a 10-reading batch is half day, half night.
MEASURED_FROM_SLOT = 31
CAPACITY_W = 5_000
ZONE = "TEPCO-13"
SOLAR = 0
HOUSEHOLD, BUSINESS = 0, 2
ALICE_CERTIFICATES = 40  # Alice's lots: 40 lots of GEN_WH units, one per certificate
SEND_UNITS = 400  # part of one lot, so the sender's current lot stays non-empty
# A recipient's lot of the same certificate, before SEND_UNITS more arrive: 600 + 400 stay in
# one size class (512..1023), so the merge does not relink the lot.
WARM_UNITS = 600
BENEFICIARY = "Bob Shoten KK, Setagaya shop"  # < 32 bytes: one slot, like most names
RETIRE_REASON = "FY2026 Q4 consumption"

Figures = dict[str, dict[str, Any]]


def run() -> Figures:
    """Starts Anvil through Ape, measures everything and returns the figures."""
    from ape import networks
    from ape.logging import logger as ape_logger

    contract_types = compile_bench_contracts()
    with ape_logger.at_level("WARNING"), _anvil_without_step_traces():
        with networks.parse_network_choice(NETWORK):
            return _GasBench(contract_types).measure()


@contextmanager
def _anvil_without_step_traces() -> Iterator[None]:
    """ape-foundry starts Anvil with --steps-tracing, which keeps every opcode of every
    transaction in memory: gigabytes for the 1,000-transfer dust scenario. Gas is the same
    without it, and the bench reads no traces."""
    from ape_foundry.provider import FoundryProvider

    original = FoundryProvider.build_command

    def build_command(self: Any) -> list[str]:
        return [arg for arg in original(self) if arg != "--steps-tracing"]

    FoundryProvider.build_command = build_command  # type: ignore[method-assign]
    try:
        yield
    finally:
        FoundryProvider.build_command = original  # type: ignore[method-assign]


# ---------------------------------------------------------------- bench contracts


def compile_bench_contracts() -> dict[str, dict[str, Any]]:
    """Compiles bench/contracts/*.sol with py-solc-x and the project's solc (the solc-js bridge
    on machines without native solc), OpenZeppelin from node_modules. Output is cached in
    bench/out/ by a hash of the sources and settings.
    Returns {contract name: {"abi", "bytecode", "runtime"}}."""
    import solcx
    from solcx.exceptions import SolcNotInstalled

    version, settings = project_solc_settings()
    sources = {
        f"bench/contracts/{path.name}": {"content": path.read_text()}
        for path in sorted(BENCH_CONTRACTS.glob("*.sol"))
    }
    standard_input = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            # The project's own settings (ape-config.yaml), so the baselines compete fairly.
            **settings,
            "remappings": [OZ_REMAPPING],
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }
    oz_dir = ROOT / "node_modules" / "@openzeppelin" / "contracts"
    key = hashlib.sha256(
        json.dumps([version, standard_input, _oz_version(oz_dir)], sort_keys=True).encode()
    ).hexdigest()[:16]
    cache = CACHE_DIR / f"bench-contracts-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())

    if not oz_dir.is_dir():
        raise FileNotFoundError(f"{oz_dir} is missing: run `make setup` (npm ci) first")
    try:
        solc = solcx.install.get_executable(version)
    except SolcNotInstalled as exc:
        raise RuntimeError(
            f"solc {version} is not installed for py-solc-x: run `make setup` "
            "(it installs the solc-js bridge into ~/.solcx)"
        ) from exc
    log.info("compiling %d bench contracts with %s", len(sources), solc)
    output = solcx.compile_standard(
        standard_input, solc_binary=solc, base_path=str(ROOT), allow_paths=[str(oz_dir)]
    )
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError(
            "bench contracts do not compile:\n" + "\n".join(e["message"] for e in errors)
        )
    compiled: dict[str, dict[str, Any]] = {}
    for source_id in sources:
        for name, data in output["contracts"][source_id].items():
            compiled[name] = {
                "abi": data["abi"],
                "bytecode": "0x" + data["evm"]["bytecode"]["object"],
                "runtime": "0x" + data["evm"]["deployedBytecode"]["object"],
            }
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(compiled))
    return compiled


def project_solc_settings() -> tuple[str, dict[str, Any]]:
    """The solc version and optimizer/EVM settings of ape-config.yaml's `solidity:` section."""
    import yaml

    solidity = yaml.safe_load((ROOT / "ape-config.yaml").read_text()).get("solidity", {})
    settings: dict[str, Any] = {
        "optimizer": {
            "enabled": bool(solidity.get("optimize", True)),
            "runs": int(solidity.get("optimization_runs", 200)),
        },
        "evmVersion": solidity.get("evm_version", "cancun"),
    }
    if solidity.get("via_ir"):
        settings["viaIR"] = True
    return str(solidity["version"]), settings


def _oz_version(oz_dir: Path) -> str:
    package = oz_dir / "package.json"
    return json.loads(package.read_text())["version"] if package.exists() else "missing"


def _container(name: str, compiled: dict[str, Any]) -> Any:
    from ape.contracts import ContractContainer
    from ethpm_types import ContractType

    contract_type = ContractType.model_validate(
        {
            "contractName": name,
            "abi": compiled["abi"],
            "deploymentBytecode": {"bytecode": compiled["bytecode"]},
            "runtimeBytecode": {"bytecode": compiled["runtime"]},
        }
    )
    return ContractContainer(contract_type)


# ---------------------------------------------------------------- helpers


def _figure(value: float, unit: str, note: str, target: str | None = None) -> dict[str, Any]:
    figure: dict[str, Any] = {"value": value, "unit": unit, "note": note}
    if target is not None:
        figure["target"] = target
    return figure


def slot_quantities(slot: int) -> tuple[int, int, int, int]:
    """(generated, consumed, sold, purchased) Wh of interval `slot` in the household profile."""
    return DAY_WH if slot % READINGS_PER_DAY in DAY_SLOTS else NIGHT_WH


def batch_layout(n: int) -> list[int]:
    """How the oracle groups n readings: whole meter-days (48 consecutive intervals) per meter,
    the remainder on one more meter. Returns the readings per meter; len == ceil(n / 48)."""
    full, rest = divmod(n, READINGS_PER_DAY)
    return [READINGS_PER_DAY] * full + ([rest] if rest else [])


@dataclass(frozen=True)
class BatchScenario:
    key: str
    per_meter: list[int]  # readings of each meter, consecutive intervals

    @property
    def size(self) -> int:
        return sum(self.per_meter)

    def describe(self) -> str:
        meters = len(self.per_meter)
        if meters == 1:
            return f"1 meter x {self.per_meter[0]} consecutive 30-min intervals"
        if len(set(self.per_meter)) == 1:
            return f"{meters} meters x {self.per_meter[0]} consecutive intervals each"
        return (
            f"{meters} meters with {'+'.join(str(c) for c in self.per_meter)} consecutive intervals"
        )


def batch_scenarios() -> list[BatchScenario]:
    scenarios = [BatchScenario(f"gas_per_reading_batch_{n}", batch_layout(n)) for n in BATCH_SIZES]
    scenarios.append(BatchScenario("gas_per_reading_batch_100_distinct_meters", [1] * 100))
    scenarios.append(BatchScenario("gas_per_reading_batch_100_one_meter", [100]))
    return scenarios


class _GasBench:
    """One deployment on one Anvil; each `_measure_*` adds figures to `self.figures`."""

    def __init__(self, contract_types: dict[str, dict[str, Any]]) -> None:
        from ape import accounts, chain
        from eth_account import Account
        from eth_utils import keccak

        self.chain = chain
        test = accounts.test_accounts
        self.admin, self.operator, self.submitter = test[0], test[1], test[2]
        self.alice, self.bob, self.carol = test[3], test[4], test[5]
        self.oracle_keys = [keccak(text=f"zcx-bench-oracle-{i}") for i in range(SIGNERS)]
        self.oracle_addresses = [Account.from_key(k).address for k in self.oracle_keys]
        self.contract_types = contract_types
        self.figures: Figures = {}
        self.epoch = 0
        self.zcx: Any = None

    def measure(self) -> Figures:
        from zcx.deploy import deploy_all

        log.info("deploying (2-of-3 oracle quorum) on chain %s", self.chain.chain_id)
        self.zcx, _ = deploy_all(self.admin, self.operator.address, self.oracle_addresses, QUORUM)
        self.epoch = (self.chain.pending_timestamp - 30 * 86400) // WORD_SPAN * WORD_SPAN
        self._register_members()
        self._measure_batches()
        self._measure_late_batch()
        self._measure_naive()
        self._measure_transfers_claim_retire()
        return self.figures

    # ------------------------------------------------------------ setup

    def _register_members(self) -> None:
        members = self.zcx.members
        members.registerMember(self.alice, "Alice Tanaka", HOUSEHOLD, sender=self.operator)
        members.registerMember(self.bob, "Bob Shoten KK", BUSINESS, sender=self.operator)

    def _register_meters(self, labels: Sequence[str], owner: Any) -> list[bytes]:
        from zcx.ids import meter_id

        ids = [meter_id(label) for label in labels]
        for mid in ids:
            self.zcx.members.registerMeter(
                mid, owner, SOLAR, CAPACITY_W, ZONE, self.epoch - 86400, sender=self.operator
            )
        return ids

    def _reading(self, mid: bytes, slot: int) -> Any:
        """The reading of interval `slot` (counted from the epoch) in the day/night profile."""
        from zcx.eip712 import Reading

        start = self.epoch + slot * INTERVAL
        return Reading(mid, start, start + INTERVAL, *slot_quantities(slot))

    def _submit(self, readings: Sequence[Any]) -> Any:
        """Signs with oracles 0 and 1 (quorum 2 of 3), submits, and checks all were accepted."""
        from zcx.eip712 import sign_quorum

        registry = self.zcx.registry
        signatures = sign_quorum(
            readings, self.chain.chain_id, str(registry.address), self.oracle_keys[:QUORUM]
        )
        receipt = registry.submitBatch(
            [r.as_tuple() for r in readings], signatures, sender=self.submitter
        )
        applied = receipt.decode_logs(registry.BatchApplied)
        if len(applied) != 1 or applied[0].accepted != len(readings) or applied[0].rejected:
            rejected = receipt.decode_logs(registry.ReadingRejected)
            raise RuntimeError(
                f"batch of {len(readings)} was not fully accepted: {applied}; first rejection: "
                f"{rejected[:1]}. The benchmark's readings must all be valid; fix its setup."
            )
        return receipt

    @contextmanager
    def _isolated(self) -> Iterator[None]:
        """Runs a scenario and rolls Anvil back to the state before it."""
        snapshot = self.chain.snapshot()
        try:
            yield
        finally:
            self.chain.restore(snapshot)

    # ------------------------------------------------------------ readings

    def _measure_batches(self) -> None:
        scenarios = batch_scenarios()
        meters: dict[str, list[bytes]] = {}
        for s_index, scenario in enumerate(scenarios):
            labels = [f"BENCH-B{s_index}-{m:03d}" for m in range(len(scenario.per_meter))]
            meters[scenario.key] = self._register_meters(labels, self.alice)
        # Warm-up: one reading (slot 0) per meter, so each meter's ledger, evidence and claim
        # slots are already non-zero when the measured batch arrives.
        warm = [self._reading(mid, 0) for ids in meters.values() for mid in ids]
        for i in range(0, len(warm), 200):
            self._submit(warm[i : i + 200])
        log.info("warmed up %d meters; measuring batches", len(warm))

        for scenario in scenarios:
            slots = [
                (mid, MEASURED_FROM_SLOT + offset)
                for mid, count in zip(meters[scenario.key], scenario.per_meter, strict=True)
                for offset in range(count)
            ]
            readings = [self._reading(mid, slot) for mid, slot in slots]
            receipt = self._submit(readings)
            n = len(readings)
            daytime = sum(1 for r in readings if r.generated_wh)
            per_reading = receipt.gas_used / n
            note = (
                f"submitBatch of {n} reading(s), 2-of-3 oracle signatures; "
                f"{scenario.describe()}; {daytime} daytime-surplus + {n - daytime} night-import "
                f"readings; steady state (each meter already has readings); "
                f"tx gas_used {receipt.gas_used:,} / {n}"
            )
            target = (
                f"<= {BATCH_100_TARGET}" if scenario.key == "gas_per_reading_batch_100" else None
            )
            self.figures[scenario.key] = _figure(round(per_reading, 1), "gas/reading", note, target)
            log.info("%s: %.1f gas/reading", scenario.key, per_reading)

    def _measure_late_batch(self) -> None:
        """The batch_100 layout landing after the batch that follows it (invariant 9): every
        reading fills a gap before its meter's lastEnd, which also reads the claim slot."""
        per_meter = batch_layout(100)
        labels = [f"BENCH-LATE-{m:03d}" for m in range(len(per_meter))]
        meters = self._register_meters(labels, self.alice)
        self._submit([self._reading(mid, 0) for mid in meters])  # warm-up, as above
        later = [
            self._reading(mid, MEASURED_FROM_SLOT + READINGS_PER_DAY + offset)
            for mid, count in zip(meters, per_meter, strict=True)
            for offset in range(count)
        ]
        self._submit(later)  # lands first
        readings = [
            self._reading(mid, MEASURED_FROM_SLOT + offset)
            for mid, count in zip(meters, per_meter, strict=True)
            for offset in range(count)
        ]
        receipt = self._submit(readings)
        n = len(readings)
        note = (
            f"submitBatch of {n} readings, 2-of-3 signatures, {len(meters)} meters x "
            f"{'+'.join(map(str, per_meter))} consecutive intervals, landing after the batch of "
            f"the next {READINGS_PER_DAY} intervals (every reading a late gap-filler); "
            f"tx gas_used {receipt.gas_used:,} / {n}"
        )
        key = "gas_per_reading_batch_100_late"
        self.figures[key] = _figure(round(receipt.gas_used / n, 1), "gas/reading", note)
        log.info("%s: %.1f gas/reading", key, receipt.gas_used / n)

    def _measure_naive(self) -> None:
        from zcx.ids import meter_id

        naive = self.admin.deploy(
            _container("NaiveReadingStore", self.contract_types["NaiveReadingStore"]),
            self.oracle_addresses[0],
        )
        variants = {
            "gas_per_reading_naive": (
                naive.submitCompact,
                "end + 4 quantities stored in mapping[meterId][start] (2 slots; the second, "
                "purchasedWh alone, stays zero for daytime readings), the cheap form of the "
                "design TOOLCHAIN.md quotes at about 81,100",
            ),
            "gas_per_reading_naive_full_struct": (
                naive.submit,
                "the whole signed Reading struct stored in mapping[keccak(meterId, start)] "
                "(3 fresh slots)",
            ),
        }
        for v_index, (key, (submit, stored)) in enumerate(variants.items()):
            mid = meter_id(f"BENCH-NAIVE-{v_index}")
            gas = []
            for slot in range(READINGS_PER_DAY):
                reading = self._reading(mid, slot)
                signature = _sign_naive(
                    reading, self.chain.chain_id, str(naive.address), self.oracle_keys[0]
                )
                receipt = submit(reading.as_tuple(), signature, sender=self.submitter)
                if len(receipt.decode_logs(naive.ReadingStored)) != 1:
                    raise RuntimeError(f"NaiveReadingStore ({key}) emitted no ReadingStored event")
                gas.append(receipt.gas_used)
            mean = sum(gas) / len(gas)
            self.figures[key] = _figure(
                round(mean, 1),
                "gas/reading",
                f"bench/contracts/NaiveReadingStore.sol: one EIP-712-signed reading per tx, single "
                f"signer (OZ ECDSA.recover), {stored}, one event; mean over one meter-day "
                f"({len(gas)} txs: 24 daytime, 24 night readings; "
                f"min {min(gas):,}, max {max(gas):,})",
            )
        batch_100 = self.figures["gas_per_reading_batch_100"]["value"]
        naive_gas = self.figures["gas_per_reading_naive"]["value"]
        self.figures["naive_vs_batch_100"] = _figure(
            round(naive_gas / batch_100, 2),
            "x",
            "gas_per_reading_naive / gas_per_reading_batch_100 (how many times cheaper the "
            "registry's batches are than the cheaper naive design)",
        )

    # ------------------------------------------------------------ ZCV, ERC-20, claim, retire

    def _measure_transfers_claim_retire(self) -> None:
        zcv, exchange, registry = self.zcx.zcv, self.zcx.exchange, self.zcx.registry
        alice_meters = self._register_meters(
            [f"BENCH-ALICE-{i:03d}" for i in range(ALICE_CERTIFICATES)], self.alice
        )
        (bob_meter,) = self._register_meters(["BENCH-BOB-000"], self.bob)
        dust_meters = self._register_meters(
            [f"BENCH-BOB-DUST-{i}" for i in range(DUST_CERTIFICATES)], self.bob
        )
        (claim_meter,) = self._register_meters(["BENCH-ALICE-CLAIM"], self.alice)
        meters = [*alice_meters, bob_meter, *dust_meters, claim_meter]
        self._submit([self._reading(mid, FIRST_DAY_SLOT) for mid in meters])
        # Alice: 40 lots of GEN_WH units, certificates 1..40 (certificate 1 is her current lot).
        for mid in alice_meters:
            exchange.claim(registry, mid, sender=self.alice)
        # Bob already holds ZCV of his own certificate (41): the steady-state recipient.
        exchange.claim(registry, bob_meter, sender=self.bob)
        for mid in dust_meters:  # certificates 42..45: what Bob sprays as dust
            exchange.claim(registry, mid, sender=self.bob)
        max_lots = int(zcv.MAX_LOTS_PER_TRANSFER())
        log.info(
            "Alice holds %d lots, Bob %d; measuring",
            zcv.lotCount(self.alice),
            zcv.lotCount(self.bob),
        )

        erc20 = self._measure_erc20()
        erc1155 = self._measure_erc1155()
        self._measure_zcv_transfers(max_lots)
        self._measure_zcv_merges()
        self._measure_after_dust(
            list(range(ALICE_CERTIFICATES + 2, ALICE_CERTIFICATES + 2 + DUST_CERTIFICATES))
        )
        f = self.figures
        zcv_1lot = f["zcv_transfer_gas_1lot"]["value"]
        f["zcv_transfer_gas_1lot"]["target"] = (
            f"<= {math.floor(ZCV_VS_ERC20_TARGET * erc20):,} "
            f"({ZCV_VS_ERC20_TARGET} x erc20_transfer_gas)"
        )
        f["zcv_transfer_gas_new_certificate"]["target"] = (
            f"<= {math.floor(ZCV_VS_ERC1155_TARGET * erc1155):,} "
            f"({ZCV_VS_ERC1155_TARGET} x erc1155_transfer_gas)"
        )
        f["zcv_transfer_gas_after_dust_1000"]["target"] = (
            f"<= {math.floor(DUST_TARGET * zcv_1lot):,} ({DUST_TARGET} x zcv_transfer_gas_1lot)"
        )
        f["zcv_transfer_1lot_vs_erc20"] = _figure(
            round(zcv_1lot / erc20, 3),
            "x",
            "zcv_transfer_gas_1lot / erc20_transfer_gas (same sender and recipient states, "
            "same amount)",
            f"<= {ZCV_VS_ERC20_TARGET}",
        )
        new_cert = f["zcv_transfer_gas_new_certificate"]["value"]
        f["zcv_transfer_new_certificate_vs_erc1155"] = _figure(
            round(new_cert / erc1155, 3),
            "x",
            "zcv_transfer_gas_new_certificate / erc1155_transfer_gas (recipient holds only other "
            "certificates / ids)",
            f"<= {ZCV_VS_ERC1155_TARGET}",
        )
        f["zcv_transfer_after_dust_vs_1lot"] = _figure(
            round(f["zcv_transfer_gas_after_dust_1000"]["value"] / zcv_1lot, 3),
            "x",
            "zcv_transfer_gas_after_dust_1000 / zcv_transfer_gas_1lot",
            f"<= {DUST_TARGET}",
        )
        self._measure_claim(claim_meter)
        self._measure_retire()

    def _measure_erc20(self) -> int:
        token = self.admin.deploy(
            _container("PlainERC20", self.contract_types["PlainERC20"]), self.alice, 10**9
        )
        with self._isolated():
            first = token.transfer(self.carol, SEND_UNITS, sender=self.alice)
        token.transfer(self.bob, GEN_WH, sender=self.alice)  # Bob becomes a holder
        steady = token.transfer(self.bob, SEND_UNITS, sender=self.alice)
        scenario = (
            f"transfer({SEND_UNITS} units); sender keeps a balance; bench/contracts/PlainERC20.sol "
            "(OpenZeppelin 5 ERC20, unmodified)"
        )
        self.figures["erc20_transfer_gas"] = _figure(
            steady.gas_used, "gas", f"{scenario}; recipient already holds the token"
        )
        self.figures["erc20_transfer_gas_new_recipient"] = _figure(
            first.gas_used, "gas", f"{scenario}; recipient's balance was zero"
        )
        return int(steady.gas_used)

    def _measure_erc1155(self) -> int:
        token = self.admin.deploy(_container("PlainERC1155", self.contract_types["PlainERC1155"]))
        token.mint(self.alice, 1, GEN_WH, sender=self.admin)
        token.mint(self.bob, 2, GEN_WH, sender=self.admin)  # Bob holds other ids only
        other = token.safeTransferFrom(self.alice, self.bob, 1, SEND_UNITS, b"", sender=self.alice)
        same = token.safeTransferFrom(self.alice, self.bob, 1, SEND_UNITS, b"", sender=self.alice)
        scenario = (
            f"safeTransferFrom of one id ({SEND_UNITS} units) between EOAs; sender keeps a "
            "balance; bench/contracts/PlainERC1155.sol (OpenZeppelin 5 ERC1155, unmodified)"
        )
        self.figures["erc1155_transfer_gas"] = _figure(
            other.gas_used, "gas", f"{scenario}; recipient holds other ids only"
        )
        self.figures["erc1155_transfer_gas_same_id"] = _figure(
            same.gas_used, "gas", f"{scenario}; recipient already holds the id"
        )
        return int(other.gas_used)

    def _zcv_transfer(self, to: Any, units: int, lots: int) -> int:
        zcv = self.zcx.zcv
        receipt = zcv.transfer(to, units, sender=self.alice)
        moved = receipt.decode_logs(zcv.LotMoved)
        if len(moved) != lots:
            raise RuntimeError(f"transfer of {units} moved {len(moved)} lots, expected {lots}")
        return int(receipt.gas_used)

    def _measure_zcv_transfers(self, max_lots: int) -> None:
        if ALICE_CERTIFICATES < max_lots:
            raise RuntimeError(f"need at least {max_lots} lots for the worst case")
        # Units touching exactly k lots in spend order: k-1 whole lots, then part of the k-th.
        cases = {"new_certificate": 1, "2lots": 2, "worst": max_lots}
        base = (
            "ZCV transfer() by Alice, who holds 40 lots of 1,200 units (one certificate each); "
            "takes {lots} lot(s) in spend order ({units:,} units: {whole} whole lot(s) + {part} "
            "units of the next, so her last touched lot stays non-empty)"
        )
        recipients = {
            "": (
                self.bob,
                "; recipient Bob holds ZCV of other certificates only, so each moved lot is a new "
                "lot (slot) of his, linked into its size class",
            ),
            "_new_recipient": (self.carol, "; recipient Carol held no ZCV and had no lots"),
        }
        for case, lots in cases.items():
            units = (lots - 1) * GEN_WH + SEND_UNITS
            note = base.format(lots=lots, units=units, whole=lots - 1, part=SEND_UNITS)
            if case == "worst":
                note += f" (MAX_LOTS_PER_TRANSFER = {max_lots})"
            for suffix, (to, who) in recipients.items():
                with self._isolated():
                    gas = self._zcv_transfer(to, units, lots)
                self.figures[f"zcv_transfer_gas_{case}{suffix}"] = _figure(gas, "gas", note + who)

    def _measure_zcv_merges(self) -> None:
        one_lot = (
            f"ZCV transfer() of {SEND_UNITS} units by Alice from her current lot (40 lots of "
            "1,200 units; the lot stays non-empty)"
        )
        with self._isolated():
            self._zcv_transfer(self.bob, WARM_UNITS, 1)
            merged = self._zcv_transfer(self.bob, SEND_UNITS, 1)
        self.figures["zcv_transfer_gas_1lot"] = _figure(
            merged,
            "gas",
            one_lot + f"; recipient Bob already holds {WARM_UNITS} units of that certificate (a "
            "listed lot; the merge stays in its size class): a repeat payment",
        )
        with self._isolated():
            self._zcv_transfer(self.carol, WARM_UNITS, 1)
            current = self._zcv_transfer(self.carol, SEND_UNITS, 1)
        self.figures["zcv_transfer_gas_1lot_current"] = _figure(
            current,
            "gas",
            one_lot + "; recipient Carol's current lot is that certificate (one slot per side)",
        )
        with self._isolated():
            self._zcv_transfer(self.bob, SEND_UNITS, 1)
            promoted = self._zcv_transfer(self.bob, SEND_UNITS, 1)
        self.figures["zcv_transfer_gas_1lot_promote"] = _figure(
            promoted,
            "gas",
            one_lot + f"; Bob's lot of that certificate grows from {SEND_UNITS} to "
            f"{2 * SEND_UNITS} units and moves up a size class (unlinked and relinked)",
        )

    def _measure_after_dust(self, dust_certificates: list[int]) -> None:
        """Bob sprays Alice with DUST_TRANSFERS one-unit transferLots alternating his
        certificates, then Alice's transfer is measured as zcv_transfer_gas_1lot."""
        zcv = self.zcx.zcv
        w3 = self.chain.provider.web3
        with self._isolated():
            hashes = []
            for i in range(DUST_TRANSFERS):
                pick = [(dust_certificates[i % len(dust_certificates)], 1)]
                data = zcv.transferLots.encode_input(self.alice, pick)
                tx = {"from": str(self.bob.address), "to": str(zcv.address), "data": data}
                hashes.append(w3.eth.send_transaction({**tx, "gas": 500_000}))
            if any(w3.eth.wait_for_transaction_receipt(h).status != 1 for h in hashes):
                raise RuntimeError("a dust transfer failed")
            self._zcv_transfer(self.bob, WARM_UNITS, 1)
            gas = self._zcv_transfer(self.bob, SEND_UNITS, 1)
        self.figures["zcv_transfer_gas_after_dust_1000"] = _figure(
            gas,
            "gas",
            f"zcv_transfer_gas_1lot's transfer, after Bob sent Alice {DUST_TRANSFERS:,} one-unit "
            f"lots alternating {len(dust_certificates)} certificates (the issue-11 attack)",
        )

    def _measure_claim(self, claim_meter: bytes) -> None:
        zcv, exchange, registry = self.zcx.zcv, self.zcx.exchange, self.zcx.registry
        with self._isolated():
            first = exchange.claim(registry, claim_meter, sender=self.alice)
            day = range(FIRST_DAY_SLOT + 1, FIRST_DAY_SLOT + 1 + READINGS_PER_DAY)
            self._submit([self._reading(claim_meter, s) for s in day])
            again = exchange.claim(registry, claim_meter, sender=self.alice)
            if len(again.decode_logs(zcv.CertificateIssued)) != 1:
                raise RuntimeError("claim issued no certificate")
        day_wh = sum(slot_quantities(s)[0] for s in day)
        common = (
            "ValueExchange.claim by the meter owner (household, already holding ZCV): marks the "
            "registry claimed, writes a certificate (owner name, zone, evidence ...), mints, "
            "pushes a lot"
        )
        self.figures["claim_gas"] = _figure(
            again.gas_used,
            "gas",
            f"{common}; steady state: the meter was claimed before; {day_wh:,} Wh (one day)",
        )
        self.figures["claim_gas_first"] = _figure(
            first.gas_used, "gas", f"{common}; the meter's first claim ({GEN_WH:,} Wh)"
        )

    def _measure_retire(self) -> None:
        zcv = self.zcx.zcv

        def retire(units: int, lots: int) -> int:
            receipt = zcv.retire(
                units, BENEFICIARY, RETIRE_REASON, self.epoch, self.epoch + 86400, sender=self.alice
            )
            (event,) = receipt.decode_logs(zcv.Retired)
            if len(event.certificateIds) != lots:
                raise RuntimeError(
                    f"retire touched {len(event.certificateIds)} lots, expected {lots}"
                )
            return int(receipt.gas_used)

        common = (
            "ZCV retire() by Alice in spend order from her 40 lots (lots of 1,200 units); "
            "beneficiary and reason strings < 32 bytes each; writes the versioned retirement "
            "record (with per-certificate ids and units) and emits Retired"
        )
        with self._isolated():
            first = retire(SEND_UNITS, 1)
        self.figures["retire_gas_first_ever"] = _figure(
            first,
            "gas",
            f"{common}; {SEND_UNITS} units from 1 lot; the chain's first retirement (retirement "
            "count, total retired, Alice's amortized counter and the certificate's retired units "
            "all go from zero)",
        )
        with self._isolated():
            retire(SEND_UNITS, 1)  # warm-up: counters and totals become non-zero
            with self._isolated():
                one = retire(SEND_UNITS, 1)
            # The current lot now holds 800 units: 800 + 1,200 + 1,200 + 400 touches 4 lots.
            four_units = (GEN_WH - SEND_UNITS) + 2 * GEN_WH + SEND_UNITS
            four = retire(four_units, 4)
        steady = "steady state: Alice and the chain have retired before"
        self.figures["retire_gas"] = _figure(
            one,
            "gas",
            f"{common}; {SEND_UNITS} units from 1 lot whose certificate was partly retired "
            f"before; {steady}",
        )
        self.figures["retire_gas_4lots"] = _figure(
            four,
            "gas",
            f"{common}; {four_units:,} units from 4 lots (the first partly retired before, 3 "
            f"certificates retired for the first time, 3 lots emptied); {steady}",
        )


def _sign_naive(reading: Any, chain_id: int, contract: str, key: bytes) -> bytes:
    """EIP-712 signature over one Reading in NaiveReadingStore's domain."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    from zcx.eip712 import READING_FIELDS

    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Reading": READING_FIELDS,
        },
        "primaryType": "Reading",
        "domain": {
            "name": "ZCX NaiveReadingStore",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": reading.as_message(),
    }
    return bytes(Account.sign_message(encode_typed_data(full_message=typed), key).signature)
