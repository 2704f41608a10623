"""Where a certificate's static attributes (owner name, method, zone, capacity) live.

Schema 1 copied them into every certificate. Schema 2 (hourly, issue 12) references them from the
member registry instead of copying them into thousands of one-hour certificates, so the token's
`certificate(id)` view leaves them empty (ZCV is within a few hundred bytes of the contract size
limit; on chain, the market reads the method from the member registry itself). Every reader here
(the SDK, the portal, the statements, the audit) resolves them through `static_attributes`, so no
reader shows an hourly certificate with a blank owner or zone.

The registry holds a meter's attributes as they are now: a zone or capacity updated after the
hour shows its new value (the audit's meter history keeps the old ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils import to_checksum_address

# ZeroCarbonValue.HOURLY_SCHEMA_VERSION: the first schema that references the member registry.
HOURLY_SCHEMA_VERSION = 2

# The `certificate(id)` fields `static_attributes` reads.
CERTIFICATE_FIELDS = (
    "schemaVersion",
    "registry",
    "meterId",
    "ownerName",
    "method",
    "zone",
    "capacityW",
)

# The three member-registry views the lookup needs (IGenerationRegistry.memberRegistry,
# IMemberRegistry.meter and .member); tests/test_certificates_static.py checks them against the
# compiled ABIs. Kept here so a reader holding only ZCV's ABI (statements) can follow the chain.
MEMBER_LOOKUP_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "memberRegistry",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "address", "internalType": "contract IMemberRegistry"}],
    },
    {
        "type": "function",
        "name": "meter",
        "stateMutability": "view",
        "inputs": [{"name": "meterId", "type": "bytes32", "internalType": "bytes32"}],
        "outputs": [
            {
                "name": "",
                "type": "tuple",
                "internalType": "struct IMemberRegistry.Meter",
                "components": [
                    {
                        "name": "spec",
                        "type": "tuple",
                        "internalType": "struct IMemberRegistry.MeterSpec",
                        "components": [
                            {"name": "owner", "type": "address", "internalType": "address"},
                            {"name": "capacityW", "type": "uint32", "internalType": "uint32"},
                            {"name": "commissionedAt", "type": "uint40", "internalType": "uint40"},
                            {
                                "name": "method",
                                "type": "uint8",
                                "internalType": "enum IMemberRegistry.GenerationMethod",
                            },
                            {"name": "active", "type": "bool", "internalType": "bool"},
                            {"name": "flagged", "type": "bool", "internalType": "bool"},
                        ],
                    },
                    {"name": "zone", "type": "string", "internalType": "string"},
                ],
            }
        ],
    },
    {
        "type": "function",
        "name": "member",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address", "internalType": "address"}],
        "outputs": [
            {
                "name": "",
                "type": "tuple",
                "internalType": "struct IMemberRegistry.Member",
                "components": [
                    {"name": "name", "type": "string", "internalType": "string"},
                    {
                        "name": "kind",
                        "type": "uint8",
                        "internalType": "enum IMemberRegistry.MemberKind",
                    },
                    {"name": "active", "type": "bool", "internalType": "bool"},
                    {"name": "registeredAt", "type": "uint40", "internalType": "uint40"},
                ],
            }
        ],
    },
]


@dataclass(frozen=True)
class StaticAttributes:
    owner_name: str
    method: int  # IMemberRegistry.GenerationMethod
    zone: str
    capacity_w: int


@dataclass(frozen=True)
class MeterRecord:
    owner: str
    method: int
    zone: str
    capacity_w: int


class MemberDirectory(Protocol):
    """The member registry as a certificate reader needs it."""

    def meter(self, registry: str, meter_id: bytes) -> MeterRecord: ...

    def member_name(self, registry: str, owner: str) -> str: ...


def static_attributes(record: Mapping[str, Any], directory: MemberDirectory) -> StaticAttributes:
    """The attributes of a `certificate(id)` record (ABI field names: schemaVersion, registry,
    meterId, ownerName, method, zone, capacityW): copied ones for schema 1, the member
    registry's for schema 2 and later."""
    if int(record["schemaVersion"]) < HOURLY_SCHEMA_VERSION:
        return StaticAttributes(
            owner_name=str(record["ownerName"]),
            method=int(record["method"]),
            zone=str(record["zone"]),
            capacity_w=int(record["capacityW"]),
        )
    registry = str(record["registry"])
    meter = directory.meter(registry, bytes(record["meterId"]))
    return StaticAttributes(
        owner_name=directory.member_name(registry, meter.owner),
        method=meter.method,
        zone=meter.zone,
        capacity_w=meter.capacity_w,
    )


class Web3MemberDirectory:
    """Follows a certificate's generation registry to its member registry over plain web3
    (`registry.memberRegistry()`, then `meter(id)` and `member(owner)`), caching each answer:
    a statement or a certificates page names many certificates of few meters."""

    def __init__(self, w3: Any) -> None:
        self._w3 = w3
        self._member_registries: dict[str, Any] = {}
        self._meters: dict[tuple[str, bytes], MeterRecord] = {}
        self._names: dict[tuple[str, str], str] = {}

    def _members(self, registry: str) -> Any:
        key = registry.lower()
        if key not in self._member_registries:
            generation = self._contract(registry)
            self._member_registries[key] = self._contract(
                generation.functions.memberRegistry().call()
            )
        return self._member_registries[key]

    def _contract(self, address: str) -> Any:
        return self._w3.eth.contract(address=to_checksum_address(address), abi=MEMBER_LOOKUP_ABI)

    def meter(self, registry: str, meter_id: bytes) -> MeterRecord:
        key = (registry.lower(), meter_id)
        if key not in self._meters:
            spec, zone = self._members(registry).functions.meter(meter_id).call()
            owner, capacity_w, _commissioned, method, _active, _flagged = spec
            self._meters[key] = MeterRecord(str(owner), int(method), str(zone), int(capacity_w))
        return self._meters[key]

    def member_name(self, registry: str, owner: str) -> str:
        key = (registry.lower(), owner.lower())
        if key not in self._names:
            member = self._members(registry).functions.member(to_checksum_address(owner)).call()
            self._names[key] = str(member[0])
        return self._names[key]


@dataclass
class CallableDirectory:
    """A directory from two callables, for readers that already hold the member registry (the
    SDK's Ape contracts, the audit's event tables)."""

    read_meter: Callable[[str, bytes], MeterRecord]
    read_member_name: Callable[[str, str], str]

    def meter(self, registry: str, meter_id: bytes) -> MeterRecord:
        return self.read_meter(registry, meter_id)

    def member_name(self, registry: str, owner: str) -> str:
        return self.read_member_name(registry, owner)
