"""MemberRegistry: members, meters, the operator's role, every custom error, and the events."""

from __future__ import annotations

from typing import Any

import pytest
from ape.exceptions import ContractLogicError, CustomError
from conftest import BUSINESS, GENERATOR, HOUSEHOLD, OPERATOR, PUBLIC_FACILITY, SOLAR
from registry_helpers import reverts_with, view_error

from zcx.ids import meter_id

WIND, GEOTHERMAL, BIOMASS, HYDRO = 1, 2, 3, 4
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_ID = b"\x00" * 32
CAROL_PV = meter_id("CAROL-PV")


def add_member(members: Any, operator: Any, account: Any, name: str = "Carol", kind: int = 1):
    return members.registerMember(account, name, kind, sender=operator)


def add_meter(
    members: Any,
    operator: Any,
    owner: Any,
    mid: bytes = CAROL_PV,
    method: int = SOLAR,
    capacity_w: int = 10_000,
    zone: str = "KANSAI-27",
    commissioned_at: int = 1_700_000_000,
):
    return members.registerMeter(
        mid, owner, method, capacity_w, zone, commissioned_at, sender=operator
    )


def spec_of(members: Any, mid: bytes) -> tuple[Any, ...]:
    s = members.meterSpec(mid)
    return (s.owner, s.capacityW, s.commissionedAt, s.method, s.active, s.flagged)


# ------------------------------------------------------------------------------------ members


def test_register_member_records_it_and_emits_event(zcx, operator, carol, chain):
    listed = zcx.members.members()
    tx = add_member(zcx.members, operator, carol, "Carol Shogakko", PUBLIC_FACILITY)

    assert tx.events == [
        zcx.members.MemberRegistered(account=carol, name="Carol Shogakko", kind=PUBLIC_FACILITY)
    ]
    m = zcx.members.member(carol)
    assert (m.name, m.kind, m.active) == ("Carol Shogakko", PUBLIC_FACILITY, True)
    assert m.registeredAt == chain.blocks[tx.block_number].timestamp
    assert zcx.members.isMember(carol)
    assert zcx.members.members() == [*listed, carol.address]


@pytest.mark.parametrize("kind", [HOUSEHOLD, PUBLIC_FACILITY, BUSINESS, GENERATOR, OPERATOR])
def test_every_member_kind_can_be_registered(zcx, operator, carol, kind):
    add_member(zcx.members, operator, carol, "Carol", kind)
    assert zcx.members.member(carol).kind == kind


def test_member_kind_outside_enum_is_refused(zcx, operator, carol):
    # ABI decoding of the enum argument reverts before any custom error can be raised.
    with pytest.raises(ContractLogicError) as excinfo:
        add_member(zcx.members, operator, carol, "Carol", OPERATOR + 1)
    assert not isinstance(excinfo.value, CustomError)
    assert not zcx.members.isMember(carol)


def test_members_are_listed_in_registration_order(zcx, operator, accounts):
    listed = zcx.members.members()
    newcomers = [accounts[8], accounts[6], accounts[7]]
    for account in newcomers:
        add_member(zcx.members, operator, account)
    assert zcx.members.members() == [*listed, *(a.address for a in newcomers)]


def test_register_member_rejects_zero_account(zcx, operator):
    with reverts_with(zcx.members.MembersZeroAccount):
        add_member(zcx.members, operator, ZERO_ADDRESS)


def test_register_member_rejects_empty_name(zcx, operator, carol):
    with reverts_with(zcx.members.MembersEmptyName):
        add_member(zcx.members, operator, carol, "")
    assert not zcx.members.isMember(carol)


def test_register_member_twice_is_refused(registered, operator, alice):
    with reverts_with(registered.members.MembersAlreadyRegistered, account=alice.address):
        add_member(registered.members, operator, alice, "Alice again", BUSINESS)
    assert registered.members.member(alice).name == "Alice Tanaka"


def test_deactivated_member_cannot_be_registered_again(registered, operator, alice):
    registered.members.setMemberActive(alice, False, sender=operator)
    with reverts_with(registered.members.MembersAlreadyRegistered, account=alice.address):
        add_member(registered.members, operator, alice)


