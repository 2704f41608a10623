"""Reads what the operator needs straight from the chain (JSON-RPC through web3), paging logs from
the deployment block: recorded readings, members and meters, issued certificates, lot moves and
retirements. Pure decoding; the caller supplies a connected `Web3`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from zcx.deployments import Deployment
from zcx.ids import meter_label

log = logging.getLogger(__name__)

DEFAULT_PAGE_BLOCKS = 5_000
KIND_NAMES = ("household", "public_facility", "business", "generator", "operator")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


READING_RECORDED = _topic("ReadingRecorded(bytes32,uint64,uint64,uint64,uint64,uint64,uint64)")
CERTIFICATE_ISSUED = _topic(
    "CertificateIssued(uint256,bytes32,address,uint256,uint64,uint64,uint64,bytes32)"
)
LOT_MOVED = _topic("LotMoved(address,address,uint256,uint256)")
PAID = _topic("Paid(address,address,uint256,bytes32)")
RETIRED = _topic("Retired(uint256,address,string,uint256,uint64,uint64,string,uint64[],uint256[])")
MEMBER_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "members",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "address[]"}],
    },
    {
        "type": "function",
        "name": "member",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [
            {
                "name": "",
                "type": "tuple",
                "components": [
                    {"name": "name", "type": "string"},
                    {"name": "kind", "type": "uint8"},
                    {"name": "active", "type": "bool"},
                    {"name": "registeredAt", "type": "uint40"},
                ],
            }
        ],
    },
    {
        "type": "function",
        "name": "metersOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "bytes32[]"}],
    },
]


def _address(topic: bytes) -> str:
    return to_checksum_address(bytes(topic)[-20:])


def _int(topic: bytes) -> int:
    return int.from_bytes(bytes(topic), "big")


def iter_logs(
    w3: Any,
    address: str,
    topic0: str,
    from_block: int,
    to_block: int | None = None,
    page_blocks: int = DEFAULT_PAGE_BLOCKS,
) -> Iterator[Any]:
    """Logs of one event of one contract, paged; a page the node refuses is split in halves."""
    last = w3.eth.block_number if to_block is None else to_block
    start = from_block
    step = page_blocks
    while start <= last:
        end = min(start + step - 1, last)
        try:
            logs = w3.eth.get_logs(
                {
                    "address": to_checksum_address(address),
                    "topics": [topic0],
                    "fromBlock": start,
                    "toBlock": end,
                }
            )
        except ValueError as exc:  # providers answer "too many results" as a JSON-RPC error
            if end == start:
                raise
            step = max(1, (end - start + 1) // 2)
            log.info("get_logs %s..%s refused (%s); retrying with %s blocks", start, end, exc, step)
            continue
        yield from logs
        start = end + 1


def readings(w3: Any, deployment: Deployment, to_block: int | None = None) -> pd.DataFrame:
    """Every ReadingRecorded: meter_id (label), start, end, generated/consumed/sold/purchased Wh,
    block, ordered by meter and start."""
    rows = []
    for entry in iter_logs(
        w3,
        deployment.address("GenerationRegistry"),
        READING_RECORDED,
        deployment.deployment_block,
        to_block,
    ):
        data = bytes(entry["data"])
        words = [int.from_bytes(data[i : i + 32], "big") for i in range(0, 192, 32)]
        rows.append((meter_label(bytes(entry["topics"][1])), *words, entry["blockNumber"]))
    columns = [
        "meter_id",
        "start",
        "end",
        "generated_wh",
        "consumed_wh",
        "sold_wh",
        "purchased_wh",
        "block",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["meter_id", "start"], ignore_index=True)


def members(w3: Any, deployment: Deployment, block: int | str = "latest") -> pd.DataFrame:
    """Members and their meters: account, name, kind (name), active, meter_id (label).
    A member without meters has one row with meter_id None."""
    contract = w3.eth.contract(
        address=to_checksum_address(deployment.address("MemberRegistry")), abi=MEMBER_ABI
    )
    rows = []
    for account in contract.functions.members().call(block_identifier=block):
        name, kind, active, _ = contract.functions.member(account).call(block_identifier=block)
        meters = contract.functions.metersOf(account).call(block_identifier=block)
        kind_name = KIND_NAMES[kind] if kind < len(KIND_NAMES) else f"kind{kind}"
        for meter in meters or [None]:
            label = meter_label(bytes(meter)) if meter is not None else None
            rows.append((to_checksum_address(account), name, kind_name, bool(active), label))
    return pd.DataFrame(rows, columns=["account", "name", "kind", "active", "meter_id"])


def certificates(w3: Any, deployment: Deployment, to_block: int | None = None) -> pd.DataFrame:
    """Every CertificateIssued: certificate_id, meter_id, to, units, wh, period_start/end."""
    rows = []
    for entry in iter_logs(
        w3,
        deployment.address("ZeroCarbonValue"),
        CERTIFICATE_ISSUED,
        deployment.deployment_block,
        to_block,
    ):
        units, wh, start, end, _ = decode(
            ["uint256", "uint64", "uint64", "uint64", "bytes32"], bytes(entry["data"])
        )
        topics = entry["topics"]
        rows.append(
            (
                _int(topics[1]),
                meter_label(bytes(topics[2])),
                _address(topics[3]),
                units,
                wh,
                start,
                end,
                entry["blockNumber"],
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "certificate_id",
            "meter_id",
            "to",
            "units",
            "wh",
            "period_start",
            "period_end",
            "block",
        ],
    )


def lot_moves(w3: Any, deployment: Deployment, to_block: int | None = None) -> pd.DataFrame:
    """Every LotMoved: from, to, certificate_id, units, block, tx, log index (mint: from is zero;
    retirement: to is zero)."""
    rows = []
    for entry in iter_logs(
        w3, deployment.address("ZeroCarbonValue"), LOT_MOVED, deployment.deployment_block, to_block
    ):
        topics = entry["topics"]
        (units,) = decode(["uint256"], bytes(entry["data"]))
        rows.append(
            (
                _address(topics[1]),
                _address(topics[2]),
                _int(topics[3]),
                units,
                entry["blockNumber"],
                "0x" + bytes(entry["transactionHash"]).hex(),
                entry["logIndex"],
            )
        )
    return pd.DataFrame(
        rows, columns=["from", "to", "certificate_id", "units", "block", "tx", "log_index"]
    )


@dataclass(frozen=True)
class Retirement:
    retirement_id: int
    holder: str
    beneficiary: str
    units: int
    consumption_start: int
    consumption_end: int
    reason: str
    certificate_ids: tuple[int, ...]
    certificate_units: tuple[int, ...]
    block: int
    tx: str


def retirements(w3: Any, deployment: Deployment, to_block: int | None = None) -> list[Retirement]:
    out = []
    for entry in iter_logs(
        w3, deployment.address("ZeroCarbonValue"), RETIRED, deployment.deployment_block, to_block
    ):
        beneficiary, units, start, end, reason, ids, amounts = decode(
            ["string", "uint256", "uint64", "uint64", "string", "uint64[]", "uint256[]"],
            bytes(entry["data"]),
        )
        topics = entry["topics"]
        out.append(
            Retirement(
                _int(topics[1]),
                _address(topics[2]),
                beneficiary,
                units,
                start,
                end,
                reason,
                tuple(ids),
                tuple(amounts),
                entry["blockNumber"],
                "0x" + bytes(entry["transactionHash"]).hex(),
            )
        )
    return out


def payments(w3: Any, deployment: Deployment, to_block: int | None = None) -> pd.DataFrame:
    """Every Paid: from, to, units, payment_reference (hex)."""
    rows = []
    for entry in iter_logs(
        w3, deployment.address("ZeroCarbonValue"), PAID, deployment.deployment_block, to_block
    ):
        topics = entry["topics"]
        (units,) = decode(["uint256"], bytes(entry["data"]))
        rows.append(
            (
                _address(topics[1]),
                _address(topics[2]),
                units,
                "0x" + bytes(topics[3]).hex(),
                entry["blockNumber"],
            )
        )
    return pd.DataFrame(rows, columns=["from", "to", "units", "payment_reference", "block"])
