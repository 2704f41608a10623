"""Batching, signing, submission and reconciliation: the exactly-once machinery (invariant 6).

The argument, step by step:
1. A batch's content is fixed in the store (one transaction) before anyone signs it, so its
   EIP-712 digest never changes; a reading belongs to at most one batch.
2. The signed transaction (hash, nonce, raw bytes) is written to the store BEFORE it is sent.
   A crash after sending therefore still knows what may be on chain.
3. The registry applies a digest at most once (`isBatchApplied`, RegistryBatchAlreadyApplied),
   and per meter only accepts readings starting at or after its watermark `lastEnd`. Resending
   the same raw transaction, or a re-signed one for the same batch, can never count twice.
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
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3.exceptions import ContractLogicError, Web3RPCError

from oracle.chain import ChainMismatch, ChainUnavailable, decode_error, decode_logs
from oracle.quorum import QuorumClient
from oracle.service import Oracle
from oracle.signer import fast_batch_digest
from oracle.store import Batch, StoredReading
from zcx.eip712 import Reading, order_signatures
from zcx.ids import meter_id as encode_meter_id

log = logging.getLogger(__name__)

# Gas bounds used to size a batch before the node's estimate (measured on the registry: a meter's
# first-ever run writes three fresh slots; later runs two warm ones; each reading adds hashing).
GAS_PER_RUN = 70_000
GAS_PER_READING = 9_000
GAS_BASE = 150_000
READING_ARRAY = "(bytes32,uint64,uint64,uint64,uint64,uint64,uint64)[]"
SUBMIT_SELECTOR = keccak(text=f"submitBatch({READING_ARRAY},bytes[])")[:4]
# Batch-level reverts worth retrying unchanged later (the batch content is fine).
RETRYABLE = {
    "EnforcedPause",
    "RegistryQuorumNotMet",
    "RegistryUnknownSigner",
    "RegistryDuplicateSigner",
    "RegistrySignersNotSorted",
}


def to_reading(r: StoredReading) -> Reading:
    return Reading(encode_meter_id(r.meter), r.start, r.end, r.gen, r.cons, r.sold, r.purchased)


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
        self._last_live_check = 0.0
        self._last_attest_check = 0.0
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
        if self.chain.deployment is None:
            self.oracle.connect()
            if self.chain.deployment is None:
                raise ChainUnavailable(self.oracle.chain_detail)
        if now - self._last_live_check > self.s.liveness_check_s:
            self.chain.check_live()
            self.oracle.refresh_config()
            self._last_live_check = now
        busy = self.reconcile()
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
        _, timestamp, gas_limit = self.chain.head()
        if self.store.count_ready(timestamp) == 0:
            return False
        cap = min(self.s.batch_max, 1000)
        if (
            self.store.count_ready(timestamp) < cap
            and self.store.oldest_open_age() < self.s.batch_max_age_s
        ):
            return False
        budget = int(gas_limit * self.s.block_gas_fraction) - GAS_BASE
        rows = self.store.candidates(cap, timestamp)
        chosen: list[StoredReading] = []
        meters: set[str] = set()
        gas = 0
        for r in rows:
            extra = GAS_PER_READING + (0 if r.meter in meters else GAS_PER_RUN)
            if gas + extra > budget:
                break
            gas += extra
            meters.add(r.meter)
            chosen.append(r)
        if not chosen:
            return False
        chosen.sort(key=lambda r: (r.meter, r.start))
        digest = fast_batch_digest(
            [to_reading(r) for r in chosen], self.chain.chain_id, self.chain.registry_address
        )
        batch_id = self.store.create_batch(chosen, digest, "lead")
        log.info("batch %d: %d readings of %d meters", batch_id, len(chosen), len(meters))
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
            readings = [to_reading(r) for r in self.store.batch_readings(batch.id)]
            have = dict(self.store.signatures(batch.id))
            if signer.address not in have:
                own = signer.sign_digest(batch.digest)
                self.store.add_signature(batch.id, signer.address, own)
                have[signer.address] = own
            valid = {a for a in have if a in config.signers}
            if len(valid) < config.quorum:
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
                    batch.id, len(valid), config.quorum, delay,
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

    def _call_args(self, batch: Batch) -> tuple[list[tuple[Any, ...]], list[bytes]]:
        config = self.oracle.config
        assert config is not None
        readings = [to_reading(r).as_tuple() for r in self.store.batch_readings(batch.id)]
        signed = [(a, s) for a, s in self.store.signatures(batch.id) if a in config.signers]
        return readings, order_signatures(signed)

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
        signer = self.oracle.signer
        assert signer is not None
        readings, signatures = self._call_args(batch)
        # Encoded once with eth_abi: web3's contract layer re-validates every tuple (slow at 1000).
        data = SUBMIT_SELECTOR + abi_encode([READING_ARRAY, "bytes[]"], [readings, signatures])
        to = self.chain.registry_address
        try:
            estimate = self.chain.call(
                self.chain.w3.eth.estimate_gas, {"from": signer.address, "to": to, "data": data}
            )
        except ContractLogicError as exc:
            hexdata = exc.data if isinstance(exc.data, str) else ""
            reason = decode_error(bytes.fromhex(hexdata[2:])) if hexdata.startswith("0x") else None
            self._batch_failed(batch, reason.name if reason else str(exc), str(reason or exc))
            return
        except Web3RPCError as exc:
            self._retry(batch, "signed", f"gas estimate failed: {exc}")
            return
        _, _, gas_limit = self.chain.head()
        tx = {
            "from": signer.address,
            "to": to,
            "data": data,
            "value": 0,
            "nonce": self._next_nonce(),
            "gas": min(int(estimate * 1.2) + 50_000, gas_limit),
            "chainId": self.chain.chain_id,
            **self.chain.fees(),
        }
        raw, tx_hash = signer.sign_transaction(tx)
        self.store.record_tx(batch.id, tx_hash, int(tx["nonce"]), raw)
        self._crash("after_record")
        self._send_raw(batch.id, tx_hash, raw)
        self._crash("after_send")

    def _send_raw(self, batch_id: int, tx_hash: bytes, raw: bytes) -> None:
        try:
            self.chain.send_raw(raw)
        except Web3RPCError as exc:
            text = str(exc).lower()
            if "nonce too low" in text:
                # Another transaction took this nonce; reconciliation re-signs if not applied.
                self._nonce = None
                log.warning("batch %d: nonce taken (%s); will reconcile", batch_id, exc)
                return
            log.error("batch %d: node refused the transaction: %s", batch_id, exc)
            self.store.set_batch_state(batch_id, "sending", f"node refused: {exc}", 2.0)
            return
        self.store.mark_sent(batch_id, tx_hash)

    def _retry(self, batch: Batch, state: str, error: str) -> None:
        delay = min(2.0 ** min(batch.attempts, 4), self.s.backoff_max_s)
        log.warning("batch %d: %s; retrying in %.0f s", batch.id, error, delay)
        self.store.set_batch_state(batch.id, state, error, delay)

    def _batch_failed(self, batch: Batch, name: str, text: str) -> None:
        """A whole-batch revert (estimate or receipt)."""
        self.oracle.metrics.batches.labels("reverted").inc()
        if name == "RegistryBatchAlreadyApplied":
            self._settle_applied(batch)
            return
        if name in ("RegistryQuorumNotMet", "RegistryUnknownSigner"):
            self.store.clear_signatures(batch.id)
            self._retry(batch, "signing", text)
            return
        self._retry(batch, "signed", text)

    # ---------------------------------------------------------------- reconciling

    def reconcile(self) -> bool:
        busy = False
        for batch in self.store.batches(("sending", "submitted")):
            busy |= self._reconcile_batch(batch)
        if self.store.batches(("attested",)) and time.monotonic() - self._last_attest_check > 0.5:
            self._last_attest_check = time.monotonic()
            for batch in self.store.batches(("attested",)):
                if self.chain.is_batch_applied(batch.digest):
                    busy |= self._settle_applied(batch)
        return busy

    def _reconcile_batch(self, batch: Batch) -> bool:
        txs = self.store.txs_of(batch.id)
        for tx_hash, _, _ in reversed(txs):
            receipt = self.chain.receipt(tx_hash)
            if receipt is not None:
                self._apply_receipt(batch, receipt)
                return True
        if not txs:
            self.store.set_batch_state(batch.id, "signed")
            return True
        current_hash, nonce, raw = txs[-1]
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

    def _apply_receipt(self, batch: Batch, receipt: Any) -> None:
        tx_hash = bytes(receipt["transactionHash"])
        block = int(receipt["blockNumber"])
        if int(receipt["status"]) != 1:
            tx = self.chain.call(self.chain.w3.eth.get_transaction, tx_hash)
            reason = self.chain.revert_reason(dict(tx), block - 1 if block else "latest")
            name = reason.name if reason else "unknown revert"
            log.warning("batch %d: transaction 0x%s reverted: %s", batch.id, tx_hash.hex(), reason)
            self._batch_failed(batch, name, str(reason or "reverted"))
            return
        records = decode_logs(receipt, self.chain.registry_address)
        applied = [r for r in records if r.kind == "applied"]
        if not applied or applied[0].digest != batch.digest:
            log.error("batch %d: receipt 0x%s does not apply this batch", batch.id, tx_hash.hex())
            return
        readings = self.store.batch_readings(batch.id)
        position = {(encode_meter_id(r.meter), r.start): r.batch_pos for r in readings}
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
            log.error("batch %d: no outcome for positions %s in the receipt", batch.id, missing[:10])
            return
        self.store.finish_batch(batch.id, tx_hash, block, int(receipt["gasUsed"]), outcomes)
        confirmed = sum(1 for v in outcomes.values() if v is None)
        metrics.confirmed.inc(confirmed)
        metrics.gas.inc(int(receipt["gasUsed"]))
        metrics.batches.labels("confirmed").inc()
        now = time.time()
        for r in readings:
            metrics.latency.observe(max(now - r.accepted_at, 0.0))
        log.info(
            "batch %d confirmed in block %d: %d recorded, %d rejected, %d gas",
            batch.id, block, confirmed, len(outcomes) - confirmed, int(receipt["gasUsed"]),
        )


def settle_all(submitter: Submitter, rounds: int = 50) -> None:
    """Runs steps until nothing is left to do (CLI `flush` and tests)."""
    for _ in range(rounds):
        if not submitter.step():
            return


__all__: Sequence[str] = ("Submitter", "settle_all")
