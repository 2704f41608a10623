"""Reads every ZCX event back from any JSON-RPC node, in pages of blocks, into columns.

The reader never asks for block 0..latest in one call: it walks from the deployment block in
pages of `page_blocks` and halves a page when the node refuses it (result too large). It talks
raw JSON-RPC (`eth_getLogs` through the web3 provider) and decodes logs with the contract ABIs:
static events by slicing 32-byte words (fast: a million readings decode in seconds), the others
with eth_abi. Output is columnar (one list per field) so a million rows never become a million
dicts.

ABIs come from Ape's compiled project (`abis_from_ape`) or from its manifest file
`.build/__local__.json` (`abis_from_manifest`), so the audit runs inside and outside Ape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

log = logging.getLogger(__name__)


def _keccak_impl() -> Callable[[bytes], bytes]:
    """The fastest Keccak-256 available: pysha3 (about 5x eth_utils here), else eth_utils."""
    try:
        import sha3  # type: ignore[import-not-found]  # safe-pysha3, a dependency of eth-hash

        return lambda data: sha3.keccak_256(data).digest()
    except ImportError:
        return keccak


fast_keccak = _keccak_impl()

CONTRACTS = ("MemberRegistry", "GenerationRegistry", "ZeroCarbonValue", "ValueExchange")
# Read when compiled and recorded in the deployment (zcx.audit.market, zcx.audit.dr), never
# required.
OPTIONAL_CONTRACTS = ("ZcvMarket", "DemandResponse")
DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / ".build" / "__local__.json"
DEFAULT_PAGE_BLOCKS = 5_000
READING_TYPEHASH = keccak(
    text="Reading(bytes32 meterId,uint64 start,uint64 end,uint64 generatedWh,uint64 consumedWh,"
    "uint64 soldWh,uint64 purchasedWh)"
)
# Position of a log on the chain: block << POS_SHIFT | log index (log index is unique per block).
POS_SHIFT = 24

Abi = list[dict[str, Any]]


class EventReadError(RuntimeError):
    """The node refused or failed a log query that paging cannot fix."""


def abis_from_manifest(path: Path = DEFAULT_MANIFEST) -> dict[str, Abi]:
    """Contract ABIs from an Ape project manifest (`.build/__local__.json` after `ape compile`)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `ape compile` in the project first")
    types = json.loads(path.read_text())["contractTypes"]
    missing = [name for name in CONTRACTS if name not in types]
    if missing:
        raise KeyError(f"{path} lacks compiled contracts {missing}: run `ape compile`")
    wanted = [*CONTRACTS, *(name for name in OPTIONAL_CONTRACTS if name in types)]
    return {name: list(types[name]["abi"]) for name in wanted}


def abis_from_ape() -> dict[str, Abi]:
    """Contract ABIs from Ape's compiled project (inside `ape run` / `ape test`)."""
    from ape import project  # imported here: the CLI must not need Ape to start

    abis = {}
    for name in (*CONTRACTS, *OPTIONAL_CONTRACTS):
        try:
            contract_type = project.get_contract(name).contract_type
        except (AttributeError, KeyError, ValueError):
            if name in OPTIONAL_CONTRACTS:
                continue
            raise
        abis[name] = [e.model_dump(mode="json", by_alias=True) for e in contract_type.abi]
    return abis