def test_update_member_changes_name_and_kind_only(registered, operator, alice):
    before = registered.members.member(alice)
    listed = registered.members.members()
    tx = registered.members.updateMember(alice, "Tanaka Family", GENERATOR, sender=operator)

    assert tx.events == [
        registered.members.MemberUpdated(account=alice, name="Tanaka Family", kind=GENERATOR)
    ]
    after = registered.members.member(alice)
    assert (after.name, after.kind) == ("Tanaka Family", GENERATOR)
    assert (after.active, after.registeredAt) == (before.active, before.registeredAt)
    assert registered.members.members() == listed  # no second entry


def test_update_member_rejects_unknown_account(zcx, operator, carol):
    with reverts_with(zcx.members.MembersUnknownMember, account=carol.address):
        zcx.members.updateMember(carol, "Carol", HOUSEHOLD, sender=operator)


def test_update_member_rejects_empty_name(registered, operator, alice):
    with reverts_with(registered.members.MembersEmptyName):
        registered.members.updateMember(alice, "", HOUSEHOLD, sender=operator)
    assert registered.members.member(alice).name == "Alice Tanaka"


def test_set_member_active_toggles_and_emits_event(registered, operator, alice):
    tx = registered.members.setMemberActive(alice, False, sender=operator)
    assert tx.events == [registered.members.MemberActiveSet(account=alice, active=False)]
    assert registered.members.member(alice).active is False
    assert registered.members.isMember(alice)  # still a member, just inactive

    tx = registered.members.setMemberActive(alice, True, sender=operator)
    assert tx.events == [registered.members.MemberActiveSet(account=alice, active=True)]
    assert registered.members.member(alice).active is True


def test_set_member_active_rejects_unknown_account(zcx, operator, carol):
    with reverts_with(zcx.members.MembersUnknownMember, account=carol.address):
        zcx.members.setMemberActive(carol, True, sender=operator)


def test_member_view_reverts_for_unknown_account(zcx, carol, decoder):
    assert not zcx.members.isMember(carol)
    error = view_error(decoder, zcx.members, "member", carol)
    assert error.name == "MembersUnknownMember"
    assert error.args["account"].lower() == carol.address.lower()


# ------------------------------------------------------------------------------------- meters


def test_register_meter_records_spec_and_zone_and_emits_event(zcx, operator, carol):
    add_member(zcx.members, operator, carol)
    tx = add_meter(zcx.members, operator, carol, CAROL_PV, WIND, 12_345, "KYUSHU-40", 1_600_000_000)

    assert tx.events == [
        zcx.members.MeterRegistered(
            meterId=CAROL_PV,
            owner=carol,
            method=WIND,
            capacityW=12_345,
            zone="KYUSHU-40",
            commissionedAt=1_600_000_000,
        )
    ]
    assert spec_of(zcx.members, CAROL_PV) == (
        carol.address,
        12_345,
        1_600_000_000,
        WIND,
        True,
        False,
    )
    m = zcx.members.meter(CAROL_PV)
    assert m.zone == "KYUSHU-40" and m.spec.owner == carol.address
    assert zcx.members.metersOf(carol) == [CAROL_PV]


@pytest.mark.parametrize("method", [SOLAR, WIND, GEOTHERMAL, BIOMASS, HYDRO])
def test_every_generation_method_can_be_registered(zcx, operator, carol, method):
    add_member(zcx.members, operator, carol)
    add_meter(zcx.members, operator, carol, method=method)
    assert zcx.members.meterSpec(CAROL_PV).method == method


def test_consumption_only_meter_with_zero_capacity_is_allowed(zcx, operator, carol):
    add_member(zcx.members, operator, carol)
    add_meter(zcx.members, operator, carol, capacity_w=0)
    assert zcx.members.meterSpec(CAROL_PV).capacityW == 0


def test_metersof_lists_every_meter_of_a_member_including_inactive(registered, operator, alice):
    second = meter_id("ALICE-PV-2")
    add_meter(registered.members, operator, alice, second)
    registered.members.setMeterActive(meter_id("ALICE-PV"), False, sender=operator)
    assert registered.members.metersOf(alice) == [meter_id("ALICE-PV"), second]


