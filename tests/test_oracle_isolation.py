"""Whole-batch reverts (docs/oracle.md, "When the chain rejects a batch"): a paused registry
makes the oracle wait and keep every reading; a batch that no longer fits the chain's block gas
limit is split, a reading the registry now refuses is rejected with its decoded reason, and
every other reading is recorded exactly once. Plus the pure isolation plan, by example and by
property."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st
from oracle_fixtures import INTERVAL, own_devnet, recorded_counts, start_oracle, wait_until, wire

from oracle.chain import load_abis
from oracle.devchain import rpc
from oracle.submitter import Isolation, plan_isolation, split_point
from zcx.ids import meter_id

METERS = [f"ISO-{i:02d}" for i in range(12)]
SLOTS = 8
INACTIVE_SELECTOR = keccak(text="RegistryInactiveMeter(bytes32)")[:4]


@pytest.fixture
def devnet(tmp_path, oracle_keys):
    with own_devnet(tmp_path, oracle_keys[0], METERS) as chain_parts:
        yield chain_parts


def _transact(w3, fn, sender):
    tx = fn.transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1


def test_pause_waits_then_gas_split_and_culprit_rejected(devnet, tmp_path, oracle_keys):
    anvil, record, w3, epoch = devnet
    abis = load_abis()
    registry = w3.eth.contract(
        address=record.contracts["GenerationRegistry"], abi=abis["GenerationRegistry"]
    )
    members = w3.eth.contract(
        address=record.contracts["MemberRegistry"], abi=abis["MemberRegistry"]
    )
    admin, operator = w3.eth.accounts[0], w3.eth.accounts[1]
    gen = start_oracle(
        tmp_path, anvil.url, tmp_path / "deployments", oracle_keys[0], METERS, backoff_max_s=0.5
    )
    api = next(gen)
    try:
        # 1. Paused registry: the batch waits, nothing is rejected, nothing is lost.
        _transact(w3, registry.functions.pause(), admin)
        body = [wire(m, epoch + s * INTERVAL, gen=100 + s) for m in METERS for s in range(SLOTS)]
        assert api.post(body).status_code == 202
        paused = wait_until(
            lambda: [
                b for b in api.store.batches(("signed",)) if "EnforcedPause" in (b.error or "")
            ],
            30,
            "the batch to meet the pause",
        )
        assert paused[0].size == len(body)
        wait_until(lambda: api.store.batch(paused[0].id).attempts >= 2, 30, "a retry while paused")
        assert api.store.state_counts() == {"batched": len(body)}

        # 2. While paused, one meter is deactivated and the chain's block gas limit drops far
        #    below what the formed batch needs (~1.9M gas for 12 fresh meters' runs).
        _transact(w3, members.functions.setMeterActive(meter_id(METERS[5]), False), operator)
        rpc(anvil.url, "anvil_setBlockGasLimit", [hex(700_000)])
        rpc(anvil.url, "anvil_mine", ["0x1"])
        _transact(w3, registry.functions.unpause(), admin)

        # 3. The oracle splits, rejects the deactivated meter's readings with the registry's
        #    reason, and records everything else exactly once.
        counts = api.wait_final(len(body), timeout=90)
        assert counts == {"confirmed": len(body) - SLOTS, "rejected": SLOTS}
        rejected = api.status(METERS[5])
        assert {r["status"] for r in rejected} == {"rejected"}
        assert all("RegistryInactiveMeter" in r["reason"] for r in rejected)
        replaced = api.store.batches(("replaced",))
        assert replaced and all("out of gas" in (b.error or "") for b in replaced)
        confirmed = api.store.batches(("confirmed",))
        assert len(confirmed) >= 3  # no longer one batch: it had to be split to fit
        on_chain = recorded_counts(w3, registry.address)
        expected = {
            (meter_id(m), epoch + s * INTERVAL)
            for m in METERS
            if m != METERS[5]
            for s in range(SLOTS)
        }
        assert set(on_chain) == expected and set(on_chain.values()) == {1}
        for m in METERS:
            total = registry.functions.meterTotals(meter_id(m)).call()[0]
            assert total == (0 if m == METERS[5] else sum(100 + s for s in range(SLOTS)))
    finally:
        next(gen, None)


# ---------------------------------------------------------------- the pure plan


def test_plan_rejects_refused_and_culprit_readings_and_keeps_the_rest():
    inactive = INACTIVE_SELECTOR + encode(["bytes32"], [meter_id("X")])
    verdicts = [None, inactive, None, b"", bytes.fromhex("deadbeef"), None]
    plan = plan_isolation(["A", "B", "B", "C", "C", "D"], verdicts, "revert without data", "?")
    assert set(plan.rejected) == {1, 3, 4}
    assert plan.rejected[1].startswith("RegistryInactiveMeter")
    assert "reverts the registry's reading check" in plan.rejected[3]
    assert plan.successor == [0, 2, 5] and plan.back == []


def test_plan_halves_at_a_meter_boundary_when_no_reading_is_to_blame():
    meters = ["A"] * 3 + ["B"] * 4 + ["C"] * 3
    plan = plan_isolation(meters, [None] * 10, "out of gas", "used all gas")
    assert plan == Isolation({}, list(range(7)), [7, 8, 9]) or plan == Isolation(
        {}, list(range(3)), list(range(3, 10))
    )
    assert split_point(meters) in (3, 7)


def test_plan_rejects_a_lone_reading_that_reverts_on_its_own():
    plan = plan_isolation(["A"], [None], "revert without data", "boom")
    assert plan.successor == [] and plan.back == [] and "boom" in plan.rejected[0]


@given(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=60).map(sorted), st.data())
def test_plan_accounts_for_every_reading_once(meters, data):
    refused = INACTIVE_SELECTOR + bytes(32)
    verdicts = data.draw(
        st.lists(
            st.sampled_from([None, None, None, refused, b""]),
            min_size=len(meters),
            max_size=len(meters),
        )
    )
    plan = plan_isolation(meters, verdicts, "out of gas", "x")
    everything = sorted([*plan.rejected, *plan.successor, *plan.back])
    assert everything == list(range(len(meters)))  # each position exactly once
    assert plan.successor == sorted(plan.successor) and plan.back == sorted(plan.back)
    assert not plan.back or max(plan.successor) < min(plan.back)  # order kept
    assert all(verdicts[p] is None for p in plan.successor + plan.back)
    if plan.back:  # a halving never cuts a meter's run
        assert meters[plan.successor[-1]] != meters[plan.back[0]] or len(set(meters)) == 1
    assert plan.successor or plan.rejected  # progress: never an empty replacement
