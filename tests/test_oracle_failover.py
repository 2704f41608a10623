"""A 2-of-3 quorum that never stalls (issue 10): three `python -m oracle serve` processes (own
keys, own SQLite stores, own loopback ports, per-peer credentials) on an Anvil of the test's
own. Followers are killed with SIGKILL and restarted, the leader is killed and a follower is
restarted as leader; in each case every reading accepted by enough oracles is recorded on chain
exactly once, and every oracle's store ends with its readings confirmed (it learns them from
the registry's events, whoever submitted them)."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from oracle_fixtures import (
    INTERVAL,
    OracleProcess,
    own_devnet,
    post,
    recorded_counts,
    wait_until,
    wire,
)

from oracle.store import Store
from zcx.ids import meter_id

METERS = [f"FO-{i}" for i in range(3)]
NAMES = ("a", "b", "c")


@dataclass
class Node:
    name: str
    proc: OracleProcess
    db: Path
    token: str  # the gateway token
    issued: dict[str, str]  # credentials this oracle issued to its peers, by peer name

    def states(self) -> dict[str, int]:
        with sqlite3.connect(self.db) as c:
            rows = c.execute("SELECT state, COUNT(*) FROM readings GROUP BY state").fetchall()
        return {str(s): int(n) for s, n in rows}

    def start_as(self, leader: bool, peers: list[Node], **extra: str) -> None:
        """(Re)starts the process, as leader (asking `peers` in order) or as follower."""
        env = {"ZCX_ORACLE_LEADER": "true" if leader else "false", **extra}
        if leader:
            env["ZCX_ORACLE_PEERS"] = json.dumps([p.proc.url for p in peers])
            env["ZCX_ORACLE_PEER_TOKENS"] = json.dumps(
                {p.proc.url: p.issued[self.name] for p in peers}
            )
        self.proc.start(**env)


@pytest.fixture
def cluster(tmp_path, oracle_keys):
    with own_devnet(tmp_path, oracle_keys[0], METERS, oracle_keys[1:3], quorum=2) as parts:
        anvil, record, w3, epoch = parts
        nodes: dict[str, Node] = {}
        for name, key in zip(NAMES, oracle_keys[:3], strict=True):
            db = tmp_path / name / "oracle.db"
            store = Store(db)
            token = store.add_gateway("gw")
            store.bind("gw", METERS)
            issued = {peer: store.add_peer(peer) for peer in NAMES if peer != name}
            store.close()
            env = {
                **os.environ,
                "ZCX_ORACLE_DB_PATH": str(db),
                "ZCX_ORACLE_RPC_URL": anvil.url,
                "ZCX_ORACLE_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
                "ZCX_ORACLE_DEV_PRIVATE_KEY": key.hex(),
                "ZCX_ORACLE_BATCH_MAX_AGE_S": "0.3",
                "ZCX_ORACLE_BATCH_MAX": "6",
                "ZCX_ORACLE_PEER_TIMEOUT_S": "2",
                "ZCX_ORACLE_QUORUM_TIMEOUT_S": "4",
                "ZCX_ORACLE_ATTESTATION_TTL_S": "8",
            }
            proc = OracleProcess(env, tmp_path / f"{name}.log")
            nodes[name] = Node(name, proc, db, token, issued)
        try:
            yield nodes, w3, record, epoch
        finally:
            for node in nodes.values():
                node.proc.stop()


def slot(epoch: int, n: int) -> list[dict]:
    return [wire(m, epoch + n * INTERVAL, gen=100 + n) for m in METERS]


def send(nodes: list[Node], readings: list[dict]) -> None:
    """A gateway posts the same readings to each live oracle."""
    for node in nodes:
        r = post(node.proc.url, node.token, readings)
        assert r.status_code == 202, (node.name, r.text)


def all_confirmed(node: Node, count: int) -> bool:
    return node.states() == {"confirmed": count}


def assert_exactly_once(w3, record, epoch: int, slots: range) -> None:
    counts = recorded_counts(w3, record.contracts["GenerationRegistry"])
    expected = {(meter_id(m), epoch + n * INTERVAL) for n in slots for m in METERS}
    assert set(counts) == expected
    assert set(counts.values()) == {1}


def test_kill_a_follower(cluster):
    nodes, w3, record, epoch = cluster
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    b.start_as(False, [])
    c.start_as(False, [])
    a.start_as(True, [b, c])  # asks B first, so C is never asked while B is up
    for n in range(3):
        send([a, b, c], slot(epoch, n))
    wait_until(lambda: all_confirmed(a, 9), 30, "slots 0-2 confirmed on A")
    wait_until(lambda: all_confirmed(c, 9), 15, "C (never asked) learns them from events")
    b.proc.kill9()
    for n in range(3, 6):
        send([a, c], slot(epoch, n))
    wait_until(lambda: all_confirmed(a, 18), 45, "slots 3-5 confirmed with C's signatures")
    wait_until(lambda: all_confirmed(c, 18), 15, "C confirmed")
    # B comes back and confirms what it holds from events; the gateway then delivers the
    # slots B missed, already on chain: they are confirmed too, never left open.
    b.start_as(False, [])
    wait_until(lambda: all_confirmed(b, 9), 20, "B confirmed after restart")
    send([b], [r for n in range(3, 6) for r in slot(epoch, n)])
    wait_until(lambda: all_confirmed(b, 18), 20, "late deliveries confirmed from events")
    assert_exactly_once(w3, record, epoch, range(6))


def test_kill_both_followers_and_restart_them(cluster):
    nodes, w3, record, epoch = cluster
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    b.start_as(False, [])
    c.start_as(False, [])
    a.start_as(True, [b, c])
    send([a, b, c], slot(epoch, 0))
    wait_until(lambda: all_confirmed(a, 3), 30, "slot 0 confirmed")
    b.proc.kill9()
    c.proc.kill9()
    # The leader alone stays below quorum; it keeps accepting.
    send([a], slot(epoch, 1) + slot(epoch, 2))
    wait_until(lambda: a.states().get("batched", 0) >= 3, 15, "A batches, below quorum")
    assert a.states().get("confirmed") == 3
    # Past the quorum timeout the batch is retired and its readings batched again (waited for
    # here: a follower back within the timeout would attest the first batch, also correct).
    wait_until(lambda: "below quorum for 4 s; rebuilt" in a.proc.log(), 30, "the rebuild")
    # The followers come back and receive the readings the gateway could not deliver.
    b.start_as(False, [])
    c.start_as(False, [])
    send([b, c], slot(epoch, 1) + slot(epoch, 2))
    send([a, b, c], slot(epoch, 3))
    wait_until(lambda: all_confirmed(a, 12), 60, "everything confirmed after restart")
    for node in (b, c):
        wait_until(lambda n=node: all_confirmed(n, 12), 20, f"{node.name} confirmed")
    assert_exactly_once(w3, record, epoch, range(4))


def test_kill_the_leader_and_restart_a_follower_as_leader(cluster):
    nodes, w3, record, epoch = cluster
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    b.start_as(False, [])
    c.start_as(False, [])
    a.start_as(True, [b, c])  # C is never asked
    for n in range(3):
        send([a, b, c], slot(epoch, n))
    wait_until(lambda: all_confirmed(a, 9), 30, "slots 0-2 confirmed")
    wait_until(lambda: all_confirmed(c, 9), 15, "C (never asked) learns them from events")
    # The leader dies at the worst point: B attested its next batch, the transaction is
    # signed and stored, and never sent.
    a.proc.stop()
    a.start_as(True, [b, c], ZCX_ORACLE_CRASH_POINT="after_record")
    send([a, b, c], slot(epoch, 3))
    assert a.proc.wait_exit() == 137
    assert b.states().get("batched") == 3
    # The scenario: the follower never asked is restarted as leader.
    c.proc.stop()
    c.start_as(True, [b, a])
    for n in range(4, 7):
        send([b, c], slot(epoch, n))
    wait_until(lambda: all_confirmed(c, 21), 60, "the new leader confirms everything")
    wait_until(lambda: all_confirmed(b, 21), 20, "B confirmed")
    assert_exactly_once(w3, record, epoch, range(7))


def test_serve_refuses_quorum_mode_without_credentials(cluster):
    """`serve` in quorum mode exits with the reason when nobody may ask it for attestations,
    or when, as leader, it holds no token for a peer it would ask."""
    nodes, _, _, _ = cluster
    a, b = nodes["a"], nodes["b"]
    store = Store(b.db)
    for peer in ("a", "c"):
        store.remove_peer(peer)
    store.close()
    b.start_as(False, [])
    assert b.proc.wait_exit() != 0
    assert "quorum mode: no peer may ask this oracle" in b.proc.log()
    a.proc.start(ZCX_ORACLE_PEERS=json.dumps([b.proc.url]))  # a leader without b's token
    assert a.proc.wait_exit() != 0
    assert f"no token for peer {b.proc.url}" in a.proc.log()
