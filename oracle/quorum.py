"""k-of-n attestation exchange between independent oracle processes.

Design (docs/oracle.md has the full story):
- Every member's validator runs its own oracle with its own key, store and gateway tokens.
  Gateways post each reading to every oracle (n posts), so each oracle holds its own copy.
- One oracle is the leader (ZCX_ORACLE_LEADER=true). It forms batches from its store, fixes
  their content and digest, signs, and asks its peers (ZCX_ORACLE_PEERS, base URLs) for their
  signatures with POST /v1/attestations.
- A peer signs only when every reading of the proposed batch is in its own store with exactly
  the same values, is still open (or already attested under the same digest: re-asking is
  idempotent), and the digest it computes itself (its chain id, its registry) equals the
  proposed one. It then marks those readings as batched under that digest and follows the batch
  on chain (isBatchApplied + logs) to confirm them in its own store.
- The leader checks each returned signature recovers to a registered signer, orders them by
  signer address, and submits once it has k. One oracle alone can never reach k > 1.
- Every request carries the asking oracle's own credential (a bearer token the peer issued to
  it with `zcx oracle peers add`, stored hashed there). The route is always authenticated and
  only served in quorum mode; an oracle in quorum mode refuses to start without credentials.
- Nothing stalls (issue 10): every oracle learns what was recorded from the registry's events
  (oracle/chain_sync.py); a proposal holding readings this peer attested in another batch that
  was not applied supersedes it (the leader rebuilt its batch); an attested batch nobody
  applies expires (oracle/submitter.py `maintain_batches`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx

from oracle.models import Attestation, AttestationReading, AttestationRequest, ProblemItem
from oracle.signer import fast_batch_digest, recover
from oracle.store import RETIRED_BATCH_STATES, Conflict
from zcx.eip712 import Reading
from zcx.ids import meter_id as encode_meter_id
from zcx.ids import meter_label

if TYPE_CHECKING:
    from oracle.service import Oracle
    from oracle.settings import OracleSettings

log = logging.getLogger(__name__)


class AttestationRefused(Exception):
    def __init__(self, status: int, title: str, items: list[ProblemItem]) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.items = items


def request_for(digest: bytes, readings: Sequence[Reading], chain_id: int, registry: str) -> dict:
    return AttestationRequest(
        chain_id=chain_id,
        registry=registry,
        digest="0x" + digest.hex(),
        readings=[
            AttestationReading(
                meter_id=meter_label(r.meter_id),
                start=r.start,
                end=r.end,
                generated_wh=r.generated_wh,
                consumed_wh=r.consumed_wh,
                sold_wh=r.sold_wh,
                purchased_wh=r.purchased_wh,
            )
            for r in readings
        ],
    ).model_dump()


class QuorumConfigError(ValueError):
    """The oracle cannot run in quorum mode as configured (the message says what is missing)."""


def peer_token(settings: OracleSettings, peer: str) -> str | None:
    token = settings.peer_tokens.get(peer) or settings.peer_tokens.get(peer.rstrip("/"))
    return token.get_secret_value() if token else None


def quorum_mode(oracle: Oracle) -> bool:
    """Quorum mode: the registry needs more than one signature, or peers are configured on
    either side. Otherwise (1 of 1) the attestation route is not served at all."""
    config = oracle.config
    return bool(
        (config is not None and config.quorum > 1)
        or oracle.settings.peers
        or oracle.store.peer_names()
    )


def check_quorum_config(oracle: Oracle) -> None:
    """Refuses to run in quorum mode without per-peer credentials on both sides: tokens this
    oracle accepts (in its store) and, for a leader, a token for every peer it asks, and
    enough peers to reach the quorum."""
    if not quorum_mode(oracle):
        return
    s = oracle.settings
    missing = []
    if not oracle.store.peer_names():
        missing.append(
            "no peer may ask this oracle for attestations: issue each peer a credential with "
            "`zcx oracle peers add NAME`"
        )
    if s.leader:
        missing += [
            f"no token for peer {peer} in ZCX_ORACLE_PEER_TOKENS"
            for peer in s.peers
            if peer_token(s, peer) is None
        ]
        need = (oracle.config.quorum - 1) if oracle.config else 0
        if len(s.peers) < need:
            missing.append(
                f"the registry needs {need + 1} signatures but only {len(s.peers)} peers are "
                "configured (ZCX_ORACLE_PEERS)"
            )
    if missing:
        raise QuorumConfigError("quorum mode: " + "; ".join(missing))


class QuorumClient:
    """The leader's side: asks peers for signatures."""

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle

    def collect(
        self, digest: bytes, readings: Sequence[Reading], have: set[str]
    ) -> list[tuple[str, bytes]]:
        s = self.oracle.settings
        config = self.oracle.config
        if not s.peers or config is None:
            return []
        body = request_for(
            digest, readings, self.oracle.chain.chain_id, self.oracle.chain.registry_address
        )
        got: list[tuple[str, bytes]] = []
        need = config.quorum - len({a for a in have if a in config.signers})
        with httpx.Client(timeout=s.peer_timeout_s) as client:
            for peer in s.peers:
                if need <= 0:
                    break
                url = peer.rstrip("/") + "/v1/attestations"
                token = peer_token(s, peer)
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                try:
                    response = client.post(url, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    log.warning("peer %s unreachable: %s", peer, exc)
                    continue
                if response.status_code != 200:
                    log.warning(
                        "peer %s refused batch 0x%s: %s %s",
                        peer,
                        digest.hex()[:12],
                        response.status_code,
                        response.text[:300],
                    )
                    continue
                att = Attestation.model_validate(response.json())
                signature = bytes.fromhex(att.signature.removeprefix("0x"))
                signer = recover(digest, signature)
                if signer not in config.signers or signer in have:
                    log.warning("peer %s returned a signature of %s (not usable)", peer, signer)
                    continue
                got.append((signer, signature))
                have.add(signer)
                need -= 1
        return got


def attest(oracle: Oracle, req: AttestationRequest) -> Attestation:
    """The peer's side: verify the proposed batch against our own store and sign it."""
    chain = oracle.chain
    if oracle.signer is None:
        raise AttestationRefused(503, "this oracle has no signing key", [])
    if chain.deployment is None:
        raise AttestationRefused(503, "not connected to the chain yet", [])
    if req.chain_id != chain.chain_id or req.registry.lower() != chain.registry_address.lower():
        raise AttestationRefused(422, "batch is for another chain or registry", [])
    readings: list[Reading] = []
    items: list[ProblemItem] = []
    for i, r in enumerate(req.readings):
        try:
            readings.append(
                Reading(
                    encode_meter_id(r.meter_id),
                    r.start,
                    r.end,
                    r.generated_wh,
                    r.consumed_wh,
                    r.sold_wh,
                    r.purchased_wh,
                )
            )
        except ValueError as exc:
            items.append(ProblemItem(index=i, field="meter_id", message=str(exc)))
    if items:
        raise AttestationRefused(422, "malformed readings", items)
    digest = fast_batch_digest(readings, chain.chain_id, chain.registry_address)
    if "0x" + digest.hex() != req.digest.lower():
        raise AttestationRefused(422, "digest does not match the readings", [])
    store = oracle.store
    existing = store.batch_by_digest(digest)
    if existing is None or existing.state in RETIRED_BATCH_STATES:
        vouch(oracle, req, digest)
    elif existing.state == "attested":
        store.touch_batch(existing.id)  # its leader still wants it: restart the expiry clock
    signature = oracle.signer.sign_digest(digest)
    return Attestation(
        signer=oracle.signer.address, signature="0x" + signature.hex(), digest="0x" + digest.hex()
    )


def vouch(oracle: Oracle, req: AttestationRequest, digest: bytes) -> None:
    """Checks every proposed reading against our own copy and fixes the batch as attested.
    Readings we attested in another batch that was not applied are released from it (the
    leader rebuilt its batch; the old one is superseded): either batch may still land, and the
    registry records each interval once, so no reading waits on an abandoned batch."""
    store = oracle.store
    items: list[ProblemItem] = []
    rows = []
    supersede: set[int] = set()
    for i, r in enumerate(req.readings):
        found = store.readings_of(r.meter_id, r.start, r.start + 1)
        mine = next((x for x in found if x.start == r.start), None)
        if mine is None:
            items.append(
                ProblemItem(index=i, field="meter_id", message="not in this oracle's store")
            )
        elif (mine.end, mine.gen, mine.cons, mine.sold, mine.purchased) != (
            r.end,
            r.generated_wh,
            r.consumed_wh,
            r.sold_wh,
            r.purchased_wh,
        ):
            items.append(
                ProblemItem(
                    index=i, field="generated_wh", message="values differ from this oracle's copy"
                )
            )
        elif mine.state == "accepted":
            rows.append(mine)
        elif mine.state == "batched" and _attested_elsewhere(oracle, mine.batch_id):
            supersede.add(int(mine.batch_id or 0))
            rows.append(mine)
        else:
            where = "on chain" if mine.state == "confirmed" else "in another batch"
            items.append(
                ProblemItem(index=i, field="state", message=f"already {mine.state} {where}")
            )
    if items:
        raise AttestationRefused(409, "this oracle cannot vouch for every reading", items)
    for batch_id in sorted(supersede):
        store.retire_batch(batch_id, "superseded", f"readings proposed again in 0x{digest.hex()}")
    rows = [r for r in store.readings_by_ids(r.id for r in rows) if r.state == "accepted"]
    if len(rows) != len(req.readings):
        raise AttestationRefused(409, "readings changed state; ask again", [])
    by_start = {(r.meter, r.start): r for r in rows}
    ordered = [by_start[(r.meter_id, r.start)] for r in req.readings]
    try:
        store.create_batch(ordered, digest, "attest")
    except Conflict as exc:
        raise AttestationRefused(409, "readings changed state; ask again", []) from exc
    log.info("attested batch 0x%s of %d readings", digest.hex()[:12], len(ordered))


def _attested_elsewhere(oracle: Oracle, batch_id: int | None) -> bool:
    """True when the batch holding a reading is one we attested and nobody applied yet."""
    if batch_id is None:
        return False
    batch = oracle.store.batch(batch_id)
    if batch.state != "attested":
        return False
    return not oracle.chain.is_batch_applied(batch.digest)
