"""ZCX oracle: meter gateways post readings over HTTP; the oracle stores them durably, signs them
(EIP-712) and submits them to the GenerationRegistry in batches, exactly once (DESIGN invariant 6).

Modules: settings (configuration), models (wire formats), validation (rules shared by the API and
the CSV import), store (SQLite WAL outbox), chain (web3 access), signer (keys and fast EIP-712
digests), submitter (batching, nonces, receipts, reconciliation), quorum (attestations between
oracles), api (FastAPI app), csv_import (interval CSV and B-route registers), cli (click).
"""
