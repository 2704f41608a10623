"""Shared fixtures: a full deployment on Anvil, oracle keys, members and meters.

Ape isolates every test in a chain snapshot, so session-scoped deployments are cheap and clean.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pytest
from clock_support import epoch_for
from eth_account import Account
from eth_utils import keccak
from hypothesis import settings

from zcx.deploy import Contracts, deploy_all, error_decoder
from zcx.eip712 import Reading, sign_quorum
from zcx.errors import ErrorDecoder
from zcx.ids import meter_id

# CI runs every Hypothesis test with a fixed seed (derandomize), so a red run can be re-run and
# debugged; locally examples stay random to keep finding new cases.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

INTERVAL = 1800
SOLAR = 0
HOUSEHOLD, PUBLIC_FACILITY, BUSINESS, GENERATOR, OPERATOR = range(5)


@pytest.fixture(autouse=True)
def _display_zone_per_test():
    """A test's --tz (a CLI run in-process) must not change how the next test reads dates."""
    from zcx import domain

    yield
    domain.set_display_zone(None)


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def operator(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def submitter(accounts):
    """Any account may submit a signed batch; the signatures carry the authority."""
    return accounts[2]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def bob(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def carol(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def oracle_keys() -> list[bytes]:
    """Three deterministic oracle keys (they only sign; they never send transactions)."""
    return [keccak(text=f"zcx-test-oracle-{i}") for i in range(3)]


@pytest.fixture(scope="session")
def oracle_addresses(oracle_keys) -> list[str]:
    return [Account.from_key(k).address for k in oracle_keys]


@pytest.fixture(scope="session")
def zcx(admin, operator, oracle_addresses) -> Contracts:
    """2-of-3 oracle quorum, 30-minute intervals, 10 % capacity margin."""
    contracts, _ = deploy_all(admin, operator.address, oracle_addresses, quorum=2)
    return contracts


@pytest.fixture(scope="session")
def decoder() -> ErrorDecoder:
    return error_decoder()


@pytest.fixture(scope="session")
def epoch(chain) -> int:
    """An hour-aligned time well in the past, so readings from it on are not in the future (and
    two readings from it make one hourly certificate)."""
    return epoch_for(chain.pending_timestamp)


@pytest.fixture(scope="session")
def registered(zcx, operator, alice, bob, epoch):
    """Alice (household, 5 kW PV meter ALICE-PV) and Bob (business, 50 kW PV meter BOB-PV)."""
    zcx.members.registerMember(alice, "Alice Tanaka", HOUSEHOLD, sender=operator)
    zcx.members.registerMember(bob, "Bob Shoten KK", BUSINESS, sender=operator)
    zcx.members.registerMeter(
        meter_id("ALICE-PV"), alice, SOLAR, 5_000, "TEPCO-13", epoch - 86400, sender=operator
    )
    zcx.members.registerMeter(
        meter_id("BOB-PV"), bob, SOLAR, 50_000, "TEPCO-13", epoch - 86400, sender=operator
    )
    return zcx


def reading(
    label: str, start: int, gen: int = 1000, cons: int = 400, sold: int = 600, bought: int = 0
) -> Reading:
    return Reading(meter_id(label), start, start + INTERVAL, gen, cons, sold, bought)


@pytest.fixture
def submit(registered, submitter, oracle_keys, chain) -> Callable[..., object]:
    """Signs `readings` with `keys` (default: oracles 0 and 1) and submits them."""

    def _submit(readings: Sequence[Reading], keys: Sequence[bytes] | None = None, sender=None):
        signatures = sign_quorum(
            readings, chain.chain_id, str(registered.registry.address), keys or oracle_keys[:2]
        )
        return registered.registry.submitBatch(
            [r.as_tuple() for r in readings], signatures, sender=sender or submitter
        )

    return _submit