def test_register_meter_rejects_zero_meter_id(zcx, operator, carol):
    add_member(zcx.members, operator, carol)
    with reverts_with(zcx.members.MembersZeroMeterId):
        add_meter(zcx.members, operator, carol, ZERO_ID)


def test_register_meter_twice_is_refused_even_for_another_owner(registered, operator, bob):
    mid = meter_id("ALICE-PV")
    with reverts_with(registered.members.MembersMeterAlreadyRegistered, meterId=mid):
        add_meter(registered.members, operator, bob, mid)
    assert registered.members.meterSpec(mid).capacityW == 5_000  # untouched
    assert mid not in registered.members.metersOf(bob)


def test_register_meter_for_unknown_owner_is_refused(zcx, operator, carol):
    with reverts_with(zcx.members.MembersUnknownMember, account=carol.address):
        add_meter(zcx.members, operator, carol)


def test_register_meter_for_zero_owner_is_refused(zcx, operator):
    with reverts_with(zcx.members.MembersUnknownMember, account=ZERO_ADDRESS):
        add_meter(zcx.members, operator, ZERO_ADDRESS)


def test_inactive_member_cannot_get_new_meter(zcx, operator, carol):
    add_member(zcx.members, operator, carol)
    zcx.members.setMemberActive(carol, False, sender=operator)
    with reverts_with(zcx.members.MembersInactiveMember, account=carol.address):
        add_meter(zcx.members, operator, carol)
    assert zcx.members.meterSpec(CAROL_PV).owner == ZERO_ADDRESS

    zcx.members.setMemberActive(carol, True, sender=operator)
    add_meter(zcx.members, operator, carol)
    assert zcx.members.meterSpec(CAROL_PV).owner == carol.address


def test_register_meter_rejects_empty_zone(zcx, operator, carol):
    add_member(zcx.members, operator, carol)
    with reverts_with(zcx.members.MembersEmptyZone):
        add_meter(zcx.members, operator, carol, zone="")


def test_update_meter_changes_capacity_and_zone_but_never_owner_or_method(
    registered, operator, alice
):
    mid = meter_id("ALICE-PV")
    registered.members.setMeterFlagged(mid, True, "check", sender=operator)
    before = spec_of(registered.members, mid)

    tx = registered.members.updateMeter(mid, 6_500, "TEPCO-14", sender=operator)

    assert tx.events == [
        registered.members.MeterUpdated(meterId=mid, capacityW=6_500, zone="TEPCO-14")
    ]
    after = spec_of(registered.members, mid)
    assert after[1] == 6_500
    # owner, commissionedAt, method, active, flagged are unchanged.
    assert (after[0], *after[2:]) == (before[0], *before[2:])
    assert after[0] == alice.address
    assert registered.members.meter(mid).zone == "TEPCO-14"


def test_update_meter_rejects_unknown_meter(zcx, operator):
    with reverts_with(zcx.members.MembersUnknownMeter, meterId=CAROL_PV):
        zcx.members.updateMeter(CAROL_PV, 1, "X", sender=operator)


def test_update_meter_rejects_empty_zone(registered, operator):
    mid = meter_id("ALICE-PV")
    with reverts_with(registered.members.MembersEmptyZone):
        registered.members.updateMeter(mid, 9_999, "", sender=operator)
    assert registered.members.meterSpec(mid).capacityW == 5_000


def test_set_meter_active_toggles_and_emits_event(registered, operator):
    mid = meter_id("BOB-PV")
    tx = registered.members.setMeterActive(mid, False, sender=operator)
    assert tx.events == [registered.members.MeterActiveSet(meterId=mid, active=False)]
    assert registered.members.meterSpec(mid).active is False

    tx = registered.members.setMeterActive(mid, True, sender=operator)
    assert tx.events == [registered.members.MeterActiveSet(meterId=mid, active=True)]
    assert registered.members.meterSpec(mid).active is True


def test_set_meter_active_rejects_unknown_meter(zcx, operator):
    with reverts_with(zcx.members.MembersUnknownMeter, meterId=CAROL_PV):
        zcx.members.setMeterActive(CAROL_PV, False, sender=operator)


