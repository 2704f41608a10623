"""Exactly once across crashes (DESIGN invariant 6): the oracle is killed at the worst points of
the submit path (after recording a signed transaction but before sending it, after sending but
before seeing the receipt, and with SIGKILL while batches sit unmined in the node's pool). After
each restart every accepted reading ends up recorded on chain exactly once."""

from __future__ import annotations

import os
import sqlite3

import pytest
from eth_account import Account
from oracle_fixtures import (
    INTERVAL,
    OracleProcess,
    own_devnet,
    post,
    recorded_counts,
    wait_until,
    wire,
)

from oracle.chain import load_abis
from oracle.devchain import rpc
from oracle.store import Store
from zcx.ids import meter_id

METERS = [f"CRASH-{i}" for i in range(5)]


@pytest.fixture
def devnet(tmp_path, oracle_keys):
    with own_devnet(tmp_path, oracle_keys[0], METERS) as chain_parts:
        yield chain_parts


def states(db) -> dict[str, int]:
    with sqlite3.connect(db) as c:
        return dict(c.execute("SELECT state, COUNT(*) FROM readings GROUP BY state").fetchall())


def test_kill_at_every_point_then_exactly_once(devnet, tmp_path, oracle_keys):
    anvil, record, w3, epoch = devnet
    db = tmp_path / "oracle.db"
    store = Store(db)
    token = store.add_gateway("gw")
    store.bind("gw", METERS)
    store.close()
    env = {
        "ZCX_ORACLE_DB_PATH": str(db),
        "ZCX_ORACLE_RPC_URL": anvil.url,
        "ZCX_ORACLE_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "ZCX_ORACLE_DEV_PRIVATE_KEY": oracle_keys[0].hex(),
        "ZCX_ORACLE_BATCH_MAX_AGE_S": "0.3",
        "ZCX_ORACLE_BATCH_MAX": "20",
    }
    env = {**os.environ, **env}
    oracle = OracleProcess(env, tmp_path / "oracle.log")
    sent: list[dict] = []

    def post_slot(slot: int) -> None:
        readings = [wire(m, epoch + slot * INTERVAL, gen=100 + slot) for m in METERS]
        r = post(oracle.url, token, readings)
        assert r.status_code == 202, r.text
        sent.extend(readings)

    # 1. Crash after the signed transaction is stored, before it is sent.
    oracle.start(ZCX_ORACLE_CRASH_POINT="after_record")
    post_slot(0)
    assert oracle.wait_exit() == 137
    assert states(db) == {"submitted": 5}
    assert w3.eth.get_transaction_count(Account.from_key(oracle_keys[0]).address) == 0

    # 2. Restart; crash right after sending, before the receipt is seen.
    oracle.start(ZCX_ORACLE_CRASH_POINT="after_send")
    wait_until(lambda: states(db).get("confirmed") == 5, 30, "slot 0 confirmed after restart")
    post_slot(1)
    assert oracle.wait_exit() == 137

    # 3. Restart with mining stopped; SIGKILL while batches sit in the node's pool.
    rpc(anvil.url, "evm_setAutomine", [False])
    oracle.start()
    wait_until(lambda: states(db).get("confirmed") == 10, 30, "slot 1 confirmed after restart")
    for slot in range(2, 6):
        post_slot(slot)
    wait_until(lambda: states(db).get("submitted", 0) >= 10, 30, "batches in the pool")
    oracle.kill9()
    assert states(db).get("confirmed") == 10
    rpc(anvil.url, "anvil_mine", ["0x1"])  # the pool is mined while no oracle watches
    rpc(anvil.url, "evm_setAutomine", [True])

    # 4. Restart for good: everything settles, nothing twice.
    oracle.start()
    post_slot(6)
    wait_until(lambda: states(db) == {"confirmed": len(sent)}, 60, "all confirmed")
    oracle.stop()

    counts = recorded_counts(w3, record.contracts["GenerationRegistry"])
    expected = {(meter_id(r["meter_id"]), epoch + s * INTERVAL) for s in range(7) for r in sent[:5]}
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    registry = w3.eth.contract(
        address=record.contracts["GenerationRegistry"], abi=load_abis()["GenerationRegistry"]
    )
    for m in METERS:
        totals = registry.functions.meterTotals(meter_id(m)).call()
        assert totals[0] == sum(100 + s for s in range(7))
    assert "crash point after_record" in oracle.log()
