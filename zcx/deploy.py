"""Deploys and wires the four contracts. Used by `ape run deploy`, the tests and the benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ape import chain, project

from zcx.deployments import Deployment
from zcx.errors import ErrorDecoder

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 1800
DEFAULT_CAPACITY_MARGIN_BPS = 1000  # 10 % above nameplate: inverter overload, cold clear days
DEFAULT_EXPIRY_MONTHS = 24  # issue 12: certificates expire 24 months after their hour ends


@dataclass
class Contracts:
    """The deployed contracts as Ape contract instances."""

    members: Any
    registry: Any
    zcv: Any
    exchange: Any

    def addresses(self) -> dict[str, str]:
        return {
            "MemberRegistry": str(self.members.address),
            "GenerationRegistry": str(self.registry.address),
            "ZeroCarbonValue": str(self.zcv.address),
            "ValueExchange": str(self.exchange.address),
        }


def deploy_all(
    deployer: Any,
    operator: str,
    signers: Sequence[str],
    quorum: int,
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
    capacity_margin_bps: int = DEFAULT_CAPACITY_MARGIN_BPS,
    expiry_months: int = DEFAULT_EXPIRY_MONTHS,
) -> tuple[Contracts, int]:
    """Deploys MemberRegistry, GenerationRegistry, ZeroCarbonValue and ValueExchange and grants:
    registry CLAIMER_ROLE and token ISSUER_ROLE to the exchange; OPERATOR/REVOKER to `operator`.
    The deployer keeps DEFAULT_ADMIN_ROLE everywhere. ZCV's certificates expire `expiry_months`
    months (1/12 of 365.2425 days each) after their hour. Returns the contracts and the first
    block."""
    first_block = chain.blocks.height + 1
    members = deployer.deploy(project.MemberRegistry, deployer, operator)
    registry = deployer.deploy(
        project.GenerationRegistry,
        deployer,
        members,
        list(signers),
        quorum,
        interval_seconds,
        capacity_margin_bps,
    )
    zcv = deployer.deploy(project.ZeroCarbonValue, deployer, operator, expiry_months)
    exchange = deployer.deploy(project.ValueExchange, deployer, zcv)
    registry.grantRole(registry.CLAIMER_ROLE(), exchange, sender=deployer)
    zcv.grantRole(zcv.ISSUER_ROLE(), exchange, sender=deployer)
    exchange.acceptRegistry(registry, sender=deployer)
    return Contracts(members, registry, zcv, exchange), first_block


def describe(
    contracts: Contracts,
    first_block: int,
    network: str,
    admin: str,
    operator: str,
    signers: Sequence[str],
    quorum: int,
) -> Deployment:
    block = chain.blocks[first_block]
    return Deployment(
        chain_id=chain.chain_id,
        network=network,
        deployment_block=first_block,
        deployment_block_hash=block.hash.hex()
        if isinstance(block.hash, bytes)
        else str(block.hash),
        contracts=contracts.addresses(),
        roles={"admin": admin, "operator": operator, "oracle_signers": list(signers)},
        config={
            "quorum": quorum,
            "interval_seconds": int(contracts.registry.intervalSeconds()),
            "capacity_margin_bps": int(contracts.registry.capacityMarginBps()),
            "expiry_months": int(contracts.zcv.expiryMonths()),
        },
    )


def is_live(deployment: Deployment) -> bool:
    """True when this chain still holds the recorded deployment (same block hash, code present)."""
    if deployment.chain_id != chain.chain_id or chain.blocks.height < deployment.deployment_block:
        return False
    block = chain.blocks[deployment.deployment_block]
    block_hash = block.hash.hex() if isinstance(block.hash, bytes) else str(block.hash)
    if block_hash.removeprefix("0x") != deployment.deployment_block_hash.removeprefix("0x"):
        return False
    return all(chain.provider.get_code(address) for address in deployment.contracts.values())


def attach(deployment: Deployment) -> Contracts:
    """Ape contract instances for a recorded deployment."""
    c = deployment.contracts
    return Contracts(
        members=project.MemberRegistry.at(c["MemberRegistry"]),
        registry=project.GenerationRegistry.at(c["GenerationRegistry"]),
        zcv=project.ZeroCarbonValue.at(c["ZeroCarbonValue"]),
        exchange=project.ValueExchange.at(c["ValueExchange"]),
    )


def error_decoder() -> ErrorDecoder:
    """Decoder for every custom error of the project's contracts (and OpenZeppelin's)."""

    abis = []
    for name in (
        "MemberRegistry",
        "GenerationRegistry",
        "ZeroCarbonValue",
        "ValueExchange",
        "ZcvMarket",
        "DemandResponse",
        "MockYenToken",
    ):
        contract = project.get_contract(name)
        if contract is None:  # a contract left out of this build (see ape-config.yaml)
            continue
        contract_type = contract.contract_type
        abis.append([entry.model_dump(mode="json", by_alias=True) for entry in contract_type.abi])
    return ErrorDecoder(abis)
