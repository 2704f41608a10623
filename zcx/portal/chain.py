"""Live reads the index cannot answer (balances, lots, one certificate) and the dry run of a form's
call, through plain web3 over any JSON-RPC node.

The portal is a long-running web server: it talks raw JSON-RPC through web3 with the compiled
ABIs (as zcx.operator and zcx.audit do) rather than through an Ape provider, which is a
process-wide connection meant for scripts. Errors decode with the SDK's decoder and sentences
(zcx.errors, zcx.holder.humanize), so the portal says what `zcx holder` says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError

from zcx.audit.events import Abi
from zcx.certificates import Web3MemberDirectory, static_attributes
from zcx.deployments import Deployment
from zcx.errors import DecodedError, ErrorDecoder
from zcx.holder import GENERATION_METHODS, describe_meter, humanize
from zcx.portal.forms import ContractCall

log = logging.getLogger(__name__)

LOT_PAGE = 100


@dataclass(frozen=True)
class Holdings:
    total_units: int
    frozen_units: int
    purchased: int
    used: int
    amortized: int
    balance: int

    @property
    def free_units(self) -> int:
        return self.total_units - self.frozen_units


class PortalChain:
    """web3 contracts of one deployment, and the error decoder of their ABIs."""

    def __init__(self, w3: Web3, deployment: Deployment, abis: Mapping[str, Abi]) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.abis = abis
        self.zcv = self._contract("ZeroCarbonValue")
        self.members = self._contract("MemberRegistry")
        self.decoder = ErrorDecoder(abis.values())
        self.directory = Web3MemberDirectory(w3)
        self._zcv_functions = {
            e["name"]: len(e["inputs"]) for e in abis["ZeroCarbonValue"] if e["type"] == "function"
        }

    def _contract(self, name: str) -> Any:
        return self.w3.eth.contract(
            address=to_checksum_address(self.deployment.address(name)), abi=self.abis[name]
        )

    def address(self, name: str) -> str:
        return to_checksum_address(self.deployment.address(name))

    @property
    def dr_address(self) -> str | None:
        address = self.deployment.contracts.get("DemandResponse")
        return to_checksum_address(address) if address and "DemandResponse" in self.abis else None

    def dr_reader(self) -> Any:
        """An EventReader over the DemandResponse contract alone (few logs: read on demand)."""
        from zcx.audit.events import EventReader

        address = self.dr_address
        if address is None:
            return None
        return EventReader(self.w3, {"DemandResponse": address}, self.abis)

    def head_time(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    @property
    def operator(self) -> str:
        return str(self.deployment.roles.get("operator") or "0x" + "00" * 20)

    # -- reads

    def holdings(self, holder: str, revoked: set[int] | None = None) -> Holdings:
        """Balance, frozen units (of revoked certificates) and the Fig. 6 counters."""
        holder = to_checksum_address(holder)
        calls = [self.zcv.functions.balanceOf(holder), self.zcv.functions.counters(holder)]
        v2 = "frozenBalanceOf" in self._zcv_functions
        if v2:
            calls.append(self.zcv.functions.frozenBalanceOf(holder))
        # One HTTP round trip for the two or three views (a JSON-RPC batch).
        with self.w3.batch_requests() as batch:
            for call in calls:
                batch.add(call)
            answers: list[Any] = list(batch.execute())
        total = int(answers[0])
        purchased, used, amortized, balance = answers[1]
        if v2:
            frozen = int(answers[2])
        elif revoked:  # ledger v1: frozen units are the lots of revoked certificates
            frozen = sum(u for c, u in self.lots(holder, 0, 10_000) if c in revoked)
        else:
            frozen = 0
        return Holdings(total, frozen, int(purchased), int(used), int(amortized), int(balance))

    def lots(self, holder: str, offset: int, limit: int) -> list[tuple[int, int]]:
        """(certificate id, units) of `holder`'s lots, a page at a time where the token pages."""
        holder = to_checksum_address(holder)
        if self._zcv_functions.get("lotsOf") == 3:
            raw = self.zcv.functions.lotsOf(holder, offset, limit).call()
        else:
            raw = self.zcv.functions.lotsOf(holder).call()[offset : offset + limit]
        return [(int(lot[0]), int(lot[1])) for lot in raw]

    def lot_count(self, holder: str) -> int:
        holder = to_checksum_address(holder)
        if "lotCount" in self._zcv_functions:
            return int(self.zcv.functions.lotCount(holder).call())
        return len(self.zcv.functions.lotsOf(holder).call())

    def certificate(self, certificate_id: int) -> dict[str, Any] | None:
        """The token's own record of a certificate (None when there is no such id)."""
        try:
            c = self.zcv.functions.certificate(certificate_id).call()
        except ContractLogicError:
            return None
        names = [
            o["name"]
            for o in next(
                e for e in self.abis["ZeroCarbonValue"] if e.get("name") == "certificate"
            )["outputs"][0]["components"]
        ]
        record = dict(zip(names, c, strict=True))
        attrs = static_attributes(record, self.directory)
        record.update(ownerName=attrs.owner_name, zone=attrs.zone, capacityW=attrs.capacity_w)
        record["meterId"] = describe_meter(bytes(record["meterId"]))
        record["method"] = GENERATION_METHODS[attrs.method]
        record["evidence"] = "0x" + bytes(record["evidence"]).hex()
        return record

    # -- dry run

    def simulate(self, sender: str, call: ContractCall) -> DecodedError | None:
        """eth_call of the form's call from `sender`: the custom error it would revert with, or
        None. Nothing is signed or sent."""
        contract = self.w3.eth.contract(
            address=to_checksum_address(call.contract), abi=[_function_abi(call.signature)]
        )
        args = [_arg(a) for a in call.args]
        data = contract.encode_abi(call.method, args)
        try:
            self.w3.eth.call(
                {"from": to_checksum_address(sender), "to": call.contract, "data": data}
            )
        except ContractLogicError as err:
            raw = err.data.get("data") if isinstance(err.data, dict) else err.data
            return self.decode(raw, str(err))
        return None

    def decode(self, raw: Any, fallback: str) -> DecodedError:
        if isinstance(raw, str) and raw.startswith("0x") and len(raw) >= 10:
            return humanize(self.decoder.decode(bytes.fromhex(raw[2:])))
        return DecodedError("Reverted", {"message": fallback})


def _arg(value: Any) -> Any:
    """JSON arguments back to ABI values (decimal-string integers, 0x-hex bytes32)."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        return bytes.fromhex(value[2:])
    return value


def _function_abi(signature: str) -> dict[str, Any]:
    """'transfer(address to,uint256 value)' -> an ABI entry."""
    name, _, rest = signature.partition("(")
    inputs = []
    for part in rest.rstrip(")").split(","):
        abi_type, _, arg_name = part.strip().partition(" ")
        inputs.append({"type": abi_type, "name": arg_name})
    return {
        "type": "function",
        "name": name,
        "inputs": inputs,
        "outputs": [],
        "stateMutability": "nonpayable",
    }
