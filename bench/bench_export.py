"""`zcx export energytag` (issue 12 point 6): how long an export takes, and where the time goes.

    python bench/run.py --only export

Four 5 kW household meters report 30 days each (12 generating hours a day), claimed every 10
days: 1,440 hourly certificates. Their owner then splits 600 of them with partial transferLots
(20 picks per call), and the recipient retires part of 300 of those with retireLots. The export
is timed in its three steps: reading the logs and views over JSON-RPC from the deployment block,
replaying them into bundles and actions, and validating and writing the files.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_gas import (
    NETWORK,
    READINGS_PER_DAY,
    _anvil_without_step_traces,
    _figure,
    _GasBench,
    compile_bench_contracts,
)

log = logging.getLogger(__name__)

METERS = 4
DAYS = 30
CLAIM_EVERY_DAYS = 10
PICKS_PER_CALL = 20
TRANSFER_CALLS = 30
RETIRE_CALLS = 15


def run() -> dict[str, dict[str, Any]]:
    from ape import networks
    from ape.logging import logger as ape_logger

    contract_types = compile_bench_contracts()
    with ape_logger.at_level("WARNING"), _anvil_without_step_traces():
        with networks.parse_network_choice(NETWORK):
            return _ExportBench(contract_types).measure()


class _ExportBench(_GasBench):
    def measure(self) -> dict[str, dict[str, Any]]:
        from zcx.deploy import deploy_all

        self.zcx, _ = deploy_all(self.admin, self.operator.address, self.oracle_addresses, 2)
        start_block = int(self.chain.blocks.head.number)
        self.epoch = (self.chain.pending_timestamp - (DAYS + 5) * 86400) // 86400 * 86400
        self._register_members()
        meters = self._register_meters([f"BENCH-EXPORT-{i}" for i in range(METERS)], self.alice)
        self._generate_and_claim(meters)
        self._split_and_retire()
        return self._time_export(start_block)

    def _generate_and_claim(self, meters: list[bytes]) -> None:
        for day in range(DAYS):
            slots = range(day * READINGS_PER_DAY, (day + 1) * READINGS_PER_DAY)
            self._submit([self._reading(mid, slot) for mid in meters for slot in slots])
            if (day + 1) % CLAIM_EVERY_DAYS == 0:
                for mid in meters:
                    self._claim(mid, self.alice)
        log.info("%d certificates issued", int(self.zcx.zcv.certificateCount()))

    def _split_and_retire(self) -> None:
        zcv = self.zcx.zcv
        for call in range(TRANSFER_CALLS):
            first = call * PICKS_PER_CALL + 1
            picks = [(cid, 1000) for cid in range(first, first + PICKS_PER_CALL)]
            zcv.transferLots(self.bob, picks, sender=self.alice)
        end = self.epoch + DAYS * 86400
        for call in range(RETIRE_CALLS):
            first = call * PICKS_PER_CALL + 1
            picks = [(cid, 400) for cid in range(first, first + PICKS_PER_CALL)]
            zcv.retireLots(picks, "Bench beneficiary", "bench", self.epoch, end, sender=self.bob)

    def _time_export(self, start_block: int) -> dict[str, dict[str, Any]]:
        from zcx.audit.events import abis_from_manifest
        from zcx.export.energytag import build_export, write_export
        from zcx.export.source import read_record

        abis = abis_from_manifest()
        addresses = self.zcx.addresses()
        t0 = time.perf_counter()
        record = read_record(self.chain.provider.web3, addresses, abis, start_block)
        t1 = time.perf_counter()
        export = build_export(record)
        t2 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            write_export(export, Path(out))
        t3 = time.perf_counter()
        bundles, actions = len(export.bundles), len(export.actions)
        certificates = len(record.issued)
        note = (
            f"{certificates} hourly certificates ({METERS} meters x {DAYS} days x 12 h), "
            f"{TRANSFER_CALLS * PICKS_PER_CALL} split by partial transferLots, "
            f"{RETIRE_CALLS * PICKS_PER_CALL} partly retired: {bundles} bundles, {actions} "
            f"actions; read {t1 - t0:.2f} s (logs, block times, policy schedules, meters), "
            f"replay {t2 - t1:.2f} s, validate + write {t3 - t2:.2f} s; Anvil on loopback"
        )
        return {
            "export_energytag_seconds": _figure(round(t3 - t0, 2), "s", note),
            "export_energytag_ms_per_bundle": _figure(
                round(1000 * (t3 - t0) / bundles, 3), "ms/bundle", note
            ),
        }
