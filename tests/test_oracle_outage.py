"""Chain outage and chain reset. Anvil is stopped (its state dumped), readings keep being
accepted and queue, Anvil restarts with the same state and everything is confirmed. A reset
chain (fresh Anvil, no deployment) stops the oracle with a clear error instead of looping."""

from __future__ import annotations

import os

import httpx
import pytest
from oracle_fixtures import (
    INTERVAL,
    OracleProcess,
    own_devnet,
    post,
    recorded_counts,
    start_oracle,
    wait_until,
    wire,
)

from oracle.store import Store

METERS = [f"OUT-{i}" for i in range(4)]


@pytest.fixture
def devnet(tmp_path, oracle_keys):
    with own_devnet(tmp_path, oracle_keys[0], METERS) as chain_parts:
        yield chain_parts


def test_outage_queues_then_confirms(devnet, tmp_path, oracle_keys):
    anvil, record, w3, epoch = devnet
    for api in start_oracle(
        tmp_path, anvil.url, tmp_path / "deployments", oracle_keys[0], METERS, backoff_max_s=1.0
    ):
        assert api.post([wire(m, epoch) for m in METERS]).status_code == 202
        api.wait_final(4)

        anvil.stop()
        for slot in range(1, 6):
            r = api.post([wire(m, epoch + slot * INTERVAL) for m in METERS])
            assert r.status_code == 202, r.text
        health_url = f"{api.url}/healthz"
        wait_until(lambda url=health_url: httpx.get(url).status_code == 503, 10, "chain down")
        health = httpx.get(f"{api.url}/healthz").json()
        assert health["store"] and not health["chain"] and health["queue_depth"] == 20
        assert api.store.state_counts() == {"confirmed": 4, "accepted": 20}

        anvil.start()
        api.wait_final(24, timeout=60)
        assert api.store.state_counts() == {"confirmed": 24}
        assert httpx.get(f"{api.url}/healthz").status_code == 200
    counts = recorded_counts(w3, record.contracts["GenerationRegistry"])
    assert len(counts) == 24 and set(counts.values()) == {1}


def test_reset_chain_stops_with_clear_error(devnet, tmp_path, oracle_keys):
    anvil, record, w3, epoch = devnet
    db = tmp_path / "reset.db"
    store = Store(db)
    token = store.add_gateway("gw")
    store.bind("gw", METERS)
    store.close()
    env = {
        **os.environ,
        "ZCX_ORACLE_DB_PATH": str(db),
        "ZCX_ORACLE_RPC_URL": anvil.url,
        "ZCX_ORACLE_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "ZCX_ORACLE_DEV_PRIVATE_KEY": oracle_keys[0].hex(),
        "ZCX_ORACLE_LIVENESS_CHECK_S": "0.5",
    }
    oracle = OracleProcess(env, tmp_path / "oracle.log").start()
    try:
        assert post(oracle.url, token, [wire(METERS[0], epoch)]).status_code == 202
        wait_until(lambda: Store(db).state_counts() == {"confirmed": 1}, 30, "confirmed")
        # The chain is reset under the running oracle: a fresh Anvil on the same port.
        anvil.stop()
        anvil.state.unlink()
        anvil.start()
        assert oracle.wait_exit(30) != 0
        assert "chain was reset" in oracle.log() or "no contract code" in oracle.log()
        # Starting again against the reset chain fails at once with the same clear message.
        again = OracleProcess(env, tmp_path / "oracle2.log")
        again.start()
        assert again.wait_exit(30) != 0
        assert "redeploy" in again.log() or "no contract code" in again.log()
    finally:
        oracle.stop()
