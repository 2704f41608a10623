"""2-of-3 quorum across three independent oracles (own keys, own SQLite stores, own uvicorn on
different loopback ports): the leader collects a peer's attestation over POST /v1/attestations
and submits; one oracle alone never gets a batch accepted."""

from __future__ import annotations

import contextlib
import time

import ape
import httpx
import pytest
from eth_account import Account
from oracle_fixtures import (
    INTERVAL,
    own_devnet,
    recorded_counts,
    start_oracle,
    wait_until,
    wire,
    write_deployment,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from oracle.api import create_app
from oracle.chain import Chain
from oracle.chain_sync import ChainFollower, decode_events
from oracle.devchain import ServerThread, free_port
from oracle.quorum import QuorumConfigError, request_for
from oracle.service import Oracle
from oracle.settings import OracleSettings
from oracle.signer import Signer, fast_batch_digest
from oracle.store import Store
from oracle.submitter import to_reading
from zcx.eip712 import Reading, sign_quorum
from zcx.ids import meter_id

METERS = ["Q-1", "Q-2"]


@pytest.fixture(scope="module")
def quorum_net(zcx, operator, carol, oracle_keys, chain, epoch, tmp_path_factory):
    zcx.members.registerMember(carol, "Carol School", 1, sender=operator)
    for label in METERS:
        zcx.members.registerMeter(
            meter_id(label), carol, 0, 10_000, "KANSAI", epoch - 86400, sender=operator
        )
    chain.provider.set_balance(Account.from_key(oracle_keys[0]).address, 10**21)
    directory = tmp_path_factory.mktemp("qdeploy")
    write_deployment(chain.provider.web3, zcx.addresses(), directory)
    return zcx, directory, chain.provider.uri


@contextlib.contextmanager
def oracle_at(tmp, net, key, **overrides):
    _, directory, uri = net
    tmp.mkdir(parents=True, exist_ok=True)
    gen = start_oracle(tmp, uri, directory, key, METERS, **overrides)
    running = next(gen)
    try:
        yield running
    finally:
        with contextlib.suppress(StopIteration):
            next(gen)


def test_one_oracle_alone_is_not_enough(quorum_net, oracle_keys, tmp_path, epoch, submitter, chain):
    zcx = quorum_net[0]
    # Its only peer is down: the leader signs alone and stays below quorum.
    dead = f"http://127.0.0.1:{free_port()}"
    with oracle_at(
        tmp_path / "a",
        quorum_net,
        oracle_keys[0],
        peer_names=["b"],
        peers=[dead],
        peer_tokens={dead: "unused"},
        peer_timeout_s=0.5,
    ) as alone:
        assert alone.post([wire("Q-1", epoch)]).status_code == 202
        wait_until(lambda: alone.store.state_counts().get("batched") == 1, 10, "batched")
        time.sleep(1.5)
        [batch] = alone.store.batches(("signing",))
        assert batch.error == "1 of 2 signatures"
        assert alone.store.state_counts() == {"batched": 1}
    assert zcx.registry.lastEnd(meter_id("Q-1")) == 0
    # And the registry itself refuses a batch carrying one oracle's signature.
    reading = Reading(meter_id("Q-1"), epoch, epoch + INTERVAL, 1, 1, 1, 1)
    sigs = sign_quorum([reading], chain.chain_id, str(zcx.registry.address), oracle_keys[:1])
    with ape.reverts(zcx.registry.RegistryQuorumNotMet):
        zcx.registry.submitBatch([reading.as_tuple()], sigs, sender=submitter)


@contextlib.contextmanager
def three_oracles(tmp_path, net, keys, **leader_settings):
    """B and C follow; A leads and asks C first, then B, each with the token it issued to A."""
    with (
        oracle_at(tmp_path / "b", net, keys[1], peer_names=["a", "c"], leader=False) as b,
        oracle_at(tmp_path / "c", net, keys[2], peer_names=["a", "b"], leader=False) as c,
    ):
        tokens = {c.url: c.peer_tokens["a"], b.url: b.peer_tokens["a"]}
        with oracle_at(
            tmp_path / "a",
            net,
            keys[0],
            peer_names=["b", "c"],
            peers=[c.url, b.url],
            peer_tokens=tokens,
            **leader_settings,
        ) as a:
            yield a, b, c


def test_two_of_three(quorum_net, oracle_keys, tmp_path, epoch):
    zcx = quorum_net[0]
    with three_oracles(tmp_path, quorum_net, oracle_keys) as (a, b, c):
        readings = [wire(m, epoch + i * INTERVAL, gen=700 + i) for m in METERS for i in range(3)]
        # Oracle C never received the readings: it refuses; B vouches; 2 of 3 is enough.
        for oracle in (b, a):
            assert oracle.post(readings).status_code == 202
        a.wait_final(6)
        assert a.store.state_counts() == {"confirmed": 6}
        wait_until(lambda: b.store.state_counts() == {"confirmed": 6}, 15, "follower B confirmed")
        assert c.store.count_readings() == 0
        assert zcx.registry.lastEnd(meter_id("Q-2")) == epoch + 3 * INTERVAL
        assert zcx.registry.meterTotals(meter_id("Q-1")).generatedWh == 700 + 701 + 702
        [row] = a.status("Q-1")[:1]
        assert row["status"] == "confirmed" and row["tx_hash"] == b.status("Q-1")[0]["tx_hash"]


def test_follower_never_asked_learns_from_chain_events(quorum_net, oracle_keys, tmp_path, epoch):
    """Issue 10: the leader stops asking at k, so a follower it never asks must still see its
    readings confirmed, from the registry's events."""
    with three_oracles(tmp_path, quorum_net, oracle_keys) as (a, b, c):
        readings = [wire("Q-2", epoch + (20 + i) * INTERVAL, gen=300 + i) for i in range(4)]
        for oracle in (a, b, c):
            assert oracle.post(readings).status_code == 202
        a.wait_final(4)
        # C is asked first and signs; B is never asked, yet learns every confirmation.
        wait_until(lambda: b.store.state_counts() == {"confirmed": 4}, 15, "B confirmed")
        assert b.store.batches(("attested", "confirmed")) == []
        tx = {r["tx_hash"] for r in a.status("Q-2")}
        assert {r["tx_hash"] for r in b.status("Q-2")} == tx and len(tx) == 1


def _attest(url: str, body: dict, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}".strip()} if token is not None else {}
    return httpx.post(f"{url}/v1/attestations", json=body, headers=headers, timeout=10)


def test_peer_refuses_what_it_did_not_see(quorum_net, oracle_keys, tmp_path, epoch, chain):
    zcx = quorum_net[0]
    with oracle_at(tmp_path / "b", quorum_net, oracle_keys[1], peer_names=["a"], leader=False) as b:
        token = b.peer_tokens["a"]
        assert b.post([wire("Q-1", epoch, gen=500)]).status_code == 202
        rows = b.store.readings_of("Q-1", None, None)
        genuine = [to_reading(r) for r in rows]
        forged = [Reading(genuine[0].meter_id, epoch, epoch + INTERVAL, 9_000, 1, 1, 1)]
        registry = str(zcx.registry.address)
        for readings, status in ((forged, 409), (genuine, 200), (genuine, 200)):
            digest = fast_batch_digest(readings, chain.chain_id, registry)
            body = request_for(digest, readings, chain.chain_id, registry)
            r = _attest(b.url, body, token)
            assert r.status_code == status, r.text
        # A wrong digest for genuine readings is refused too.
        body["digest"] = "0x" + "11" * 32
        assert _attest(b.url, body, token).status_code == 422
        assert b.store.state_counts() == {"batched": 1}


def test_attestations_need_a_peer_credential(quorum_net, oracle_keys, tmp_path, epoch, chain):
    """Without the token this oracle issued to a peer (none, wrong, a gateway's, a revoked
    one): 401 problem+json, before the body is read; nothing signed, nothing stored."""
    zcx = quorum_net[0]
    with oracle_at(tmp_path / "b", quorum_net, oracle_keys[1], peer_names=["a"], leader=False) as b:
        assert b.post([wire("Q-1", epoch, gen=500)]).status_code == 202
        readings = [to_reading(r) for r in b.store.readings_of("Q-1", None, None)]
        registry = str(zcx.registry.address)
        digest = fast_batch_digest(readings, chain.chain_id, registry)
        body = request_for(digest, readings, chain.chain_id, registry)
        revoked = b.store.add_peer("old")
        b.store.remove_peer("old")
        for token in (None, "", b.peer_tokens["a"] + "x", b.token, revoked):
            r = _attest(b.url, body, token)
            assert r.status_code == 401, (token, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "signature" not in r.json()
        # Not even a malformed body gets past the credential check.
        r = httpx.post(f"{b.url}/v1/attestations", content=b"{", timeout=10)
        assert r.status_code == 401
        assert b.store.state_counts() == {"accepted": 1}
        assert b.store.batch_by_digest(digest) is None
        assert _attest(b.url, body, b.peer_tokens["a"]).status_code == 200


def test_quorum_mode_refuses_to_start_without_credentials(quorum_net, oracle_keys, tmp_path):
    _, directory, uri = quorum_net
    cases = [
        ({"leader": False}, "peers add"),  # a follower nobody may ask
        ({"peers": ["http://127.0.0.1:9"]}, "no token for peer"),  # a leader without a token
    ]
    for i, (overrides, message) in enumerate(cases):
        settings = OracleSettings(
            rpc_url=uri,
            deployments_dir=directory,
            db_path=tmp_path / f"o{i}.db",
            **overrides,
        )
        store = Store(settings.db_path)
        oracle = Oracle(settings, store, Chain(uri, directory), Signer(oracle_keys[0], "k"))
        oracle.connect()
        if i == 1:
            store.add_peer("b")
        with pytest.raises(QuorumConfigError, match=message):
            create_app(oracle)
        store.close()


def test_attested_batch_nobody_submits_expires(quorum_net, oracle_keys, tmp_path, epoch, chain):
    """A peer (or a stolen peer credential) gets one open reading signed into a batch nobody
    submits: after attestation_ttl_s it returns to the queue, and the meter's readings,
    that one and later ones, are batched by the leader and recorded."""
    zcx = quorum_net[0]
    registry = str(zcx.registry.address)
    with three_oracles(tmp_path, quorum_net, oracle_keys, quorum_timeout_s=30) as (a, b, c):
        b.oracle.settings.attestation_ttl_s = 2.0
        b.oracle.settings.leader = False
        first = wire("Q-1", epoch + 40 * INTERVAL, gen=11)
        assert b.post([first]).status_code == 202
        [row] = b.store.readings_of("Q-1", epoch + 40 * INTERVAL, epoch + 40 * INTERVAL + 1)
        digest = fast_batch_digest([to_reading(row)], chain.chain_id, registry)
        body = request_for(digest, [to_reading(row)], chain.chain_id, registry)
        assert _attest(b.url, body, b.peer_tokens["c"]).status_code == 200
        assert b.store.batch_by_digest(digest).state == "attested"
        wait_until(lambda: b.store.batch_by_digest(digest).state == "expired", 10, "expiry")
        assert b.store.readings_of("Q-1", epoch + 40 * INTERVAL, None)[0].state == "accepted"
        later = [wire("Q-1", epoch + (41 + i) * INTERVAL, gen=12 + i) for i in range(2)]
        # C never gets these readings and refuses; only B can make the quorum with A.
        assert a.post([first, *later]).status_code == 202
        assert b.post(later).status_code == 202
        a.wait_final(3)
        wait_until(lambda: b.store.state_counts() == {"confirmed": 3}, 15, "B confirmed")
        assert zcx.registry.lastEnd(meter_id("Q-1")) == epoch + 43 * INTERVAL


def test_a_new_proposal_supersedes_an_unapplied_attestation(
    quorum_net, oracle_keys, tmp_path, epoch, chain
):
    """A leader that rebuilt its batch (other content, other digest) gets the peer's signature
    at once: the peer releases the readings from the batch it attested before, which nobody
    applied, instead of refusing them as 'already batched' until it expires."""
    zcx = quorum_net[0]
    registry = str(zcx.registry.address)
    with oracle_at(tmp_path / "b", quorum_net, oracle_keys[1], peer_names=["a"], leader=False) as b:
        posted = [wire("Q-2", epoch + (60 + i) * INTERVAL, gen=40 + i) for i in range(3)]
        assert b.post(posted).status_code == 202
        rows = [to_reading(r) for r in b.store.readings_of("Q-2", epoch + 60 * INTERVAL, None)]
        token = b.peer_tokens["a"]
        old = fast_batch_digest(rows[:2], chain.chain_id, registry)
        assert _attest(
            b.url, request_for(old, rows[:2], chain.chain_id, registry), token
        ).is_success
        new = fast_batch_digest(rows[1:], chain.chain_id, registry)
        r = _attest(b.url, request_for(new, rows[1:], chain.chain_id, registry), token)
        assert r.status_code == 200, r.text
        assert b.store.batch_by_digest(old).state == "superseded"
        assert b.store.batch_by_digest(new).state == "attested"
        assert [x.state for x in b.store.readings_of("Q-2", epoch + 60 * INTERVAL, None)] == [
            "accepted",
            "batched",
            "batched",
        ]


def test_a_leader_adopts_what_it_attested_and_lands_it(
    quorum_net, oracle_keys, tmp_path, epoch, chain
):
    """Whatever a leader attested for another leader (or a caller holding a peer credential)
    is adopted under the same digest, completed with a peer's signature and recorded: an
    attestation never freezes the leader's meters."""
    zcx = quorum_net[0]
    registry = str(zcx.registry.address)
    with three_oracles(tmp_path, quorum_net, oracle_keys, batch_max_age_s=30) as (a, b, c):
        posted = [wire("Q-1", epoch + (70 + i) * INTERVAL, gen=50 + i) for i in range(2)]
        for oracle in (a, b):
            assert oracle.post(posted).status_code == 202
        rows = [to_reading(r) for r in a.store.readings_of("Q-1", epoch + 70 * INTERVAL, None)]
        digest = fast_batch_digest(rows[:1], chain.chain_id, registry)
        body = request_for(digest, rows[:1], chain.chain_id, registry)
        assert _attest(a.url, body, a.peer_tokens["c"]).status_code == 200
        wait_until(lambda: a.store.batch_by_digest(digest).state == "confirmed", 20, "adopted")
        assert zcx.registry.isBatchApplied(digest)
        a.oracle.settings.batch_max_age_s = 0.2
        a.wait_final(2)
        assert zcx.registry.lastEnd(meter_id("Q-1")) == epoch + 72 * INTERVAL


def test_one_of_one_does_not_serve_attestations(tmp_path, oracle_keys):
    """In 1-of-1 mode (no peers, no peer credentials) the route does not exist at all."""
    with own_devnet(tmp_path, oracle_keys[0], ["ONE-1"]) as (anvil, _, _, _):
        gen = start_oracle(tmp_path / "o", anvil.url, tmp_path / "deployments", oracle_keys[0], [])
        alone = next(gen)
        try:
            r = httpx.post(f"{alone.url}/v1/attestations", json={}, timeout=10)
            assert r.status_code == 404
            assert r.headers["content-type"].startswith("application/problem+json")
            spec = httpx.get(f"{alone.url}/openapi.json", timeout=10).json()
            assert "/v1/attestations" not in spec["paths"]
        finally:
            next(gen, None)


def test_leader_never_batches_what_is_on_chain(
    quorum_net, oracle_keys, tmp_path, epoch, chain, submitter
):
    """Someone else (any account) submits a quorum-signed batch holding one of the leader's
    open readings. The leader syncs the registry's events and reads each meter's watermark
    before batching: that reading is confirmed from the event, never batched again; an open
    reading now behind the watermark is batched only if the registry's check accepts it (a
    late gap-filler), else rejected with the registry's reason without being sent."""
    zcx = quorum_net[0]
    registry = str(zcx.registry.address)
    t0, t1 = epoch + 80 * INTERVAL, epoch + 81 * INTERVAL
    posted = [wire("Q-2", t0, gen=61), wire("Q-2", t1, gen=62)]
    outside = Reading(meter_id("Q-2"), t1, t1 + INTERVAL, 62, 400, 600, 0)
    sigs = sign_quorum([outside], chain.chain_id, registry, oracle_keys[1:3])
    receipt = zcx.registry.submitBatch([outside.as_tuple()], sigs, sender=submitter)
    with three_oracles(tmp_path, quorum_net, oracle_keys) as (a, b, c):
        for oracle in (a, b):
            assert oracle.post(posted).status_code == 202
        a.wait_final(2)
        first, second = a.store.readings_of("Q-2", t0, None)
        assert second.state == "confirmed" and second.tx_hash == receipt.txn_hash
        assert second.batch_id is None  # learned from the event, never batched
        if first.state == "rejected":  # a registry that records each meter in order
            assert first.batch_id is None and first.reason.startswith("Registry")
            assert a.store.batches(("confirmed", "signing", "submitted")) == []
        else:  # a registry that accepts late gap-fillers
            assert first.state == "confirmed"
        assert recorded_counts(chain.provider.web3, registry)[(meter_id("Q-2"), t1)] == 1


def refusing_node(upstream: str, max_span: int, refused: list[int]) -> Starlette:
    """A JSON-RPC front of a real node that refuses eth_getLogs over more than `max_span`
    blocks, as hosted providers cap log queries (-32005); everything else is forwarded."""

    def too_wide(call: dict) -> bool:
        if call.get("method") != "eth_getLogs":
            return False
        query = call["params"][0]
        return int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1 > max_span

    async def handle(request: Request) -> JSONResponse:
        body = await request.json()
        calls = body if isinstance(body, list) else [body]
        if any(too_wide(c) for c in calls):
            refused.append(1)
            error = {"code": -32005, "message": "query returned more than 10000 results"}
            answers = [{"jsonrpc": "2.0", "id": c.get("id"), "error": error} for c in calls]
            return JSONResponse(answers if isinstance(body, list) else answers[0])
        async with httpx.AsyncClient() as client:
            forwarded = await client.post(upstream, json=body, timeout=30)
        return JSONResponse(forwarded.json())

    return Starlette(routes=[Route("/", handle, methods=["POST"])])


def test_event_sync_pages_and_halves_refused_ranges(
    quorum_net, chain, submitter, epoch, oracle_keys
):
    """The event sync reads every ReadingRecorded / BatchApplied log even through a node that
    refuses wide eth_getLogs ranges: refused pages are halved until the node answers."""
    zcx, directory, uri = quorum_net
    registry = str(zcx.registry.address)
    for i in range(3):  # three batches in three blocks
        start = epoch + (90 + i) * INTERVAL
        reading = Reading(meter_id("Q-1"), start, start + INTERVAL, 5, 1, 1, 1)
        sigs = sign_quorum([reading], chain.chain_id, registry, oracle_keys[:2])
        zcx.registry.submitBatch([reading.as_tuple()], sigs, sender=submitter)
    direct = Chain(uri, directory)
    direct.connect()
    head = ChainFollower(direct).head()
    want = ChainFollower(direct).fetch(0, head)
    refused: list[int] = []
    proxy = ServerThread(refusing_node(uri, 2, refused)).start()
    try:
        capped = Chain(proxy.url, directory)
        capped.connect()
        got = ChainFollower(capped, page_blocks=1_000).fetch(0, head)
    finally:
        proxy.stop()
    assert refused and got == want
    recorded = decode_events(got).recorded
    assert sum(1 for e in recorded if e[0] == "Q-1" and e[1] >= epoch + 90 * INTERVAL) == 3
