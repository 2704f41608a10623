"""Chain access over plain JSON-RPC with web3.py (no Ape at run time): ABIs from the compiled
project, the recorded deployment, liveness checks, registry views and fast log decoding."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound

from oracle.redact import Scrubber, redact_url, url_secrets
from zcx import deployments
from zcx.deployments import Deployment
from zcx.errors import DecodedError, ErrorDecoder

log = logging.getLogger(__name__)

MANIFEST = Path(__file__).resolve().parent.parent / ".build" / "__local__.json"
CONTRACTS = ("MemberRegistry", "GenerationRegistry", "ZeroCarbonValue", "ValueExchange")

READING_RECORDED = keccak(text="ReadingRecorded(bytes32,uint64,uint64,uint64,uint64,uint64,uint64)")
READING_REJECTED = keccak(
    text="ReadingRejected(bytes32,uint256,(bytes32,uint64,uint64,uint64,uint64,uint64,uint64),bytes)"
)
BATCH_APPLIED = keccak(text="BatchApplied(bytes32,address,uint256,uint256,address[],bytes[])")
METER_SPEC_SELECTOR = keccak(text="meterSpec(bytes32)")[:4]
VALIDATE_SELECTOR = keccak(
    text="validateReading((bytes32,uint64,uint64,uint64,uint64,uint64,uint64))"
)[:4]
SPEC_TYPES = ["(address,uint32,uint40,uint8,bool,bool)"]


class ChainUnavailable(Exception):
    """The node cannot be reached now; retry later."""


class ChainMismatch(Exception):
    """The chain no longer holds the recorded deployment (reset chain, missing contracts)."""


class RpcError(Exception):
    """The node answered a JSON-RPC call with an error (for eth_call: a revert, with its data)."""

    def __init__(self, message: str, data: bytes | None = None) -> None:
        super().__init__(message)
        self.data = data


@dataclass(frozen=True)
class Receipt:
    """The parts of a transaction receipt the oracle uses, parsed from raw JSON-RPC (web3's
    formatters take ~0.2 s on a receipt with 1,000 logs; this takes a few ms)."""

    tx_hash: bytes
    block: int
    status: int
    gas_used: int
    logs: list[dict[str, Any]]

    def __getitem__(self, key: str) -> Any:  # the web3 receipt spelling, for callers of both
        return {
            "transactionHash": self.tx_hash,
            "blockNumber": self.block,
            "status": self.status,
            "gasUsed": self.gas_used,
            "logs": self.logs,
        }[key]


@cache
def load_abis(manifest: Path = MANIFEST) -> dict[str, list[dict[str, Any]]]:
    """ABIs of the project's contracts from Ape's compiled manifest (.build/__local__.json)."""
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: run `ape compile` in the project first")
    data = json.loads(manifest.read_text())
    types = data.get("contractTypes", {})
    missing = [name for name in CONTRACTS if name not in types]
    if missing:
        raise FileNotFoundError(f"{manifest} lacks {missing}: run `ape compile`")
    return {name: types[name]["abi"] for name in CONTRACTS}


def load_bytecode(name: str, manifest: Path = MANIFEST) -> str:
    data = json.loads(manifest.read_text())
    return str(data["contractTypes"][name]["deploymentBytecode"]["bytecode"])


@cache
def error_decoder() -> ErrorDecoder:
    return ErrorDecoder(load_abis().values())


def decode_error(data: bytes) -> DecodedError:
    return error_decoder().decode(data)


@dataclass(frozen=True)
class MeterSpec:
    owner: str
    capacity_w: int
    commissioned_at: int
    method: int
    active: bool
    flagged: bool

    @property
    def known(self) -> bool:
        return int(self.owner, 16) != 0


@dataclass(frozen=True)
class RegistryConfig:
    interval_seconds: int
    capacity_margin_bps: int
    quorum: int
    signers: tuple[str, ...]


@dataclass(frozen=True)
class LogRecord:
    """One registry event of a receipt, decoded by hand (web3's generic decoder is slow)."""

    kind: str  # "recorded" | "rejected" | "applied"
    meter_id: bytes = b""
    start: int = 0
    index: int = -1
    reason: bytes = b""
    digest: bytes = b""


UNAVAILABLE = (requests.exceptions.RequestException, OSError, TimeoutError)


class Chain:
    """A connection to one EVM node and the registry of one recorded deployment."""

    def __init__(self, rpc_url: str, deployments_dir: Path, timeout_s: float = 10.0) -> None:
        self.rpc_url = rpc_url
        # What answers and logs may show of the URL (API keys live in its path or query).
        self.safe_url = redact_url(rpc_url)
        self.scrub = Scrubber(url_secrets(rpc_url))
        self.deployments_dir = deployments_dir
        provider = Web3.HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
        )
        self.w3 = Web3(provider)
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._rpc_id = 0
        # The submitter and the meter refresher share this connection: ids of one batch
        # must be consecutive (answers are matched by id), so they are taken under a lock.
        self._rpc_id_lock = threading.Lock()
        self.abis = load_abis()
        self.deployment: Deployment | None = None
        self.registry: Any = None
        self.members: Any = None
        self.chain_id: int = 0

    # ---------------------------------------------------------------- connection

    def _unavailable(self, exc: BaseException) -> ChainUnavailable:
        """The transport error, without the URL's secret parts (requests quotes the path)."""
        return ChainUnavailable(
            f"cannot reach the chain node at {self.safe_url}: {self.scrub(str(exc))}"
        )

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Runs a web3 call, turning transport failures into ChainUnavailable."""
        try:
            return fn(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    def rpc(self, method: str, params: list[Any]) -> Any:
        """One raw JSON-RPC call (no web3 middleware). Raises RpcError on an error answer."""
        return self.rpc_batch([(method, params)], raise_errors=True)[0]

    def rpc_batch(
        self, calls: Sequence[tuple[str, list[Any]]], raise_errors: bool = False
    ) -> list[Any]:
        """Several JSON-RPC calls in one HTTP request; each result, or an RpcError in its place."""
        if not calls:
            return []
        with self._rpc_id_lock:
            first = self._rpc_id + 1
            self._rpc_id += len(calls)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        try:
            response = self._session.post(self.rpc_url, json=body, timeout=self.timeout_s)
            response.raise_for_status()
            answers = response.json()
        except UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        except ValueError as exc:
            raise ChainUnavailable(
                f"the node at {self.safe_url} did not answer JSON: {self.scrub(str(exc))}"
            ) from exc
        if not isinstance(answers, list):  # some nodes answer a batch error as one object
            answers = [answers] * len(calls)
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        out: list[Any] = []
        for i in range(len(calls)):
            answer = by_id.get(first + i, {"error": {"message": "no answer in the batch"}})
            if "error" in answer:
                error = answer["error"] or {}
                data = error.get("data")
                if isinstance(data, dict):  # some nodes nest the revert data
                    data = data.get("data")
                raw = (
                    bytes.fromhex(data[2:])
                    if isinstance(data, str) and data.startswith("0x")
                    else None
                )
                err = RpcError(str(error.get("message", "error")), raw)
                if raise_errors:
                    raise err
                out.append(err)
            else:
                out.append(answer.get("result"))
        return out

    def connect(self) -> Deployment:
        """Loads the deployment of the node's chain and checks that it is live."""
        self.chain_id = int(self.call(lambda: self.w3.eth.chain_id))
        try:
            self.deployment = deployments.load(self.chain_id, self.deployments_dir)
        except FileNotFoundError as exc:
            raise ChainMismatch(str(exc)) from exc
        reg = self.deployment.address("GenerationRegistry")
        mem = self.deployment.address("MemberRegistry")
        self.registry = self.w3.eth.contract(
            address=to_checksum_address(reg), abi=self.abis["GenerationRegistry"]
        )
        self.members = self.w3.eth.contract(
            address=to_checksum_address(mem), abi=self.abis["MemberRegistry"]
        )
        self.check_live()
        return self.deployment

    @property
    def registry_address(self) -> str:
        return str(self.registry.address)

    def check_live(self) -> None:
        """Raises ChainMismatch when the chain was reset or the contracts are gone."""
        assert self.deployment is not None
        dep = self.deployment
        chain_id = int(self.call(lambda: self.w3.eth.chain_id))
        if chain_id != dep.chain_id:
            raise ChainMismatch(f"node is chain {chain_id}, deployment is for chain {dep.chain_id}")
        height = int(self.call(lambda: self.w3.eth.block_number))
        if height < dep.deployment_block:
            raise ChainMismatch(
                f"chain {chain_id} is at block {height}, before the deployment block "
                f"{dep.deployment_block}: the chain was reset; redeploy (`ape run deploy`) and "
                "start the oracle with a fresh store"
            )
        block = self.call(self.w3.eth.get_block, dep.deployment_block)
        got = bytes(block["hash"]).hex()
        if got != dep.deployment_block_hash.removeprefix("0x").lower():
            raise ChainMismatch(
                f"block {dep.deployment_block} hash is 0x{got}, the deployment recorded "
                f"{dep.deployment_block_hash}: the chain was reset; redeploy and use a fresh store"
            )
        for name in ("MemberRegistry", "GenerationRegistry"):
            address = to_checksum_address(dep.address(name))
            if not self.call(self.w3.eth.get_code, address):
                raise ChainMismatch(f"no contract code at {name} {address}: wrong chain or reset")

    # ---------------------------------------------------------------- views

    def registry_config(self) -> RegistryConfig:
        fns = self.registry.functions
        return RegistryConfig(
            interval_seconds=int(self.call(fns.intervalSeconds().call)),
            capacity_margin_bps=int(self.call(fns.capacityMarginBps().call)),
            quorum=int(self.call(fns.quorum().call)),
            signers=tuple(str(s) for s in self.call(fns.signers().call)),
        )

    def meter_spec(self, meter_id: bytes) -> MeterSpec:
        return self.meter_specs([meter_id])[0]

    def meter_specs(self, meter_ids: Sequence[bytes]) -> list[MeterSpec]:
        """MemberRegistry.meterSpec of many meters in one JSON-RPC batch."""
        to = str(self.members.address)
        calls = [
            ("eth_call", [{"to": to, "data": "0x" + (METER_SPEC_SELECTOR + m).hex()}, "latest"])
            for m in meter_ids
        ]
        out = []
        for result in self.rpc_batch(calls):
            if isinstance(result, RpcError):
                raise ChainUnavailable(f"meterSpec failed: {result}")
            ((owner, capacity, commissioned, method, active, flagged),) = abi_decode(
                SPEC_TYPES, bytes.fromhex(result[2:])
            )
            out.append(
                MeterSpec(
                    to_checksum_address(owner),
                    int(capacity),
                    int(commissioned),
                    int(method),
                    bool(active),
                    bool(flagged),
                )
            )
        return out

    def validate_readings(self, words: Sequence[bytes]) -> list[bytes | None]:
        """GenerationRegistry.validateReading for each reading (its 7 ABI words), in one batch:
        None when the registry would record it now, else the revert data (b"" when none)."""
        to = self.registry_address
        calls = [
            ("eth_call", [{"to": to, "data": "0x" + (VALIDATE_SELECTOR + w).hex()}, "latest"])
            for w in words
        ]
        out: list[bytes | None] = []
        for result in self.rpc_batch(calls):
            out.append((result.data or b"") if isinstance(result, RpcError) else None)
        return out

    def simulate(self, sender: str, data: bytes, gas: int) -> RpcError | None:
        """eth_call of a transaction to the registry at the latest state: None if it would
        succeed with `gas`, else the error (revert data decoded with decode_error)."""
        call = {
            "from": sender,
            "to": self.registry_address,
            "data": "0x" + data.hex(),
            "gas": hex(gas),
        }
        result = self.rpc_batch([("eth_call", [call, "latest"])])[0]
        return result if isinstance(result, RpcError) else None

    def last_end(self, meter_id: bytes) -> int:
        return int(self.call(self.registry.functions.lastEnd(meter_id).call))

    def is_batch_applied(self, digest: bytes) -> bool:
        return bool(self.call(self.registry.functions.isBatchApplied(digest).call))

    def head(self) -> tuple[int, int, int]:
        """(block number, timestamp, gas limit) of the latest block."""
        block = self.call(self.w3.eth.get_block, "latest")
        return int(block["number"]), int(block["timestamp"]), int(block["gasLimit"])

    # ---------------------------------------------------------------- transactions

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        return self.receipts([tx_hash])[0]

    def receipts(self, tx_hashes: Sequence[bytes]) -> list[Receipt | None]:
        """Receipts of several transactions in one JSON-RPC batch (None: not mined yet)."""
        calls = [("eth_getTransactionReceipt", ["0x" + h.hex()]) for h in tx_hashes]
        out: list[Receipt | None] = []
        for raw in self.rpc_batch(calls):
            if isinstance(raw, RpcError):
                raise ChainUnavailable(f"eth_getTransactionReceipt failed: {raw}")
            if not raw or raw.get("blockNumber") is None:
                out.append(None)
                continue
            logs = [
                {
                    "address": entry["address"],
                    "topics": [bytes.fromhex(t[2:]) for t in entry["topics"]],
                    "data": bytes.fromhex(entry["data"][2:]),
                }
                for entry in raw["logs"]
            ]
            out.append(
                Receipt(
                    tx_hash=bytes.fromhex(raw["transactionHash"][2:]),
                    block=int(raw["blockNumber"], 16),
                    status=int(raw.get("status", "0x1"), 16),
                    gas_used=int(raw["gasUsed"], 16),
                    logs=logs,
                )
            )
        return out

    def tx_known(self, tx_hash: bytes) -> bool:
        try:
            self.call(self.w3.eth.get_transaction, tx_hash)
            return True
        except TransactionNotFound:
            return False

    def send_raw(self, raw: bytes) -> None:
        """Sends a signed transaction; 'already known' counts as sent. Raises RpcError when
        the node refuses it (e.g. "nonce too low")."""
        try:
            self.rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
        except RpcError as exc:
            text = str(exc).lower()
            if "already known" in text or "already imported" in text:
                return
            raise

    def nonce(self, address: str) -> int:
        return int(self.call(self.w3.eth.get_transaction_count, address, "pending"))

    def fees(self) -> dict[str, int]:
        block = self.call(self.w3.eth.get_block, "latest")
        base = int(block.get("baseFeePerGas", 0) or 0)
        tip = 1_000_000_000 if base else 0
        if not base:
            return {"gasPrice": int(self.call(lambda: self.w3.eth.gas_price))}
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def revert_reason(self, tx: dict[str, Any], block: int | str) -> DecodedError | None:
        """Replays a transaction as a call to recover its custom error."""
        call = {k: tx[k] for k in ("from", "to", "data") if k in tx}
        try:
            self.call(self.w3.eth.call, call, block)
        except ContractLogicError as exc:
            data = exc.data
            if isinstance(data, str) and data.startswith("0x"):
                return decode_error(bytes.fromhex(data[2:]))
            return None
        return None

    def find_applied_tx(self, digest: bytes, page: int = 5_000) -> bytes | None:
        """The hash of the transaction whose BatchApplied carries `digest` (searched backwards)."""
        assert self.deployment is not None
        latest = int(self.call(lambda: self.w3.eth.block_number))
        low_bound = self.deployment.deployment_block
        high = latest
        while high >= low_bound:
            low = max(low_bound, high - page + 1)
            logs = self.call(
                self.w3.eth.get_logs,
                {
                    "address": self.registry.address,
                    "fromBlock": low,
                    "toBlock": high,
                    "topics": ["0x" + BATCH_APPLIED.hex(), "0x" + digest.hex()],
                },
            )
            if logs:
                return bytes(logs[-1]["transactionHash"])
            high = low - 1
        return None


