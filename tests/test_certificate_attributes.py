"""Static attributes of hourly (schema-2) certificates: the token leaves owner, method, zone and
capacity to the member registry; every reader (SDK, portal, statements, audit) resolves them
through zcx.certificates.static_attributes. (The statement of an hourly certificate is tested in
test_statements.test_retirement_entry_matches_the_chain.)"""

from __future__ import annotations

import pytest
from audit_support import deployment_of
from conftest import INTERVAL, reading
from market_support import SOLAR, WIND, list_lots
from registry_helpers import claim_hourly
from zcv_support import reverts_with

from zcx.audit.events import abis_from_ape
from zcx.audit.run import audit
from zcx.certificates import (
    MEMBER_LOOKUP_ABI,
    StaticAttributes,
    Web3MemberDirectory,
    static_attributes,
)
from zcx.holder import ZcxClient, _project
from zcx.ids import meter_id
from zcx.statements import ChainReader

pytest_plugins = ["market_support"]  # the market fixtures

ALICE = ("Alice Tanaka", 0, "TEPCO-13", 5_000)  # owner name, Solar, zone, capacity (conftest)


@pytest.fixture
def zcx_client(registered, chain):
    return ZcxClient(deployment_of(registered, chain), _project())


def _claim_alice_hour(registered, submit, alice, epoch):
    submit([reading("ALICE-PV", epoch + i * INTERVAL, gen=900) for i in range(2)])
    claim_hourly(registered.exchange, registered.registry, meter_id("ALICE-PV"), sender=alice)
    assert registered.zcv.certificate(1).schemaVersion == 2
    assert registered.zcv.certificate(1).ownerName == "", "schema 2 does not copy the owner"


def _abi_shape(items):
    """Names and types, recursively (internalType differs between compiler outputs)."""
    return [
        (i.get("name", ""), i["type"], _abi_shape(i.get("components", []))) for i in items or []
    ]


def test_lookup_abi_matches_the_compiled_contracts():
    abis = abis_from_ape()
    compiled = {
        e["name"]: e
        for name in ("GenerationRegistry", "MemberRegistry")
        for e in abis[name]
        if e["type"] == "function" and e["name"] in ("memberRegistry", "meter", "member")
    }
    for fragment in MEMBER_LOOKUP_ABI:
        ours = compiled[fragment["name"]]
        assert _abi_shape(fragment["inputs"]) == _abi_shape(ours["inputs"]), fragment["name"]
        assert _abi_shape(fragment["outputs"]) == _abi_shape(ours["outputs"]), fragment["name"]


def test_schema_1_keeps_its_copied_attributes():
    class NoRegistry:
        def meter(self, registry, meter_id):
            raise AssertionError("schema 1 must not read the member registry")

        member_name = meter

    record = {
        "schemaVersion": 1,
        "registry": "0x" + "11" * 20,
        "meterId": b"\0" * 32,
        "ownerName": "Old Co",
        "method": 1,
        "zone": "KEPCO-27",
        "capacityW": 7,
    }
    assert static_attributes(record, NoRegistry()) == StaticAttributes("Old Co", 1, "KEPCO-27", 7)


def test_directory_follows_the_certificates_registry_to_its_members(
    registered, submit, alice, epoch, chain
):
    _claim_alice_hour(registered, submit, alice, epoch)
    w3 = chain.provider.web3
    reader = ChainReader(w3, str(registered.zcv.address), abis_from_ape()["ZeroCarbonValue"])
    record = reader.certificate_record(1)
    assert static_attributes(record, Web3MemberDirectory(w3)) == StaticAttributes(*ALICE)


def test_sdk_and_audit_name_an_hourly_certificates_owner_zone_and_capacity(
    registered, submit, alice, epoch, chain, zcx_client
):
    _claim_alice_hour(registered, submit, alice, epoch)
    view = zcx_client.certificate(1)
    assert (view.owner_name, view.method, view.zone, view.capacity_w) == (
        "Alice Tanaka",
        "Solar",
        "TEPCO-13",
        5_000,
    )
    ledger = audit(chain.provider.web3, deployment_of(registered, chain), abis_from_ape()).ledger
    row = ledger.certificates.set_index("certificate_id").loc[1]
    assert (row["owner_name"], row["cert_method"], row["cert_zone"], row["cert_capacity_w"]) == (
        "Alice Tanaka",
        "Solar",
        "TEPCO-13",
        5_000,
    )


def test_market_method_restriction_sees_an_hourly_certificates_method(
    registered, submit, operator, bob, epoch, market, chain
):
    """The market checks a listing's method restriction against `certificate(id).method`, which
    schema 2 reads from the member registry: a wind meter's hourly certificate is Wind."""
    mid = meter_id("BOB-WIND")
    registered.members.registerMeter(mid, bob, WIND, 20_000, "HEPCO-01", epoch, sender=operator)
    submit([reading("BOB-WIND", epoch + i * INTERVAL, gen=4500) for i in range(2)])
    claim_hourly(registered.exchange, registered.registry, mid, sender=bob)
    assert registered.zcv.certificate(1).method == SOLAR, "left empty (0) by the token's view"
    with reverts_with("MarketCertificateOutsideRestriction", certificateId=1):
        list_lots(market, bob, [(1, 100)], method=SOLAR, chain=chain)
    listing = list_lots(market, bob, [(1, 100)], method=WIND, chain=chain)
    assert market.listing(listing).method == WIND