def _abi_type(item: Mapping[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


_WORD_TYPES = ("uint", "int", "bool", "address", "bytes")


def _is_word(abi_type: str) -> bool:
    """A value type that fills exactly one 32-byte word (not `bytes`, not `string`, no arrays)."""
    if abi_type == "bytes" or "[" in abi_type or abi_type.startswith("("):
        return False
    return abi_type.startswith(_WORD_TYPES)


@lru_cache(maxsize=65_536)
def _address(word: str) -> str:
    return to_checksum_address("0x" + word[-40:])


def _word_decoder(abi_type: str) -> Callable[[str], Any]:
    """Decodes one 64-hex-digit word."""
    if abi_type == "address":
        return _address
    if abi_type == "bool":
        return lambda w: int(w, 16) != 0
    if abi_type.startswith("uint"):
        return lambda w: int(w, 16)
    if abi_type.startswith("int"):
        bits = int(abi_type[3:] or 256)

        def _signed(w: str) -> int:
            value = int(w, 16) & ((1 << bits) - 1)
            return value - (1 << bits) if value >> (bits - 1) else value

        return _signed
    size = int(abi_type[5:])  # bytesN: left-aligned
    return lambda w: "0x" + w[: 2 * size]


def _normalise(abi_type: str, value: Any) -> Any:
    """eth_abi values -> the reader's plain types (hex strings for bytes, checksum addresses)."""
    if isinstance(value, tuple | list):
        inner = abi_type[: abi_type.rindex("[")] if abi_type.endswith("]") else None
        if inner is not None:
            return [_normalise(inner, v) for v in value]
        return tuple(_normalise("", v) for v in value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if abi_type == "address":
        return to_checksum_address(value)
    return value


@dataclass
class EventSpec:
    contract: str
    name: str
    topic0: str
    indexed: list[tuple[str, str]]
    data: list[tuple[str, str]]
    fast: bool
    word_decoders: list[Callable[[str], Any]] = field(default_factory=list)
    topic_decoders: list[Callable[[str], Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.contract}.{self.name}"

    @property
    def columns(self) -> list[str]:
        return [n for n, _ in self.indexed] + [n for n, _ in self.data]


def event_specs(abis: Mapping[str, Abi]) -> dict[tuple[str, str], EventSpec]:
    """(contract, topic0) -> spec for every event of every contract."""
    specs: dict[tuple[str, str], EventSpec] = {}
    for contract, abi in abis.items():
        for entry in abi:
            if entry.get("type") != "event" or entry.get("anonymous"):
                continue
            signature = f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"
            topic0 = "0x" + keccak(text=signature).hex()
            indexed = [(i["name"], _abi_type(i)) for i in entry["inputs"] if i.get("indexed")]
            data = [(i["name"], _abi_type(i)) for i in entry["inputs"] if not i.get("indexed")]
            fast = all(_is_word(t) for _, t in data)
            spec = EventSpec(contract, entry["name"], topic0, indexed, data, fast)
            spec.topic_decoders = [
                _word_decoder(t) if _is_word(t) else (lambda w: "0x" + w) for _, t in indexed
            ]
            if fast:
                spec.word_decoders = [_word_decoder(t) for _, t in data]
            specs[(contract, topic0)] = spec
    return specs


@dataclass
class EventTable:
    """One event's logs as columns. `_pos` orders logs chain-wide; `_tx` groups them by
    transaction (block << POS_SHIFT | transaction index)."""

    spec: EventSpec
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.columns["_pos"])

    @classmethod
    def empty(cls, spec: EventSpec) -> EventTable:
        names = ["_pos", "_tx", *spec.columns]
        if spec.name in ("ReadingRecorded", "ReadingRejected"):
            names.append("_hash")
        return cls(spec, {n: [] for n in names})


@dataclass
class ReadStats:
    pages: int = 0
    retries: int = 0
    logs: int = 0
    first_block: int = 0
    last_block: int = 0


class EventReader:
    """Pages `eth_getLogs` over the deployed contracts and decodes what it gets."""

    def __init__(
        self,
        w3: Any,
        addresses: Mapping[str, str],
        abis: Mapping[str, Abi],
        page_blocks: int = DEFAULT_PAGE_BLOCKS,
        min_page_blocks: int = 1,
    ) -> None:
        if page_blocks < 1:
            raise ValueError("page_blocks: must be at least 1")
        self.w3 = w3
        self.page_blocks = page_blocks
        self.min_page_blocks = min_page_blocks
        self.by_address = {to_checksum_address(a).lower(): n for n, a in addresses.items()}
        self.specs = event_specs({n: abis[n] for n in addresses})
        self.stats = ReadStats()
        # The real hash of every transaction that emitted a log, by its `_tx` key: one entry per
        # transaction (not per log), so a million readings in ten thousand batches cost little.
        self.tx_hashes: dict[int, str] = {}

    def _rpc(self, method: str, params: Sequence[Any]) -> Any:
        response = self.w3.provider.make_request(method, list(params))
        if "error" in response:
            raise EventReadError(f"{method} failed: {response['error']}")
        return response["result"]

    def latest_block(self) -> int:
        return int(self._rpc("eth_blockNumber", []), 16)

    def fetch_page(self, first: int, last: int) -> list[dict[str, Any]]:
        """Raw logs of blocks first..last (inclusive), split further if the node refuses."""
        params = {
            "fromBlock": hex(first),
            "toBlock": hex(last),
            "address": [to_checksum_address(a) for a in self.by_address],
        }
        try:
            logs: list[dict[str, Any]] = self._rpc("eth_getLogs", [params])
        except (EventReadError, OSError, ValueError) as exc:
            # Providers cap results ("query returned more than N results", -32005) or time out.
            if last - first + 1 <= self.min_page_blocks:
                raise EventReadError(
                    f"eth_getLogs refused blocks {first}..{last} even at the smallest page: {exc}"
                ) from exc
            self.stats.retries += 1
            middle = (first + last) // 2
            log.info("eth_getLogs %d..%d refused (%s); splitting the page", first, last, exc)
            return self.fetch_page(first, middle) + self.fetch_page(middle + 1, last)
        self.stats.pages += 1
        return logs

    def read(
        self,
        from_block: int,
        to_block: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, EventTable]:
        """Every event of the contracts in blocks from_block..to_block, keyed 'Contract.Event'."""
        last_block = self.latest_block() if to_block is None else to_block
        self.stats.first_block, self.stats.last_block = from_block, last_block
        tables: dict[str, EventTable] = {}
        for spec in self.specs.values():
            tables[spec.key] = EventTable.empty(spec)
        first = from_block
        while first <= last_block:
            last = min(first + self.page_blocks - 1, last_block)
            raw = self.fetch_page(first, last)
            self._decode_into(raw, tables)
            if progress is not None:
                progress(last - first + 1)
            first = last + 1
        return tables

    def _decode_into(self, raw: Iterable[Mapping[str, Any]], tables: dict[str, EventTable]) -> None:
        specs = self.specs
        for entry in raw:
            if entry.get("removed"):
                continue
            contract = self.by_address.get(entry["address"].lower())
            topics = entry["topics"]
            if contract is None or not topics:
                continue
            spec = specs.get((contract, topics[0]))
            if spec is None:
                log.warning("unknown event %s from %s; ABI out of date?", topics[0], contract)
                continue
            table = tables[spec.key]
            cols = table.columns
            block = int(entry["blockNumber"], 16)
            cols["_pos"].append(block << POS_SHIFT | int(entry["logIndex"], 16))
            tx_key = block << POS_SHIFT | int(entry["transactionIndex"], 16)
            cols["_tx"].append(tx_key)
            if tx_key not in self.tx_hashes:
                self.tx_hashes[tx_key] = str(entry["transactionHash"])
            for (name, _), dec, topic in zip(
                spec.indexed, spec.topic_decoders, topics[1:], strict=True
            ):
                cols[name].append(dec(topic[2:]))
            data: str = entry["data"][2:]
            if spec.fast:
                for i, ((name, _), dec) in enumerate(
                    zip(spec.data, spec.word_decoders, strict=True)
                ):
                    cols[name].append(dec(data[64 * i : 64 * i + 64]))
            else:
                values = abi_decode([t for _, t in spec.data], bytes.fromhex(data))
                for (name, abi_type), value in zip(spec.data, values, strict=True):
                    cols[name].append(_normalise(abi_type, value))
            if spec.name == "ReadingRecorded":
                # EIP-712 hashStruct(Reading): the meter id topic then the six uint64 data words
                # are exactly the struct's encoding.
                cols["_hash"].append(
                    fast_keccak(READING_TYPEHASH + bytes.fromhex(topics[1][2:] + data))
                )
            elif spec.name == "ReadingRejected":
                # data: index, then the static Reading tuple inline (7 words), then the reason.
                cols["_hash"].append(
                    fast_keccak(READING_TYPEHASH + bytes.fromhex(data[64 : 64 * 8]))
                )
            self.stats.logs += 1


def position(block: int, log_index: int) -> int:
    return block << POS_SHIFT | log_index


def block_of(pos: int) -> int:
    return pos >> POS_SHIFT