def decode_logs(receipt: Any, registry: str) -> list[LogRecord]:
    """ReadingRecorded / ReadingRejected / BatchApplied of the registry in a receipt, in order."""
    out: list[LogRecord] = []
    registry = registry.lower()
    for entry in receipt["logs"]:
        if str(entry["address"]).lower() != registry or not entry["topics"]:
            continue
        topic0 = bytes(entry["topics"][0])
        data = bytes(entry["data"])
        if topic0 == READING_RECORDED:
            start = int.from_bytes(data[0:32], "big")
            out.append(LogRecord("recorded", meter_id=bytes(entry["topics"][1]), start=start))
        elif topic0 == READING_REJECTED:
            index, _reading, reason = abi_decode(
                ["uint256", "(bytes32,uint64,uint64,uint64,uint64,uint64,uint64)", "bytes"], data
            )
            out.append(
                LogRecord(
                    "rejected",
                    meter_id=bytes(entry["topics"][1]),
                    start=int(_reading[1]),
                    index=int(index),
                    reason=bytes(reason),
                )
            )
        elif topic0 == BATCH_APPLIED:
            out.append(LogRecord("applied", digest=bytes(entry["topics"][1])))
    return out


def wait_for_rpc(url: str, timeout_s: float = 30.0) -> None:
    """Blocks until a JSON-RPC node answers at `url` (used by tests and benchmarks)."""
    deadline = time.monotonic() + timeout_s
    w3 = Web3(
        Web3.HTTPProvider(url, request_kwargs={"timeout": 2}, exception_retry_configuration=None)
    )
    while True:
        try:
            w3.eth.chain_id  # noqa: B018
            return
        except UNAVAILABLE:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
