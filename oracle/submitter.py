"""Batching, signing, submission and reconciliation: the exactly-once machinery (invariant 6).

The argument, step by step:
1. A batch's content is fixed in the store (one transaction) before anyone signs it, so its
   EIP-712 digest never changes; a reading belongs to at most one batch.
2. The signed transaction (hash, nonce, raw bytes) is written to the store BEFORE it is sent.
   A crash after sending therefore still knows what may be on chain.
3. The registry applies a digest at most once (`isBatchApplied`, RegistryBatchAlreadyApplied),
   and per meter never records a reading over a slot it already holds, in any landing order.
   Resending the same raw transaction, or a re-signed one for the same batch, never counts twice.
4. On start and on every loop, open batches are reconciled: a receipt of any of the batch's
   transactions settles it; failing that, `isBatchApplied(digest)` plus a log search finds the
   transaction that applied it (also when another party submitted it); failing that, the batch
   was not applied and the same raw transaction is resent (or re-signed if its nonce was taken).
5. A receipt settles every reading of the batch: ReadingRecorded -> confirmed (block),
   ReadingRejected -> rejected (the decoded custom error). Bad readings never block good ones.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_utils import keccak

from oracle.chain import (
    ChainMismatch,
    ChainUnavailable,
    Receipt,
    RpcError,
    decode_error,
    decode_logs,
)
from oracle.chain_sync import SYNC_META, ChainFollower, decode_events
from oracle.quorum import QuorumClient
from oracle.service import Oracle
from oracle.settings import OracleSettings
from oracle.signer import digest_of_words, domain_separator, reading_words, submit_calldata
from oracle.store import OPEN_BATCH_STATES, Batch, StoredReading
from zcx.eip712 import Reading, order_signatures
from zcx.ids import meter_id as encode_meter_id

log = logging.getLogger(__name__)

READING_ARRAY = "(bytes32,uint64,uint64,uint64,uint64,uint64,uint64)[]"
SUBMIT_SELECTOR = keccak(text=f"submitBatch({READING_ARRAY},bytes[])")[:4]
LAST_END_SELECTOR = keccak(text="lastEnd(bytes32)")[:4]
# Whole-batch reverts, by what they say about the batch:
# - the registry is paused: wait and retry the same batch (never reject its readings);
WAIT = {"EnforcedPause"}
# - the signatures are wrong for the registry's current signer set: sign again;
RESIGN = {
    "RegistryQuorumNotMet",
    "RegistryUnknownSigner",
    "RegistryDuplicateSigner",
    "RegistrySignersNotSorted",
    "ECDSAInvalidSignature",
    "ECDSAInvalidSignatureLength",
    "ECDSAInvalidSignatureS",
}
# - anything else (out of gas, a revert without data, an error no reading check explains) is
#   not about the batch as such: the readings are checked one by one and the batch is split.
OUT_OF_GAS = "out of gas"


@lru_cache(maxsize=65_536)
def meter_bytes(label: str) -> bytes:
    return encode_meter_id(label)


def to_reading(r: StoredReading) -> Reading:
    return Reading(meter_bytes(r.meter), r.start, r.end, r.gen, r.cons, r.sold, r.purchased)


def words(r: StoredReading) -> bytes:
    return reading_words(meter_bytes(r.meter), r.start, r.end, r.gen, r.cons, r.sold, r.purchased)


def gas_bound(rows: Sequence[StoredReading], s: OracleSettings) -> int:
    """A conservative gas figure for a batch, from its layout (runs of one meter)."""
    runs = sum(1 for i, r in enumerate(rows) if i == 0 or rows[i - 1].meter != r.meter)
    return s.gas_base + runs * s.gas_per_run + len(rows) * s.gas_per_reading


def split_point(meters: Sequence[str]) -> int:
    """Where to halve a batch (its readings' meters, grouped): the meter boundary nearest the
    middle, so a meter's run stays whole; the middle when the batch is one meter's run."""
    middle = len(meters) // 2
    bounds = [i for i in range(1, len(meters)) if meters[i] != meters[i - 1]]
    return min(bounds, key=lambda i: abs(i - middle)) if bounds else max(middle, 1)


@dataclass(frozen=True)
class Isolation:
    """What becomes of a batch that reverted as a whole (positions in the batch)."""

    rejected: dict[int, str]  # position -> reason (final)
    successor: list[int]  # positions re-batched now, in order
    back: list[int]  # positions returned to the queue (batched again later, after successor)


def plan_isolation(
    meters: Sequence[str], verdicts: Sequence[bytes | None], name: str, text: str
) -> Isolation:
    """Pure decision for a whole-batch revert whose cause is not the batch as such.

    verdicts[i] is the registry's validateReading answer for reading i: None (acceptable), a
    custom error (the registry refuses it: rejected with that reason), or revert data it cannot
    explain (b"" or an unknown selector: this reading breaks the registry's check itself, the
    culprit; rejected with the batch's revert). If a reading is rejected, all the others form
    the successor batch. If none is, the batch is halved at a meter boundary: the first part is
    the successor and the rest returns to the queue (so a meter's later intervals never
    overtake earlier ones); a lone reading that reverts a batch on its own is rejected."""
    rejected: dict[int, str] = {}
    for pos, verdict in enumerate(verdicts):
        if verdict is None:
            continue
        decoded = decode_error(verdict) if verdict else None
        if decoded is not None and not decoded.name.startswith("unknown error"):
            rejected[pos] = str(decoded)
        else:
            rejected[pos] = f"reverts the registry's reading check ({name}: {text})"
    keep = [pos for pos in range(len(verdicts)) if pos not in rejected]
    if rejected:
        return Isolation(rejected, keep, [])
    if len(keep) == 1:
        return Isolation({keep[0]: f"reverts a batch on its own: {name}: {text}"}, [], [])
    cut = split_point(list(meters))
    return Isolation({}, keep[:cut], keep[cut:])


class Submitter:
    """Runs the batch life cycle in one thread. `step()` is one pass; `run()` loops with backoff."""

    def __init__(self, oracle: Oracle, on_fatal: Callable[[str], None] | None = None) -> None:
        self.oracle = oracle
        self.s = oracle.settings
        self.store = oracle.store
        self.chain = oracle.chain
        self.quorum = QuorumClient(oracle)
        self.on_fatal = on_fatal
        self._nonce: int | None = None
        self._separator: bytes | None = None
        self._head_cache: tuple[int, int, int] | None = None
        self._fees: dict[str, int] | None = None
        self._last_live_check = 0.0
        self._last_sync = 0.0
        self._synced_block = -1
        self.follower = ChainFollower(self.chain, lag_blocks=self.s.sync_lag_blocks)
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    # ---------------------------------------------------------------- loop

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="zcx-oracle-submitter", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.thread:
            self.thread.join(timeout)

    def run(self) -> None:
        backoff = self.s.poll_interval_s
        while not self._stop.is_set():
            try:
                busy = self.step()
                if not self.oracle.chain_ok:
                    log.info("chain reachable again")
                self.oracle.chain_ok, self.oracle.chain_detail = True, "ok"
                backoff = self.s.poll_interval_s
                wait = 0.0 if busy else self.s.poll_interval_s
            except ChainUnavailable as exc:
                if self.oracle.chain_ok:
                    log.warning("chain unreachable (%s); readings keep queueing", exc)
                self.oracle.chain_ok, self.oracle.chain_detail = False, str(exc)
                self.oracle.metrics.chain_errors.inc()
                self._last_live_check = 0.0  # re-check the deployment on recovery
                wait, backoff = backoff, min(backoff * 2, self.s.backoff_max_s)
            except ChainMismatch as exc:
                message = f"oracle stopped: {exc}"
                log.critical(message)
                self.oracle.fatal = message
                self.oracle.chain_ok, self.oracle.chain_detail = False, str(exc)
                if self.on_fatal:
                    self.on_fatal(message)
                return
            self._stop.wait(wait)

    def step(self) -> bool:
        """One pass over the life cycle; returns True when it did work (loop again at once)."""
        now = time.monotonic()
        self._head_cache = None
        if self.chain.deployment is None:
            self.oracle.connect()
            if self.chain.deployment is None:
                raise ChainUnavailable(self.oracle.chain_detail)
        if now - self._last_live_check > self.s.liveness_check_s:
            self.chain.check_live()
            self.oracle.refresh_config()
            self._separator = None
            self._fees = None
            self._last_live_check = now
        busy = self.reconcile()
        if now - self._last_sync > self.s.sync_interval_s:
            self.sync_chain()
        busy |= self.maintain_batches()
        if self.s.leader:
            busy |= self.form_batch()
            busy |= self.sign_batches()
            busy |= self.send_batches()
        return busy

    # ---------------------------------------------------------------- forming

    def form_batch(self) -> bool:
        open_batches = self.store.batches(("signing", "signed", "sending", "submitted"))
        if len(open_batches) >= self.s.max_inflight_batches:
            return False
        _, timestamp, gas_limit = self._head()
        ready = self.store.count_ready(timestamp)
        if ready == 0:
            return False
        cap = min(self.s.batch_max, 1000)
        if ready < cap and self.store.oldest_open_age() < self.s.batch_max_age_s:
            return False
        budget = int(gas_limit * self.s.block_gas_fraction) - self.s.gas_base
        rows = self.store.candidates(cap, timestamp)
        chosen: list[StoredReading] = []
        meters: set[str] = set()
        gas = 0
        for r in rows:
            extra = self.s.gas_per_reading + (0 if r.meter in meters else self.s.gas_per_run)
            if gas + extra > budget:
                break
            gas += extra
            meters.add(r.meter)
            chosen.append(r)
        if not chosen:
            return False
        chosen = self._not_on_chain(chosen)
        if not chosen:
            return True
        chosen.sort(key=lambda r: (r.meter, r.start))
        digest = self._digest([words(r) for r in chosen])
        batch_id = self.store.create_batch(chosen, digest, "lead")
        log.info("batch %d: %d readings of %d meters", batch_id, len(chosen), len(meters))
        return True

    def _digest(self, batch_words: Sequence[bytes]) -> bytes:
        if self._separator is None:
            self._separator = domain_separator(self.chain.chain_id, self.chain.registry_address)
        return digest_of_words(batch_words, self._separator)

    def _head(self) -> tuple[int, int, int]:
        """(number, timestamp, gas limit) of the latest block, fetched at most once a step."""
        if self._head_cache is None:
            self._head_cache = self.chain.head()
        return self._head_cache

    def _not_on_chain(self, chosen: list[StoredReading]) -> list[StoredReading]:
        """The chosen readings minus any the chain already holds or refuses. The store is
        synced with the registry's events up to block H first (readings recorded by anyone
        become confirmed there); then the registry's per-meter watermark `lastEnd` at H is
        read for every chosen meter. A reading ending at or before its meter's watermark that
        is still open was not recorded by H: it is batched only if the registry's own check
        (validateReading) accepts it (a late gap-filler, on a registry that takes them);
        otherwise it is rejected with the registry's reason, as the chain would."""
        head = self.sync_chain()
        ids = {r.id for r in chosen}
        still_open = {r.id for r in self.store.readings_by_ids(ids) if r.state == "accepted"}
        chosen = [r for r in chosen if r.id in still_open]
        meters = sorted({r.meter for r in chosen})
        ends = self._last_ends(meters, head)
        behind = [r for r in chosen if r.end <= ends.get(r.meter, 0)]
        if not behind:
            return chosen
        verdicts = self.chain.validate_readings([words(r) for r in behind])
        refused = {
            r.id: str(decode_error(v)) if v else "refused by the registry's reading check"
            for r, v in zip(behind, verdicts, strict=True)
            if v is not None
        }
        if refused:
            log.warning(
                "%d open readings are behind their meter's watermark on chain; rejected: %s",
                len(refused),
                sorted(set(refused.values()))[:3],
            )
            self.store.reject_open(refused)
        return [r for r in chosen if r.id not in refused]

    def _last_ends(self, meters: Sequence[str], block: int) -> dict[str, int]:
        """GenerationRegistry.lastEnd of each meter at `block` (one JSON-RPC batch)."""
        to = self.chain.registry_address
        calls = [
            (
                "eth_call",
                [{"to": to, "data": "0x" + (LAST_END_SELECTOR + meter_bytes(m)).hex()}, hex(block)],
            )
            for m in meters
        ]
        out: dict[str, int] = {}
        for meter, result in zip(meters, self.chain.rpc_batch(calls), strict=True):
            if isinstance(result, RpcError):
                raise ChainUnavailable(f"lastEnd failed: {result}")
            out[meter] = int(result, 16)
        return out

    # ---------------------------------------------------------------- chain events

    def sync_chain(self) -> int:
        """Applies the registry's events from the last seen block to the head (in pages);
        returns the block the store is now synced to."""
        head = self.follower.head()
        done = self.store.get_meta(SYNC_META)
        if done is None:
            assert self.chain.deployment is not None
            done = self.chain.deployment.deployment_block - 1
        for first, last in self.follower.pages(int(done), head):
            self._apply_events(self.follower.fetch(first, last))
            self.store.set_meta(SYNC_META, last)
        confirmed, rejected = self.store.match_recorded()
        if confirmed or rejected:
            self.oracle.metrics.confirmed.inc(confirmed)
            log.info(
                "%d readings that arrived after their interval was recorded on chain confirmed, "
                "%d with other values rejected",
                confirmed,
                rejected,
            )
        self._last_sync = time.monotonic()
        self._synced_block = max(head, int(done))
        return self._synced_block

    def _apply_events(self, logs: list[dict[str, Any]]) -> None:
        events = decode_events(logs)
        settled_txs: set[str] = set()
        for digest, tx_hash in events.applied:
            batch = self.store.batch_by_digest(digest)
            if batch is None:
                continue
            if batch.state in OPEN_BATCH_STATES:
                receipt = self.chain.receipt(tx_hash)
                if receipt is None:
                    continue
                self._apply_receipt(batch, receipt)
                batch = self.store.batch(batch.id)
            if batch.state == "confirmed":
                settled_txs.add("0x" + tx_hash.hex())
        recorded = [e for e in events.recorded if e[3] not in settled_txs]
        if recorded:
            confirmed, rejected = self.store.confirm_recorded(recorded)
            if confirmed or rejected:
                self.oracle.metrics.confirmed.inc(confirmed)
                log.info(
                    "chain events: %d of our readings recorded by batches we did not submit, "
                    "%d taken by other values",
                    confirmed,
                    rejected,
                )

    # ---------------------------------------------------------------- batch upkeep

    def maintain_batches(self) -> bool:
        """Keeps open batches from blocking anything:
        - an attested batch whose readings are all final (recorded by other batches) is settled;
        - a leader adopts the batches it attested for another leader (same digest: applied at
          most once, whoever submits it), so a follower restarted as leader finishes them;
        - a follower expires an attested batch nobody submitted within attestation_ttl_s: its
          readings go back to the queue (an attestation never freezes a meter);
        - a leader's batch below quorum past quorum_timeout_s, or holding a reading that another
          batch recorded on chain, is retired and its open readings are batched again."""
        busy = False
        now = time.time()
        for batch in self.store.batches(("attested",)):
            if self.store.open_positions(batch.id) == 0:
                self.store.retire_batch(batch.id, "settled", "recorded on chain by other batches")
            elif self.s.leader:
                log.info("adopting attested batch %d (0x%s)", batch.id, batch.digest.hex()[:12])
                self.store.adopt_batch(batch.id)
                busy = True
            elif now - batch.created_at > self.s.attestation_ttl_s:
                busy |= self._expire(batch, f"not applied within {self.s.attestation_ttl_s:.0f} s")
        if not self.s.leader:
            return busy
        overtaken = set(self.store.batches_overtaken(("signing",)))
        for batch in self.store.batches(("signing",)):
            if batch.id in overtaken:
                busy |= self._expire(batch, "a reading was recorded on chain by another batch")
            elif now - batch.created_at > self.s.quorum_timeout_s:
                busy |= self._expire(
                    batch, f"below quorum for {self.s.quorum_timeout_s:.0f} s; rebuilt"
                )
        return busy

    def _expire(self, batch: Batch, why: str) -> bool:
        """Retires a batch that was never submitted by us, unless the chain applied it."""
        if self.chain.is_batch_applied(batch.digest):
            return self._settle_applied(batch)
        back = self.store.retire_batch(batch.id, "expired", why)
        log.warning("batch %d expired (%s): %d readings back in the queue", batch.id, why, back)
        return True

    # ---------------------------------------------------------------- signing

    def sign_batches(self) -> bool:
        config = self.oracle.config
        signer = self.oracle.signer
        if config is None or signer is None:
            return False
        busy = False
        now = time.time()
        for batch in self.store.batches(("signing",)):
            if batch.next_attempt_at > now:
                continue
            have = dict(self.store.signatures(batch.id))
            if signer.address not in have:
                own = signer.sign_digest(batch.digest)
                self.store.add_signature(batch.id, signer.address, own)
                have[signer.address] = own
            valid = {a for a in have if a in config.signers}
            if len(valid) < config.quorum:
                readings = [to_reading(r) for r in self.store.batch_readings(batch.id)]
                for address, signature in self.quorum.collect(batch.digest, readings, set(have)):
                    self.store.add_signature(batch.id, address, signature)
                    have[address] = signature
                valid = {a for a in have if a in config.signers}
            if len(valid) >= config.quorum:
                self.store.set_batch_state(batch.id, "signed")
                busy = True
            else:
                delay = min(2.0 ** min(batch.attempts, 4), self.s.backoff_max_s)
                log.warning(
                    "batch %d has %d of %d signatures; retrying in %.0f s",
                    batch.id,
                    len(valid),
                    config.quorum,
                    delay,
                )
                self.store.set_batch_state(
                    batch.id, "signing", f"{len(valid)} of {config.quorum} signatures", delay
                )
        return busy

    # ---------------------------------------------------------------- sending

    def _next_nonce(self) -> int:
        if self._nonce is None:
            assert self.oracle.signer is not None
            chain_nonce = self.chain.nonce(self.oracle.signer.address)
            stored = self.store.max_nonce()
            self._nonce = max(chain_nonce, (stored + 1) if stored is not None else 0)
        nonce = self._nonce
        self._nonce += 1
        return nonce

    def _crash(self, point: str) -> None:
        if self.s.crash_point == point:
            log.critical("crash point %s reached: exiting hard (test fault injection)", point)
            os._exit(137)

    def _signatures(self, batch: Batch) -> list[bytes]:
        config = self.oracle.config
        assert config is not None
        signed = [(a, s) for a, s in self.store.signatures(batch.id) if a in config.signers]
        return order_signatures(signed)

    def send_batches(self) -> bool:
        busy = False
        now = time.time()
        for batch in self.store.batches(("signed",)):
            if batch.next_attempt_at > now:
                continue
            self.send(batch)
            busy = True
        return busy

    def send(self, batch: Batch) -> None:
        """Simulates the batch (one eth_call, at a gas figure from its layout), then signs,
        records and sends its transaction. The node's eth_estimateGas is not used: it runs the
        batch several times (~0.5 s for 1,000 readings on Anvil), the simulation once."""
        signer = self.oracle.signer
        assert signer is not None
        rows = self.store.batch_readings(batch.id)
        data = submit_calldata(SUBMIT_SELECTOR, [words(r) for r in rows], self._signatures(batch))
        _, _, gas_limit = self._head()
        gas = min(int(gas_bound(rows, self.s) * 1.2), gas_limit)
        error = self.chain.simulate(signer.address, data, gas)
        if error is not None and not error.data and gas < gas_limit:
            # No revert data: most likely out of gas at our figure; try the block's limit.
            if self.chain.simulate(signer.address, data, gas_limit) is None:
                log.warning("batch %d needs more than %d gas; using the block limit", batch.id, gas)
                gas, error = gas_limit, None
        if error is not None:
            self._batch_failed(batch, *self._describe(error))
            return
        if self._fees is None:
            self._fees = self.chain.fees()
        nonce = self._next_nonce()
        tx: dict[str, Any] = {
            "from": signer.address,
            "to": self.chain.registry_address,
            "data": data,
            "value": 0,
            "nonce": nonce,
            "gas": gas,
            "chainId": self.chain.chain_id,
            **self._fees,
        }
        raw, tx_hash = signer.sign_transaction(tx)
        self.store.record_tx(batch.id, tx_hash, nonce, raw)
        self._crash("after_record")
        self._send_raw(batch.id, tx_hash, raw)
        self._crash("after_send")

    @staticmethod
    def _describe(error: RpcError) -> tuple[str, str]:
        """(error name, text) of a failed simulation."""
        if error.data:
            decoded = decode_error(error.data)
            return decoded.name, str(decoded)
        message = str(error)
        # Nodes word it differently: geth "out of gas", revm "OutOfGas(..)" or, when an SSTORE
        # meets the EIP-2200 stipend floor, "ReentrancySentryOOG".
        if "gas" in message.lower() or "oog" in message.lower():
            return OUT_OF_GAS, message
        return "revert without data", message

    def _send_raw(self, batch_id: int, tx_hash: bytes, raw: bytes) -> None:
        try:
            self.chain.send_raw(raw)
        except RpcError as exc:
            text = str(exc).lower()
            self._fees = None
            if "nonce too low" in text:
                # Another transaction took this nonce; reconciliation re-signs if not applied.
                self._nonce = None
                log.warning("batch %d: nonce taken (%s); will reconcile", batch_id, exc)
                return
            if "gas" in text and ("limit" in text or "exceed" in text or "allowance" in text):
                # The node will never take this transaction (more gas than a block holds):
                # forget it (it was refused, so it is nowhere) and split the batch.
                self._nonce = None
                self.store.drop_tx(batch_id, tx_hash)
                self._batch_failed(self.store.batch(batch_id), OUT_OF_GAS, str(exc))
                return
            log.error("batch %d: node refused the transaction: %s", batch_id, exc)
            self.store.set_batch_state(batch_id, "sending", f"node refused: {exc}", 2.0)
            return
        self.store.mark_sent(batch_id, tx_hash)

    def _retry(self, batch: Batch, state: str, error: str) -> None:
        delay = min(2.0 ** min(batch.attempts, 4), self.s.backoff_max_s)
        log.warning("batch %d: %s; retrying in %.1f s", batch.id, error, delay)
        self.store.set_batch_state(batch.id, state, error, delay)

    def _batch_failed(self, batch: Batch, name: str, text: str) -> None:
        """A whole-batch revert (simulation or receipt)."""
        self.oracle.metrics.batches.labels("reverted").inc()
        if name == "RegistryBatchAlreadyApplied":
            self._settle_applied(batch)
            return
        if name in WAIT:
            self._retry(batch, "signed", f"{text} (waiting; the readings are kept)")
            return
        if name in RESIGN:
            self.oracle.refresh_config()
            self.store.clear_signatures(batch.id)
            self._retry(batch, "signing", text)
            return
        self.isolate(batch, name, text)

    def isolate(self, batch: Batch, name: str, text: str) -> None:
        """A batch reverted as a whole for a reason that is not about the batch as such, and
        nothing of it is applied (it never reached the chain, or its transaction reverted).
        Every reading is checked with the registry's validateReading (one JSON-RPC batch) and
        the batch is replaced as `plan_isolation` says: culprits rejected with the registry's
        reason, the rest re-batched, or the batch halved when no reading is to blame."""
        rows = self.store.batch_readings(batch.id)
        verdicts = self.chain.validate_readings([words(r) for r in rows])
        plan = plan_isolation([r.meter for r in rows], verdicts, name, text)
        successor = plan.successor
        digest = self._digest([words(rows[p]) for p in successor]) if successor else b""
        ids = self.store.replace_batch(
            batch.id,
            plan.rejected,
            [(digest, successor)] if successor else [],
            plan.back,
            f"replaced after a whole-batch revert: {name}: {text}",
        )
        metrics = self.oracle.metrics
        for reason in plan.rejected.values():
            metrics.rejected.labels("chain", reason.split(":")[0]).inc()
        log.warning(
            "batch %d reverted as a whole (%s: %s): %d readings rejected, %d re-batched as %s, "
            "%d back in the queue",
            batch.id,
            name,
            text,
            len(plan.rejected),
            len(successor),
            ids,
            len(plan.back),
        )

    # ---------------------------------------------------------------- reconciling

    def reconcile(self) -> bool:
        busy = False
        batches = self.store.batches(("sending", "submitted"))
        if batches:
            txs = {b.id: self.store.txs_of(b.id) for b in batches}
            hashes = [h for b in batches for h, _, _ in txs[b.id]]
            receipts = dict(zip(hashes, self.chain.receipts(hashes), strict=True))
            for batch in batches:
                found = [receipts[h] for h, _, _ in reversed(txs[batch.id]) if receipts[h]]
                if found and found[0] is not None:
                    self._apply_receipt(batch, found[0])
                    busy = True
                else:
                    busy |= self._unmined(batch, txs[batch.id])
        return busy

    def _unmined(self, batch: Batch, txs: list[tuple[bytes, int, bytes]]) -> bool:
        """A batch whose transactions have no receipt (yet): wait, resend or re-sign."""
        if not txs:
            self.store.set_batch_state(batch.id, "signed")
            return True
        current_hash, nonce, raw = txs[-1]
        sent_at = self.store.tx_sent_at(current_hash) or 0.0
        if batch.state == "submitted" and time.time() - sent_at < self.s.resend_after_s:
            return False  # just sent: the receipt is normally a block away
        if batch.state == "submitted" and self.chain.tx_known(current_hash):
            return False  # pending in the node's pool; wait for it
        if batch.next_attempt_at > time.time():
            return False
        if self.chain.is_batch_applied(batch.digest):
            return self._settle_applied(batch)
        assert self.oracle.signer is not None
        chain_nonce = self.chain.nonce(self.oracle.signer.address)
        if chain_nonce > nonce and not self.chain.tx_known(current_hash):
            # The nonce was consumed by another transaction and this batch is not applied:
            # sign a fresh transaction for the same batch (same digest, so still at most once).
            log.warning("batch %d: nonce %d was taken; re-signing", batch.id, nonce)
            self._nonce = None
            self.store.set_batch_state(batch.id, "signed")
            return True
        log.info("batch %d: (re)sending transaction 0x%s", batch.id, current_hash.hex())
        self._send_raw(batch.id, current_hash, raw)
        return True

    def _settle_applied(self, batch: Batch) -> bool:
        tx_hash = self.chain.find_applied_tx(batch.digest)
        if tx_hash is None:
            log.error("batch %d is applied but its transaction was not found in the logs", batch.id)
            return False
        receipt = self.chain.receipt(tx_hash)
        if receipt is None:
            return False
        self._apply_receipt(batch, receipt)
        return True

    def _apply_receipt(self, batch: Batch, receipt: Receipt) -> None:
        tx_hash = receipt.tx_hash
        block = receipt.block
        if receipt.status != 1:
            tx = self.chain.call(self.chain.w3.eth.get_transaction, tx_hash)
            if receipt.gas_used >= int(tx["gas"]):
                name, text = OUT_OF_GAS, f"used all {receipt.gas_used} gas"
            else:
                revert = self.chain.revert_reason(dict(tx), block - 1 if block else "latest")
                name = revert.name if revert else "revert without data"
                text = str(revert or "reverted")
            log.warning("batch %d: transaction 0x%s reverted: %s", batch.id, tx_hash.hex(), text)
            self._batch_failed(batch, name, text)
            return
        records = decode_logs(receipt, self.chain.registry_address)
        applied = [r for r in records if r.kind == "applied"]
        if not applied or applied[0].digest != batch.digest:
            log.error("batch %d: receipt 0x%s does not apply this batch", batch.id, tx_hash.hex())
            return
        readings = self.store.batch_readings(batch.id)
        position = {(meter_bytes(r.meter), r.start): r.batch_pos for r in readings}
        outcomes: dict[int, str | None] = {}
        metrics = self.oracle.metrics
        for rec in records:
            if rec.kind == "recorded":
                pos = position.get((rec.meter_id, rec.start))
                if pos is not None:
                    outcomes[pos] = None
            elif rec.kind == "rejected":
                reason = str(decode_error(rec.reason))
                outcomes[rec.index] = reason
                metrics.rejected.labels("chain", decode_error(rec.reason).name).inc()
        missing = [r.batch_pos for r in readings if r.batch_pos not in outcomes]
        if missing:
            log.error(
                "batch %d: no outcome for positions %s in the receipt", batch.id, missing[:10]
            )
            return
        self.store.finish_batch(batch.id, tx_hash, block, receipt.gas_used, outcomes)
        confirmed = sum(1 for v in outcomes.values() if v is None)
        metrics.confirmed.inc(confirmed)
        metrics.gas.inc(receipt.gas_used)
        metrics.batches.labels("confirmed").inc()
        now = time.time()
        for r in readings:
            metrics.latency.observe(max(now - r.accepted_at, 0.0))
        log.info(
            "batch %d confirmed in block %d: %d recorded, %d rejected, %d gas",
            batch.id,
            block,
            confirmed,
            len(outcomes) - confirmed,
            receipt.gas_used,
        )


def settle_all(submitter: Submitter, rounds: int = 50) -> None:
    """Runs steps until nothing is left to do (CLI `flush` and tests)."""
    for _ in range(rounds):
        if not submitter.step():
            return


__all__: Sequence[str] = ("Submitter", "settle_all")