def test_set_meter_flagged_sets_and_clears_with_reason(registered, operator):
    mid = meter_id("BOB-PV")
    tx = registered.members.setMeterFlagged(mid, True, "night-time generation", sender=operator)
    assert tx.events == [
        registered.members.MeterFlagged(meterId=mid, flagged=True, reason="night-time generation")
    ]
    assert registered.members.meterSpec(mid).flagged is True
    assert registered.members.meterSpec(mid).active is True  # flagging does not deactivate

    tx = registered.members.setMeterFlagged(mid, False, "inspected", sender=operator)
    assert tx.events == [
        registered.members.MeterFlagged(meterId=mid, flagged=False, reason="inspected")
    ]
    assert registered.members.meterSpec(mid).flagged is False


def test_set_meter_flagged_rejects_unknown_meter(zcx, operator):
    with reverts_with(zcx.members.MembersUnknownMeter, meterId=CAROL_PV):
        zcx.members.setMeterFlagged(CAROL_PV, True, "x", sender=operator)


def test_meter_view_reverts_for_unknown_meter_but_spec_returns_zero_owner(zcx, decoder):
    error = view_error(decoder, zcx.members, "meter", CAROL_PV)
    assert (error.name, error.args) == ("MembersUnknownMeter", {"meterId": CAROL_PV})
    assert spec_of(zcx.members, CAROL_PV) == (ZERO_ADDRESS, 0, 0, 0, False, False)


# -------------------------------------------------------------------------------------- roles

ALICE_PV = meter_id("ALICE-PV")

# Every OPERATOR_ROLE write, as (function name, arguments) with `who` standing for an account.
OPERATOR_WRITES = [
    ("registerMember", lambda who: (who, "Mallory", HOUSEHOLD)),
    ("updateMember", lambda who: (who, "Mallory", GENERATOR)),
    ("setMemberActive", lambda who: (who, True)),
    ("registerMeter", lambda who: (meter_id("EVIL"), who, SOLAR, 10**9, "X", 0)),
    ("updateMeter", lambda who: (ALICE_PV, 4_000_000_000, "X")),
    ("setMeterActive", lambda who: (ALICE_PV, False)),
    ("setMeterFlagged", lambda who: (ALICE_PV, True, "spite")),
]


@pytest.mark.parametrize("name,args", OPERATOR_WRITES, ids=[w[0] for w in OPERATOR_WRITES])
@pytest.mark.parametrize("who", ["alice", "admin", "carol"])
def test_non_operator_cannot_write(registered, request, name, args, who):
    caller = request.getfixturevalue(who)
    members = registered.members
    before = (members.members(), spec_of(members, ALICE_PV), members.meter(ALICE_PV).zone)

    with reverts_with(
        members.AccessControlUnauthorizedAccount,
        account=caller.address,
        neededRole=members.OPERATOR_ROLE(),
    ):
        getattr(members, name)(*args(caller), sender=caller)

    after = (members.members(), spec_of(members, ALICE_PV), members.meter(ALICE_PV).zone)
    assert after == before


def test_admin_can_grant_and_revoke_operator_role(zcx, admin, carol, accounts):
    role = zcx.members.OPERATOR_ROLE()
    dave = accounts[6]
    zcx.members.grantRole(role, carol, sender=admin)
    add_member(zcx.members, carol, dave, "Dave", BUSINESS)
    assert zcx.members.isMember(dave)

    zcx.members.revokeRole(role, carol, sender=admin)
    with reverts_with(zcx.members.AccessControlUnauthorizedAccount, account=carol.address):
        zcx.members.setMemberActive(dave, False, sender=carol)
    assert zcx.members.member(dave).active is True


def test_non_admin_cannot_grant_operator_role(zcx, operator, carol):
    role = zcx.members.OPERATOR_ROLE()
    with reverts_with(
        zcx.members.AccessControlUnauthorizedAccount,
        account=operator.address,
        neededRole=zcx.members.DEFAULT_ADMIN_ROLE(),
    ):
        zcx.members.grantRole(role, carol, sender=operator)
    assert not zcx.members.hasRole(role, carol)
